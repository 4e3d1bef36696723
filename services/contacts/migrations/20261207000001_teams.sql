-- Record ownership: every contact and company belongs to a team (empty:
-- none yet), as well as to its owner.
ALTER TABLE contacts ADD COLUMN team_id text NOT NULL DEFAULT '';
ALTER TABLE companies ADD COLUMN team_id text NOT NULL DEFAULT '';
