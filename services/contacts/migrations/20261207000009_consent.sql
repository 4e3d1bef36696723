-- Consent as history: every opt-in, opt-out and do-not-contact change
-- (consent_events), the current state per channel and purpose derived
-- from it (consents: the latest event by occur_time wins), and the
-- do-not-contact flag on the contact.
CREATE TABLE consent_events (
    id          uuid        PRIMARY KEY,
    contact_id  uuid        NOT NULL REFERENCES contacts (id),
    -- CONSENT (channel, purpose, granted, source, evidence) or
    -- DO_NOT_CONTACT (granted is the flag's new value, evidence the reason).
    kind        text        NOT NULL CHECK (kind IN ('CONSENT', 'DO_NOT_CONTACT')),
    channel     text        NOT NULL DEFAULT '',
    purpose     text        NOT NULL DEFAULT '',
    granted     boolean     NOT NULL,
    source      text        NOT NULL DEFAULT '',
    evidence    text        NOT NULL DEFAULT '',
    occur_time  timestamptz NOT NULL,
    record_time timestamptz NOT NULL,
    actor       text        NOT NULL
);
CREATE INDEX consent_events_contact ON consent_events (contact_id, record_time DESC, id DESC);

CREATE TABLE consents (
    contact_id uuid        NOT NULL REFERENCES contacts (id),
    channel    text        NOT NULL,
    purpose    text        NOT NULL,
    granted    boolean     NOT NULL,
    source     text        NOT NULL,
    occur_time timestamptz NOT NULL,
    event_id   uuid        NOT NULL REFERENCES consent_events (id),
    PRIMARY KEY (contact_id, channel, purpose)
);

ALTER TABLE contacts
    ADD COLUMN do_not_contact        boolean NOT NULL DEFAULT false,
    ADD COLUMN do_not_contact_reason text    NOT NULL DEFAULT '',
    ADD COLUMN do_not_contact_time   timestamptz;

-- The email-marketing consent contacts already carry (email_opt_in, and its
-- time when it ever changed) becomes their first history event.
WITH carried AS (
    SELECT id AS contact_id, email_opt_in AS granted,
           coalesce(email_opt_in_time, create_time) AS occur_time,
           md5(id::text || 'consent') AS r
    FROM contacts
    WHERE email_opt_in OR email_opt_in_time IS NOT NULL
), events AS (
    INSERT INTO consent_events (id, contact_id, kind, channel, purpose, granted, source, occur_time, record_time, actor)
    SELECT (lpad(to_hex((extract(epoch FROM occur_time) * 1000)::bigint), 12, '0')
              || '7' || substr(r, 1, 3) || '8' || substr(r, 4, 15))::uuid,
           contact_id, 'CONSENT', 'EMAIL', 'marketing', granted, 'MIGRATED', occur_time, now(), 'contacts-migration'
    FROM carried
    RETURNING id, contact_id, granted, occur_time
)
INSERT INTO consents (contact_id, channel, purpose, granted, source, occur_time, event_id)
SELECT contact_id, 'EMAIL', 'marketing', granted, 'MIGRATED', occur_time, id FROM events;
