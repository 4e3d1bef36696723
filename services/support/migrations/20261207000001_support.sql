-- The Support service: cases with their comments and SLA clocks, the
-- business-hours calendars and SLA policies the clocks follow. Enums are
-- stored as their proto names without the prefix (e.g. 'OPEN'). Deletes
-- are soft. Contacts, companies and deals live in other services:
-- referenced by id only (no foreign keys across services).
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

-- The case number counter: one row, incremented in the creating
-- transaction, so numbers have no gaps (a rolled-back create gives its
-- number back) and no duplicates (the row lock orders creators).
CREATE TABLE case_number_counter (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last      bigint  NOT NULL CHECK (last >= 0)
);
INSERT INTO case_number_counter (last) VALUES (1000);

-- Business-hours calendars. `weekly_hours` is seven arrays (Monday first)
-- of [start, end) minute pairs; holidays are [{"date": "YYYY-MM-DD",
-- "name": "…"}], local dates.
CREATE TABLE sla_calendars (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL,
    time_zone    text        NOT NULL,
    weekly_hours jsonb       NOT NULL,
    holidays     jsonb       NOT NULL DEFAULT '[]',
    create_time  timestamptz NOT NULL,
    update_time  timestamptz NOT NULL,
    version      bigint      NOT NULL DEFAULT 1
);

-- SLA policies, tried in `position` order: the first whose conditions
-- match a case gives its targets. `targets` holds, per priority, the
-- metric, goal in seconds, whether business hours count, and the
-- statuses that pause the clock.
CREATE TABLE sla_policies (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    position    integer     NOT NULL,
    conditions  jsonb       NOT NULL DEFAULT '{}',
    targets     jsonb       NOT NULL,
    escalation  jsonb       NOT NULL DEFAULT '{}',
    calendar_id uuid        NOT NULL REFERENCES sla_calendars (id),
    create_time timestamptz NOT NULL,
    update_time timestamptz NOT NULL,
    delete_time timestamptz,
    version     bigint      NOT NULL DEFAULT 1
);

CREATE TABLE cases (
    id                   uuid        PRIMARY KEY,
    number               bigint      NOT NULL UNIQUE,
    subject              text        NOT NULL,
    description          text        NOT NULL DEFAULT '',
    requester_contact_id uuid        NOT NULL,
    company_id           uuid,
    status               text        NOT NULL
        CHECK (status IN ('NEW', 'OPEN', 'PENDING_CUSTOMER', 'ON_HOLD', 'RESOLVED', 'CLOSED')),
    priority             text        NOT NULL CHECK (priority IN ('LOW', 'NORMAL', 'HIGH', 'URGENT')),
    channel              text        NOT NULL CHECK (channel IN ('EMAIL', 'PHONE', 'CHAT', 'WEB', 'SOCIAL')),
    category             text        NOT NULL DEFAULT '',
    product              text        NOT NULL DEFAULT '',
    assignee_id          text        NOT NULL DEFAULT '',
    team_id              text        NOT NULL DEFAULT '',
    tags                 text[]      NOT NULL DEFAULT '{}',
    deal_id              uuid,
    sla_policy_id        uuid        REFERENCES sla_policies (id),
    sla_policy_version   bigint      NOT NULL DEFAULT 0,
    next_due_time        timestamptz,
    first_response_time  timestamptz,
    resolve_time         timestamptz,
    close_time           timestamptz,
    merged_into          uuid        REFERENCES cases (id),
    follow_up_of         uuid        REFERENCES cases (id),
    create_time          timestamptz NOT NULL,
    update_time          timestamptz NOT NULL,
    delete_time          timestamptz,
    version              bigint      NOT NULL DEFAULT 1
);
CREATE INDEX cases_create_time ON cases (create_time, id);
-- The agent queue: a team's open cases by next due time (cases without a
-- running target last), the expression ListCases orders by, so a page is
-- read off the index in order.
CREATE INDEX cases_queue ON cases (team_id, (COALESCE(next_due_time, '9999-12-31T00:00:00Z'::timestamptz)), id)
    WHERE delete_time IS NULL AND status NOT IN ('RESOLVED', 'CLOSED');
CREATE INDEX cases_next_due ON cases ((COALESCE(next_due_time, '9999-12-31T00:00:00Z'::timestamptz)), id)
    WHERE delete_time IS NULL;
CREATE INDEX cases_assignee ON cases (assignee_id, status) WHERE delete_time IS NULL;
CREATE INDEX cases_requester ON cases (requester_contact_id);
CREATE INDEX cases_company ON cases (company_id) WHERE company_id IS NOT NULL;
CREATE INDEX cases_tags ON cases USING gin (tags);

-- One SLA target's clock (see the service's domain::clock). A case has at
-- most one current clock per metric; earlier next-response clocks stay as
-- history (`current` false).
CREATE TABLE case_sla_clocks (
    case_id         uuid        NOT NULL REFERENCES cases (id),
    metric          text        NOT NULL CHECK (metric IN ('FIRST_RESPONSE', 'NEXT_RESPONSE', 'RESOLUTION')),
    cycle           integer     NOT NULL,
    current         boolean     NOT NULL,
    goal_seconds    bigint      NOT NULL CHECK (goal_seconds > 0),
    business_hours  boolean     NOT NULL,
    calendar_id     uuid        NOT NULL REFERENCES sla_calendars (id),
    pause_statuses  text[]      NOT NULL,
    elapsed_micros  bigint      NOT NULL,
    running_since   timestamptz,
    achieved_at     timestamptz,
    breached_at     timestamptz,
    due_at          timestamptz,
    segments        jsonb       NOT NULL,
    -- When the policy's warning is due (computed with the due time), and
    -- when the sweeper warned of, and recorded, this target's breach: each
    -- at most once (set in the sweeper's transaction, under the row lock).
    warn_at         timestamptz,
    warned_at       timestamptz,
    breach_recorded_at timestamptz,
    PRIMARY KEY (case_id, metric, cycle)
);
-- What the sweeper looks at: breaches not yet recorded, warnings not yet
-- given, by the time they are due.
CREATE INDEX case_sla_clocks_breach ON case_sla_clocks (due_at)
    WHERE current AND achieved_at IS NULL AND breach_recorded_at IS NULL;
CREATE INDEX case_sla_clocks_warn ON case_sla_clocks (warn_at)
    WHERE current AND achieved_at IS NULL AND warned_at IS NULL AND warn_at IS NOT NULL;
CREATE UNIQUE INDEX case_sla_clocks_current ON case_sla_clocks (case_id, metric) WHERE current;

CREATE TABLE case_comments (
    id          uuid        PRIMARY KEY,
    case_id     uuid        NOT NULL REFERENCES cases (id),
    internal    boolean     NOT NULL,
    author_id   text        NOT NULL,
    author_kind text        NOT NULL CHECK (author_kind IN ('AGENT', 'REQUESTER')),
    body        text        NOT NULL,
    attachments jsonb       NOT NULL DEFAULT '[]',
    message_id  text        NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL
);
CREATE INDEX case_comments_case ON case_comments (case_id, create_time, id);

-- The defaults every installation starts with: a calendar around the
-- clock in UTC, and one policy matching every case.
INSERT INTO sla_calendars (id, name, time_zone, weekly_hours, create_time, update_time)
VALUES ('00000000-0000-7000-8000-000000000001', 'Around the clock', 'UTC',
        '[[[0,1440]],[[0,1440]],[[0,1440]],[[0,1440]],[[0,1440]],[[0,1440]],[[0,1440]]]', now(), now());
INSERT INTO sla_policies (id, name, position, conditions, targets, calendar_id, create_time, update_time)
VALUES ('00000000-0000-7000-8000-000000000002', 'Standard', 1000000, '{}',
        '{"URGENT": [{"metric": "FIRST_RESPONSE", "goal_seconds": 3600},
                     {"metric": "NEXT_RESPONSE", "goal_seconds": 7200},
                     {"metric": "RESOLUTION", "goal_seconds": 14400}],
          "HIGH":   [{"metric": "FIRST_RESPONSE", "goal_seconds": 14400},
                     {"metric": "NEXT_RESPONSE", "goal_seconds": 28800},
                     {"metric": "RESOLUTION", "goal_seconds": 86400}],
          "NORMAL": [{"metric": "FIRST_RESPONSE", "goal_seconds": 28800},
                     {"metric": "NEXT_RESPONSE", "goal_seconds": 86400},
                     {"metric": "RESOLUTION", "goal_seconds": 259200}],
          "LOW":    [{"metric": "FIRST_RESPONSE", "goal_seconds": 86400},
                     {"metric": "NEXT_RESPONSE", "goal_seconds": 172800},
                     {"metric": "RESOLUTION", "goal_seconds": 604800}]}',
        '00000000-0000-7000-8000-000000000001', now(), now());
