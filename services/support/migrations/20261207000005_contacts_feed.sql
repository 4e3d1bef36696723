-- Cases follow Contacts' change feed: a requester deleted in Contacts is
-- marked on their cases (the cases keep the id and their history).
ALTER TABLE cases ADD COLUMN requester_deleted boolean NOT NULL DEFAULT false;
CREATE INDEX cases_company_live ON cases (company_id) WHERE company_id IS NOT NULL AND delete_time IS NULL;
