-- The change log: audit trail, outbox and source of WatchChanges (kit::changelog).
-- Appends are serialized in commit order by a transaction-scoped advisory
-- lock taken just before commit, so `sequence` order is commit order.
CREATE SEQUENCE change_log_sequence AS bigint;

CREATE TABLE change_log (
    sequence      bigint      PRIMARY KEY,
    event_id      uuid        NOT NULL UNIQUE,
    resource_type text        NOT NULL,
    resource_id   text        NOT NULL,
    change_kind   smallint    NOT NULL,
    actor         text        NOT NULL,
    change_time   timestamptz NOT NULL DEFAULT clock_timestamp(),
    field_paths   text[]      NOT NULL DEFAULT '{}',
    resource      bytea       NOT NULL
);

-- Field history of one resource.
CREATE INDEX change_log_resource ON change_log (resource_type, resource_id, sequence);
CREATE INDEX change_log_time ON change_log (change_time);

-- Everything at or below `pruned_through` has been pruned; a cursor below
-- it has expired.
CREATE TABLE change_log_horizon (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_through bigint  NOT NULL DEFAULT 0
);
INSERT INTO change_log_horizon DEFAULT VALUES;
