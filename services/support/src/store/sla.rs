//! The SLA policies and calendars as the engine uses them, and the clock
//! rows of cases.

use std::collections::{BTreeSet, HashMap};

use chrono::{Duration, NaiveDate};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::calendar::{Calendar, Range};
use crate::domain::clock::Clock;
use crate::domain::sla::{Calendars, CaseClock, CaseClocks, Metric, Policy};
use crate::error::Error;
use crate::model::ClockRow;

/// Every policy (the live ones first, in order), and every calendar.
pub struct Sla {
    pub policies: Vec<Policy>,
    /// How many of `policies` are live (the first ones): new cases choose
    /// among them.
    pub live: usize,
    pub calendars: HashMap<Uuid, Calendar>,
    /// Each calendar's version.
    pub calendar_versions: HashMap<Uuid, i64>,
    always: Calendar,
}

impl Calendars for Sla {
    fn calendar(&self, id: Uuid) -> &Calendar {
        // A clock's calendar is never deleted (a foreign key keeps it);
        // were it missing, every hour counts rather than none.
        self.calendars.get(&id).unwrap_or(&self.always)
    }
}

pub use crate::model::{CalendarRow, PolicyRow};

/// The columns of [`PolicyRow`].
pub const POLICY_COLUMNS: &str = "id, name, position, conditions, targets, escalation, calendar_id, create_time, update_time, delete_time, version";

/// The columns of [`CalendarRow`].
pub const CALENDAR_COLUMNS: &str =
    "id, name, time_zone, weekly_hours, holidays, create_time, update_time, version";

/// The engine's form of a stored policy.
pub fn policy_of(row: &PolicyRow) -> Policy {
    Policy {
        id: row.id,
        version: row.version,
        conditions: row.conditions.0.clone(),
        targets: row.targets.0.clone(),
        calendar_id: row.calendar_id,
        escalation: row.escalation.0.clone(),
    }
}

/// The policies and calendars as reads use them, reloaded when a second
/// old: they change rarely, and a read shown against a second-old calendar
/// only computes elapsed and remaining times with it (due times come from
/// the clock rows, which every change re-projects). Writes read them fresh
/// in their transaction ([`load`]).
#[derive(Default)]
pub struct SlaCache {
    current: std::sync::Mutex<Option<(std::time::Instant, std::sync::Arc<Sla>)>>,
}

/// How long a cached [`Sla`] serves reads.
const SLA_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl SlaCache {
    /// The cached policies and calendars, reloaded on `conn` when stale.
    pub async fn get(&self, conn: &mut PgConnection) -> Result<std::sync::Arc<Sla>, Error> {
        let cached = self.current.lock().map(|current| current.clone()).unwrap_or(None);
        if let Some((loaded, sla)) = cached
            && loaded.elapsed() < SLA_CACHE_TTL
        {
            return Ok(sla);
        }
        let sla = std::sync::Arc::new(load(conn).await?);
        if let Ok(mut current) = self.current.lock() {
            *current = Some((std::time::Instant::now(), sla.clone()));
        }
        Ok(sla)
    }
}

/// Reads the policies and calendars.
pub async fn load(conn: &mut PgConnection) -> Result<Sla, Error> {
    // Deleted policies too: their cases keep running under them.
    let policies: Vec<PolicyRow> = sqlx::query_as(&format!(
        "SELECT {POLICY_COLUMNS} FROM sla_policies ORDER BY delete_time IS NOT NULL, position, id"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let calendars: Vec<CalendarRow> =
        sqlx::query_as(&format!("SELECT {CALENDAR_COLUMNS} FROM sla_calendars"))
            .fetch_all(&mut *conn)
            .await?;
    let mut parsed = HashMap::with_capacity(calendars.len());
    let mut calendar_versions = HashMap::with_capacity(calendars.len());
    for row in calendars {
        parsed.insert(row.id, calendar(&row)?);
        calendar_versions.insert(row.id, row.version);
    }
    Ok(Sla {
        live: policies.iter().filter(|row| row.delete_time.is_none()).count(),
        policies: policies.iter().map(policy_of).collect(),
        calendars: parsed,
        calendar_versions,
        always: Calendar::always(),
    })
}

impl Sla {
    /// The live policies, in the order they are tried.
    pub fn live_policies(&self) -> &[Policy] {
        &self.policies[..self.live]
    }

    /// The policy `id`, live or deleted.
    pub fn policy(&self, id: Option<Uuid>) -> Option<&Policy> {
        let id = id?;
        self.policies.iter().find(|policy| policy.id == id)
    }
}

/// The engine's calendar of a stored one.
pub fn calendar(row: &CalendarRow) -> Result<Calendar, Error> {
    let undecodable = || Error::undecodable("sla_calendars.weekly_hours", row.id);
    let mut week: [Vec<Range>; 7] = Default::default();
    if row.weekly_hours.0.len() != 7 {
        return Err(undecodable());
    }
    for (day, ranges) in row.weekly_hours.0.iter().enumerate() {
        for (start, end) in ranges {
            week[day].push(Range::new("weekly_hours", *start, *end).map_err(|_| undecodable())?);
        }
    }
    let holidays: BTreeSet<NaiveDate> = row.holidays.0.iter().map(|holiday| holiday.date).collect();
    Calendar::new(&row.time_zone, week, holidays).map_err(|_| undecodable())
}

/// The clocks of `case_id` among `rows`.
pub fn clocks_of(rows: &[ClockRow], case_id: Uuid) -> Result<CaseClocks, Error> {
    let mut clocks = Vec::new();
    for row in rows.iter().filter(|row| row.case_id == case_id) {
        let metric = Metric::of(&row.metric)
            .ok_or_else(|| Error::undecodable("case_sla_clocks.metric", &row.metric))?;
        clocks.push(CaseClock {
            metric,
            cycle: row.cycle,
            current: row.current,
            business_hours: row.business_hours,
            calendar_id: row.calendar_id,
            pause_statuses: row.pause_statuses.clone(),
            clock: Clock {
                goal: Duration::seconds(row.goal_seconds),
                elapsed: Duration::microseconds(row.elapsed_micros),
                running_since: row.running_since,
                achieved_at: row.achieved_at,
                breached_at: row.breached_at,
                due_at: row.due_at,
                segments: row.segments.0.clone(),
            },
            warn_at: row.warn_at,
            calendar_version: row.calendar_version,
            dirty: false,
        });
    }
    clocks.sort_by_key(|entry| (entry.metric, entry.cycle));
    Ok(CaseClocks { clocks })
}

/// The columns of [`ClockRow`].
pub const CLOCK_COLUMNS: &str = "case_id, metric, cycle, current, goal_seconds, business_hours, calendar_id, \
    pause_statuses, elapsed_micros, running_since, achieved_at, breached_at, due_at, segments, warn_at, calendar_version";

/// The clock rows of `case_ids`.
pub async fn clock_rows(conn: &mut PgConnection, case_ids: &[Uuid]) -> Result<Vec<ClockRow>, sqlx::Error> {
    let sql = format!("SELECT {CLOCK_COLUMNS} FROM case_sla_clocks WHERE case_id = ANY($1)");
    sqlx::query_as(&sql).bind(case_ids).fetch_all(&mut *conn).await
}

/// Writes the clocks of `case_id` an event changed.
pub async fn write_clocks(
    conn: &mut PgConnection,
    case_id: Uuid,
    clocks: &mut CaseClocks,
) -> Result<(), sqlx::Error> {
    for entry in clocks.clocks.iter_mut().filter(|entry| entry.dirty) {
        let clock = &entry.clock;
        sqlx::query(
            "INSERT INTO case_sla_clocks (case_id, metric, cycle, current, goal_seconds, business_hours, \
               calendar_id, pause_statuses, elapsed_micros, running_since, achieved_at, breached_at, due_at, segments, \
               warn_at, calendar_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (case_id, metric, cycle) DO UPDATE SET current = $4, goal_seconds = $5, \
               business_hours = $6, calendar_id = $7, pause_statuses = $8, elapsed_micros = $9, \
               running_since = $10, achieved_at = $11, breached_at = $12, due_at = $13, segments = $14, \
               warn_at = $15, calendar_version = $16",
        )
        .bind(case_id)
        .bind(entry.metric.name())
        .bind(entry.cycle)
        .bind(entry.current)
        .bind(clock.goal.num_seconds())
        .bind(entry.business_hours)
        .bind(entry.calendar_id)
        .bind(&entry.pause_statuses)
        .bind(clock.elapsed.num_microseconds().unwrap_or(i64::MAX))
        .bind(clock.running_since)
        .bind(clock.achieved_at)
        .bind(clock.breached_at)
        .bind(clock.due_at)
        .bind(sqlx::types::Json(&clock.segments))
        .bind(entry.warn_at)
        .bind(entry.calendar_version)
        .execute(&mut *conn)
        .await?;
        entry.dirty = false;
    }
    Ok(())
}

/// Measures the current, unmet clocks of a case again with its policy's
/// goals for its (current) priority and the policy's calendar (after a
/// policy or calendar change, or a new priority); returns how many due
/// times moved.
pub fn retarget(record: &mut crate::model::CaseRecord, sla: &Sla) -> Result<i32, Error> {
    let (_, priority, _) = crate::convert::enums_of(record)?;
    let policy = sla.policy(record.case.sla_policy_id);
    let always = Calendar::always();
    let mut changed = 0;
    for entry in record.clocks.clocks.iter_mut().filter(|entry| entry.current && !entry.clock.is_met()) {
        let target = policy.and_then(|policy| policy.target(priority, entry.metric));
        let goal = target.map_or(entry.clock.goal, |target| Duration::seconds(target.goal_seconds));
        if let (Some(policy), Some(target)) = (policy, target) {
            entry.business_hours = target.business_hours;
            entry.calendar_id = policy.calendar_id;
            entry.pause_statuses.clone_from(&target.pause_statuses);
        }
        let calendar = if entry.business_hours { sla.calendar(entry.calendar_id) } else { &always };
        if entry.clock.reproject(goal, calendar) {
            changed += 1;
        }
        entry.dirty = true;
    }
    Ok(changed)
}

/// Sets the warning times of the clocks an event changed, from the case's
/// policy.
pub fn set_warnings(record: &mut crate::model::CaseRecord, sla: &Sla) {
    let escalation =
        sla.policy(record.case.sla_policy_id).map(|policy| policy.escalation.clone()).unwrap_or_default();
    let always = Calendar::always();
    for entry in record.clocks.clocks.iter_mut().filter(|entry| entry.dirty) {
        let calendar = if entry.business_hours { sla.calendar(entry.calendar_id) } else { &always };
        entry.warn_at = if entry.current {
            crate::domain::sla::warn_time(&entry.clock, &escalation, calendar)
        } else {
            None
        };
        entry.calendar_version = if entry.business_hours {
            sla.calendar_versions.get(&entry.calendar_id).copied().unwrap_or_default()
        } else {
            0
        };
    }
}
