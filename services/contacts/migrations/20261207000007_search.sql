-- Search that forgives typos without comparing the query to every row.
--
-- * Accents are folded (`folded`: the simple dictionary after unaccent),
--   so "José" is found by "jose" and "jose" by "José".
-- * An email contributes its letters only ("maria.garcia42@acme.com" gives
--   maria, garcia, acme, com): the digits made every address a word of its
--   own, and a prefix such as "garcia:*" then had to walk a hundred
--   thousand index entries. The exact address is matched on its own
--   (`email = query`), and a phone number by its digits.
-- * Typos are corrected against the vocabulary of words actually stored
--   (`search_words`, trigram-indexed), the approach the pg_trgm
--   documentation describes; the corrected words then run as a full-text
--   query. The trigram index over every contact's text is gone.
CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public;

CREATE TEXT SEARCH CONFIGURATION folded (COPY = pg_catalog.simple);
ALTER TEXT SEARCH CONFIGURATION folded
    ALTER MAPPING FOR word, hword, hword_part, asciiword, asciihword, hword_asciipart
    WITH public.unaccent, pg_catalog.simple;

DROP INDEX contacts_search_trgm;
DROP INDEX contacts_search_vector;
ALTER TABLE contacts DROP COLUMN search_text, DROP COLUMN search_vector;
-- Names above email and phone, those above title and company.
ALTER TABLE contacts ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('contacts.folded', given_name || ' ' || family_name), 'A')
    || setweight(to_tsvector('contacts.folded',
         regexp_replace(email, '[^[:alpha:]]+', ' ', 'g') || ' ' || regexp_replace(phone, '[^0-9]+', '', 'g')), 'B')
    || setweight(to_tsvector('contacts.folded', job_title || ' ' || company_name), 'C')
) STORED;
CREATE INDEX contacts_search_vector ON contacts USING gin (search_vector);

-- Companies: name above domain, domain above industry.
ALTER TABLE companies ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('contacts.folded', name), 'A')
    || setweight(to_tsvector('contacts.folded', regexp_replace(coalesce(domain, ''), '[^[:alpha:]]+', ' ', 'g')), 'B')
    || setweight(to_tsvector('contacts.folded', industry), 'C')
) STORED;
CREATE INDEX companies_search_vector ON companies USING gin (search_vector);

-- Every word of two letters or more that a contact or company holds (or
-- held: a word no record holds any more is pruned by the vocabulary job).
-- Byte order (COLLATE "C"), so the words a prefix starts are one range.
CREATE TABLE search_words (
    word text COLLATE "C" PRIMARY KEY
);
CREATE INDEX search_words_trgm ON search_words USING gist (word gist_trgm_ops);

-- Adds a record's words to the vocabulary. Lexemes come sorted, so two
-- writers adding the same new words take their locks in the same order.
-- (Its search_path is the schema's, whatever the writer's.)
CREATE FUNCTION remember_search_words() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO search_words (word)
    SELECT lexeme FROM unnest(tsvector_to_array(NEW.search_vector)) AS lexeme
    WHERE lexeme ~ '^[[:alpha:]]{2,}$'
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER contacts_search_words AFTER INSERT OR UPDATE OF search_vector ON contacts
    FOR EACH ROW EXECUTE FUNCTION remember_search_words();
CREATE TRIGGER companies_search_words AFTER INSERT OR UPDATE OF search_vector ON companies
    FOR EACH ROW EXECUTE FUNCTION remember_search_words();

INSERT INTO search_words (word)
SELECT DISTINCT lexeme FROM (
    SELECT unnest(tsvector_to_array(search_vector)) FROM contacts
    UNION ALL
    SELECT unnest(tsvector_to_array(search_vector)) FROM companies
) AS words (lexeme)
WHERE lexeme ~ '^[[:alpha:]]{2,}$'
ON CONFLICT DO NOTHING;
