//! One SLA target's clock, kept incrementally: each event (start, pause,
//! resume, achieve) closes the open segment and adds its business time
//! to the running total, so reading a clock or reopening a case never
//! replays its history. The segments are kept to explain the clock and to
//! re-project it when its policy or calendar changes.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::calendar::Calendar;

/// Where a clock stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockState {
    /// Running, before its due time.
    Active,
    /// Stopped while the case waits (a pausing status), not breached.
    Paused,
    /// Met in time.
    Achieved,
    /// Its due time passed before it was met (met late, or not yet met).
    Breached,
}

impl ClockState {
    /// The stored and proto name, without prefix.
    pub fn name(self) -> &'static str {
        match self {
            ClockState::Active => "ACTIVE",
            ClockState::Paused => "PAUSED",
            ClockState::Achieved => "ACHIEVED",
            ClockState::Breached => "BREACHED",
        }
    }
}

/// A span the clock ran or stood still: `[start, end)`, `end` unset while open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// When it began.
    pub start: DateTime<Utc>,
    /// When it ended; `None` for the current one.
    pub end: Option<DateTime<Utc>>,
    /// True when the clock ran; false while paused.
    pub running: bool,
}

/// The clock of one target of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    /// How much (business or calendar) time the target allows.
    pub goal: Duration,
    /// Business time of the closed running segments.
    pub elapsed: Duration,
    /// When the current running segment began; `None` while paused or met.
    pub running_since: Option<DateTime<Utc>>,
    /// When the target was met.
    pub achieved_at: Option<DateTime<Utc>>,
    /// When the goal was reached while the target was not met, once known.
    pub breached_at: Option<DateTime<Utc>>,
    /// The due time while running (None while paused or met).
    pub due_at: Option<DateTime<Utc>>,
    /// Every segment, in order.
    pub segments: Vec<Segment>,
}

/// Most segments a clock keeps; beyond it the oldest pauses are forgotten
/// (the running time stays exact; only the explanation is shortened).
pub const MAX_SEGMENTS: usize = 200;

impl Clock {
    /// A clock of `goal`, running from `at` (or paused from `at`).
    pub fn start(goal: Duration, at: DateTime<Utc>, running: bool, calendar: &Calendar) -> Clock {
        let mut clock = Clock {
            goal,
            elapsed: Duration::zero(),
            running_since: running.then_some(at),
            achieved_at: None,
            breached_at: None,
            due_at: None,
            segments: vec![Segment { start: at, end: None, running }],
        };
        clock.due_at = clock.due(calendar);
        clock
    }

    /// The instant the goal is reached if the clock keeps running.
    fn due(&self, calendar: &Calendar) -> Option<DateTime<Utc>> {
        let since = self.running_since?;
        if let Some(breached_at) = self.breached_at {
            return Some(breached_at);
        }
        calendar.add(since, self.goal - self.elapsed)
    }

    /// Whether the clock is over: met.
    pub fn is_met(&self) -> bool {
        self.achieved_at.is_some()
    }

    /// Closes the current segment at `at`, adding its business time.
    fn close(&mut self, at: DateTime<Utc>, calendar: &Calendar) {
        if let Some(since) = self.running_since.take() {
            let ran = calendar.between(since, at);
            if self.breached_at.is_none() && self.elapsed + ran >= self.goal {
                self.breached_at = calendar.add(since, self.goal - self.elapsed).filter(|due| *due < at);
            }
            self.elapsed += ran;
        }
        if let Some(last) = self.segments.last_mut()
            && last.end.is_none()
        {
            last.end = Some(at.max(last.start));
        }
    }

    fn open(&mut self, at: DateTime<Utc>, running: bool) {
        self.segments.push(Segment { start: at, end: None, running });
        if self.segments.len() > MAX_SEGMENTS
            && let Some(oldest_pause) = self.segments.iter().position(|segment| !segment.running)
        {
            // Pauses count for nothing: forgetting the oldest loses a line
            // of the explanation, never time.
            self.segments.remove(oldest_pause);
        }
        if running {
            self.running_since = Some(at);
        }
    }

    /// Stops the clock at `at` while the case waits.
    pub fn pause(&mut self, at: DateTime<Utc>, calendar: &Calendar) {
        if self.is_met() || self.running_since.is_none() {
            return;
        }
        self.close(at, calendar);
        self.open(at, false);
        self.due_at = None;
    }

    /// Runs the clock again from `at`.
    pub fn resume(&mut self, at: DateTime<Utc>, calendar: &Calendar) {
        if self.is_met() || self.running_since.is_some() {
            return;
        }
        self.close(at, calendar);
        self.open(at, true);
        self.due_at = self.due(calendar);
    }

    /// Meets the target at `at` (a no-op when already met).
    pub fn achieve(&mut self, at: DateTime<Utc>, calendar: &Calendar) {
        if self.is_met() {
            return;
        }
        self.close(at, calendar);
        self.achieved_at = Some(at);
        self.due_at = None;
    }

    /// Runs a met clock again from `at` (a resolved case reopened): the
    /// time it already ran still counts.
    pub fn reopen(&mut self, at: DateTime<Utc>, running: bool, calendar: &Calendar) {
        if !self.is_met() {
            return;
        }
        self.achieved_at = None;
        self.open(at, running);
        self.due_at = self.due(calendar);
    }

    /// Business time the clock has run by `now`.
    pub fn elapsed_at(&self, now: DateTime<Utc>, calendar: &Calendar) -> Duration {
        match self.running_since {
            Some(since) => self.elapsed + calendar.between(since, now),
            None => self.elapsed,
        }
    }

    /// Where the clock stands at `now`.
    pub fn state_at(&self, now: DateTime<Utc>) -> ClockState {
        let late = self.breached_at.is_some();
        match (self.achieved_at, self.due_at) {
            (Some(_), _) if late => ClockState::Breached,
            (Some(_), _) => ClockState::Achieved,
            _ if late => ClockState::Breached,
            (None, Some(due)) if due <= now => ClockState::Breached,
            (None, Some(_)) => ClockState::Active,
            (None, None) if self.running_since.is_some() => ClockState::Active,
            (None, None) => ClockState::Paused,
        }
    }

    /// The same history measured against `goal` on `calendar` (a policy
    /// or calendar change): the closed running segments are summed again.
    /// Returns true when the due time changed.
    pub fn reproject(&mut self, goal: Duration, calendar: &Calendar) -> bool {
        let before = (self.due_at, self.breached_at);
        let mut replay = Clock {
            goal,
            elapsed: Duration::zero(),
            running_since: None,
            achieved_at: None,
            breached_at: None,
            due_at: None,
            segments: Vec::new(),
        };
        for segment in &self.segments {
            if segment.running {
                replay.running_since = Some(segment.start);
                if let Some(end) = segment.end {
                    replay.close(end, calendar);
                }
            }
        }
        self.goal = goal;
        self.elapsed = replay.elapsed;
        self.breached_at = replay.breached_at;
        self.due_at = if self.running_since.is_some() && !self.is_met() { self.due(calendar) } else { None };
        before != (self.due_at, self.breached_at)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::calendar::Range;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    /// Monday to Friday, 09:00-17:00 UTC.
    fn office() -> Calendar {
        let day = || vec![Range::new("r", 9 * 60, 17 * 60).unwrap()];
        Calendar::new("UTC", [day(), day(), day(), day(), day(), vec![], vec![]], Default::default()).unwrap()
    }

    #[test]
    fn a_pause_moves_the_deadline_by_the_business_time_it_lasted() {
        let office = office();
        // Monday 2026-05-04 10:00, 8 business hours: due Tuesday 10:00.
        let mut clock = Clock::start(Duration::hours(8), utc("2026-05-04T10:00:00Z"), true, &office);
        assert_eq!(clock.due_at, Some(utc("2026-05-05T10:00:00Z")));
        // Paused from 12:00 Monday to 11:00 Tuesday (7 business hours).
        clock.pause(utc("2026-05-04T12:00:00Z"), &office);
        assert_eq!(clock.state_at(utc("2026-05-06T00:00:00Z")), ClockState::Paused);
        assert_eq!(clock.elapsed, Duration::hours(2));
        clock.resume(utc("2026-05-05T11:00:00Z"), &office);
        // 6 h left from Tuesday 11:00: 17:00.
        assert_eq!(clock.due_at, Some(utc("2026-05-05T17:00:00Z")));
        assert_eq!(clock.state_at(utc("2026-05-05T16:59:00Z")), ClockState::Active);
        assert_eq!(clock.state_at(utc("2026-05-05T17:00:00Z")), ClockState::Breached);
        clock.achieve(utc("2026-05-05T16:00:00Z"), &office);
        assert_eq!(clock.state_at(utc("2026-05-09T00:00:00Z")), ClockState::Achieved);
        assert_eq!(clock.elapsed, Duration::hours(7));
        assert_eq!(clock.segments.len(), 3);
    }

    #[test]
    fn a_clock_met_late_stays_breached_at_the_instant_it_breached() {
        let office = office();
        let mut clock = Clock::start(Duration::hours(1), utc("2026-05-04T16:30:00Z"), true, &office);
        assert_eq!(clock.due_at, Some(utc("2026-05-05T09:30:00Z")));
        clock.pause(utc("2026-05-05T12:00:00Z"), &office);
        assert_eq!(clock.breached_at, Some(utc("2026-05-05T09:30:00Z")));
        assert_eq!(clock.state_at(utc("2026-05-05T12:00:00Z")), ClockState::Breached);
        clock.achieve(utc("2026-05-05T13:00:00Z"), &office);
        assert_eq!(clock.state_at(utc("2026-05-05T13:00:00Z")), ClockState::Breached);
    }

    #[test]
    fn reopening_keeps_the_time_already_run() {
        let office = office();
        let mut clock = Clock::start(Duration::hours(8), utc("2026-05-04T09:00:00Z"), true, &office);
        clock.achieve(utc("2026-05-04T15:00:00Z"), &office);
        clock.reopen(utc("2026-05-06T09:00:00Z"), true, &office);
        assert_eq!(clock.due_at, Some(utc("2026-05-06T11:00:00Z")));
        assert_eq!(clock.state_at(utc("2026-05-06T10:00:00Z")), ClockState::Active);
    }

    #[test]
    fn a_new_goal_reprojects_the_same_history() {
        let office = office();
        let mut clock = Clock::start(Duration::hours(8), utc("2026-05-04T10:00:00Z"), true, &office);
        clock.pause(utc("2026-05-04T12:00:00Z"), &office);
        clock.resume(utc("2026-05-05T09:00:00Z"), &office);
        assert_eq!(clock.due_at, Some(utc("2026-05-05T15:00:00Z")));
        // Four hours instead of eight: two ran Monday, two left: 11:00.
        assert!(clock.reproject(Duration::hours(4), &office));
        assert_eq!(clock.due_at, Some(utc("2026-05-05T11:00:00Z")));
        assert!(!clock.reproject(Duration::hours(4), &office));
        // One hour: the goal was reached Monday 11:00, during the first run.
        assert!(clock.reproject(Duration::hours(1), &office));
        assert_eq!(clock.breached_at, Some(utc("2026-05-04T11:00:00Z")));
        assert_eq!(clock.state_at(utc("2026-05-05T09:30:00Z")), ClockState::Breached);
    }

    #[test]
    fn pausing_twice_or_meeting_twice_changes_nothing() {
        let office = office();
        let mut clock = Clock::start(Duration::hours(8), utc("2026-05-04T10:00:00Z"), true, &office);
        clock.pause(utc("2026-05-04T11:00:00Z"), &office);
        let paused = clock.clone();
        clock.pause(utc("2026-05-04T12:00:00Z"), &office);
        assert_eq!(clock, paused);
        clock.achieve(utc("2026-05-04T13:00:00Z"), &office);
        let met = clock.clone();
        clock.achieve(utc("2026-05-04T14:00:00Z"), &office);
        assert_eq!(clock, met);
        assert_eq!(clock.elapsed, Duration::hours(1));
    }
}
