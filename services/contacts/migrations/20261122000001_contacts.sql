-- Contacts and companies. Deletes are soft (delete_time); uniqueness of
-- emails and domains holds among live rows only.
-- In public (on every service's search_path), so other services can use it too.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE TABLE companies (
    id                      uuid        PRIMARY KEY,
    name                    text        NOT NULL,
    domain                  text,
    industry                text        NOT NULL DEFAULT '',
    employee_count          integer     NOT NULL DEFAULT 0 CHECK (employee_count >= 0),
    annual_revenue_currency text,
    annual_revenue_minor    bigint,
    owner_id                text        NOT NULL DEFAULT '',
    parent_company_id       uuid        REFERENCES companies (id),
    create_time             timestamptz NOT NULL,
    update_time             timestamptz NOT NULL,
    delete_time             timestamptz,
    version                 bigint      NOT NULL DEFAULT 1,
    CHECK ((annual_revenue_currency IS NULL) = (annual_revenue_minor IS NULL))
);

CREATE UNIQUE INDEX companies_domain_live ON companies (domain)
    WHERE delete_time IS NULL AND domain IS NOT NULL;
CREATE INDEX companies_create_time ON companies (create_time, id);
CREATE INDEX companies_name ON companies (name, id);

CREATE TABLE contacts (
    id                 uuid        PRIMARY KEY,
    given_name         text        NOT NULL,
    family_name        text        NOT NULL DEFAULT '',
    email              text        NOT NULL,
    phone              text        NOT NULL DEFAULT '',
    job_title          text        NOT NULL DEFAULT '',
    company_id         uuid        REFERENCES companies (id),
    -- Denormalized from companies.name (same service) so search needs no join.
    company_name       text        NOT NULL DEFAULT '',
    owner_id           text        NOT NULL DEFAULT '',
    lifecycle_stage    text        NOT NULL,
    lead_source        text        NOT NULL,
    lead_source_detail text        NOT NULL DEFAULT '',
    source_campaign_id text        NOT NULL DEFAULT '',
    tags               text[]      NOT NULL DEFAULT '{}',
    email_opt_in       boolean     NOT NULL DEFAULT false,
    email_opt_in_time  timestamptz,
    create_time        timestamptz NOT NULL,
    update_time        timestamptz NOT NULL,
    delete_time        timestamptz,
    version            bigint      NOT NULL DEFAULT 1,
    -- Lower-cased text for trigram (typo-tolerant) matching.
    search_text        text GENERATED ALWAYS AS (
        lower(given_name || ' ' || family_name || ' ' || email || ' ' || job_title || ' ' || company_name)
    ) STORED,
    -- Weighted words for full-text (prefix) matching: names above email,
    -- email above title and company.
    search_vector      tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', given_name || ' ' || family_name), 'A')
        || setweight(to_tsvector('simple', replace(replace(email, '@', ' '), '.', ' ')), 'B')
        || setweight(to_tsvector('simple', job_title || ' ' || company_name), 'C')
    ) STORED
);

CREATE UNIQUE INDEX contacts_email_live ON contacts (email) WHERE delete_time IS NULL;
CREATE INDEX contacts_create_time ON contacts (create_time, id);
CREATE INDEX contacts_update_time ON contacts (update_time, id);
CREATE INDEX contacts_family_name ON contacts (family_name, id);
CREATE INDEX contacts_company ON contacts (company_id) WHERE company_id IS NOT NULL;
CREATE INDEX contacts_tags ON contacts USING gin (tags);
CREATE INDEX contacts_search_trgm ON contacts USING gin (search_text gin_trgm_ops);
CREATE INDEX contacts_search_vector ON contacts USING gin (search_vector);
