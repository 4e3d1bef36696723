//! Stored records to their protobuf form: the only place that builds
//! response messages.

use chrono::{DateTime, Duration, Utc};
use rapport_kit::changelog::timestamp;
use rapport_proto::support::v1::{
    Case, CaseChannel, CasePriority, CaseStatus, Comment, CommentAuthorKind, SlaState, SlaTarget,
};

use crate::domain::calendar::Calendar;
use crate::domain::case::{channel_of, display_number, priority_of, status_of};
use crate::domain::clock::ClockState;
use crate::domain::sla::{Calendars, CaseClock};
use crate::error::Error;
use crate::model::{CaseRecord, CommentRow};

/// Every hour of every day, built once.
fn always() -> &'static Calendar {
    static ALWAYS: std::sync::LazyLock<Calendar> = std::sync::LazyLock::new(Calendar::always);
    &ALWAYS
}

/// What a case's conversion needs besides the record.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// The case number prefix.
    pub prefix: &'a str,
    /// The time the SLA figures are computed at.
    pub now: DateTime<Utc>,
    /// The calendars of business-hours clocks.
    pub calendars: &'a dyn Calendars,
}

fn duration(value: Duration) -> prost_types::Duration {
    let value = value.max(Duration::zero());
    prost_types::Duration { seconds: value.num_seconds(), nanos: value.subsec_nanos() }
}

/// One clock as an SLA target at `view.now`.
pub fn target(entry: &CaseClock, view: View<'_>) -> SlaTarget {
    let calendar = if entry.business_hours { view.calendars.calendar(entry.calendar_id) } else { always() };
    let clock = &entry.clock;
    let elapsed = clock.elapsed_at(view.now, calendar);
    let state = match clock.state_at(view.now) {
        ClockState::Active => SlaState::Active,
        ClockState::Paused => SlaState::Paused,
        ClockState::Achieved => SlaState::Achieved,
        ClockState::Breached => SlaState::Breached,
    };
    let breached = clock.breached_at.or(clock.due_at.filter(|due| *due <= view.now && !clock.is_met()));
    SlaTarget {
        metric: entry.metric.proto() as i32,
        state: state as i32,
        due_time: clock.due_at.map(timestamp),
        goal: Some(duration(clock.goal)),
        elapsed: Some(duration(elapsed)),
        remaining: Some(duration(if breached.is_some() { Duration::zero() } else { clock.goal - elapsed })),
        business_hours: entry.business_hours,
        achieve_time: clock.achieved_at.map(timestamp),
        breach_time: breached.map(timestamp),
    }
}

/// A stored case as a `Case`.
pub fn case_to_proto(record: &CaseRecord, view: View<'_>) -> Result<Case, Error> {
    let row = &record.case;
    let status = status_of(&row.status).ok_or_else(|| Error::undecodable("cases.status", &row.status))?;
    let priority =
        priority_of(&row.priority).ok_or_else(|| Error::undecodable("cases.priority", &row.priority))?;
    let channel =
        channel_of(&row.channel).ok_or_else(|| Error::undecodable("cases.channel", &row.channel))?;
    let id_text = |id: Option<uuid::Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    Ok(Case {
        id: row.id.to_string(),
        number: display_number(view.prefix, row.number),
        subject: row.subject.clone(),
        description: row.description.clone(),
        requester_contact_id: row.requester_contact_id.to_string(),
        company_id: id_text(row.company_id),
        status: status as i32,
        priority: priority as i32,
        channel: channel as i32,
        category: row.category.clone(),
        product: row.product.clone(),
        assignee_id: row.assignee_id.clone(),
        team_id: row.team_id.clone(),
        tags: row.tags.clone(),
        deal_id: id_text(row.deal_id),
        etag: rapport_kit::db::etag(row.version),
        sla_targets: record
            .clocks
            .clocks
            .iter()
            .filter(|entry| entry.current)
            .map(|entry| target(entry, view))
            .collect(),
        next_due_time: row.next_due_time.map(timestamp),
        first_response_time: row.first_response_time.map(timestamp),
        resolve_time: row.resolve_time.map(timestamp),
        close_time: row.close_time.map(timestamp),
        merged_into_case_id: id_text(row.merged_into),
        follow_up_of_case_id: id_text(row.follow_up_of),
        sla_policy_id: id_text(row.sla_policy_id),
        sla_policy_version: row.sla_policy_version,
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
        delete_time: row.delete_time.map(timestamp),
        requester_deleted: row.requester_deleted,
    })
}

/// A stored comment as a `Comment`.
pub fn comment_to_proto(row: &CommentRow) -> Comment {
    Comment {
        id: row.id.to_string(),
        case_id: row.case_id.to_string(),
        internal: row.internal,
        author_id: row.author_id.clone(),
        author_kind: if row.author_kind == "REQUESTER" {
            CommentAuthorKind::Requester as i32
        } else {
            CommentAuthorKind::Agent as i32
        },
        body: row.body.clone(),
        attachments: row.attachments.0.iter().map(Into::into).collect(),
        create_time: Some(timestamp(row.create_time)),
        message_id: row.message_id.clone(),
    }
}

/// The proto enums of a stored case (for the store's rules).
pub fn enums_of(record: &CaseRecord) -> Result<(CaseStatus, CasePriority, CaseChannel), Error> {
    let row = &record.case;
    Ok((
        status_of(&row.status).ok_or_else(|| Error::undecodable("cases.status", &row.status))?,
        priority_of(&row.priority).ok_or_else(|| Error::undecodable("cases.priority", &row.priority))?,
        channel_of(&row.channel).ok_or_else(|| Error::undecodable("cases.channel", &row.channel))?,
    ))
}

/// A clock with its history as an `SlaTimeline`.
pub fn timeline(entry: &CaseClock, view: View<'_>) -> rapport_proto::support::v1::SlaTimeline {
    use rapport_proto::support::v1::{SlaSegment, SlaTimeline};
    SlaTimeline {
        target: Some(target(entry, view)),
        cycle: entry.cycle,
        current: entry.current,
        segments: entry
            .clock
            .segments
            .iter()
            .map(|segment| SlaSegment {
                start_time: Some(timestamp(segment.start)),
                end_time: segment.end.map(timestamp),
                running: segment.running,
            })
            .collect(),
        calendar_id: entry.calendar_id.to_string(),
        pause_statuses: entry
            .pause_statuses
            .iter()
            .filter_map(|name| status_of(name))
            .map(|status| status as i32)
            .collect(),
        calendar_version: entry.calendar_version,
    }
}

/// A stored calendar as a `Calendar`.
pub fn calendar_to_proto(row: &crate::model::CalendarRow) -> rapport_proto::support::v1::Calendar {
    use rapport_proto::support::v1::{BusinessHours, Holiday};
    let hhmm = |minutes: u32| format!("{:02}:{:02}", minutes / 60, minutes % 60);
    let hours = row
        .weekly_hours
        .0
        .iter()
        .enumerate()
        .flat_map(|(day, ranges)| {
            ranges.iter().map(move |(start, end)| BusinessHours {
                day_of_week: i32::try_from(day + 1).unwrap_or_default(),
                start: hhmm(*start),
                end: hhmm(*end),
            })
        })
        .collect();
    rapport_proto::support::v1::Calendar {
        id: row.id.to_string(),
        name: row.name.clone(),
        time_zone: row.time_zone.clone(),
        hours,
        holidays: row
            .holidays
            .0
            .iter()
            .map(|holiday| Holiday {
                date: Some(rapport_proto::common::v1::Date {
                    year: chrono::Datelike::year(&holiday.date),
                    month: i32::try_from(chrono::Datelike::month(&holiday.date)).unwrap_or_default(),
                    day: i32::try_from(chrono::Datelike::day(&holiday.date)).unwrap_or_default(),
                }),
                name: holiday.name.clone(),
            })
            .collect(),
        version: row.version,
        etag: rapport_kit::db::etag(row.version),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
    }
}

/// A stored policy as an `SlaPolicy`.
pub fn policy_to_proto(row: &crate::model::PolicyRow) -> rapport_proto::support::v1::SlaPolicy {
    use rapport_proto::support::v1::{SlaConditions, SlaEscalation, SlaPolicy, SlaPolicyTarget};
    let conditions = &row.conditions.0;
    let escalation = &row.escalation.0;
    let seconds = |seconds: i64| prost_types::Duration { seconds, nanos: 0 };
    let mut targets = Vec::new();
    for (priority, list) in &row.targets.0 {
        let Some(priority) = priority_of(priority) else { continue };
        for target in list {
            targets.push(SlaPolicyTarget {
                priority: priority as i32,
                metric: target.metric.proto() as i32,
                goal: Some(seconds(target.goal_seconds)),
                business_hours: target.business_hours,
                pause_statuses: target
                    .pause_statuses
                    .iter()
                    .filter_map(|name| status_of(name))
                    .map(|s| s as i32)
                    .collect(),
                never_pause: target.pause_statuses.is_empty(),
            });
        }
    }
    targets.sort_by_key(|target| (target.priority, target.metric));
    SlaPolicy {
        id: row.id.to_string(),
        name: row.name.clone(),
        position: row.position,
        conditions: Some(SlaConditions {
            priorities: conditions
                .priorities
                .iter()
                .filter_map(|name| priority_of(name))
                .map(|p| p as i32)
                .collect(),
            channels: conditions
                .channels
                .iter()
                .filter_map(|name| channel_of(name))
                .map(|c| c as i32)
                .collect(),
            categories: conditions.categories.clone(),
            tags: conditions.tags.clone(),
        }),
        targets,
        calendar_id: row.calendar_id.to_string(),
        escalation: Some(SlaEscalation {
            warn_before: escalation.warn_before_seconds.map(seconds),
            warn_at_percent: escalation.warn_at_percent.unwrap_or_default(),
            raise_priority: escalation.raise_priority,
            escalation_team_id: escalation.team_id.clone(),
            escalation_assignee_id: escalation.assignee_id.clone(),
        }),
        version: row.version,
        etag: rapport_kit::db::etag(row.version),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
        delete_time: row.delete_time.map(timestamp),
    }
}

/// A stored agent as an `Agent`.
pub fn agent_to_proto(row: &crate::model::AgentRow) -> rapport_proto::support::v1::Agent {
    rapport_proto::support::v1::Agent {
        agent_id: row.agent_id.clone(),
        available: row.available,
        capacity: row.capacity,
        calendar_id: row.calendar_id.map(|id| id.to_string()).unwrap_or_default(),
        open_cases: i32::try_from(row.open_cases).unwrap_or(i32::MAX),
        last_assign_time: row.last_assign_time.map(timestamp),
    }
}

/// A stored team as a `Team`.
pub fn team_to_proto(team: &crate::model::TeamRecord) -> rapport_proto::support::v1::Team {
    use rapport_proto::support::v1::AssignmentMode;
    let mode = match team.mode.as_str() {
        "ROUND_ROBIN" => AssignmentMode::RoundRobin,
        "LEAST_OPEN" => AssignmentMode::LeastOpen,
        _ => AssignmentMode::Unspecified,
    };
    rapport_proto::support::v1::Team {
        team_id: team.team_id.clone(),
        mode: mode as i32,
        agent_ids: team.agents.iter().map(|agent| agent.agent_id.clone()).collect(),
        agents: team.agents.iter().map(agent_to_proto).collect(),
        update_time: Some(timestamp(team.update_time)),
    }
}

/// A stored article as an `Article`.
pub fn article_to_proto(row: &crate::model::ArticleRow) -> rapport_proto::support::v1::Article {
    use rapport_proto::support::v1::{Article, ArticleStatus};
    let status = match row.status.as_str() {
        "PUBLISHED" => ArticleStatus::Published,
        "ARCHIVED" => ArticleStatus::Archived,
        _ => ArticleStatus::Draft,
    };
    Article {
        id: row.id.to_string(),
        title: row.title.clone(),
        body: row.body.clone(),
        tags: row.tags.clone(),
        status: status as i32,
        author_id: row.author_id.clone(),
        revision: row.revision,
        helpful_votes: row.helpful,
        not_helpful_votes: row.not_helpful,
        etag: rapport_kit::db::etag(row.version),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
        publish_time: row.publish_time.map(timestamp),
    }
}
