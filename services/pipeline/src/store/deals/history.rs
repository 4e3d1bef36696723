//! GetDealHistory: the deal's stays in stages (deal_stage_history), the
//! time per stage, and the sales cycle of a closed deal.

use chrono::{DateTime, TimeDelta, Utc};
use rapport_kit::changelog::timestamp;
use rapport_proto::pipeline::v1::{DealHistory, StageTime, StageVisit};
use sqlx::PgPool;
use uuid::Uuid;

use super::not_found;
use crate::domain::ids::DealId;
use crate::error::Error;
use crate::store::now;

/// One stay, with its stage as it is now.
#[derive(Debug, Clone, sqlx::FromRow)]
struct VisitRow {
    stage_id: Uuid,
    stage_name: String,
    position: i32,
    enter_time: DateTime<Utc>,
    leave_time: Option<DateTime<Utc>>,
    actor: String,
}

/// A non-negative span as a protobuf Duration (clock skew never makes a
/// stay negative).
pub(crate) fn duration(span: TimeDelta) -> prost_types::Duration {
    let span = span.max(TimeDelta::zero());
    prost_types::Duration { seconds: span.num_seconds(), nanos: span.subsec_nanos() }
}

/// The history of a deal, live or deleted.
pub async fn get(pool: &PgPool, id: DealId) -> Result<DealHistory, Error> {
    let mut conn = pool.acquire().await?;
    let deal: Option<(DateTime<Utc>, Option<DateTime<Utc>>, String)> =
        sqlx::query_as("SELECT create_time, close_time, status FROM deals WHERE id = $1")
            .bind(id.uuid())
            .fetch_optional(&mut *conn)
            .await?;
    let (create_time, close_time, status) = deal.ok_or_else(|| not_found(id.uuid()))?;
    let visits: Vec<VisitRow> = sqlx::query_as(
        "SELECT h.stage_id, s.name AS stage_name, s.position, h.enter_time, h.leave_time, h.actor \
         FROM deal_stage_history h JOIN stages s ON s.id = h.stage_id \
         WHERE h.deal_id = $1 ORDER BY h.enter_time, h.id",
    )
    .bind(id.uuid())
    .fetch_all(&mut *conn)
    .await?;
    let sales_cycle = match (status.as_str(), close_time) {
        ("OPEN", _) | (_, None) => None,
        (_, Some(close_time)) => Some(duration(close_time - create_time)),
    };
    Ok(history(id, &visits, now(), sales_cycle))
}

fn history(
    id: DealId,
    visits: &[VisitRow],
    now: DateTime<Utc>,
    sales_cycle: Option<prost_types::Duration>,
) -> DealHistory {
    let span = |visit: &VisitRow| (visit.leave_time.unwrap_or(now) - visit.enter_time).max(TimeDelta::zero());
    // (position, first visit, stage, name, total): pipeline order, and
    // stages of a former pipeline by when the deal first entered them.
    let mut totals: Vec<(i32, usize, Uuid, String, TimeDelta)> = Vec::new();
    for (index, visit) in visits.iter().enumerate() {
        match totals.iter_mut().find(|total| total.2 == visit.stage_id) {
            Some(total) => total.4 += span(visit),
            None => {
                totals.push((visit.position, index, visit.stage_id, visit.stage_name.clone(), span(visit)))
            }
        }
    }
    totals.sort_by_key(|total| (total.0, total.1));
    DealHistory {
        deal_id: id.to_string(),
        visits: visits
            .iter()
            .map(|visit| StageVisit {
                stage_id: visit.stage_id.to_string(),
                stage_name: visit.stage_name.clone(),
                enter_time: Some(timestamp(visit.enter_time)),
                leave_time: visit.leave_time.map(timestamp),
                duration: Some(duration(span(visit))),
                actor: visit.actor.clone(),
            })
            .collect(),
        time_in_stages: totals
            .into_iter()
            .map(|(_, _, stage_id, stage_name, total)| StageTime {
                stage_id: stage_id.to_string(),
                stage_name,
                duration: Some(duration(total)),
            })
            .collect(),
        sales_cycle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visit(stage_id: Uuid, position: i32, enter: i64, leave: Option<i64>) -> VisitRow {
        let at = |seconds: i64| DateTime::from_timestamp(seconds, 0).unwrap_or_default();
        VisitRow {
            stage_id,
            stage_name: format!("stage {position}"),
            position,
            enter_time: at(enter),
            leave_time: leave.map(at),
            actor: "rep-1".into(),
        }
    }

    #[test]
    fn totals_sum_every_stay_in_pipeline_order() {
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        let visits =
            [visit(second, 2, 0, Some(10)), visit(first, 1, 10, Some(40)), visit(second, 2, 40, None)];
        let now = DateTime::from_timestamp(100, 0).unwrap_or_default();
        let history = history(DealId::generate(), &visits, now, None);
        let seconds: Vec<i64> =
            history.visits.iter().map(|v| v.duration.map(|d| d.seconds).unwrap_or(-1)).collect();
        assert_eq!(seconds, [10, 30, 60]);
        let totals: Vec<(String, i64)> = history
            .time_in_stages
            .iter()
            .map(|t| (t.stage_id.clone(), t.duration.map(|d| d.seconds).unwrap_or(-1)))
            .collect();
        assert_eq!(totals, [(first.to_string(), 30), (second.to_string(), 70)]);
    }
}
