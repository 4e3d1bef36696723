-- The Pipeline service: pipelines and stages, lost reasons, products, deals
-- with line items and stage history, orders, invoices, payments, exchange
-- rates and quotas. Money is an ISO 4217 code plus integer minor units;
-- quantities, discounts and rates are exact numerics. Enums are stored as
-- their proto names without the prefix (e.g. 'OPEN'). Deletes are soft.
-- Contacts and companies live in the Contacts service: referenced by id
-- only (no foreign keys across services).
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE TABLE pipelines (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL,
    is_default   boolean     NOT NULL DEFAULT false,
    rotting_days integer     NOT NULL DEFAULT 30 CHECK (rotting_days >= 0),
    create_time  timestamptz NOT NULL,
    update_time  timestamptz NOT NULL,
    delete_time  timestamptz,
    version      bigint      NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX pipelines_name_live ON pipelines (lower(name)) WHERE delete_time IS NULL;
-- At most one live default pipeline.
CREATE UNIQUE INDEX pipelines_default_live ON pipelines (is_default) WHERE is_default AND delete_time IS NULL;

CREATE TABLE stages (
    id           uuid     PRIMARY KEY,
    pipeline_id  uuid     NOT NULL REFERENCES pipelines (id),
    name         text     NOT NULL,
    probability  smallint NOT NULL CHECK (probability BETWEEN 0 AND 100),
    kind         text     NOT NULL CHECK (kind IN ('OPEN', 'WON', 'LOST')),
    position     integer  NOT NULL,
    retired      boolean  NOT NULL DEFAULT false,
    rotting_days integer  NOT NULL DEFAULT 0 CHECK (rotting_days >= 0),
    -- Positions are rewritten in one statement when stages are reordered.
    UNIQUE (pipeline_id, position) DEFERRABLE INITIALLY DEFERRED
);
CREATE UNIQUE INDEX stages_name_live ON stages (pipeline_id, lower(name)) WHERE NOT retired;

CREATE TABLE lost_reasons (
    id          uuid        PRIMARY KEY,
    label       text        NOT NULL,
    retired     boolean     NOT NULL DEFAULT false,
    create_time timestamptz NOT NULL,
    version     bigint      NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX lost_reasons_label_live ON lost_reasons (lower(label)) WHERE NOT retired;

CREATE TABLE products (
    id          uuid        PRIMARY KEY,
    sku         text        NOT NULL,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    active      boolean     NOT NULL DEFAULT true,
    create_time timestamptz NOT NULL,
    update_time timestamptz NOT NULL,
    delete_time timestamptz,
    version     bigint      NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX products_sku_live ON products (lower(sku)) WHERE delete_time IS NULL;
CREATE INDEX products_create_time ON products (create_time, id);

CREATE TABLE product_prices (
    product_id    uuid   NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    currency_code text   NOT NULL,
    minor_units   bigint NOT NULL CHECK (minor_units >= 0),
    PRIMARY KEY (product_id, currency_code)
);

CREATE TABLE deals (
    id                  uuid        PRIMARY KEY,
    title               text        NOT NULL,
    pipeline_id         uuid        NOT NULL REFERENCES pipelines (id),
    stage_id            uuid        NOT NULL REFERENCES stages (id),
    currency_code       text        NOT NULL,
    amount_minor        bigint      NOT NULL DEFAULT 0 CHECK (amount_minor >= 0),
    -- True when the amount is the sum of the line items.
    amount_derived      boolean     NOT NULL DEFAULT false,
    expected_close_date date,
    -- NULL follows the stage's default probability.
    probability_override smallint   CHECK (probability_override BETWEEN 0 AND 100),
    forecast_category   text        NOT NULL,
    owner_id            text        NOT NULL DEFAULT '',
    team_member_ids     text[]      NOT NULL DEFAULT '{}',
    company_id          uuid,
    -- The buying committee as parallel arrays (same length, same order).
    contact_ids         uuid[]      NOT NULL DEFAULT '{}',
    contact_roles       text[]      NOT NULL DEFAULT '{}',
    lead_source         text        NOT NULL DEFAULT 'UNSPECIFIED',
    source_campaign_id  text        NOT NULL DEFAULT '',
    next_step           text        NOT NULL DEFAULT '',
    status              text        NOT NULL CHECK (status IN ('OPEN', 'WON', 'LOST')),
    lost_reason_id      uuid        REFERENCES lost_reasons (id),
    lost_reason_detail  text        NOT NULL DEFAULT '',
    close_time          timestamptz,
    -- The OPEN stage a closed deal was in before it closed (ReopenDeal).
    reopen_stage_id     uuid        REFERENCES stages (id),
    stage_enter_time    timestamptz NOT NULL,
    last_activity_time  timestamptz NOT NULL,
    order_id            uuid,
    create_time         timestamptz NOT NULL,
    update_time         timestamptz NOT NULL,
    delete_time         timestamptz,
    version             bigint      NOT NULL DEFAULT 1,
    search_vector       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', title), 'A') || setweight(to_tsvector('simple', next_step), 'B')
    ) STORED,
    CHECK (cardinality(contact_ids) = cardinality(contact_roles))
);
CREATE INDEX deals_create_time ON deals (create_time, id);
CREATE INDEX deals_stage ON deals (stage_id) WHERE delete_time IS NULL;
CREATE INDEX deals_company ON deals (company_id) WHERE delete_time IS NULL;
CREATE INDEX deals_contacts ON deals USING gin (contact_ids);
CREATE INDEX deals_owner_close ON deals (owner_id, expected_close_date) WHERE delete_time IS NULL;
CREATE INDEX deals_close_date ON deals (expected_close_date) WHERE delete_time IS NULL;
CREATE INDEX deals_search ON deals USING gin (search_vector);

CREATE TABLE deal_line_items (
    id               uuid          PRIMARY KEY,
    deal_id          uuid          NOT NULL REFERENCES deals (id) ON DELETE CASCADE,
    position         integer       NOT NULL,
    product_id       uuid          REFERENCES products (id),
    description      text          NOT NULL,
    quantity         numeric(24,4) NOT NULL CHECK (quantity > 0),
    unit_price_minor bigint        NOT NULL CHECK (unit_price_minor >= 0),
    discount_percent numeric(7,4)  NOT NULL DEFAULT 0 CHECK (discount_percent BETWEEN 0 AND 100),
    amount_minor     bigint        NOT NULL,
    UNIQUE (deal_id, position)
);

-- Every stay of a deal in a stage (GetDealHistory).
CREATE TABLE deal_stage_history (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deal_id     uuid        NOT NULL REFERENCES deals (id) ON DELETE CASCADE,
    stage_id    uuid        NOT NULL REFERENCES stages (id),
    enter_time  timestamptz NOT NULL,
    leave_time  timestamptz,
    actor       text        NOT NULL
);
CREATE INDEX deal_stage_history_deal ON deal_stage_history (deal_id, enter_time);

CREATE TABLE orders (
    id               uuid        PRIMARY KEY,
    deal_id          uuid        NOT NULL REFERENCES deals (id),
    company_id       uuid        NOT NULL,
    owner_id         text        NOT NULL DEFAULT '',
    status           text        NOT NULL CHECK (status IN ('NEW', 'ACKNOWLEDGED', 'FULFILLED', 'CANCELLED')),
    currency_code    text        NOT NULL,
    total_minor      bigint      NOT NULL,
    external_ref     text,
    create_time      timestamptz NOT NULL,
    acknowledge_time timestamptz,
    fulfill_time     timestamptz,
    cancel_time      timestamptz,
    cancel_reason    text        NOT NULL DEFAULT '',
    update_time      timestamptz NOT NULL,
    version          bigint      NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX orders_external_ref ON orders (external_ref) WHERE external_ref IS NOT NULL;
CREATE INDEX orders_deal ON orders (deal_id);
CREATE INDEX orders_company ON orders (company_id);
CREATE INDEX orders_create_time ON orders (create_time, id);

CREATE TABLE order_lines (
    order_id         uuid          NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position         integer       NOT NULL,
    product_id       uuid,
    description      text          NOT NULL,
    quantity         numeric(24,4) NOT NULL,
    unit_price_minor bigint        NOT NULL,
    discount_percent numeric(7,4)  NOT NULL,
    amount_minor     bigint        NOT NULL,
    PRIMARY KEY (order_id, position)
);

CREATE TABLE invoices (
    id            uuid        PRIMARY KEY,
    order_id      uuid        NOT NULL REFERENCES orders (id),
    company_id    uuid        NOT NULL,
    number        text        NOT NULL UNIQUE,
    currency_code text        NOT NULL,
    amount_minor  bigint      NOT NULL CHECK (amount_minor > 0),
    paid_minor    bigint      NOT NULL DEFAULT 0 CHECK (paid_minor >= 0 AND paid_minor <= amount_minor),
    issue_date    date        NOT NULL,
    due_date      date        NOT NULL CHECK (due_date >= issue_date),
    status        text        NOT NULL CHECK (status IN ('OPEN', 'PARTIALLY_PAID', 'PAID', 'OVERDUE')),
    create_time   timestamptz NOT NULL,
    paid_time     timestamptz,
    update_time   timestamptz NOT NULL,
    version       bigint      NOT NULL DEFAULT 1
);
CREATE INDEX invoices_order ON invoices (order_id);
CREATE INDEX invoices_company_unpaid ON invoices (company_id, due_date) WHERE status <> 'PAID';
CREATE INDEX invoices_due_unpaid ON invoices (due_date) WHERE status IN ('OPEN', 'PARTIALLY_PAID');

CREATE TABLE payments (
    id            uuid        PRIMARY KEY,
    invoice_id    uuid        NOT NULL REFERENCES invoices (id),
    currency_code text        NOT NULL,
    amount_minor  bigint      NOT NULL CHECK (amount_minor > 0),
    payment_date  date        NOT NULL,
    external_ref  text        NOT NULL UNIQUE,
    create_time   timestamptz NOT NULL
);
CREATE INDEX payments_invoice ON payments (invoice_id, create_time);

CREATE TABLE exchange_rates (
    from_currency  text          NOT NULL,
    to_currency    text          NOT NULL,
    effective_date date          NOT NULL,
    rate           numeric(30,10) NOT NULL CHECK (rate > 0),
    actor          text          NOT NULL,
    update_time    timestamptz   NOT NULL,
    PRIMARY KEY (from_currency, to_currency, effective_date),
    CHECK (from_currency <> to_currency)
);

CREATE TABLE quotas (
    owner_id      text        NOT NULL,
    year          integer     NOT NULL CHECK (year BETWEEN 1 AND 9999),
    month         integer     NOT NULL CHECK (month BETWEEN 1 AND 12),
    currency_code text        NOT NULL,
    amount_minor  bigint      NOT NULL CHECK (amount_minor >= 0),
    update_time   timestamptz NOT NULL,
    PRIMARY KEY (owner_id, year, month)
);
