//! The knowledge base: articles with their revisions, ranked search,
//! suggestions for cases (recorded, and marked used), and votes.

use chrono::{DateTime, Utc};
use rapport_kit::db::check_etag;
use rapport_kit::paging::{self, Cursor};
use rapport_kit::search::{self, SearchQuery};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::Error;
use crate::model::ArticleRow;

const ARTICLE: &str = "rapport.support.v1.Article";

/// Words of a case a suggestion searches for.
const SUGGEST_WORDS: usize = 12;

/// The columns of [`ArticleRow`].
const COLUMNS: &str = "id, title, body, tags, status, author_id, revision, helpful, not_helpful, create_time, \
    update_time, publish_time, version";

/// An article's content as written.
#[derive(Debug, Clone)]
pub struct ArticleInput {
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    /// Stored name: DRAFT, PUBLISHED, ARCHIVED.
    pub status: &'static str,
}

fn not_found(id: impl ToString) -> Error {
    Error::not_found("ARTICLE_NOT_FOUND", ARTICLE, id)
}

async fn keep_revision(tx: &mut PgConnection, row: &ArticleRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO kb_article_revisions (article_id, revision, title, body, tags, status, author_id, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(row.id)
    .bind(row.revision)
    .bind(&row.title)
    .bind(&row.body)
    .bind(&row.tags)
    .bind(&row.status)
    .bind(&row.author_id)
    .bind(row.update_time)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Creates an article (revision 1).
pub async fn create(
    pool: &PgPool,
    input: &ArticleInput,
    author: &str,
    now: DateTime<Utc>,
) -> Result<ArticleRow, Error> {
    let mut tx = pool.begin().await?;
    let sql = format!(
        "INSERT INTO kb_articles (id, title, body, tags, status, author_id, create_time, update_time, publish_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, CASE WHEN $5 = 'PUBLISHED' THEN $7 END) RETURNING {COLUMNS}"
    );
    let row: ArticleRow = sqlx::query_as(&sql)
        .bind(Uuid::now_v7())
        .bind(&input.title)
        .bind(&input.body)
        .bind(&input.tags)
        .bind(input.status)
        .bind(author)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    keep_revision(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(row)
}

/// Saves a new revision if `etag` is current (or empty).
pub async fn update(
    pool: &PgPool,
    (id, etag): (Uuid, &str),
    input: &ArticleInput,
    author: &str,
    now: DateTime<Utc>,
) -> Result<ArticleRow, Error> {
    let mut tx = pool.begin().await?;
    let current: Option<ArticleRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM kb_articles WHERE id = $1 FOR UPDATE"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let current = current.ok_or_else(|| not_found(id))?;
    check_etag(ARTICLE, &id.to_string(), etag, current.version)?;
    let sql = format!(
        "UPDATE kb_articles SET title = $2, body = $3, tags = $4, status = $5, author_id = $6, update_time = $7, \
           publish_time = COALESCE(publish_time, CASE WHEN $5 = 'PUBLISHED' THEN $7 END), \
           revision = revision + 1, version = version + 1 WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row: ArticleRow = sqlx::query_as(&sql)
        .bind(id)
        .bind(&input.title)
        .bind(&input.body)
        .bind(&input.tags)
        .bind(input.status)
        .bind(author)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    keep_revision(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(row)
}

/// One article, if `staff` or it is published.
pub async fn get(pool: &PgPool, id: Uuid, staff: bool) -> Result<ArticleRow, Error> {
    let row: Option<ArticleRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM kb_articles WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.filter(|row| staff || row.status == "PUBLISHED").ok_or_else(|| not_found(id))
}

/// The revisions of an article (the caller may read it), newest first.
pub async fn revisions(pool: &PgPool, id: Uuid, staff: bool) -> Result<Vec<ArticleRow>, Error> {
    let article = get(pool, id, staff).await?;
    Ok(sqlx::query_as(
        "SELECT article_id AS id, title, body, tags, status, author_id, revision, 0 AS helpful, 0 AS not_helpful, \
           create_time, create_time AS update_time, NULL::timestamptz AS publish_time, 0::bigint AS version \
         FROM kb_article_revisions WHERE article_id = $1 ORDER BY revision DESC LIMIT 200",
    )
    .bind(article.id)
    .fetch_all(pool)
    .await?)
}

/// One page of articles of `status` (and `tag`), most recently changed first.
pub async fn list(
    pool: &PgPool,
    status: &str,
    tag: &str,
    (page_size, page_token): (i32, &str),
) -> Result<(Vec<ArticleRow>, String), Error> {
    let fingerprint = paging::fingerprint(&["articles", status, tag]);
    let cursor = paging::decode_token(page_token, &fingerprint)?;
    let after = match &cursor {
        Some(cursor) => Some((
            DateTime::parse_from_rfc3339(&cursor.value)
                .map_err(|_| {
                    Error::Problem(rapport_kit::error::Problem::invalid_field(
                        "INVALID_PAGE_TOKEN",
                        "page_token",
                        "the page token is corrupt",
                    ))
                })?
                .to_utc(),
            cursor.id,
        )),
        None => None,
    };
    let page_size = paging::page_size(page_size, 50, 200)?;
    let sql = format!(
        "SELECT {COLUMNS} FROM kb_articles WHERE status = $1 AND ($2 = '' OR $2 = ANY(tags)) \
           AND ($3::timestamptz IS NULL OR (update_time, id) < ($3, $4)) \
         ORDER BY update_time DESC, id DESC LIMIT {}",
        u64::from(page_size) + 1
    );
    let mut rows: Vec<ArticleRow> = sqlx::query_as(&sql)
        .bind(status)
        .bind(tag)
        .bind(after.map(|(time, _)| time))
        .bind(after.map_or(Uuid::nil(), |(_, id)| id))
        .fetch_all(pool)
        .await?;
    let more = rows.len() > page_size as usize;
    rows.truncate(page_size as usize);
    let next = match rows.last() {
        Some(last) if more => paging::encode_token(
            &fingerprint,
            Cursor { value: rapport_kit::listing::time_value(last.update_time), id: last.id },
        ),
        _ => String::new(),
    };
    Ok((rows, next))
}

#[derive(sqlx::FromRow)]
struct Ranked {
    #[sqlx(flatten)]
    article: ArticleRow,
    rank: f32,
}

/// Published articles matching `query`, best first.
pub async fn search(
    pool: &PgPool,
    query: &SearchQuery,
    (page_size, page_token): (i32, &str),
) -> Result<(Vec<ArticleRow>, String), Error> {
    let tsquery = query.tsquery();
    let fingerprint = paging::fingerprint(&["kb", &tsquery]);
    let after = search::after(page_token, &fingerprint)?;
    let page_size = paging::page_size(page_size, 20, 100)?;
    let sql = format!(
        "SELECT {COLUMNS}, rank FROM ( \
           SELECT a.*, ts_rank(a.search, q) AS rank FROM kb_articles a, to_tsquery('simple', $1) q \
           WHERE a.search @@ q AND a.status = 'PUBLISHED') ranked \
         WHERE $2::real IS NULL OR rank < $2 OR (rank = $2 AND id > $3) \
         ORDER BY rank DESC, id LIMIT {}",
        u64::from(page_size) + 1
    );
    let mut rows: Vec<Ranked> = sqlx::query_as(&sql)
        .bind(&tsquery)
        .bind(after.map(|(rank, _)| rank))
        .bind(after.map_or(Uuid::nil(), |(_, id)| id))
        .fetch_all(pool)
        .await?;
    let more = rows.len() > page_size as usize;
    rows.truncate(page_size as usize);
    let next = search::next_token(&fingerprint, rows.last().map(|last| (last.rank, last.article.id)), more);
    Ok((rows.into_iter().map(|row| row.article).collect(), next))
}

/// Published articles that may answer case `case_id` (by its subject and
/// description, any word matching, best cover first); each suggestion is
/// recorded against the case.
pub async fn suggest(
    pool: &PgPool,
    case_id: Uuid,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<ArticleRow>, Error> {
    let text: Option<(String, String)> =
        sqlx::query_as("SELECT subject, left(description, 2000) FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_optional(pool)
            .await?;
    let (subject, description) =
        text.ok_or_else(|| Error::not_found("CASE_NOT_FOUND", crate::error::resource::CASE, case_id))?;
    // The subject's words first; a dozen words rank well enough and keep
    // the any-word query cheap (every article containing one is ranked).
    let Some(query) = SearchQuery::from_text(&format!("{subject} {description}"), SUGGEST_WORDS) else {
        return Ok(Vec::new());
    };
    let mut tx = pool.begin().await?;
    let sql = format!(
        "SELECT {COLUMNS}, rank FROM ( \
           SELECT a.*, ts_rank(a.search, q) AS rank FROM kb_articles a, to_tsquery('simple', $1) q \
           WHERE a.search @@ q AND a.status = 'PUBLISHED') ranked \
         ORDER BY rank DESC, id LIMIT $2"
    );
    let rows: Vec<Ranked> =
        sqlx::query_as(&sql).bind(query.any_tsquery()).bind(limit).fetch_all(&mut *tx).await?;
    if !rows.is_empty() {
        let ids: Vec<Uuid> = rows.iter().map(|row| row.article.id).collect();
        let ranks: Vec<f32> = rows.iter().map(|row| row.rank).collect();
        sqlx::query(
            "INSERT INTO kb_suggestions (case_id, article_id, rank, suggest_time) \
             SELECT $1, article_id, rank, $4 FROM unnest($2::uuid[], $3::real[]) AS s(article_id, rank) \
             ON CONFLICT (case_id, article_id) DO UPDATE SET rank = EXCLUDED.rank",
        )
        .bind(case_id)
        .bind(&ids)
        .bind(&ranks)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(rows.into_iter().map(|row| row.article).collect())
}

/// Marks a suggestion used; returns when it was first.
pub async fn use_suggestion(
    pool: &PgPool,
    case_id: Uuid,
    article_id: Uuid,
    by: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, Error> {
    let used: Option<DateTime<Utc>> = sqlx::query_scalar(
        "UPDATE kb_suggestions SET use_time = COALESCE(use_time, $3), used_by = CASE WHEN use_time IS NULL THEN $4 ELSE used_by END \
         WHERE case_id = $1 AND article_id = $2 RETURNING use_time",
    )
    .bind(case_id)
    .bind(article_id)
    .bind(now)
    .bind(by)
    .fetch_optional(pool)
    .await?
    .flatten();
    used.ok_or_else(|| {
        Error::precondition(
            "NOT_SUGGESTED",
            "this article was not suggested for the case",
            "SUGGESTED",
            &article_id.to_string(),
        )
    })
}

/// Records `voter`'s vote on a published article (replacing an earlier one).
pub async fn vote(pool: &PgPool, id: Uuid, voter: &str, helpful: bool) -> Result<ArticleRow, Error> {
    let mut tx = pool.begin().await?;
    let current: Option<ArticleRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM kb_articles WHERE id = $1 FOR UPDATE"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    current.filter(|row| row.status == "PUBLISHED").ok_or_else(|| not_found(id))?;
    sqlx::query(
        "INSERT INTO kb_votes (article_id, voter_id, helpful) VALUES ($1, $2, $3) \
         ON CONFLICT (article_id, voter_id) DO UPDATE SET helpful = $3",
    )
    .bind(id)
    .bind(voter)
    .bind(helpful)
    .execute(&mut *tx)
    .await?;
    let sql = format!(
        "UPDATE kb_articles SET helpful = (SELECT count(*) FROM kb_votes WHERE article_id = $1 AND helpful), \
           not_helpful = (SELECT count(*) FROM kb_votes WHERE article_id = $1 AND NOT helpful) \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = sqlx::query_as(&sql).bind(id).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(row)
}
