//! Business-hours calendars: when support is at work, in one IANA time
//! zone, and how much business time lies between two instants.
//!
//! A calendar is a weekly schedule (several ranges per weekday, a range may
//! end at midnight, `24:00`) and a set of holidays (whole days, in the
//! calendar's zone). Ranges are wall-clock spans: a range runs from the
//! first instant the zone's clock shows its start to the first instant it
//! shows its end. So on the day clocks go forward a range across the gap is
//! an hour shorter, on the day they go back an hour longer, and a start or
//! end inside a gap is the instant the gap ends. Holidays close the whole
//! day; a holiday on a day without hours changes nothing (it is not moved
//! to the next working day: enter the day that is observed).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike as _, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;

use super::Violation;

/// Minutes in a day: a range may end at `24:00`.
pub const DAY_MINUTES: u16 = 24 * 60;

/// How far [`Calendar::add`] looks for business hours before giving up
/// (a calendar whose every day is a holiday for years is a mistake).
const HORIZON_DAYS: i64 = 3 * 366;

/// Most ranges in one weekday.
pub const MAX_RANGES_PER_DAY: usize = 8;

/// Most holidays in one calendar.
pub const MAX_HOLIDAYS: usize = 2000;

/// A span of one day, in minutes after local midnight: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    start: u16,
    end: u16,
}

impl Range {
    /// `start`..`end` minutes after midnight; `end` at most 1440 (midnight
    /// at the end of the day) and after `start`.
    pub fn new(field: &str, start: u32, end: u32) -> Result<Range, Violation> {
        if end > u32::from(DAY_MINUTES) || start >= end {
            return Err(Violation::new(
                field,
                "must start before it ends, within the day (00:00 to 24:00, in minutes 0 to 1440)",
            ));
        }
        // Both fit: end <= 1440.
        Ok(Range { start: start as u16, end: end as u16 })
    }

    /// Its start, in minutes after midnight.
    pub fn start(self) -> u16 {
        self.start
    }

    /// Its end, in minutes after midnight (1440 is midnight ending the day).
    pub fn end(self) -> u16 {
        self.end
    }
}

/// A parsed business-hours calendar. Ranges of a day are sorted and do not
/// overlap; the constructor refuses anything else.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    zone: Tz,
    /// Monday first.
    week: [Vec<Range>; 7],
    holidays: BTreeSet<NaiveDate>,
}

/// One span of business time, in UTC: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    /// When it starts.
    pub start: DateTime<Utc>,
    /// When it ends.
    pub end: DateTime<Utc>,
}

impl Calendar {
    /// A calendar in `zone` (an IANA name such as `Europe/Berlin`), with
    /// `week[0]` the ranges of Monday, and `holidays`. Refuses an unknown
    /// zone, overlapping ranges, a week without any hours, and more than
    /// [`MAX_RANGES_PER_DAY`] ranges a day or [`MAX_HOLIDAYS`] holidays.
    pub fn new(
        zone: &str,
        week: [Vec<Range>; 7],
        holidays: BTreeSet<NaiveDate>,
    ) -> Result<Calendar, Vec<Violation>> {
        let mut violations = Vec::new();
        let parsed: Option<Tz> = zone.parse().ok();
        if parsed.is_none() {
            violations
                .push(Violation::new("time_zone", "must be an IANA time zone name, e.g. Europe/Berlin"));
        }
        let mut week = week;
        for (day, ranges) in week.iter_mut().enumerate() {
            ranges.sort_unstable();
            if ranges.len() > MAX_RANGES_PER_DAY {
                violations.push(Violation::new(
                    format!("weekly_hours[{day}]"),
                    format!("at most {MAX_RANGES_PER_DAY} ranges a day"),
                ));
            }
            if ranges.windows(2).any(|pair| pair[0].end > pair[1].start) {
                violations.push(Violation::new(format!("weekly_hours[{day}]"), "ranges must not overlap"));
            }
        }
        if week.iter().all(Vec::is_empty) {
            violations
                .push(Violation::new("weekly_hours", "a calendar needs business hours on at least one day"));
        }
        if holidays.len() > MAX_HOLIDAYS {
            violations.push(Violation::new("holidays", format!("at most {MAX_HOLIDAYS} holidays")));
        }
        match parsed {
            Some(zone) if violations.is_empty() => Ok(Calendar { zone, week, holidays }),
            _ => Err(violations),
        }
    }

    /// Every hour of every day (business time = calendar time), in UTC.
    pub fn always() -> Calendar {
        let day = || vec![Range { start: 0, end: DAY_MINUTES }];
        Calendar {
            zone: Tz::UTC,
            week: [day(), day(), day(), day(), day(), day(), day()],
            holidays: BTreeSet::new(),
        }
    }

    /// Whether every hour of every day counts (no holidays, whole days):
    /// business time is then calendar time, whatever the zone.
    pub fn is_always(&self) -> bool {
        self.holidays.is_empty()
            && self
                .week
                .iter()
                .all(|ranges| ranges.len() == 1 && ranges[0] == Range { start: 0, end: DAY_MINUTES })
    }

    /// Its time zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The ranges of each weekday, Monday first.
    pub fn week(&self) -> &[Vec<Range>; 7] {
        &self.week
    }

    /// Its holidays.
    pub fn holidays(&self) -> &BTreeSet<NaiveDate> {
        &self.holidays
    }

    /// The business spans of local date `day`, in UTC, in order.
    fn spans_of(&self, day: NaiveDate) -> impl Iterator<Item = Open> + '_ {
        let ranges: &[Range] = if self.holidays.contains(&day) {
            &[]
        } else {
            &self.week[day.weekday().num_days_from_monday() as usize]
        };
        ranges.iter().filter_map(move |range| {
            let start = self.instant(day, range.start)?;
            let end = self.instant(day, range.end)?;
            (start < end).then_some(Open { start, end })
        })
    }

    /// The first instant the zone's clock shows `minute` on `day` (the
    /// end of the gap when that time is skipped).
    fn instant(&self, day: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
        let midnight = day.and_hms_opt(0, 0, 0)?;
        let local = midnight + Duration::minutes(i64::from(minute));
        first_instant(self.zone, local)
    }

    /// The business spans that end after `from`, in order, clipped to
    /// start no earlier than `from`, for at most [`HORIZON_DAYS`].
    pub fn spans_from(&self, from: DateTime<Utc>) -> impl Iterator<Item = Open> + '_ {
        // A day's spans lie within that local day, so the spans covering
        // `from` belong to its local date (or, across a DST change, the
        // day before).
        let first_day = from.with_timezone(&self.zone).date_naive() - Duration::days(1);
        first_day
            .iter_days()
            .take(HORIZON_DAYS as usize)
            .flat_map(move |day| self.spans_of(day))
            .filter(move |open| open.end > from)
            .map(move |open| Open { start: open.start.max(from), end: open.end })
    }

    /// The instant `business` of business time after `from`; `None` when
    /// the calendar has no business hours for years.
    ///
    /// A zero duration is `from` itself when `from` is in business hours,
    /// and otherwise the next opening.
    pub fn add(&self, from: DateTime<Utc>, business: Duration) -> Option<DateTime<Utc>> {
        let mut left = business.max(Duration::zero());
        if self.is_always() {
            return from.checked_add_signed(left);
        }
        for open in self.spans_from(from) {
            let length = open.end - open.start;
            if left < length || (left.is_zero() && length > Duration::zero()) {
                return Some(open.start + left);
            }
            if left == length {
                return Some(open.end);
            }
            left -= length;
        }
        None
    }

    /// Business time within `[from, to)`; zero when `to` is not after `from`.
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        let mut total = Duration::zero();
        if to <= from {
            return total;
        }
        if self.is_always() {
            return to - from;
        }
        for open in self.spans_from(from) {
            if open.start >= to {
                break;
            }
            total += open.end.min(to) - open.start;
        }
        total
    }

    /// Whether `at` is within business hours.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.spans_from(at).next().is_some_and(|open| open.start <= at)
    }
}

/// The first instant `zone`'s clock shows `local`: the earlier of two in a
/// repeated hour, the end of the gap for a skipped time.
fn first_instant(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _) => Some(earlier.with_timezone(&Utc)),
        // Skipped: zone transitions fall on quarter hours, so the first
        // quarter hour that exists is where the gap ends.
        LocalResult::None => {
            let quarter = Duration::minutes(15);
            let floor =
                local - Duration::minutes(i64::from(local.and_utc().timestamp().rem_euclid(900) as u32 / 60));
            (1..=16).find_map(|step| match zone.from_local_datetime(&(floor + quarter * step)) {
                LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Some(at.with_timezone(&Utc)),
                LocalResult::None => None,
            })
        }
    }
}

#[cfg(test)]
#[path = "calendar_tests.rs"]
mod tests;
