-- Activities move a contact's last_activity_time many times a day: leave
-- room on each page so that update stays on the page (HOT, no index
-- touched, not even the search indexes). A score to recompute is queued
-- here rather than marked on the contact (score_version is indexed, and
-- marking it would make every activity a full-row index update).
ALTER TABLE contacts SET (fillfactor = 85);
ALTER TABLE companies SET (fillfactor = 85);

CREATE TABLE score_queue (
    contact_id uuid PRIMARY KEY
);

-- When the score's explanation last changed (a recompute that finds the
-- same score writes nothing).
ALTER TABLE contacts ADD COLUMN score_time timestamptz;
