-- Ranked full-text search over cases (subject, description and public
-- comments), and the knowledge base.
ALTER TABLE cases ADD COLUMN public_text text NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', subject), 'A')
    || setweight(to_tsvector('simple', left(description, 100000)), 'B')
    || setweight(to_tsvector('simple', public_text), 'C')) STORED;
CREATE INDEX cases_search ON cases USING gin (search) WHERE delete_time IS NULL;

-- array_to_string is only stable (its output functions could change);
-- for text[] it is immutable in fact, which a generated column needs.
CREATE FUNCTION kb_tags_text(tags text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT array_to_string(tags, ' ') $$;

CREATE TABLE kb_articles (
    id           uuid        PRIMARY KEY,
    title        text        NOT NULL,
    body         text        NOT NULL,
    tags         text[]      NOT NULL DEFAULT '{}',
    status       text        NOT NULL CHECK (status IN ('DRAFT', 'PUBLISHED', 'ARCHIVED')),
    author_id    text        NOT NULL,
    revision     integer     NOT NULL DEFAULT 1,
    helpful      integer     NOT NULL DEFAULT 0,
    not_helpful  integer     NOT NULL DEFAULT 0,
    create_time  timestamptz NOT NULL,
    update_time  timestamptz NOT NULL,
    publish_time timestamptz,
    version      bigint      NOT NULL DEFAULT 1,
    search       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', title), 'A')
        || setweight(to_tsvector('simple', kb_tags_text(tags)), 'A')
        || setweight(to_tsvector('simple', left(body, 200000)), 'B')) STORED
);
CREATE INDEX kb_articles_search ON kb_articles USING gin (search);
CREATE INDEX kb_articles_update_time ON kb_articles (update_time, id);

-- Every revision of an article as it was saved.
CREATE TABLE kb_article_revisions (
    article_id  uuid        NOT NULL REFERENCES kb_articles (id),
    revision    integer     NOT NULL,
    title       text        NOT NULL,
    body        text        NOT NULL,
    tags        text[]      NOT NULL,
    status      text        NOT NULL,
    author_id   text        NOT NULL,
    create_time timestamptz NOT NULL,
    PRIMARY KEY (article_id, revision)
);

-- Articles suggested for a case, and whether the agent used one.
CREATE TABLE kb_suggestions (
    case_id      uuid        NOT NULL REFERENCES cases (id),
    article_id   uuid        NOT NULL REFERENCES kb_articles (id),
    rank         real        NOT NULL,
    suggest_time timestamptz NOT NULL,
    use_time     timestamptz,
    used_by      text        NOT NULL DEFAULT '',
    PRIMARY KEY (case_id, article_id)
);

-- One helpful/not helpful vote per article and voter (changeable).
CREATE TABLE kb_votes (
    article_id uuid    NOT NULL REFERENCES kb_articles (id),
    voter_id   text    NOT NULL,
    helpful    boolean NOT NULL,
    PRIMARY KEY (article_id, voter_id)
);
