-- Email in and out, and satisfaction surveys.

-- Every inbound message applied, by its Message-ID: the same message
-- ingested twice is applied once.
CREATE TABLE ingested_emails (
    message_id  text        PRIMARY KEY,
    case_id     uuid        NOT NULL REFERENCES cases (id),
    comment_id  uuid        NOT NULL,
    create_time timestamptz NOT NULL
);

-- Mail to requesters, written in the transaction of the reply or the
-- resolution it tells of, sent by the mail worker (an outbox: nothing is
-- sent that did not commit, nothing committed is forgotten).
CREATE TABLE outbound_emails (
    id              uuid        PRIMARY KEY,
    case_id         uuid        NOT NULL REFERENCES cases (id),
    to_address      text        NOT NULL,
    to_name         text        NOT NULL DEFAULT '',
    subject         text        NOT NULL,
    body            text        NOT NULL,
    message_id      text        NOT NULL UNIQUE,
    in_reply_to     text        NOT NULL DEFAULT '',
    "references"    text[]      NOT NULL DEFAULT '{}',
    status          text        NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'SENT', 'FAILED')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text        NOT NULL DEFAULT '',
    create_time     timestamptz NOT NULL,
    sent_time       timestamptz
);
CREATE INDEX outbound_emails_pending ON outbound_emails (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX case_comments_message_id ON case_comments (message_id) WHERE message_id <> '';

-- Satisfaction surveys: one per resolution, the token stored as its
-- SHA-256 only; answered once, before it expires.
CREATE TABLE satisfaction_surveys (
    token_sha256 bytea       PRIMARY KEY,
    id           uuid        NOT NULL UNIQUE,
    case_id      uuid        NOT NULL REFERENCES cases (id),
    agent_id     text        NOT NULL,
    issue_time   timestamptz NOT NULL,
    expire_time  timestamptz NOT NULL,
    answer_time  timestamptz,
    rating       smallint    CHECK (rating BETWEEN 1 AND 5),
    comment      text        NOT NULL DEFAULT ''
);
CREATE INDEX satisfaction_surveys_case ON satisfaction_surveys (case_id);
