-- Automatic assignment: support agents (availability, capacity, working
-- hours), teams (mode and round-robin turn) and their members.
CREATE TABLE support_agents (
    agent_id         text        PRIMARY KEY,
    available        boolean     NOT NULL DEFAULT true,
    capacity         integer     NOT NULL DEFAULT 0 CHECK (capacity >= 0),
    calendar_id      uuid        REFERENCES sla_calendars (id),
    last_assign_time timestamptz,
    update_time      timestamptz NOT NULL
);

CREATE TABLE support_teams (
    team_id     text        PRIMARY KEY,
    mode        text        NOT NULL CHECK (mode IN ('NONE', 'ROUND_ROBIN', 'LEAST_OPEN')),
    -- Incremented at every automatic assignment; a member's last_turn says
    -- when it was theirs, so round robin takes the smallest.
    turn        bigint      NOT NULL DEFAULT 0,
    update_time timestamptz NOT NULL
);

CREATE TABLE support_team_members (
    team_id   text   NOT NULL REFERENCES support_teams (team_id) ON DELETE CASCADE,
    agent_id  text   NOT NULL REFERENCES support_agents (agent_id),
    last_turn bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (team_id, agent_id)
);
