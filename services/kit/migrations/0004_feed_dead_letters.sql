-- Events a change-feed consumer set aside (kit::consumer): ones its handler
-- marked as poison (they can never apply, e.g. a malformed id), or, when
-- the consumer is configured to, that failed `dead_letter_after` times in
-- a row with an error other than a database one. The cursor moves past them in the same transaction, so
-- the feed goes on; each row keeps the whole event and the last error,
-- for an operator to inspect and replay by hand.
CREATE TABLE feed_dead_letters (
    feed          text        NOT NULL,
    sequence      bigint      NOT NULL,
    event_id      text        NOT NULL,
    resource_type text        NOT NULL,
    resource_id   text        NOT NULL,
    change_kind   smallint    NOT NULL,
    -- The encoded rapport.common.v1.ChangeEvent.
    event         bytea       NOT NULL,
    error         text        NOT NULL,
    attempts      integer     NOT NULL,
    dead_time     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feed, sequence)
);
