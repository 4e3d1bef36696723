//! Calendars against values computed by hand: weekends, holidays, DST
//! forward and back, ranges ending at midnight, and a holiday on a weekend.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use proptest::prelude::*;

use super::*;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn hours(start: u32, end: u32) -> Range {
    Range::new("range", start * 60, end * 60).unwrap()
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// Monday to Friday with `ranges`, in `zone`, closed on `holidays`.
fn weekdays(zone: &str, ranges: &[Range], holidays: &[&str]) -> Calendar {
    let day = || ranges.to_vec();
    let week = [day(), day(), day(), day(), day(), Vec::new(), Vec::new()];
    Calendar::new(zone, week, holidays.iter().map(|day| date(day)).collect()).unwrap()
}

fn every_day(zone: &str, ranges: &[Range]) -> Calendar {
    let day = || ranges.to_vec();
    Calendar::new(zone, [day(), day(), day(), day(), day(), day(), day()], BTreeSet::new()).unwrap()
}

#[test]
fn a_deadline_runs_over_the_weekend_in_business_hours() {
    let berlin = weekdays("Europe/Berlin", &[hours(9, 17)], &[]);
    // Friday 2026-03-20 16:00 CET (UTC+1) + 4 business hours: one on
    // Friday, three on Monday from 09:00: Monday 12:00 CET = 11:00 UTC.
    let due = berlin.add(utc("2026-03-20T15:00:00Z"), Duration::hours(4)).unwrap();
    assert_eq!(due, utc("2026-03-23T11:00:00Z"));
    assert_eq!(berlin.between(utc("2026-03-20T15:00:00Z"), due), Duration::hours(4));
}

#[test]
fn a_holiday_closes_the_day() {
    // Easter Monday 2026 is April 6. Thursday April 2 16:00 CEST (UTC+2)
    // + 10 h: 1 h Thursday, Good Friday (April 3) closed, the weekend, Easter
    // Monday closed, 8 h Tuesday, 1 h Wednesday: Wednesday April 8 10:00 CEST.
    let berlin = weekdays("Europe/Berlin", &[hours(9, 17)], &["2026-04-03", "2026-04-06"]);
    let due = berlin.add(utc("2026-04-02T14:00:00Z"), Duration::hours(10)).unwrap();
    assert_eq!(due, utc("2026-04-08T08:00:00Z"));
}

#[test]
fn a_holiday_on_a_weekend_changes_nothing() {
    let plain = weekdays("Europe/Berlin", &[hours(9, 17)], &[]);
    let saturday_holiday = weekdays("Europe/Berlin", &[hours(9, 17)], &["2026-03-21"]);
    let from = utc("2026-03-20T15:00:00Z");
    assert_eq!(plain.add(from, Duration::hours(4)), saturday_holiday.add(from, Duration::hours(4)));
    assert_eq!(saturday_holiday.add(from, Duration::hours(4)).unwrap(), utc("2026-03-23T11:00:00Z"));
}

#[test]
fn a_deadline_across_the_spring_dst_change_keeps_local_opening_hours() {
    // New York goes from EST (UTC-5) to EDT (UTC-4) on Sunday 2026-03-08.
    // Friday 16:00 EST (21:00 UTC) + 2 h: 1 h Friday, then Monday from
    // 09:00 EDT (13:00 UTC): Monday 10:00 EDT = 14:00 UTC (a fixed offset
    // would say 15:00 UTC).
    let new_york = weekdays("America/New_York", &[hours(9, 17)], &[]);
    let due = new_york.add(utc("2026-03-06T21:00:00Z"), Duration::hours(2)).unwrap();
    assert_eq!(due, utc("2026-03-09T14:00:00Z"));
}

#[test]
fn a_deadline_across_the_autumn_dst_change_keeps_local_opening_hours() {
    // Berlin goes from CEST (UTC+2) back to CET (UTC+1) on Sunday
    // 2026-10-25. Friday 23rd 16:00 CEST (14:00 UTC) + 3 h: 1 h Friday,
    // Monday 09:00 CET (08:00 UTC) + 2 h = 11:00 CET = 10:00 UTC.
    let berlin = weekdays("Europe/Berlin", &[hours(9, 17)], &[]);
    let due = berlin.add(utc("2026-10-23T14:00:00Z"), Duration::hours(3)).unwrap();
    assert_eq!(due, utc("2026-10-26T10:00:00Z"));
}

#[test]
fn a_range_across_the_skipped_hour_is_an_hour_shorter() {
    // Sunday 2026-03-29 in Berlin: 02:00 CET jumps to 03:00 CEST. 01:00 to
    // 05:00 on the clock is 00:00 to 03:00 UTC: three hours.
    let berlin = every_day("Europe/Berlin", &[hours(1, 5)]);
    let day = berlin.between(utc("2026-03-28T22:00:00Z"), utc("2026-03-29T21:00:00Z"));
    assert_eq!(day, Duration::hours(3));
    // A range starting inside the gap starts where the gap ends.
    let from_gap = every_day("Europe/Berlin", &[Range::new("range", 150, 300).unwrap()]);
    let opening = from_gap.add(utc("2026-03-28T22:00:00Z"), Duration::zero()).unwrap();
    assert_eq!(opening, utc("2026-03-29T01:00:00Z"));
    assert_eq!(
        from_gap.between(utc("2026-03-28T22:00:00Z"), utc("2026-03-29T21:00:00Z")),
        Duration::hours(2)
    );
}

#[test]
fn a_range_across_the_repeated_hour_is_an_hour_longer() {
    // Sunday 2026-10-25 in Berlin: 03:00 CEST goes back to 02:00 CET.
    // 01:00 CEST (23:00 UTC Saturday) to 05:00 CET (04:00 UTC): five hours.
    let berlin = every_day("Europe/Berlin", &[hours(1, 5)]);
    let day = berlin.between(utc("2026-10-24T22:00:00Z"), utc("2026-10-25T22:00:00Z"));
    assert_eq!(day, Duration::hours(5));
}

#[test]
fn around_the_clock_days_have_23_and_25_hours_when_clocks_change() {
    let berlin = every_day("Europe/Berlin", &[hours(0, 24)]);
    // Local midnight to local midnight.
    let spring = berlin.between(utc("2026-03-28T23:00:00Z"), utc("2026-03-29T22:00:00Z"));
    let autumn = berlin.between(utc("2026-10-24T22:00:00Z"), utc("2026-10-25T23:00:00Z"));
    assert_eq!((spring, autumn), (Duration::hours(23), Duration::hours(25)));
    // Business time is real time around the clock: 23:00 CET + 5 h across
    // the jump is 05:00 CEST = 03:00 UTC.
    assert_eq!(
        berlin.add(utc("2026-03-28T22:00:00Z"), Duration::hours(5)).unwrap(),
        utc("2026-03-29T03:00:00Z")
    );
}

#[test]
fn a_range_ending_at_midnight_runs_into_the_next_day_without_a_seam() {
    // A night shift: 18:00-24:00 and 00:00-06:00 every day, in UTC.
    let night = every_day("UTC", &[hours(0, 6), hours(18, 24)]);
    let due = night.add(utc("2026-05-04T23:00:00Z"), Duration::hours(2)).unwrap();
    assert_eq!(due, utc("2026-05-05T01:00:00Z"));
    // 05:00 + 2 h: 1 h to 06:00, then 18:00 + 1 h.
    assert_eq!(
        night.add(utc("2026-05-05T05:00:00Z"), Duration::hours(2)).unwrap(),
        utc("2026-05-05T19:00:00Z")
    );
    assert!(night.is_open(utc("2026-05-05T00:00:00Z")) && !night.is_open(utc("2026-05-05T06:00:00Z")));
}

#[test]
fn several_ranges_a_day_skip_the_lunch_break() {
    let split = weekdays("Europe/Paris", &[hours(9, 12), hours(13, 17)], &[]);
    // Tuesday 2026-05-05 11:30 CEST (09:30 UTC) + 1 h = 13:30 CEST.
    assert_eq!(
        split.add(utc("2026-05-05T09:30:00Z"), Duration::hours(1)).unwrap(),
        utc("2026-05-05T11:30:00Z")
    );
    // 7 h a day.
    assert_eq!(split.between(utc("2026-05-05T00:00:00Z"), utc("2026-05-06T00:00:00Z")), Duration::hours(7));
}

#[test]
fn zero_business_time_from_a_closed_instant_is_the_next_opening() {
    let berlin = weekdays("Europe/Berlin", &[hours(9, 17)], &[]);
    // Saturday noon: Monday 09:00 CET.
    assert_eq!(
        berlin.add(utc("2026-03-21T11:00:00Z"), Duration::zero()).unwrap(),
        utc("2026-03-23T08:00:00Z")
    );
    // A deadline landing exactly at closing time stays there.
    assert_eq!(
        berlin.add(utc("2026-03-23T15:00:00Z"), Duration::hours(1)).unwrap(),
        utc("2026-03-23T16:00:00Z")
    );
}

#[test]
fn bad_calendars_are_refused_with_every_problem_named() {
    let overlapping = [vec![hours(9, 12), hours(11, 14)], vec![], vec![], vec![], vec![], vec![], vec![]];
    let problems = Calendar::new("Mars/Olympus", overlapping, BTreeSet::new()).unwrap_err();
    let fields: Vec<_> = problems.iter().map(|violation| violation.field.as_str()).collect();
    assert_eq!(fields, ["time_zone", "weekly_hours[0]"]);
    let empty: [Vec<Range>; 7] = Default::default();
    assert!(Calendar::new("UTC", empty, BTreeSet::new()).is_err());
    assert!(Range::new("r", 600, 600).is_err() && Range::new("r", 0, 1441).is_err());
}

#[test]
fn a_calendar_of_holidays_only_gives_no_deadline_instead_of_looping() {
    let all_holidays: BTreeSet<NaiveDate> = date("2026-01-01").iter_days().take(500).collect();
    let monday_only = [vec![hours(9, 17)], vec![], vec![], vec![], vec![], vec![], vec![]];
    let closed = Calendar::new("UTC", monday_only, all_holidays).unwrap();
    // 500 days of holidays, then Mondays again: Monday 2027-05-17.
    assert_eq!(
        closed.add(utc("2026-01-01T00:00:00Z"), Duration::hours(1)),
        Some(utc("2027-05-17T10:00:00Z"))
    );
    let weekend_only = [vec![], vec![], vec![], vec![], vec![], vec![hours(9, 10)], vec![]];
    let rare = Calendar::new("UTC", weekend_only, BTreeSet::new()).unwrap();
    assert_eq!(rare.add(utc("2026-01-01T00:00:00Z"), Duration::hours(10_000)), None);
}

proptest! {
    /// Adding the business time between two instants from the first lands
    /// on or before the second, and the business time up to a deadline is
    /// what was added.
    #[test]
    fn add_and_between_agree(offset in 0i64..(400 * 86_400), minutes in 0i64..(30 * 24 * 60), zone in 0usize..3) {
        let zones = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"];
        let calendar = weekdays(zones[zone], &[hours(8, 12), Range::new("r", 13 * 60, 24 * 60).unwrap()], &["2026-12-25"]);
        let from = utc("2026-01-01T00:00:00Z") + Duration::seconds(offset);
        let due = calendar.add(from, Duration::minutes(minutes)).unwrap();
        prop_assert_eq!(calendar.between(from, due), Duration::minutes(minutes));
        prop_assert!(due >= from);
    }
}
