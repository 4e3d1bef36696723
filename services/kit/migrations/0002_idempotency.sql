-- Idempotent creates (kit::idempotency): the first result of each request_id.
CREATE TABLE idempotency_keys (
    request_id   text        PRIMARY KEY,
    operation    text        NOT NULL,
    request_hash bytea       NOT NULL,
    response     bytea,
    create_time  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_time ON idempotency_keys (create_time);
