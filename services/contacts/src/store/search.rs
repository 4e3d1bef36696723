//! Ranked full-text search over contacts and companies, and the typo
//! corrections drawn from the vocabulary of stored words.
//!
//! A search is one full-text query over the record's `search_vector` (GIN
//! indexed). Only its first [`RANKED_MATCHES`] matches are ranked: a bitmap
//! scan with a limit stops reading the table once it has them, so a word
//! half the book holds costs the same as a rare one. An exact email address
//! (or domain) is always among them and ranks first.

use sqlx::PgPool;

use crate::domain::search::{Expansion, SearchQuery};

/// How many matches a search ranks (and so the furthest it pages).
pub const RANKED_MATCHES: u32 = 100;
/// The most completions of a word a query lists as exact words (more, and
/// the word is matched as a prefix).
const MAX_COMPLETIONS: i64 = 6;
/// How many corrections a word may get.
const ALTERNATIVES: i64 = 5;
/// The largest trigram distance (1 − similarity) of a correction.
const MAX_DISTANCE: f32 = 0.75;

/// How a search matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    /// Every query word is a word or word prefix of the record.
    Words,
    /// Every query word, or one of its corrections, is (typos).
    Typos,
}

/// What a search reads: the table, the columns its rows are decoded
/// from, and the column a whole query matches exactly.
pub struct Target {
    pub table: &'static str,
    pub columns: &'static str,
    pub exact_column: &'static str,
    /// The text (over `hits`) a corrected query is compared with by
    /// trigram word similarity, so the nearer spelling ranks first.
    pub similar_text: &'static str,
}

/// Ranked rows of `target` and the mode that found them. Without a `mode`
/// (a first page), the words are tried as typed and corrected only when
/// they find nothing, or straight away when a word cannot match as typed
/// (it starts no stored word). One vocabulary lookup serves both.
pub async fn search<R>(
    pool: &PgPool,
    target: &Target,
    query: &SearchQuery,
    window: (u32, u32),
    mode: Option<SearchMode>,
) -> Result<(Vec<(R, f64)>, SearchMode), sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let expansions = expand(pool, query.words()).await?;
    let run = |mode: SearchMode| {
        let tsquery = query.tsquery(&expansions, mode == SearchMode::Typos);
        async move { ranked::<R>(pool, target, query, &tsquery, window, mode).await }
    };
    if mode.is_none() && query.may_match_as_typed(&expansions) {
        let hits = run(SearchMode::Words).await?;
        if !hits.is_empty() {
            return Ok((hits, SearchMode::Words));
        }
    }
    let mode = mode.unwrap_or(SearchMode::Typos);
    Ok((run(mode).await?, mode))
}

async fn ranked<R>(
    pool: &PgPool,
    target: &Target,
    query: &SearchQuery,
    tsquery: &str,
    (limit, offset): (u32, u32),
    mode: SearchMode,
) -> Result<Vec<(R, f64)>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    use sqlx::Row as _;
    let sql = ranked_sql(target, mode);
    let rows = sqlx::query(&sql)
        .bind(tsquery)
        .bind(query.text())
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(pool)
        .await?;
    rows.iter().map(|row| Ok((R::from_row(row)?, row.try_get("score")?))).collect()
}

/// For each word: the stored words it starts (at most
/// [`MAX_COMPLETIONS`], else none are listed), and, unless the word is
/// stored itself, the stored words nearest to it (by the trigram index's
/// distance ordering; numbers get none).
async fn expand(pool: &PgPool, words: &[String]) -> Result<Vec<Expansion>, sqlx::Error> {
    let rows: Vec<(i64, Vec<String>, Vec<String>)> = sqlx::query_as(
        "SELECT q.position, \
           ARRAY(SELECT word FROM search_words \
                 WHERE word >= q.folded AND word < q.folded || chr(1114111) ORDER BY word LIMIT $2), \
           CASE WHEN q.folded !~ '^[0-9]+$' \
                 AND NOT EXISTS (SELECT 1 FROM search_words known WHERE known.word = q.folded) THEN ARRAY( \
             SELECT near.word FROM ( \
               SELECT word, word <-> q.folded AS distance FROM search_words \
               ORDER BY word <-> q.folded LIMIT $3 \
             ) near WHERE near.distance <= $4 ORDER BY near.distance, near.word \
           ) ELSE '{}' END \
         FROM (SELECT position, public.unaccent(word) COLLATE \"C\" AS folded \
               FROM unnest($1::text[]) WITH ORDINALITY AS u (word, position)) q \
         ORDER BY q.position",
    )
    .bind(words)
    .bind(MAX_COMPLETIONS + 1)
    .bind(ALTERNATIVES)
    .bind(MAX_DISTANCE)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(_, completions, alternatives)| Expansion {
            completions: (completions.len() <= MAX_COMPLETIONS as usize).then_some(completions),
            alternatives,
        })
        .collect())
}

/// The ranked-search SQL over the target's table: `$1` the tsquery text,
/// `$2` the query text matched whole against its exact column, `$3`/`$4`
/// limit and offset. Selects its columns and `score` (ts_rank, plus one for
/// the exact match, plus the similarity to the query when corrected), best
/// first, ties by id.
fn ranked_sql(&Target { table, columns, exact_column, similar_text }: &Target, mode: SearchMode) -> String {
    let similarity = match mode {
        SearchMode::Words => String::new(),
        SearchMode::Typos => {
            format!("+ word_similarity(public.unaccent($2), public.unaccent({similar_text}))")
        }
    };
    format!(
        "SELECT {columns}, score FROM ( \
           SELECT hits.*, (ts_rank(hits.search_vector, q.query) {similarity} \
             + CASE WHEN hits.{exact_column} = $2 THEN 1 ELSE 0 END)::float8 AS score \
           FROM ( \
             (SELECT * FROM {table} WHERE {exact_column} = $2 AND delete_time IS NULL) \
             UNION ALL \
             (SELECT * FROM {table} \
              WHERE search_vector @@ to_tsquery('contacts.folded', $1) AND delete_time IS NULL \
                AND {exact_column} IS DISTINCT FROM $2 \
              LIMIT {RANKED_MATCHES}) \
           ) hits CROSS JOIN (SELECT to_tsquery('contacts.folded', $1) AS query) q \
         ) ranked ORDER BY score DESC, id LIMIT $3 OFFSET $4"
    )
}

/// Drops the words no contact or company holds any more (a renamed or
/// erased record's old words) from a window of the vocabulary: up to
/// `window` words after `after`. Returns how many it dropped and the last
/// word of the window (`None` once past the end: start over).
///
/// Writers are not held off. A writer that finds a word present and a
/// pruner that does not yet see the writer's record can leave a held word
/// out; a search for it then goes straight to its corrected form, whose
/// first alternative is the word itself, so it is still found, and the
/// next write holding the word adds it back.
pub async fn prune_vocabulary(
    tx: &mut sqlx::PgConnection,
    after: &str,
    window: i64,
) -> Result<(u64, Option<String>), sqlx::Error> {
    let (pruned, last): (i64, Option<String>) = sqlx::query_as(
        "WITH window_words AS ( \
           SELECT word FROM search_words WHERE word > $1 ORDER BY word LIMIT $2 \
         ), stale AS ( \
           DELETE FROM search_words w USING window_words ww \
           WHERE w.word = ww.word \
             AND NOT EXISTS (SELECT 1 FROM contacts WHERE search_vector @@ to_tsquery('simple', w.word)) \
             AND NOT EXISTS (SELECT 1 FROM companies WHERE search_vector @@ to_tsquery('simple', w.word)) \
           RETURNING w.word \
         ) \
         SELECT (SELECT count(*) FROM stale), (SELECT max(word) FROM window_words)",
    )
    .bind(after)
    .bind(window)
    .fetch_one(&mut *tx)
    .await?;
    Ok((u64::try_from(pruned).unwrap_or(0), last))
}
