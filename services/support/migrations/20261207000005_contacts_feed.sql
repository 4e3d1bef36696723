-- Cases follow Contacts' change feed: a requester deleted in Contacts is
-- marked on their cases (the cases keep the id and their history).
ALTER TABLE cases ADD COLUMN requester_deleted boolean NOT NULL DEFAULT false;
-- The version of the calendar a clock was last measured with.
ALTER TABLE case_sla_clocks ADD COLUMN calendar_version bigint NOT NULL DEFAULT 0;
CREATE INDEX cases_company_live ON cases (company_id) WHERE company_id IS NOT NULL AND delete_time IS NULL;
