-- Record ownership: every deal belongs to a team (empty: none yet), as
-- well as to its owner and the members of its deal team.
ALTER TABLE deals ADD COLUMN team_id text NOT NULL DEFAULT '';
