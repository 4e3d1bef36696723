//! SLA calendars and policies: their writes, and the re-projection of the
//! open cases a change touches (in the same transaction as the change).

use rapport_kit::db::check_etag;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::cases::{self, with_clocks};
use super::sla::{self, CALENDAR_COLUMNS, POLICY_COLUMNS};
use super::{Ctx, Write};
use crate::domain::sla_input::{CalendarInput, HolidayEntry, PolicyInput};
use crate::error::Error;
use crate::model::{CalendarRow, CaseRow, PolicyRow};
use rapport_proto::common::v1::ChangeKind;

/// Resource names in errors.
const CALENDAR: &str = "rapport.support.v1.Calendar";
const POLICY: &str = "rapport.support.v1.SlaPolicy";

/// How many open cases a change re-projected, and how many deadlines moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reprojected {
    pub cases: i32,
    pub deadlines_changed: i32,
}

fn calendar_not_found(id: Uuid) -> Error {
    Error::not_found("CALENDAR_NOT_FOUND", CALENDAR, id)
}

fn policy_not_found(id: Uuid) -> Error {
    Error::not_found("SLA_POLICY_NOT_FOUND", POLICY, id)
}

/// One calendar.
pub async fn get_calendar(pool: &PgPool, id: Uuid) -> Result<CalendarRow, Error> {
    let sql = format!("SELECT {CALENDAR_COLUMNS} FROM sla_calendars WHERE id = $1");
    let row: Option<CalendarRow> = sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?;
    row.ok_or_else(|| calendar_not_found(id))
}

/// Every calendar, by name.
pub async fn list_calendars(pool: &PgPool) -> Result<Vec<CalendarRow>, Error> {
    let sql = format!("SELECT {CALENDAR_COLUMNS} FROM sla_calendars ORDER BY lower(name), id");
    Ok(sqlx::query_as(&sql).fetch_all(pool).await?)
}

/// Creates a calendar.
pub async fn create_calendar(
    pool: &PgPool,
    input: &CalendarInput,
    ctx: Ctx<'_>,
) -> Result<CalendarRow, Error> {
    let sql = format!(
        "INSERT INTO sla_calendars (id, name, time_zone, weekly_hours, holidays, create_time, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {CALENDAR_COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(Uuid::now_v7())
        .bind(&input.name)
        .bind(&input.time_zone)
        .bind(sqlx::types::Json(&input.weekly_hours))
        .bind(sqlx::types::Json(&input.holidays))
        .bind(ctx.now)
        .fetch_one(pool)
        .await?)
}

/// Replaces a calendar (if `etag` is current or empty) and re-projects the
/// open cases counting in it.
pub async fn update_calendar(
    pool: &PgPool,
    id: Uuid,
    etag: &str,
    input: &CalendarInput,
    write: Write<'_>,
    ctx: Ctx<'_>,
) -> Result<(CalendarRow, Reprojected), Error> {
    let mut tx = pool.begin().await?;
    let current = lock_calendar(&mut tx, id).await?;
    check_etag(CALENDAR, &id.to_string(), etag, current.version)?;
    let row = write_calendar(&mut tx, id, input, ctx).await?;
    let reprojected = reproject(&mut tx, Touched::Calendar(id), write, ctx).await?;
    tx.commit().await?;
    Ok((row, reprojected))
}

/// Adds `holidays` to a calendar and re-projects its open cases.
pub async fn add_holidays(
    pool: &PgPool,
    id: Uuid,
    holidays: Vec<HolidayEntry>,
    write: Write<'_>,
    ctx: Ctx<'_>,
) -> Result<(CalendarRow, Reprojected), Error> {
    let mut tx = pool.begin().await?;
    let current = lock_calendar(&mut tx, id).await?;
    let mut all = current.holidays.0.clone();
    for holiday in holidays {
        if !all.iter().any(|kept| kept.date == holiday.date) {
            all.push(holiday);
        }
    }
    all.sort();
    if all.len() > crate::domain::calendar::MAX_HOLIDAYS {
        return Err(rapport_kit::fields::Violation::new(
            "ics",
            "the calendar would hold more than 2000 holidays",
        )
        .into());
    }
    let weekly: Vec<Vec<(u32, u32)>> = current.weekly_hours.0.clone();
    let calendar =
        sla::calendar(&CalendarRow { holidays: sqlx::types::Json(all.clone()), ..current.clone() })?;
    let input = CalendarInput {
        name: current.name.clone(),
        time_zone: current.time_zone.clone(),
        weekly_hours: weekly,
        holidays: all,
        calendar,
    };
    let row = write_calendar(&mut tx, id, &input, ctx).await?;
    let reprojected = reproject(&mut tx, Touched::Calendar(id), write, ctx).await?;
    tx.commit().await?;
    Ok((row, reprojected))
}

async fn lock_calendar(tx: &mut PgConnection, id: Uuid) -> Result<CalendarRow, Error> {
    let sql = format!("SELECT {CALENDAR_COLUMNS} FROM sla_calendars WHERE id = $1 FOR UPDATE");
    let row: Option<CalendarRow> = sqlx::query_as(&sql).bind(id).fetch_optional(&mut *tx).await?;
    row.ok_or_else(|| calendar_not_found(id))
}

async fn write_calendar(
    tx: &mut PgConnection,
    id: Uuid,
    input: &CalendarInput,
    ctx: Ctx<'_>,
) -> Result<CalendarRow, Error> {
    let sql = format!(
        "UPDATE sla_calendars SET name = $2, time_zone = $3, weekly_hours = $4, holidays = $5, update_time = $6, \
           version = version + 1 WHERE id = $1 RETURNING {CALENDAR_COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .bind(&input.name)
        .bind(&input.time_zone)
        .bind(sqlx::types::Json(&input.weekly_hours))
        .bind(sqlx::types::Json(&input.holidays))
        .bind(ctx.now)
        .fetch_one(&mut *tx)
        .await?)
}

/// One policy, live or deleted.
pub async fn get_policy(pool: &PgPool, id: Uuid) -> Result<PolicyRow, Error> {
    let sql = format!("SELECT {POLICY_COLUMNS} FROM sla_policies WHERE id = $1");
    let row: Option<PolicyRow> = sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?;
    row.ok_or_else(|| policy_not_found(id))
}

/// The live policies in the order they are tried.
pub async fn list_policies(pool: &PgPool) -> Result<Vec<PolicyRow>, Error> {
    let sql =
        format!("SELECT {POLICY_COLUMNS} FROM sla_policies WHERE delete_time IS NULL ORDER BY position, id");
    Ok(sqlx::query_as(&sql).fetch_all(pool).await?)
}

async fn check_calendar(tx: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    let found: Option<Uuid> = sqlx::query_scalar("SELECT id FROM sla_calendars WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(Error::precondition(
            "CALENDAR_NOT_FOUND",
            format!("calendar {id} does not exist"),
            "CALENDAR_EXISTS",
            &id.to_string(),
        )),
    }
}

/// Creates a policy.
pub async fn create_policy(pool: &PgPool, input: &PolicyInput, ctx: Ctx<'_>) -> Result<PolicyRow, Error> {
    let mut tx = pool.begin().await?;
    check_calendar(&mut tx, input.calendar_id).await?;
    let sql = format!(
        "INSERT INTO sla_policies (id, name, position, conditions, targets, escalation, calendar_id, create_time, \
           update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {POLICY_COLUMNS}"
    );
    let row = sqlx::query_as(&sql)
        .bind(Uuid::now_v7())
        .bind(&input.name)
        .bind(input.position)
        .bind(sqlx::types::Json(&input.conditions))
        .bind(sqlx::types::Json(&input.targets))
        .bind(sqlx::types::Json(&input.escalation))
        .bind(input.calendar_id)
        .bind(ctx.now)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// Replaces a live policy (if `etag` is current or empty), increments its
/// version, and re-projects the open cases under it.
pub async fn update_policy(
    pool: &PgPool,
    id: Uuid,
    etag: &str,
    input: &PolicyInput,
    write: Write<'_>,
    ctx: Ctx<'_>,
) -> Result<(PolicyRow, Reprojected), Error> {
    let mut tx = pool.begin().await?;
    let current = lock_policy(&mut tx, id).await?;
    check_etag(POLICY, &id.to_string(), etag, current.version)?;
    if current.delete_time.is_some() {
        return Err(rapport_kit::error::Problem::deleted(POLICY, &id.to_string()).into());
    }
    check_calendar(&mut tx, input.calendar_id).await?;
    let sql = format!(
        "UPDATE sla_policies SET name = $2, position = $3, conditions = $4, targets = $5, escalation = $6, \
           calendar_id = $7, update_time = $8, version = version + 1 WHERE id = $1 RETURNING {POLICY_COLUMNS}"
    );
    let row: PolicyRow = sqlx::query_as(&sql)
        .bind(id)
        .bind(&input.name)
        .bind(input.position)
        .bind(sqlx::types::Json(&input.conditions))
        .bind(sqlx::types::Json(&input.targets))
        .bind(sqlx::types::Json(&input.escalation))
        .bind(input.calendar_id)
        .bind(ctx.now)
        .fetch_one(&mut *tx)
        .await?;
    let reprojected = reproject(&mut tx, Touched::Policy(id), write, ctx).await?;
    tx.commit().await?;
    Ok((row, reprojected))
}

async fn lock_policy(tx: &mut PgConnection, id: Uuid) -> Result<PolicyRow, Error> {
    let sql = format!("SELECT {POLICY_COLUMNS} FROM sla_policies WHERE id = $1 FOR UPDATE");
    let row: Option<PolicyRow> = sqlx::query_as(&sql).bind(id).fetch_optional(&mut *tx).await?;
    row.ok_or_else(|| policy_not_found(id))
}

/// Deletes a policy (its cases keep it); the last live policy matching
/// every case stays.
pub async fn delete_policy(pool: &PgPool, id: Uuid, ctx: Ctx<'_>) -> Result<PolicyRow, Error> {
    let mut tx = pool.begin().await?;
    // One deletion at a time, so two cannot each leave the other as the
    // last fallback.
    sqlx::query("LOCK TABLE sla_policies IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
    let current = lock_policy(&mut tx, id).await?;
    if current.delete_time.is_some() {
        return Ok(current);
    }
    let fallback = |row: &PolicyRow| {
        let conditions = &row.conditions.0;
        conditions.priorities.is_empty()
            && conditions.channels.is_empty()
            && conditions.categories.is_empty()
            && conditions.tags.is_empty()
    };
    if fallback(&current) {
        let others: Vec<PolicyRow> = sqlx::query_as(&format!(
            "SELECT {POLICY_COLUMNS} FROM sla_policies WHERE delete_time IS NULL AND id <> $1"
        ))
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        if !others.iter().any(fallback) {
            return Err(Error::precondition(
                "SLA_FALLBACK_REQUIRED",
                "the last policy matching every case cannot be deleted; add another fallback first",
                "SLA_FALLBACK_REQUIRED",
                &id.to_string(),
            ));
        }
    }
    let sql = format!(
        "UPDATE sla_policies SET delete_time = $2, update_time = $2, version = version + 1 WHERE id = $1 \
         RETURNING {POLICY_COLUMNS}"
    );
    let row = sqlx::query_as(&sql).bind(id).bind(ctx.now).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(row)
}

/// What a change touched.
#[derive(Debug, Clone, Copy)]
enum Touched {
    Policy(Uuid),
    Calendar(Uuid),
}

/// Re-projects the open cases under a changed policy, or with a clock in a
/// changed calendar: each clock keeps its segments and is measured again
/// with its policy's current goal and calendar. Each case is locked while
/// it is re-projected, so a concurrent event on it waits, then applies to
/// the re-projected clocks.
async fn reproject(
    tx: &mut PgConnection,
    touched: Touched,
    write: Write<'_>,
    ctx: Ctx<'_>,
) -> Result<Reprojected, Error> {
    let sla = sla::load(tx).await?;
    let filter = match touched {
        Touched::Policy(_) => "c.sla_policy_id = $1",
        Touched::Calendar(_) => {
            "EXISTS (SELECT 1 FROM case_sla_clocks k WHERE k.case_id = c.id AND k.current AND k.calendar_id = $1) \
             OR c.sla_policy_id IN (SELECT id FROM sla_policies WHERE calendar_id = $1)"
        }
    };
    let id = match touched {
        Touched::Policy(id) | Touched::Calendar(id) => id,
    };
    // The outer FROM holds `cases c` alone, so the unqualified columns are its.
    let sql = format!(
        "SELECT {} FROM cases c WHERE ({filter}) AND c.delete_time IS NULL \
           AND c.status NOT IN ('RESOLVED', 'CLOSED') ORDER BY c.id FOR UPDATE",
        cases::COLUMNS
    );
    let rows: Vec<CaseRow> = sqlx::query_as(&sql).bind(id).fetch_all(&mut *tx).await?;
    let mut done = Reprojected::default();
    for chunk in rows.chunks(500) {
        for mut record in with_clocks(tx, chunk.to_vec()).await? {
            let changed = sla::retarget(&mut record, &sla)?;
            done.cases += 1;
            done.deadlines_changed += changed;
            if let Some(policy) = sla.policy(record.case.sla_policy_id) {
                record.case.sla_policy_version = policy.version;
            }
            cases::save(
                tx,
                &mut record,
                (ChangeKind::Updated, vec!["sla_targets".to_owned()]),
                write.actor,
                ctx,
                &sla,
            )
            .await?;
        }
    }
    Ok(done)
}
