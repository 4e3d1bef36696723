-- Companies and contacts the Contacts service deleted, as its change feed
-- reported them: one tombstone per id, written by the feed consumer in the
-- transaction that drops the id from live deals, removed when Contacts
-- undeletes it. A deal write naming an id checks here in its own
-- transaction, and both take an advisory lock on the id (the consumer
-- exclusive, the write shared), so a deletion applied between the write's
-- check with Contacts and its commit is never missed: either the write
-- sees the tombstone (and asks Contacts again), or the consumer, waiting
-- for the write, then sees the committed deal and drops the id from it.
CREATE TABLE deleted_references (
    id          uuid        PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('COMPANY', 'CONTACT')),
    delete_time timestamptz NOT NULL DEFAULT now()
);
