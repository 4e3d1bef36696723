//! `SlaService`: see `proto/rapport/support/v1/sla.proto`.

use chrono::{DateTime, Utc};
use rapport_kit::auth;
use rapport_proto::support::v1::sla_service_server::SlaService;
use rapport_proto::support::v1::*;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::Api;
use crate::convert::{View, calendar_to_proto, policy_to_proto, timeline};
use crate::domain::calendar::Calendar as BusinessCalendar;
use crate::domain::case::may_move;
use crate::domain::ids::{CalendarId, CaseId, PolicyId};
use crate::domain::sla::{Calendars, CaseClocks, Event, Policy};
use crate::domain::sla_input::{holidays_from_ics, parse_calendar, parse_policy};
use crate::error::Error;
use crate::store::policies::{self as store, Reprojected};
use crate::store::{Write, cases, sla};

type Result<T> = std::result::Result<Response<T>, Status>;

fn reprojection(done: Reprojected) -> Option<rapport_proto::support::v1::Reprojection> {
    Some(rapport_proto::support::v1::Reprojection {
        cases: done.cases,
        deadlines_changed: done.deadlines_changed,
    })
}

/// The answer of a calendar change: the calendar, what it re-projected,
/// and the iCalendar events an import skipped.
fn calendar_changed(
    row: &crate::model::CalendarRow,
    done: Reprojected,
    skipped: usize,
) -> UpdateCalendarResponse {
    UpdateCalendarResponse {
        calendar: Some(calendar_to_proto(row)),
        reprojection: reprojection(done),
        skipped_events: i32::try_from(skipped).unwrap_or(i32::MAX),
    }
}

fn time_of(field: &str, time: Option<&prost_types::Timestamp>) -> std::result::Result<DateTime<Utc>, Error> {
    time.and_then(|time| DateTime::from_timestamp(time.seconds, u32::try_from(time.nanos).ok()?))
        .filter(|time| (1970..=2200).contains(&chrono::Datelike::year(time)))
        .ok_or_else(|| {
            rapport_kit::fields::Violation::new(field, "must be a time between 1970 and 2200").into()
        })
}

/// The one calendar of a simulation.
struct Only(BusinessCalendar);

impl Calendars for Only {
    fn calendar(&self, _: Uuid) -> &BusinessCalendar {
        &self.0
    }
}

#[tonic::async_trait]
impl SlaService for Api {
    async fn create_calendar(&self, request: Request<CreateCalendarRequest>) -> Result<Calendar> {
        let raw = request.into_inner().calendar.unwrap_or_default();
        let input = parse_calendar(&raw).map_err(Error::from)?;
        let row = store::create_calendar(&self.state.pool, &input, self.state.ctx()).await?;
        Ok(Response::new(calendar_to_proto(&row)))
    }

    async fn get_calendar(&self, request: Request<GetCalendarRequest>) -> Result<Calendar> {
        let id = CalendarId::parse("id", &request.get_ref().id).map_err(Error::from)?;
        Ok(Response::new(calendar_to_proto(&store::get_calendar(&self.state.pool, id.uuid()).await?)))
    }

    async fn update_calendar(
        &self,
        request: Request<UpdateCalendarRequest>,
    ) -> Result<UpdateCalendarResponse> {
        let actor = auth::principal(&request)?.clone();
        let raw = request.into_inner().calendar.unwrap_or_default();
        let id = CalendarId::parse("calendar.id", &raw.id).map_err(Error::from)?;
        let input = parse_calendar(&raw).map_err(Error::from)?;
        let write = Write::by(&actor);
        let result =
            store::update_calendar(&self.state.pool, id.uuid(), &raw.etag, &input, write, self.state.ctx())
                .await;
        self.state.written(&result);
        let (row, done) = result?;
        Ok(Response::new(calendar_changed(&row, done, 0)))
    }

    async fn list_calendars(&self, _: Request<ListCalendarsRequest>) -> Result<ListCalendarsResponse> {
        let rows = store::list_calendars(&self.state.pool).await?;
        Ok(Response::new(ListCalendarsResponse { calendars: rows.iter().map(calendar_to_proto).collect() }))
    }

    async fn import_holidays(
        &self,
        request: Request<ImportHolidaysRequest>,
    ) -> Result<UpdateCalendarResponse> {
        let actor = auth::principal(&request)?.clone();
        let request = request.into_inner();
        let id = CalendarId::parse("calendar_id", &request.calendar_id).map_err(Error::from)?;
        let (holidays, skipped) = holidays_from_ics(&request.ics).map_err(Error::from)?;
        let result =
            store::add_holidays(&self.state.pool, id.uuid(), holidays, Write::by(&actor), self.state.ctx())
                .await;
        self.state.written(&result);
        let (row, done) = result?;
        Ok(Response::new(calendar_changed(&row, done, skipped)))
    }

    async fn create_sla_policy(&self, request: Request<CreateSlaPolicyRequest>) -> Result<SlaPolicy> {
        let raw = request.into_inner().policy.unwrap_or_default();
        let input = parse_policy(&raw).map_err(Error::from)?;
        let row = store::create_policy(&self.state.pool, &input, self.state.ctx()).await?;
        Ok(Response::new(policy_to_proto(&row)))
    }

    async fn get_sla_policy(&self, request: Request<GetSlaPolicyRequest>) -> Result<SlaPolicy> {
        let id = PolicyId::parse("id", &request.get_ref().id).map_err(Error::from)?;
        Ok(Response::new(policy_to_proto(&store::get_policy(&self.state.pool, id.uuid()).await?)))
    }

    async fn update_sla_policy(
        &self,
        request: Request<UpdateSlaPolicyRequest>,
    ) -> Result<UpdateSlaPolicyResponse> {
        let actor = auth::principal(&request)?.clone();
        let raw = request.into_inner().policy.unwrap_or_default();
        let id = PolicyId::parse("policy.id", &raw.id).map_err(Error::from)?;
        let input = parse_policy(&raw).map_err(Error::from)?;
        let write = Write::by(&actor);
        let result =
            store::update_policy(&self.state.pool, id.uuid(), &raw.etag, &input, write, self.state.ctx())
                .await;
        self.state.written(&result);
        let (row, done) = result?;
        Ok(Response::new(UpdateSlaPolicyResponse {
            policy: Some(policy_to_proto(&row)),
            reprojection: reprojection(done),
        }))
    }

    async fn delete_sla_policy(&self, request: Request<DeleteSlaPolicyRequest>) -> Result<SlaPolicy> {
        let id = PolicyId::parse("id", &request.get_ref().id).map_err(Error::from)?;
        Ok(Response::new(policy_to_proto(
            &store::delete_policy(&self.state.pool, id.uuid(), self.state.ctx()).await?,
        )))
    }

    async fn list_sla_policies(&self, _: Request<ListSlaPoliciesRequest>) -> Result<ListSlaPoliciesResponse> {
        let rows = store::list_policies(&self.state.pool).await?;
        Ok(Response::new(ListSlaPoliciesResponse { policies: rows.iter().map(policy_to_proto).collect() }))
    }

    async fn get_case_sla(&self, request: Request<GetCaseSlaRequest>) -> Result<CaseSla> {
        let id = CaseId::parse("case_id", &request.get_ref().case_id).map_err(Error::from)?;
        let (record, sla) = cases::get(&self.state.pool, (Some(id.uuid()), None), &self.state.sla).await?;
        let ctx = self.state.ctx();
        let view = View { prefix: ctx.prefix, now: ctx.now, calendars: sla.as_ref() };
        Ok(Response::new(CaseSla {
            case_id: record.case.id.to_string(),
            policy_id: record.case.sla_policy_id.map(|id| id.to_string()).unwrap_or_default(),
            policy_version: record.case.sla_policy_version,
            timelines: record.clocks.clocks.iter().map(|entry| timeline(entry, view)).collect(),
        }))
    }

    async fn simulate_sla(&self, request: Request<SimulateSlaRequest>) -> Result<SimulateSlaResponse> {
        let request = request.into_inner();
        rapport_kit::fields::cap("events", &request.events, 200).map_err(Error::from)?;
        let mut conn = self.state.pool.acquire().await.map_err(Error::from)?;
        let stored = sla::load(&mut conn).await?;
        drop(conn);
        let policy: Policy = if request.policy_id.trim().is_empty() {
            let input = parse_policy(&request.policy.clone().unwrap_or_default()).map_err(Error::from)?;
            Policy {
                id: Uuid::nil(),
                version: 0,
                conditions: input.conditions,
                targets: input.targets,
                calendar_id: input.calendar_id,
                escalation: input.escalation,
            }
        } else {
            let id = PolicyId::parse("policy_id", &request.policy_id).map_err(Error::from)?;
            stored
                .policy(Some(id.uuid()))
                .cloned()
                .ok_or_else(|| Error::not_found("SLA_POLICY_NOT_FOUND", "rapport.support.v1.SlaPolicy", id))?
        };
        let calendar = match &request.calendar {
            Some(raw) => parse_calendar(raw).map_err(Error::from)?.calendar,
            None => stored.calendars.get(&policy.calendar_id).cloned().ok_or_else(|| {
                Error::precondition(
                    "CALENDAR_NOT_FOUND",
                    "the policy's calendar does not exist; give one inline",
                    "CALENDAR_EXISTS",
                    &policy.calendar_id.to_string(),
                )
            })?,
        };
        let calendars = Only(calendar);
        let priority = match CasePriority::try_from(request.priority) {
            Ok(CasePriority::Unspecified) => CasePriority::Normal,
            Ok(priority) => priority,
            Err(_) => {
                return Err(Error::from(rapport_kit::fields::Violation::new(
                    "priority",
                    "is not a priority",
                ))
                .into());
            }
        };
        let open = time_of("open_time", request.open_time.as_ref())?;
        let mut clocks = CaseClocks::default();
        let mut status = CaseStatus::New;
        clocks.apply(Event::Created(status), open, Some(&policy), priority, &calendars);
        let mut last = open;
        for (index, simulated) in request.events.iter().enumerate() {
            let field = format!("events[{index}]");
            let at = time_of(&format!("{field}.time"), simulated.time.as_ref())?;
            if at < last {
                return Err(Error::from(rapport_kit::fields::Violation::new(
                    format!("{field}.time"),
                    "must not be before the previous event",
                ))
                .into());
            }
            last = at;
            let mut move_to = |status: &mut CaseStatus, to: CaseStatus| -> std::result::Result<(), Error> {
                if !may_move(*status, to) {
                    return Err(rapport_kit::fields::Violation::new(
                        format!("{field}.status"),
                        format!("{} cannot follow {}", to.as_str_name(), status.as_str_name()),
                    )
                    .into());
                }
                clocks.apply(Event::Status { from: *status, to }, at, Some(&policy), priority, &calendars);
                *status = to;
                Ok(())
            };
            match &simulated.event {
                Some(simulated_event::Event::Status(to)) => {
                    let to = CaseStatus::try_from(*to).unwrap_or(CaseStatus::Unspecified);
                    move_to(&mut status, to)?;
                }
                Some(simulated_event::Event::AgentReply(true)) => {
                    if status == CaseStatus::New {
                        move_to(&mut status, CaseStatus::Open)?;
                    }
                    clocks.apply(Event::AgentReply, at, Some(&policy), priority, &calendars);
                }
                Some(simulated_event::Event::RequesterReply(true)) => {
                    if status == CaseStatus::PendingCustomer {
                        move_to(&mut status, CaseStatus::Open)?;
                    }
                    clocks.apply(Event::RequesterReply(status), at, Some(&policy), priority, &calendars);
                }
                _ => {
                    return Err(Error::from(rapport_kit::fields::Violation::new(
                        field,
                        "name a status, agent_reply or requester_reply",
                    ))
                    .into());
                }
            }
        }
        let as_of = match request.as_of.as_ref() {
            Some(time) => time_of("as_of", Some(time))?,
            None => last,
        };
        let view = View { prefix: "", now: as_of, calendars: &calendars };
        Ok(Response::new(SimulateSlaResponse {
            timelines: clocks.clocks.iter().map(|entry| timeline(entry, view)).collect(),
        }))
    }
}
