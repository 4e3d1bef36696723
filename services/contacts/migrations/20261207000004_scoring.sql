-- Lead scoring: rules as data, each contact's score kept with its
-- explanation, recomputed in the background.
ALTER TABLE contacts ADD COLUMN lead_score integer NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN lead_grade text NOT NULL DEFAULT 'UNSPECIFIED';
-- The encoded rapport.contacts.v1.LeadScore (its factors); NULL before the
-- first computation.
ALTER TABLE contacts ADD COLUMN score_detail bytea;
-- The rules version the score was computed with; 0 when something it
-- reads changed (a recompute is due).
ALTER TABLE contacts ADD COLUMN score_version bigint NOT NULL DEFAULT 0;
-- When the score next changes by itself (engagement ageing out).
ALTER TABLE contacts ADD COLUMN score_stale_at timestamptz;

CREATE INDEX contacts_score_version ON contacts (score_version) WHERE delete_time IS NULL;
CREATE INDEX contacts_score_stale_at ON contacts (score_stale_at)
    WHERE score_stale_at IS NOT NULL AND delete_time IS NULL;
CREATE INDEX contacts_lead_score ON contacts (lead_score, id);

CREATE TABLE scoring_rules (
    id          uuid        PRIMARY KEY,
    -- The encoded rapport.contacts.v1.ScoringRule (its validated fields).
    rule        bytea       NOT NULL,
    version     bigint      NOT NULL DEFAULT 1,
    create_time timestamptz NOT NULL,
    update_time timestamptz NOT NULL
);

CREATE TABLE scoring_settings (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    mql_threshold integer NOT NULL DEFAULT 0 CHECK (mql_threshold BETWEEN 0 AND 100),
    rules_version bigint  NOT NULL DEFAULT 1
);
INSERT INTO scoring_settings DEFAULT VALUES;
