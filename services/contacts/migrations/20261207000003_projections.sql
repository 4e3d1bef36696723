-- What the timeline needs to know of other services' records, kept from
-- their change feeds: stage names (for "moved to Negotiation"), which
-- deal an order came from and who is on each deal (an invoice shows on
-- the timelines of the deal and its contacts).
CREATE TABLE projected_stages (
    stage_id uuid PRIMARY KEY,
    name     text NOT NULL
);

CREATE TABLE projected_orders (
    order_id uuid PRIMARY KEY,
    deal_id  uuid
);

CREATE TABLE projected_deals (
    deal_id     uuid   PRIMARY KEY,
    contact_ids uuid[] NOT NULL DEFAULT '{}'
);
