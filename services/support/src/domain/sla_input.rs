//! Calendars and SLA policies parsed from requests, and holidays read from
//! iCalendar files.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rapport_kit::fields::{Violation, cap, text};
use rapport_proto::support::v1::{self as proto, CaseChannel, CasePriority, CaseStatus, SlaMetric};
use serde::{Deserialize, Serialize};

use super::calendar::{Calendar, MAX_HOLIDAYS, Range};
use super::case::{channel_name, priority_name, status_name};
use super::sla::{Conditions, Metric, TargetSpec};

/// A holiday as stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HolidayEntry {
    pub date: NaiveDate,
    #[serde(default)]
    pub name: String,
}

/// A parsed calendar: what is stored, and the calendar it makes.
#[derive(Debug, Clone)]
pub struct CalendarInput {
    pub name: String,
    pub time_zone: String,
    /// Seven lists (Monday first) of minute pairs.
    pub weekly_hours: Vec<Vec<(u32, u32)>>,
    pub holidays: Vec<HolidayEntry>,
    pub calendar: Calendar,
}

/// "HH:MM" as minutes after midnight; "24:00" only when `end`.
fn minutes(field: &str, raw: &str, end: bool) -> Result<u32, Violation> {
    let bad = || Violation::new(field, "must be \"HH:MM\" (00:00-23:59; an end may be 24:00)");
    let (hours, mins) = raw.trim().split_once(':').ok_or_else(bad)?;
    if hours.len() != 2 || mins.len() != 2 {
        return Err(bad());
    }
    let hours: u32 = hours.parse().map_err(|_| bad())?;
    let mins: u32 = mins.parse().map_err(|_| bad())?;
    match (hours, mins) {
        (24, 0) if end => Ok(24 * 60),
        (0..=23, 0..=59) => Ok(hours * 60 + mins),
        _ => Err(bad()),
    }
}

/// A date from the proto's `Date`.
pub fn date_of(field: &str, date: Option<&rapport_proto::common::v1::Date>) -> Result<NaiveDate, Violation> {
    let date = date.ok_or_else(|| Violation::new(field, "is required"))?;
    u32::try_from(date.month)
        .ok()
        .zip(u32::try_from(date.day).ok())
        .and_then(|(month, day)| NaiveDate::from_ymd_opt(date.year, month, day))
        .filter(|day| (1970..=2200).contains(&day.year_ce().1))
        .ok_or_else(|| Violation::new(field, "must be a real date between 1970 and 2200"))
}

use chrono::Datelike as _;

/// Parses a calendar (every violation at once, paths prefixed `calendar.`).
pub fn parse_calendar(raw: &proto::Calendar) -> Result<CalendarInput, Vec<Violation>> {
    let mut violations = Vec::new();
    let name =
        text("calendar.name", &raw.name, true, 100).map_err(|v| violations.push(v)).unwrap_or_default();
    if let Err(violation) = cap("calendar.hours", &raw.hours, 7 * super::calendar::MAX_RANGES_PER_DAY) {
        return Err(vec![violation]);
    }
    if let Err(violation) = cap("calendar.holidays", &raw.holidays, MAX_HOLIDAYS) {
        return Err(vec![violation]);
    }
    let mut week: [Vec<Range>; 7] = Default::default();
    for (index, hours) in raw.hours.iter().enumerate() {
        let field = |name: &str| format!("calendar.hours[{index}].{name}");
        let day = usize::try_from(hours.day_of_week).ok().filter(|day| (1..=7).contains(day));
        let start = minutes(&field("start"), &hours.start, false);
        let end = minutes(&field("end"), &hours.end, true);
        match (day, start, end) {
            (Some(day), Ok(start), Ok(end)) => match Range::new(&field("end"), start, end) {
                Ok(range) => week[day - 1].push(range),
                Err(violation) => violations.push(violation),
            },
            (day, start, end) => {
                if day.is_none() {
                    violations.push(Violation::new(field("day_of_week"), "must be 1 (Monday) to 7 (Sunday)"));
                }
                violations.extend([start.err(), end.err()].into_iter().flatten());
            }
        }
    }
    let mut holidays = BTreeMap::new();
    for (index, holiday) in raw.holidays.iter().enumerate() {
        let date = date_of(&format!("calendar.holidays[{index}].date"), holiday.date.as_ref());
        let name = text(&format!("calendar.holidays[{index}].name"), &holiday.name, false, 100);
        match (date, name) {
            (Ok(date), Ok(name)) => {
                holidays.entry(date).or_insert(name);
            }
            (date, name) => violations.extend([date.err(), name.err()].into_iter().flatten()),
        }
    }
    let weekly_hours: Vec<Vec<(u32, u32)>> = week
        .iter()
        .map(|ranges| {
            let mut pairs: Vec<(u32, u32)> =
                ranges.iter().map(|range| (u32::from(range.start()), u32::from(range.end()))).collect();
            pairs.sort_unstable();
            pairs
        })
        .collect();
    let dates: BTreeSet<NaiveDate> = holidays.keys().copied().collect();
    let calendar = Calendar::new(raw.time_zone.trim(), week, dates).map_err(|found| {
        found
            .into_iter()
            .map(|violation| Violation::new(format!("calendar.{}", violation.field), violation.description))
    });
    match calendar {
        Ok(calendar) if violations.is_empty() => Ok(CalendarInput {
            name,
            time_zone: raw.time_zone.trim().to_owned(),
            weekly_hours,
            holidays: holidays.into_iter().map(|(date, name)| HolidayEntry { date, name }).collect(),
            calendar,
        }),
        Ok(_) => Err(violations),
        Err(found) => {
            violations.extend(found);
            Err(violations)
        }
    }
}

/// What a policy does as targets near and pass their due time, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    #[serde(default)]
    pub warn_before_seconds: Option<i64>,
    #[serde(default)]
    pub warn_at_percent: Option<i32>,
    #[serde(default)]
    pub raise_priority: bool,
    #[serde(default)]
    pub team_id: String,
    #[serde(default)]
    pub assignee_id: String,
}

/// A parsed policy.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    pub name: String,
    pub position: i32,
    pub conditions: Conditions,
    pub targets: BTreeMap<String, Vec<TargetSpec>>,
    pub calendar_id: uuid::Uuid,
    pub escalation: Escalation,
}

const MAX_GOAL_SECONDS: i64 = 365 * 86_400;

fn seconds(duration: Option<&prost_types::Duration>) -> Option<i64> {
    duration.map(|duration| duration.seconds)
}

/// Parses a policy (paths prefixed `policy.`).
pub fn parse_policy(raw: &proto::SlaPolicy) -> Result<PolicyInput, Vec<Violation>> {
    let mut violations = Vec::new();
    let mut keep = |result: Result<(), Violation>| {
        if let Err(violation) = result {
            violations.push(violation);
        }
    };
    let mut input = PolicyInput {
        name: String::new(),
        position: raw.position,
        conditions: Conditions::default(),
        targets: BTreeMap::new(),
        calendar_id: uuid::Uuid::nil(),
        escalation: Escalation::default(),
    };
    keep(text("policy.name", &raw.name, true, 100).map(|name| input.name = name));
    keep(
        super::ids::CalendarId::parse("policy.calendar_id", &raw.calendar_id)
            .map(|id| input.calendar_id = id.uuid()),
    );
    let conditions = raw.conditions.clone().unwrap_or_default();
    keep(cap("policy.conditions.priorities", &conditions.priorities, 4));
    keep(cap("policy.conditions.channels", &conditions.channels, 5));
    keep(cap("policy.conditions.categories", &conditions.categories, 50));
    keep(cap("policy.conditions.tags", &conditions.tags, 50));
    for (index, value) in conditions.priorities.iter().enumerate() {
        match CasePriority::try_from(*value) {
            Ok(priority) if priority != CasePriority::Unspecified => {
                input.conditions.priorities.push(priority_name(priority))
            }
            _ => keep(Err(Violation::new(
                format!("policy.conditions.priorities[{index}]"),
                "is not a priority",
            ))),
        }
    }
    for (index, value) in conditions.channels.iter().enumerate() {
        match CaseChannel::try_from(*value) {
            Ok(channel) if channel != CaseChannel::Unspecified => {
                input.conditions.channels.push(channel_name(channel))
            }
            _ => {
                keep(Err(Violation::new(format!("policy.conditions.channels[{index}]"), "is not a channel")))
            }
        }
    }
    for (index, category) in conditions.categories.iter().enumerate() {
        keep(
            text(&format!("policy.conditions.categories[{index}]"), category, true, 100)
                .map(|category| input.conditions.categories.push(category)),
        );
    }
    for (index, tag) in conditions.tags.iter().enumerate() {
        keep(
            text(&format!("policy.conditions.tags[{index}]"), tag, true, 50)
                .map(|tag| input.conditions.tags.push(tag)),
        );
    }
    keep(cap("policy.targets", &raw.targets, 12));
    for (index, target) in raw.targets.iter().enumerate() {
        let field = |name: &str| format!("policy.targets[{index}].{name}");
        let priority =
            CasePriority::try_from(target.priority).ok().filter(|p| *p != CasePriority::Unspecified);
        let metric = match SlaMetric::try_from(target.metric) {
            Ok(SlaMetric::FirstResponse) => Some(Metric::FirstResponse),
            Ok(SlaMetric::NextResponse) => Some(Metric::NextResponse),
            Ok(SlaMetric::Resolution) => Some(Metric::Resolution),
            _ => None,
        };
        let goal = seconds(target.goal.as_ref()).filter(|goal| (60..=MAX_GOAL_SECONDS).contains(goal));
        let mut pauses = Vec::new();
        for (position, status) in target.pause_statuses.iter().enumerate() {
            match CaseStatus::try_from(*status) {
                Ok(status @ (CaseStatus::PendingCustomer | CaseStatus::OnHold)) => {
                    pauses.push(status_name(status))
                }
                _ => keep(Err(Violation::new(
                    field(&format!("pause_statuses[{position}]")),
                    "only PENDING_CUSTOMER and ON_HOLD pause a clock",
                ))),
            }
        }
        if target.never_pause {
            pauses.clear();
        } else if pauses.is_empty() {
            pauses = vec![status_name(CaseStatus::PendingCustomer), status_name(CaseStatus::OnHold)];
        }
        pauses.dedup();
        match (priority, metric, goal) {
            (Some(priority), Some(metric), Some(goal_seconds)) => {
                let list = input.targets.entry(priority_name(priority)).or_default();
                if list.iter().any(|other| other.metric == metric) {
                    keep(Err(Violation::new(field("metric"), "one target per priority and metric")));
                } else {
                    list.push(TargetSpec {
                        metric,
                        goal_seconds,
                        business_hours: target.business_hours,
                        pause_statuses: pauses,
                    });
                }
            }
            (priority, metric, goal) => {
                if priority.is_none() {
                    keep(Err(Violation::new(field("priority"), "must be LOW, NORMAL, HIGH or URGENT")));
                }
                if metric.is_none() {
                    keep(Err(Violation::new(
                        field("metric"),
                        "must be FIRST_RESPONSE, NEXT_RESPONSE or RESOLUTION",
                    )));
                }
                if goal.is_none() {
                    keep(Err(Violation::new(
                        field("goal"),
                        "must be between one minute and 365 days, in whole seconds",
                    )));
                }
            }
        }
    }
    let escalation = raw.escalation.clone().unwrap_or_default();
    input.escalation.warn_before_seconds =
        seconds(escalation.warn_before.as_ref()).filter(|seconds| *seconds > 0);
    if let Some(warn) = escalation.warn_before.as_ref()
        && !(0..=MAX_GOAL_SECONDS).contains(&warn.seconds)
    {
        keep(Err(Violation::new("policy.escalation.warn_before", "must be between 0 and 365 days")));
    }
    match escalation.warn_at_percent {
        0 => {}
        percent @ 1..=99 => input.escalation.warn_at_percent = Some(percent),
        _ => keep(Err(Violation::new("policy.escalation.warn_at_percent", "must be 1 to 99 (0: unset)"))),
    }
    input.escalation.raise_priority = escalation.raise_priority;
    keep(
        text("policy.escalation.escalation_team_id", &escalation.escalation_team_id, false, 200)
            .map(|team| input.escalation.team_id = team),
    );
    keep(
        text("policy.escalation.escalation_assignee_id", &escalation.escalation_assignee_id, false, 200)
            .map(|assignee| input.escalation.assignee_id = assignee),
    );
    if violations.is_empty() { Ok(input) } else { Err(violations) }
}

/// Most bytes of an iCalendar file.
pub const MAX_ICS_BYTES: usize = 1 << 20;

/// The all-day events of an iCalendar file as holidays (a multi-day event
/// gives each of its days), and how many events were skipped (with a time
/// of day, or out of range).
pub fn holidays_from_ics(ics: &str) -> Result<(Vec<HolidayEntry>, usize), Violation> {
    use icalendar::{Component as _, DatePerhapsTime};
    if ics.len() > MAX_ICS_BYTES {
        return Err(Violation::new("ics", "must be at most 1 MB"));
    }
    if ics.contains('\0') {
        return Err(Violation::new("ics", "must not contain NUL bytes"));
    }
    let calendar: icalendar::Calendar = ics.parse().map_err(|err: String| {
        Violation::new("ics", format!("is not an iCalendar file: {}", first_line(&err)))
    })?;
    let mut holidays = Vec::new();
    let mut skipped = 0;
    for event in calendar.events() {
        let (Some(DatePerhapsTime::Date(start)), end) = (event.get_start(), event.get_end()) else {
            skipped += 1;
            continue;
        };
        let end = match end {
            Some(DatePerhapsTime::Date(end)) if end > start => end,
            _ => start.succ_opt().unwrap_or(start),
        };
        let in_range = |day: &NaiveDate| (1970..=2200).contains(&day.year());
        if !in_range(&start) || !in_range(&end) || (end - start).num_days() > 366 {
            skipped += 1;
            continue;
        }
        let name: String =
            event.get_summary().unwrap_or_default().chars().filter(|c| !c.is_control()).take(100).collect();
        for day in start.iter_days().take_while(|day| *day < end) {
            holidays.push(HolidayEntry { date: day, name: name.trim().to_owned() });
        }
    }
    Ok((holidays, skipped))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text).get(..200).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn all_day_events_become_holidays_and_timed_ones_are_skipped() {
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
            BEGIN:VEVENT\r\nUID:1\r\nDTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261227\r\nSUMMARY:Christmas\r\nEND:VEVENT\r\n\
            BEGIN:VEVENT\r\nUID:2\r\nDTSTART;VALUE=DATE:20260101\r\nSUMMARY:New Year\r\nEND:VEVENT\r\n\
            BEGIN:VEVENT\r\nUID:3\r\nDTSTART:20260301T100000Z\r\nDTEND:20260301T110000Z\r\nSUMMARY:Meeting\r\nEND:VEVENT\r\n\
            END:VCALENDAR\r\n";
        let (holidays, skipped) = holidays_from_ics(ics).unwrap();
        let dates: Vec<String> = holidays.iter().map(|h| format!("{} {}", h.date, h.name)).collect();
        assert_eq!(dates, ["2026-12-25 Christmas", "2026-12-26 Christmas", "2026-01-01 New Year"]);
        assert_eq!(skipped, 1);
        assert!(holidays_from_ics("not a calendar \0").is_err());
    }

    #[test]
    fn hours_read_as_minutes_with_midnight_only_at_the_end() {
        assert_eq!(minutes("f", "09:30", false).unwrap(), 570);
        assert_eq!(minutes("f", "24:00", true).unwrap(), 1440);
        for bad in ["24:00", "9:30", "09:60", "ab:cd", "0930"] {
            assert!(minutes("f", bad, false).is_err(), "{bad}");
        }
    }
}
