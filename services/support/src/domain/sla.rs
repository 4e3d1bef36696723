//! SLA policies and how a case's events move its clocks.
//!
//! A policy gives, per priority, targets (first response, next response,
//! resolution), each with a goal, whether business hours count, and the
//! statuses that pause it. Policies are tried in order; the first whose
//! conditions match the case applies. The events of a case (created,
//! status changed, an agent's public reply, a requester's reply) move the
//! clocks incrementally ([`CaseClocks`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rapport_proto::support::v1::{CaseChannel, CasePriority, CaseStatus, SlaMetric};
use serde::{Deserialize, Serialize};

use super::calendar::Calendar;
use super::case::{channel_name, is_open, priority_name, status_name};
use super::clock::Clock;

/// What a target measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Metric {
    FirstResponse,
    NextResponse,
    Resolution,
}

impl Metric {
    /// The stored name (`FIRST_RESPONSE`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::FirstResponse => "FIRST_RESPONSE",
            Metric::NextResponse => "NEXT_RESPONSE",
            Metric::Resolution => "RESOLUTION",
        }
    }

    /// The metric stored as `name`.
    pub fn of(name: &str) -> Option<Metric> {
        [Metric::FirstResponse, Metric::NextResponse, Metric::Resolution]
            .into_iter()
            .find(|metric| metric.name() == name)
    }

    /// The proto value.
    pub fn proto(self) -> SlaMetric {
        match self {
            Metric::FirstResponse => SlaMetric::FirstResponse,
            Metric::NextResponse => SlaMetric::NextResponse,
            Metric::Resolution => SlaMetric::Resolution,
        }
    }
}

fn default_pauses() -> Vec<String> {
    vec!["PENDING_CUSTOMER".to_owned(), "ON_HOLD".to_owned()]
}

/// One target of a policy, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSpec {
    pub metric: Metric,
    pub goal_seconds: i64,
    #[serde(default)]
    pub business_hours: bool,
    /// Statuses that stop the clock (stored names).
    #[serde(default = "default_pauses")]
    pub pause_statuses: Vec<String>,
}

impl TargetSpec {
    /// The goal.
    pub fn goal(&self) -> Duration {
        Duration::seconds(self.goal_seconds)
    }
}

/// Which cases a policy applies to; an empty list matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    #[serde(default)]
    pub priorities: Vec<String>,
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    /// Matches a case carrying any of these tags (e.g. a customer tier).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// What a policy is matched against.
#[derive(Debug, Clone, Copy)]
pub struct CaseFacts<'a> {
    pub priority: CasePriority,
    pub channel: CaseChannel,
    pub category: &'a str,
    pub tags: &'a [String],
}

impl Conditions {
    /// Whether a case with `facts` matches.
    pub fn matches(&self, facts: &CaseFacts<'_>) -> bool {
        let listed = |list: &[String], value: &str| list.is_empty() || list.iter().any(|item| item == value);
        listed(&self.priorities, &priority_name(facts.priority))
            && listed(&self.channels, &channel_name(facts.channel))
            && (self.categories.is_empty()
                || self.categories.iter().any(|category| category.eq_ignore_ascii_case(facts.category)))
            && (self.tags.is_empty()
                || self.tags.iter().any(|tag| facts.tags.iter().any(|own| own.eq_ignore_ascii_case(tag))))
    }
}

/// A policy as the engine uses it.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: uuid::Uuid,
    pub version: i64,
    pub conditions: Conditions,
    /// Targets by stored priority name.
    pub targets: BTreeMap<String, Vec<TargetSpec>>,
    pub calendar_id: uuid::Uuid,
    pub escalation: super::sla_input::Escalation,
}

impl Policy {
    /// The targets for `priority`.
    pub fn targets_for(&self, priority: CasePriority) -> &[TargetSpec] {
        self.targets.get(&priority_name(priority)).map_or(&[], Vec::as_slice)
    }

    /// The target of `metric` for `priority`.
    pub fn target(&self, priority: CasePriority, metric: Metric) -> Option<&TargetSpec> {
        self.targets_for(priority).iter().find(|target| target.metric == metric)
    }
}

/// The first of `policies` (in order) matching `facts`.
pub fn choose<'p>(policies: &'p [Policy], facts: &CaseFacts<'_>) -> Option<&'p Policy> {
    policies.iter().find(|policy| policy.conditions.matches(facts))
}

/// One clock of a case with what drives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseClock {
    pub metric: Metric,
    /// 0 for first response and resolution; next-response clocks count up.
    pub cycle: i32,
    /// False for an earlier next-response clock kept as history.
    pub current: bool,
    pub business_hours: bool,
    pub calendar_id: uuid::Uuid,
    pub pause_statuses: Vec<String>,
    pub clock: Clock,
    /// When the policy's warning is due (while running).
    pub warn_at: Option<DateTime<Utc>>,
    /// The version of its calendar it was last measured with.
    pub calendar_version: i64,
    /// True when this event changed it (to be written).
    pub dirty: bool,
}

impl CaseClock {
    fn pauses_in(&self, status: CaseStatus) -> bool {
        let name = status_name(status);
        self.pause_statuses.contains(&name)
    }
}

/// The calendars clocks count in: a business-hours clock its policy's
/// calendar, any other every hour.
pub trait Calendars {
    /// The calendar `id`.
    fn calendar(&self, id: uuid::Uuid) -> &Calendar;
}

impl CaseClock {
    fn calendar<'c>(&self, calendars: &'c dyn Calendars, always: &'c Calendar) -> &'c Calendar {
        if self.business_hours { calendars.calendar(self.calendar_id) } else { always }
    }
}

/// The clocks of one case, moved by its events.
#[derive(Debug, Clone, Default)]
pub struct CaseClocks {
    pub clocks: Vec<CaseClock>,
}

/// What moved a case's clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The case was opened in this status.
    Created(CaseStatus),
    /// Its status changed.
    Status { from: CaseStatus, to: CaseStatus },
    /// An agent replied publicly.
    AgentReply,
    /// The requester replied (after the case's status was settled).
    RequesterReply(CaseStatus),
}

impl CaseClocks {
    /// Applies `event` at `at` under `policy` for a case of `priority`.
    pub fn apply(
        &mut self,
        event: Event,
        at: DateTime<Utc>,
        policy: Option<&Policy>,
        priority: CasePriority,
        calendars: &dyn Calendars,
    ) {
        let always = Calendar::always();
        match event {
            Event::Created(status) => {
                for metric in [Metric::FirstResponse, Metric::Resolution] {
                    self.start(metric, 0, at, status, policy, priority, calendars);
                }
            }
            Event::Status { from, to } => {
                for entry in self.clocks.iter_mut().filter(|entry| entry.current && !entry.clock.is_met()) {
                    let calendar = entry.calendar(calendars, &always);
                    if !is_open(to) {
                        // Resolving or closing meets every target still open.
                        entry.clock.achieve(at, calendar);
                    } else if entry.pauses_in(to) {
                        entry.clock.pause(at, calendar);
                    } else {
                        entry.clock.resume(at, calendar);
                    }
                    entry.dirty = true;
                }
                if !is_open(from) && is_open(to) {
                    // Reopened: resolution runs on from where it stood.
                    for entry in self.clocks.iter_mut().filter(|entry| entry.current) {
                        if entry.metric == Metric::Resolution {
                            let running = !entry.pauses_in(to);
                            entry.clock.reopen(at, running, entry.calendar(calendars, &always));
                            entry.dirty = true;
                        }
                    }
                }
            }
            Event::AgentReply => {
                for entry in self.clocks.iter_mut().filter(|entry| {
                    entry.current
                        && !entry.clock.is_met()
                        && matches!(entry.metric, Metric::FirstResponse | Metric::NextResponse)
                }) {
                    entry.clock.achieve(at, entry.calendar(calendars, &always));
                    entry.dirty = true;
                }
            }
            Event::RequesterReply(status) => {
                let waiting = self.clocks.iter().any(|entry| {
                    entry.current && !entry.clock.is_met() && entry.metric != Metric::Resolution
                });
                if waiting || !is_open(status) {
                    return;
                }
                let cycle = self
                    .clocks
                    .iter()
                    .filter(|entry| entry.metric == Metric::NextResponse)
                    .map(|entry| entry.cycle + 1)
                    .max()
                    .unwrap_or(1);
                for entry in self
                    .clocks
                    .iter_mut()
                    .filter(|entry| entry.metric == Metric::NextResponse && entry.current)
                {
                    entry.current = false;
                    entry.dirty = true;
                }
                self.start(Metric::NextResponse, cycle, at, status, policy, priority, calendars);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        metric: Metric,
        cycle: i32,
        at: DateTime<Utc>,
        status: CaseStatus,
        policy: Option<&Policy>,
        priority: CasePriority,
        calendars: &dyn Calendars,
    ) {
        let Some((policy, target)) =
            policy.and_then(|policy| Some((policy, policy.target(priority, metric)?)))
        else {
            return;
        };
        let always = Calendar::always();
        let mut entry = CaseClock {
            metric,
            cycle,
            current: true,
            business_hours: target.business_hours,
            calendar_id: policy.calendar_id,
            pause_statuses: target.pause_statuses.clone(),
            clock: Clock::start(target.goal(), at, true, &always),
            warn_at: None,
            calendar_version: 0,
            dirty: true,
        };
        let running = !entry.pauses_in(status);
        entry.clock = Clock::start(target.goal(), at, running, entry.calendar(calendars, &always));
        self.clocks.push(entry);
    }

    /// The earliest due time of the running clocks.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.clocks
            .iter()
            .filter(|entry| entry.current && !entry.clock.is_met())
            .filter_map(|entry| entry.clock.due_at)
            .min()
    }

    /// The current clock of `metric`.
    pub fn current(&self, metric: Metric) -> Option<&CaseClock> {
        self.clocks.iter().find(|entry| entry.current && entry.metric == metric)
    }
}

/// When the warning of `clock` is due under `escalation` (a lead time
/// before the due time, or a share of the goal run), counted on
/// `calendar`; `None` while paused, once met or breached, or without a
/// warning.
pub fn warn_time(
    clock: &Clock,
    escalation: &super::sla_input::Escalation,
    calendar: &Calendar,
) -> Option<DateTime<Utc>> {
    let since = clock.running_since?;
    if clock.is_met() || clock.breached_at.is_some() {
        return None;
    }
    let lead = match (escalation.warn_before_seconds, escalation.warn_at_percent) {
        (Some(before), _) => Duration::seconds(before),
        (None, Some(percent)) => clock.goal - clock.goal * percent / 100,
        (None, None) => return None,
    };
    let run = (clock.goal - clock.elapsed - lead).max(Duration::zero());
    calendar.add(since, run)
}

/// One priority step up (URGENT stays URGENT).
pub fn raised(priority: CasePriority) -> CasePriority {
    match priority {
        CasePriority::Unspecified | CasePriority::Low => CasePriority::Normal,
        CasePriority::Normal => CasePriority::High,
        CasePriority::High | CasePriority::Urgent => CasePriority::Urgent,
    }
}

#[cfg(test)]
#[path = "sla_tests.rs"]
mod tests;
