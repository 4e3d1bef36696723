-- Where customers are (assignment rules read it), teams' members, and
-- ordered assignment rules with each assignment recorded.
ALTER TABLE contacts ADD COLUMN country text NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN region text NOT NULL DEFAULT '';
ALTER TABLE companies ADD COLUMN country text NOT NULL DEFAULT '';
ALTER TABLE companies ADD COLUMN region text NOT NULL DEFAULT '';
-- Least-loaded assignment counts what each member owns.
CREATE INDEX contacts_owner ON contacts (owner_id) WHERE delete_time IS NULL;
CREATE INDEX companies_owner ON companies (owner_id) WHERE delete_time IS NULL;

CREATE TABLE team_members (
    team_id      text        NOT NULL,
    user_id      text        NOT NULL,
    display_name text        NOT NULL,
    active       boolean     NOT NULL DEFAULT true,
    capacity     integer     NOT NULL DEFAULT 0 CHECK (capacity >= 0),
    update_time  timestamptz NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

CREATE TABLE assignment_rules (
    id          uuid        PRIMARY KEY,
    -- The encoded rapport.contacts.v1.AssignmentRule (its validated fields).
    rule        bytea       NOT NULL,
    position    integer     NOT NULL,
    version     bigint      NOT NULL DEFAULT 1,
    update_time timestamptz NOT NULL
);

-- Whose turn it is in each team's round robin (locked by each assignment,
-- so creates on every replica take turns).
CREATE TABLE assignment_turns (
    team_id text   PRIMARY KEY,
    turn    bigint NOT NULL DEFAULT 0
);

CREATE TABLE assignments (
    id            uuid        PRIMARY KEY,
    resource_type text        NOT NULL,
    resource_id   uuid        NOT NULL,
    rule_id       uuid        NOT NULL,
    team_id       text        NOT NULL,
    owner_id      text        NOT NULL,
    method        text        NOT NULL,
    assign_time   timestamptz NOT NULL
);
CREATE INDEX assignments_resource ON assignments (resource_id);
CREATE INDEX assignments_rule ON assignments (rule_id, id);
