-- Keys that find likely duplicate contacts (FindDuplicates).
--
-- * email_key: the address once provider rules are applied: a "+tag"
--   suffix of the local part dropped everywhere, and for Gmail the dots
--   too (googlemail.com is gmail.com). Emails are stored lower-case.
-- * email_domain: the address's domain (similar names under one domain).
-- * phone_e164: the phone number in E.164, parsed by the service with a
--   phone-number library (it cannot be done in SQL). NULL until computed:
--   a change of the phone resets it, and a periodic job computes what is
--   NULL ('' when there is no phone or it does not parse).
ALTER TABLE contacts
    ADD COLUMN email_key text GENERATED ALWAYS AS (
        CASE WHEN split_part(email, '@', 2) IN ('gmail.com', 'googlemail.com')
            THEN replace(split_part(split_part(email, '@', 1), '+', 1), '.', '') || '@gmail.com'
            ELSE split_part(split_part(email, '@', 1), '+', 1) || '@' || split_part(email, '@', 2)
        END
    ) STORED,
    ADD COLUMN email_domain text GENERATED ALWAYS AS (split_part(email, '@', 2)) STORED,
    ADD COLUMN phone_e164 text;

CREATE INDEX contacts_email_key ON contacts (email_key) WHERE delete_time IS NULL;
CREATE INDEX contacts_email_domain ON contacts (email_domain) WHERE delete_time IS NULL;
CREATE INDEX contacts_phone_e164 ON contacts (phone_e164) WHERE delete_time IS NULL AND phone_e164 <> '';
CREATE INDEX contacts_phone_e164_pending ON contacts (id) WHERE phone_e164 IS NULL;

CREATE FUNCTION reset_phone_e164() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.phone IS DISTINCT FROM OLD.phone THEN
        NEW.phone_e164 := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER contacts_reset_phone_e164 BEFORE UPDATE OF phone ON contacts
    FOR EACH ROW EXECUTE FUNCTION reset_phone_e164();
