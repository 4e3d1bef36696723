-- The shared record: activities and tasks, the timeline that merges them
-- with what other services did to a customer, and lifecycle history.

ALTER TABLE contacts ADD COLUMN last_activity_time timestamptz;
ALTER TABLE companies ADD COLUMN last_activity_time timestamptz;
-- Qualification answers (QualifyLead / DisqualifyLead), as the encoded
-- rapport.contacts.v1.Qualification message; NULL before.
ALTER TABLE contacts ADD COLUMN qualification bytea;

CREATE TABLE activities (
    id               uuid        PRIMARY KEY,
    kind             text        NOT NULL,
    subject          text        NOT NULL,
    body             text        NOT NULL DEFAULT '',
    direction        text        NOT NULL DEFAULT '',
    -- When it happened; for a task, when it is due.
    occur_time       timestamptz NOT NULL,
    duration_seconds integer     NOT NULL DEFAULT 0 CHECK (duration_seconds BETWEEN 0 AND 86400),
    call_outcome     text        NOT NULL DEFAULT '',
    actor_id         text        NOT NULL,
    owner_id         text        NOT NULL,
    team_id          text        NOT NULL DEFAULT '',
    participant_ids  uuid[]      NOT NULL DEFAULT '{}',
    contact_id       uuid        REFERENCES contacts (id),
    company_id       uuid        REFERENCES companies (id),
    -- Pipeline's deals and Support's cases: references kept current from
    -- their change feeds.
    deal_id          uuid,
    case_id          uuid,
    deleted_links    text[]      NOT NULL DEFAULT '{}',
    -- Tasks only (NULL otherwise).
    task_priority    text,
    task_status      text,
    complete_time    timestamptz,
    completed_by     text        NOT NULL DEFAULT '',
    remind_time      timestamptz,
    recurrence       text        NOT NULL DEFAULT '',
    -- Which reminders went out (REMINDER, DUE, OVERDUE), and the next
    -- moment one is due: NULL once none is left (or the task is not open).
    reminders_sent   text[]      NOT NULL DEFAULT '{}',
    next_reminder_time timestamptz,
    create_time      timestamptz NOT NULL,
    update_time      timestamptz NOT NULL,
    delete_time      timestamptz,
    version          bigint      NOT NULL DEFAULT 1,
    CHECK ((kind = 'TASK') = (task_status IS NOT NULL))
);

CREATE INDEX activities_occur_time ON activities (occur_time, id);
CREATE INDEX activities_create_time ON activities (create_time, id);
CREATE INDEX activities_contact ON activities (contact_id, occur_time, id) WHERE contact_id IS NOT NULL;
CREATE INDEX activities_company ON activities (company_id, occur_time, id) WHERE company_id IS NOT NULL;
CREATE INDEX activities_deal ON activities (deal_id, occur_time, id) WHERE deal_id IS NOT NULL;
CREATE INDEX activities_case ON activities (case_id, occur_time, id) WHERE case_id IS NOT NULL;
CREATE INDEX activities_owner ON activities (owner_id, occur_time, id);
CREATE INDEX activities_participants ON activities USING gin (participant_ids);
-- ListMyTasks: an owner's open tasks by due time.
CREATE INDEX activities_open_tasks ON activities (owner_id, occur_time, id)
    WHERE task_status = 'OPEN' AND delete_time IS NULL;
-- The reminder sweep: tasks with a reminder still to send.
CREATE INDEX activities_reminders ON activities (next_reminder_time)
    WHERE next_reminder_time IS NOT NULL;

-- One row per record an entry shows on: a contact, company, deal or case.
-- Activities write theirs in the same transaction; other services'
-- events arrive through their change feeds (one row per event and
-- subject: replays change nothing).
CREATE TABLE timeline_entries (
    id            uuid        PRIMARY KEY,
    subject_type  text        NOT NULL,
    subject_id    uuid        NOT NULL,
    occur_time    timestamptz NOT NULL,
    source        text        NOT NULL,
    kind          text        NOT NULL,
    title         text        NOT NULL,
    detail        text        NOT NULL DEFAULT '',
    actor_id      text        NOT NULL,
    resource_type text        NOT NULL,
    resource_id   text        NOT NULL,
    activity_id   uuid        REFERENCES activities (id) ON DELETE CASCADE,
    -- The event it projects (other services' feeds), for idempotence.
    event_id      uuid,
    UNIQUE (event_id, subject_type, subject_id)
);

CREATE INDEX timeline_subject ON timeline_entries (subject_type, subject_id, occur_time DESC, id DESC);
CREATE INDEX timeline_activity ON timeline_entries (activity_id) WHERE activity_id IS NOT NULL;

-- Every lifecycle stage move.
CREATE TABLE lifecycle_transitions (
    id          uuid        PRIMARY KEY,
    contact_id  uuid        NOT NULL REFERENCES contacts (id),
    from_stage  text        NOT NULL,
    to_stage    text        NOT NULL,
    change_time timestamptz NOT NULL,
    actor_id    text        NOT NULL,
    cause       text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    cause_id    text        NOT NULL DEFAULT ''
);

CREATE INDEX lifecycle_transitions_contact ON lifecycle_transitions (contact_id, change_time, id);
-- Reporting: conversions into a stage over time.
CREATE INDEX lifecycle_transitions_to_stage ON lifecycle_transitions (to_stage, change_time);

-- Every existing contact starts its history where it stands.
INSERT INTO lifecycle_transitions (id, contact_id, from_stage, to_stage, change_time, actor_id, cause)
SELECT gen_random_uuid(), id, 'UNSPECIFIED', lifecycle_stage, create_time, owner_id, 'CREATED'
FROM contacts;
