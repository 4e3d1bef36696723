-- The change log: audit trail, outbox and source of WatchChanges (kit::changelog).
--
-- Commit order: a row is inserted without a sequence; a deferred constraint
-- trigger draws the sequence at COMMIT, under a transaction-scoped advisory
-- lock that is released only once the commit is visible. A transaction
-- holding sequence N is therefore visible before any other can draw N+1, so
-- `sequence` order is commit order and a consumer can never skip a row. The
-- lock is held only while committing, never across a client round trip.
CREATE SEQUENCE change_log_sequence AS bigint;

CREATE TABLE change_log (
    event_id      uuid        PRIMARY KEY,
    sequence      bigint      UNIQUE,
    resource_type text        NOT NULL,
    resource_id   text        NOT NULL,
    change_kind   smallint    NOT NULL,
    actor         text        NOT NULL,
    change_time   timestamptz NOT NULL DEFAULT clock_timestamp(),
    field_paths   text[]      NOT NULL DEFAULT '{}',
    resource      bytea       NOT NULL
);

-- Field history of one resource. (Few indexes: the commit-time sequence
-- assignment updates every one of them while holding the append lock.)
CREATE INDEX change_log_resource ON change_log (resource_type, resource_id);

-- Runs at COMMIT for each appended row, in append order. The lock key's
-- first half matches kit::changelog's APPEND_LOCK_CLASS ("rapp").
CREATE FUNCTION change_log_sequence_at_commit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1918988400, hashtext(TG_TABLE_SCHEMA));
    UPDATE change_log SET sequence = nextval('change_log_sequence') WHERE event_id = NEW.event_id;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER change_log_sequence_at_commit
    AFTER INSERT ON change_log
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION change_log_sequence_at_commit();

-- Everything at or below `pruned_through` has been pruned; a cursor below
-- it has expired.
CREATE TABLE change_log_horizon (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_through bigint  NOT NULL DEFAULT 0
);
INSERT INTO change_log_horizon DEFAULT VALUES;
