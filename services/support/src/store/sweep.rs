//! The SLA sweep: warnings given and breaches recorded once per case and
//! target, breaches escalated by the case's policy, each announced on the
//! change feed as an `SlaAlert`.

use rapport_kit::changelog::{self, Change, timestamp};
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::support::v1::{CasePriority, SlaAlert, SlaAlertKind};
use sqlx::PgConnection;
use uuid::Uuid;

use super::cases::{self, lock};
use super::sla::{self, Sla};
use super::{Ctx, Write};
use crate::convert::enums_of;
use crate::domain::case::{display_number, is_open, priority_name};
use crate::domain::sla::{Metric, raised};
use crate::error::Error;
use crate::model::CaseRecord;

use crate::error::resource::SLA_ALERT as ALERT;

/// How many warnings and how many breaching cases one sweep handles; the
/// rest wait for the next run.
pub const BATCH: i64 = 5000;

#[derive(sqlx::FromRow)]
struct Due {
    case_id: Uuid,
    number: i64,
    metric: String,
    cycle: i32,
    due_at: Option<chrono::DateTime<chrono::Utc>>,
    breached_at: Option<chrono::DateTime<chrono::Utc>>,
    assignee_id: String,
    team_id: String,
}

/// One sweep at `ctx.now`, as `write.actor`; returns how many alerts it
/// announced.
pub async fn sweep(tx: &mut PgConnection, write: Write<'_>, ctx: Ctx<'_>) -> Result<u64, Error> {
    let warned = warn(tx, write, ctx).await?;
    let breached = breach(tx, write, ctx).await?;
    Ok(warned + breached)
}

fn alert(due: &Due, kind: SlaAlertKind, escalations: Vec<String>, ctx: Ctx<'_>) -> SlaAlert {
    let metric = Metric::of(&due.metric).map_or(0, |metric| metric.proto() as i32);
    SlaAlert {
        id: Uuid::now_v7().to_string(),
        case_id: due.case_id.to_string(),
        case_number: display_number(ctx.prefix, due.number),
        metric,
        cycle: due.cycle,
        kind: kind as i32,
        due_time: due.breached_at.or(due.due_at).map(timestamp),
        alert_time: Some(timestamp(ctx.now)),
        escalations,
        assignee_id: due.assignee_id.clone(),
        team_id: due.team_id.clone(),
    }
}

async fn announce(tx: &mut PgConnection, alert: &SlaAlert, actor: &str) -> Result<(), sqlx::Error> {
    let change = Change::of(ALERT, alert, alert.id.clone(), ChangeKind::Created, actor, Vec::new());
    changelog::append(tx, &[change]).await?;
    Ok(())
}

/// Warnings whose time has come, not given yet.
async fn warn(tx: &mut PgConnection, write: Write<'_>, ctx: Ctx<'_>) -> Result<u64, Error> {
    let due: Vec<Due> = sqlx::query_as(
        "UPDATE case_sla_clocks k SET warned_at = $1 FROM cases c \
         WHERE (k.case_id, k.metric, k.cycle) IN ( \
           SELECT k2.case_id, k2.metric, k2.cycle FROM case_sla_clocks k2 JOIN cases c2 ON c2.id = k2.case_id \
           WHERE k2.current AND k2.achieved_at IS NULL AND k2.warned_at IS NULL AND k2.warn_at <= $1 \
             AND c2.delete_time IS NULL AND c2.status NOT IN ('RESOLVED', 'CLOSED') \
           ORDER BY k2.warn_at LIMIT $2 FOR UPDATE OF k2) \
           AND c.id = k.case_id \
         RETURNING k.case_id, c.number, k.metric, k.cycle, k.due_at, k.breached_at, c.assignee_id, c.team_id",
    )
    .bind(ctx.now)
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    for due in &due {
        announce(tx, &alert(due, SlaAlertKind::Warning, Vec::new(), ctx), write.actor).await?;
    }
    Ok(due.len() as u64)
}

/// Breaches not recorded yet: running targets past their due time, and
/// paused ones that breached before they paused.
async fn breach(tx: &mut PgConnection, write: Write<'_>, ctx: Ctx<'_>) -> Result<u64, Error> {
    let case_ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT k.case_id FROM case_sla_clocks k JOIN cases c ON c.id = k.case_id \
         WHERE k.current AND k.achieved_at IS NULL AND k.breach_recorded_at IS NULL \
           AND (k.due_at <= $1 OR k.breached_at IS NOT NULL) \
           AND c.delete_time IS NULL AND c.status NOT IN ('RESOLVED', 'CLOSED') \
         LIMIT $2",
    )
    .bind(ctx.now)
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    if case_ids.is_empty() {
        return Ok(0);
    }
    let sla = sla::load(tx).await?;
    let mut announced = 0;
    let mut sorted = case_ids;
    sorted.sort_unstable();
    for case_id in sorted {
        let mut record = lock(tx, case_id).await?;
        announced += breach_case(tx, &mut record, &sla, write, ctx).await?;
    }
    Ok(announced)
}

/// Records the breaches of one locked case, escalates it once, and
/// announces each breach.
async fn breach_case(
    tx: &mut PgConnection,
    record: &mut CaseRecord,
    sla: &Sla,
    write: Write<'_>,
    ctx: Ctx<'_>,
) -> Result<u64, Error> {
    let (status, priority, _) = enums_of(record)?;
    if record.case.delete_time.is_some() || !is_open(status) {
        return Ok(0);
    }
    let breached: Vec<Due> = sqlx::query_as(
        "UPDATE case_sla_clocks k SET breach_recorded_at = $2 FROM cases c \
         WHERE k.case_id = $1 AND c.id = k.case_id AND k.current AND k.achieved_at IS NULL \
           AND k.breach_recorded_at IS NULL AND (k.due_at <= $2 OR k.breached_at IS NOT NULL) \
         RETURNING k.case_id, c.number, k.metric, k.cycle, k.due_at, k.breached_at, c.assignee_id, c.team_id",
    )
    .bind(record.case.id)
    .bind(ctx.now)
    .fetch_all(&mut *tx)
    .await?;
    if breached.is_empty() {
        return Ok(0);
    }
    let escalation =
        sla.policy(record.case.sla_policy_id).map(|policy| policy.escalation.clone()).unwrap_or_default();
    let mut escalations = Vec::new();
    let mut paths = Vec::new();
    if escalation.raise_priority && priority != CasePriority::Urgent {
        let to = raised(priority);
        escalations.push(format!("priority {} -> {}", priority_name(priority), priority_name(to)));
        record.case.priority = priority_name(to);
        sla::retarget(record, sla)?;
        paths.push("priority".to_owned());
    }
    if !escalation.team_id.is_empty() && escalation.team_id != record.case.team_id {
        escalations.push(format!("team {} -> {}", record.case.team_id, escalation.team_id));
        record.case.team_id.clone_from(&escalation.team_id);
        if escalation.assignee_id.is_empty() {
            let chosen =
                super::assignment::choose(tx, &escalation.team_id, ctx.now, sla).await?.unwrap_or_default();
            if chosen != record.case.assignee_id {
                let shown = if chosen.is_empty() { "(queue)" } else { chosen.as_str() };
                escalations.push(format!("assignee {} -> {shown}", record.case.assignee_id));
                record.case.assignee_id = chosen;
            }
        }
        paths.push("team_id".to_owned());
    }
    if !escalation.assignee_id.is_empty() && escalation.assignee_id != record.case.assignee_id {
        escalations.push(format!("assignee {} -> {}", record.case.assignee_id, escalation.assignee_id));
        record.case.assignee_id.clone_from(&escalation.assignee_id);
        paths.push("assignee_id".to_owned());
    }
    if !paths.is_empty() {
        cases::save(tx, record, (ChangeKind::Updated, paths), write.actor, ctx, sla).await?;
    }
    for due in &breached {
        let due = Due {
            assignee_id: record.case.assignee_id.clone(),
            team_id: record.case.team_id.clone(),
            ..clone_due(due)
        };
        announce(tx, &alert(&due, SlaAlertKind::Breach, escalations.clone(), ctx), write.actor).await?;
    }
    Ok(breached.len() as u64)
}

fn clone_due(due: &Due) -> Due {
    Due {
        case_id: due.case_id,
        number: due.number,
        metric: due.metric.clone(),
        cycle: due.cycle,
        due_at: due.due_at,
        breached_at: due.breached_at,
        assignee_id: due.assignee_id.clone(),
        team_id: due.team_id.clone(),
    }
}
