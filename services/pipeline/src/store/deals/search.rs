//! SearchDeals: full-text prefix search over titles (weight A) and next
//! steps (weight B) of live deals, through the `deals_search` GIN index.
//!
//! Best match first: `ts_rank` descending, then id. Paging is keyset on
//! (rank, id): the token carries the last rank (a `real`, whose text form
//! round-trips exactly) and id, bound to the query's fingerprint (its
//! words and the status filter), so a deal inserted meanwhile neither
//! shifts nor repeats results the way an offset would.

use rapport_kit::auth::ReadScope;
use rapport_kit::paging;
use rapport_proto::pipeline::v1::Deal;
use sqlx::PgPool;
use uuid::Uuid;

use super::{COLUMNS, DEALS_WITH_STAGE, DealRow, with_lines};
use crate::convert::deals::deal_to_proto;
use crate::domain::search::SearchQuery;
use crate::error::Error;

/// A parsed SearchDeals call.
pub struct SearchRequest<'a> {
    /// The words.
    pub query: &'a SearchQuery,
    /// Only deals of this stored status (`OPEN`, `WON`, `LOST`).
    pub status: Option<&'static str>,
    /// `page_size`
    pub page_size: i32,
    /// `page_token`
    pub page_token: &'a str,
    /// The deals the caller may read.
    pub scope: &'a ReadScope,
}

#[derive(sqlx::FromRow)]
struct RankedRow {
    #[sqlx(flatten)]
    deal: DealRow,
    rank: f32,
}

/// One page of matches, best first, and the next page's token.
pub async fn search(pool: &PgPool, request: &SearchRequest<'_>) -> Result<(Vec<Deal>, String), Error> {
    let tsquery = request.query.tsquery();
    let fingerprint = paging::fingerprint(&["search", &tsquery, request.status.unwrap_or("")]);
    let after = rapport_kit::search::after(request.page_token, &fingerprint)?;
    let page_size = paging::page_size(request.page_size, 20, 100)?;
    let scope = request.scope.condition(super::SCOPE_COLUMNS, 5);
    let sql = format!(
        "SELECT {COLUMNS}, rank FROM ( \
           SELECT deals.*, ts_rank(search_vector, q) AS rank \
           FROM {DEALS_WITH_STAGE}, to_tsquery('simple', $1) q \
           WHERE search_vector @@ q AND delete_time IS NULL AND ($2 = '' OR status = $2) AND {}) ranked \
         WHERE $3::real IS NULL OR rank < $3 OR (rank = $3 AND id > $4) \
         ORDER BY rank DESC, id LIMIT {}",
        scope.sql,
        u64::from(page_size) + 1
    );
    let mut conn = pool.acquire().await?;
    let statement = scope.bind_to(
        sqlx::query_as(&sql)
            .bind(&tsquery)
            .bind(request.status.unwrap_or(""))
            .bind(after.map(|(rank, _)| rank))
            .bind(after.map(|(_, id)| id).unwrap_or(Uuid::nil())),
    );
    let mut rows: Vec<RankedRow> = statement.fetch_all(&mut *conn).await?;
    let more = rows.len() > page_size as usize;
    rows.truncate(page_size as usize);
    let next_page_token = rapport_kit::search::next_token(
        &fingerprint,
        rows.last().map(|last| (last.rank, last.deal.id)),
        more,
    );
    let records = with_lines(&mut conn, rows.into_iter().map(|row| row.deal).collect()).await?;
    Ok((records.iter().map(deal_to_proto).collect::<Result<_, _>>()?, next_page_token))
}
