//! ListStaleDeals: open, live deals past a rotting period, in one query.
//!
//! A deal has up to two deadlines: `last_activity_time` plus the
//! pipeline's rotting period (NO_ACTIVITY), and `stage_enter_time` plus
//! the stage's rotting period, or the pipeline's when the stage has none
//! (STUCK_IN_STAGE). A period of 0 days never rots. The deal is stale
//! since its earliest deadline; how long ago that was is `overdue_by` (the
//! larger overshoot). Pages are ordered by that instant, then id: it does
//! not move as time passes, so keyset paging stays stable.

use chrono::{DateTime, Utc};
use rapport_kit::paging::{self, Cursor, SortKind};
use rapport_proto::pipeline::v1::{StaleDeal, StaleReason};
use sqlx::PgPool;
use uuid::Uuid;

use super::history::duration;
use super::{COLUMNS, DealRecord, DealRow, with_lines};
use crate::convert::deals::deal_to_proto;
use crate::domain::ids::PipelineId;
use crate::error::Error;
use crate::store::now;

/// The filters and page of a ListStaleDeals call.
pub struct StaleRequest<'a> {
    /// Only this pipeline's deals.
    pub pipeline_id: Option<PipelineId>,
    /// Only this owner's deals; empty for all.
    pub owner_id: &'a str,
    /// `page_size`
    pub page_size: i32,
    /// `page_token`
    pub page_token: &'a str,
    /// The deals the caller may read.
    pub scope: &'a rapport_kit::auth::ReadScope,
}

#[derive(sqlx::FromRow)]
struct StaleRow {
    #[sqlx(flatten)]
    deal: DealRow,
    activity_deadline: Option<DateTime<Utc>>,
    stage_deadline: Option<DateTime<Utc>>,
    stale_since: DateTime<Utc>,
}

/// Deals with their deadlines (`$1` is now, `$2` the pipeline or NULL,
/// `$3` the owner or '').
const STALE: &str = "(SELECT *, least(activity_deadline, stage_deadline) AS stale_since FROM ( \
      SELECT d.*, s.probability AS stage_probability, \
        CASE WHEN p.rotting_days > 0 THEN d.last_activity_time + make_interval(days => p.rotting_days) END \
          AS activity_deadline, \
        CASE WHEN s.rotting_days > 0 THEN d.stage_enter_time + make_interval(days => s.rotting_days) \
             WHEN p.rotting_days > 0 THEN d.stage_enter_time + make_interval(days => p.rotting_days) END \
          AS stage_deadline \
      FROM deals d JOIN stages s ON s.id = d.stage_id JOIN pipelines p ON p.id = d.pipeline_id \
      WHERE d.status = 'OPEN' AND d.delete_time IS NULL \
        AND ($2::uuid IS NULL OR d.pipeline_id = $2) AND ($3 = '' OR d.owner_id = $3)) deadlines) deals";

/// One page of stale deals and the next page's token.
pub async fn list(pool: &PgPool, request: &StaleRequest<'_>) -> Result<(Vec<StaleDeal>, String), Error> {
    let pipeline = request.pipeline_id.map(|id| id.to_string()).unwrap_or_default();
    let fingerprint = paging::fingerprint(&["stale", &pipeline, request.owner_id]);
    let cursor = paging::decode_token(request.page_token, &fingerprint)?;
    let after = match &cursor {
        Some(cursor) => match cursor.value_param(SortKind::Timestamp)? {
            rapport_kit::filter::SqlValue::Timestamp(time) => Some((time, cursor.id)),
            _ => None,
        },
        None => None,
    };
    let page_size = paging::page_size(request.page_size, 50, 500)?;
    let scope = request.scope.condition(super::SCOPE_COLUMNS, 6);
    let sql = format!(
        "SELECT {COLUMNS}, activity_deadline, stage_deadline, stale_since FROM {STALE} \
         WHERE stale_since < $1 AND ($4::timestamptz IS NULL OR (stale_since, id) > ($4, $5)) AND {} \
         ORDER BY stale_since, id LIMIT {}",
        scope.sql,
        u64::from(page_size) + 1
    );
    let now = now();
    let mut conn = pool.acquire().await?;
    let statement = scope.bind_to(
        sqlx::query_as(&sql)
            .bind(now)
            .bind(request.pipeline_id.map(PipelineId::uuid))
            .bind(request.owner_id)
            .bind(after.map(|(time, _)| time))
            .bind(after.map(|(_, id)| id).unwrap_or(Uuid::nil())),
    );
    let mut rows: Vec<StaleRow> = statement.fetch_all(&mut *conn).await?;
    let more = rows.len() > page_size as usize;
    rows.truncate(page_size as usize);
    let next_page_token = match rows.last() {
        Some(last) if more => paging::encode_token(
            &fingerprint,
            Cursor {
                value: last.stale_since.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                id: last.deal.id,
            },
        ),
        _ => String::new(),
    };
    let deals = rows.iter().map(|row| row.deal.clone()).collect();
    let records: Vec<DealRecord> = with_lines(&mut conn, deals).await?;
    let stale = rows
        .iter()
        .zip(&records)
        .map(|(row, record)| {
            let mut reasons = Vec::new();
            if row.activity_deadline.is_some_and(|deadline| deadline < now) {
                reasons.push(StaleReason::NoActivity.into());
            }
            if row.stage_deadline.is_some_and(|deadline| deadline < now) {
                reasons.push(StaleReason::StuckInStage.into());
            }
            Ok(StaleDeal {
                deal: Some(deal_to_proto(record)?),
                reasons,
                overdue_by: Some(duration(now - row.stale_since)),
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok((stale, next_page_token))
}
