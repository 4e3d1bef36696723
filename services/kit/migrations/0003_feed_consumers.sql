-- Change-feed consumers (kit::consumer). Each feed this service consumes
-- (e.g. `contacts`: the Contacts service's WatchChanges) has a cursor, and
-- the events it applied are remembered for a while by id; both are written
-- in the same transaction as the events' effects, so an effect is never
-- committed without its cursor, nor applied twice.

-- Everything up to `after_sequence` of `feed` has been applied (or was
-- covered by a resync).
CREATE TABLE feed_cursors (
    feed           text        PRIMARY KEY,
    after_sequence bigint      NOT NULL CHECK (after_sequence >= 0),
    update_time    timestamptz NOT NULL DEFAULT now()
);

-- Events applied, by id: a replayed event is skipped even when the cursor
-- was moved back. Pruned after a retention window (kit::consumer::prune).
CREATE TABLE feed_applied_events (
    feed       text        NOT NULL,
    event_id   uuid        NOT NULL,
    apply_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feed, event_id)
);
CREATE INDEX feed_applied_events_time ON feed_applied_events (apply_time);
