//! `AssignmentService`: see `proto/rapport/support/v1/assignment.proto`.

use rapport_kit::auth::{self, Role};
use rapport_kit::fields::{Violation, cap, text};
use rapport_proto::support::v1::assignment_service_server::AssignmentService;
use rapport_proto::support::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::convert::{agent_to_proto, team_to_proto};
use crate::domain::ids::CalendarId;
use crate::error::Error;
use crate::store::assignment::{self as store, AgentChange};

type Result<T> = std::result::Result<Response<T>, Status>;

/// Most members of one team.
const MAX_MEMBERS: usize = 500;

fn subject(field: &str, raw: &str) -> std::result::Result<String, Error> {
    Ok(text(field, raw, true, 200)?)
}

#[tonic::async_trait]
impl AssignmentService for Api {
    async fn set_team(&self, request: Request<SetTeamRequest>) -> Result<Team> {
        let team = request.into_inner().team.unwrap_or_default();
        let mut violations = Vec::new();
        let team_id = text("team.team_id", &team.team_id, true, 200)
            .map_err(|v| violations.push(v))
            .unwrap_or_default();
        let mode = match AssignmentMode::try_from(team.mode) {
            Ok(AssignmentMode::Unspecified) => "NONE",
            Ok(AssignmentMode::RoundRobin) => "ROUND_ROBIN",
            Ok(AssignmentMode::LeastOpen) => "LEAST_OPEN",
            Err(_) => {
                violations.push(Violation::new("team.mode", "is not an assignment mode"));
                "NONE"
            }
        };
        cap("team.agent_ids", &team.agent_ids, MAX_MEMBERS).map_err(Error::from)?;
        let mut agents: Vec<String> = Vec::with_capacity(team.agent_ids.len());
        for (index, agent) in team.agent_ids.iter().enumerate() {
            match text(&format!("team.agent_ids[{index}]"), agent, true, 200) {
                Ok(agent) if !agents.contains(&agent) => agents.push(agent),
                Ok(_) => {}
                Err(violation) => violations.push(violation),
            }
        }
        if !violations.is_empty() {
            return Err(Error::from(violations).into());
        }
        let saved = store::set_team(&self.state.pool, &team_id, mode, &agents, self.state.ctx().now).await?;
        Ok(Response::new(team_to_proto(&saved)))
    }

    async fn get_team(&self, request: Request<GetTeamRequest>) -> Result<Team> {
        let team_id = subject("team_id", &request.get_ref().team_id)?;
        Ok(Response::new(team_to_proto(&store::get_team(&self.state.pool, &team_id).await?)))
    }

    async fn list_teams(&self, _: Request<ListTeamsRequest>) -> Result<ListTeamsResponse> {
        let teams = store::list_teams(&self.state.pool).await?;
        Ok(Response::new(ListTeamsResponse { teams: teams.iter().map(team_to_proto).collect() }))
    }

    async fn set_agent(&self, request: Request<SetAgentRequest>) -> Result<Agent> {
        let principal = auth::principal(&request)?.clone();
        let request = request.into_inner();
        let agent = request.agent.unwrap_or_default();
        let agent_id = subject("agent.agent_id", &agent.agent_id)?;
        rapport_kit::fields::cap("fields", &request.fields, 3).map_err(Error::from)?;
        let manager = principal.has(Role::Admin) || principal.has(Role::SupportManager);
        let mut change = AgentChange::default();
        let mut violations = Vec::new();
        for field in &request.fields {
            match field.as_str() {
                "available" => change.available = Some(agent.available),
                "capacity" if agent.capacity >= 0 => change.capacity = Some(agent.capacity),
                "capacity" => violations.push(Violation::new("agent.capacity", "must not be negative")),
                "calendar_id" if agent.calendar_id.trim().is_empty() => change.calendar_id = Some(None),
                "calendar_id" => match CalendarId::parse("agent.calendar_id", &agent.calendar_id) {
                    Ok(id) => change.calendar_id = Some(Some(id.uuid())),
                    Err(violation) => violations.push(violation),
                },
                other => violations.push(Violation::new(
                    "fields",
                    format!("{other:?} is not available, capacity or calendar_id"),
                )),
            }
        }
        if request.fields.is_empty() {
            violations
                .push(Violation::new("fields", "name at least one of available, capacity, calendar_id"));
        }
        if !violations.is_empty() {
            return Err(Error::from(violations).into());
        }
        let own_availability =
            agent_id == principal.subject && change.capacity.is_none() && change.calendar_id.is_none();
        if !manager && !own_availability {
            return Err(Error::Problem(rapport_kit::error::Problem::permission_denied(
                "NOT_OWNER",
                "an agent sets only their own availability; capacity and hours are set by a manager",
            ))
            .into());
        }
        let saved = store::set_agent(&self.state.pool, &agent_id, &change, self.state.ctx().now).await?;
        Ok(Response::new(agent_to_proto(&saved)))
    }

    async fn get_agent(&self, request: Request<GetAgentRequest>) -> Result<Agent> {
        let agent_id = subject("agent_id", &request.get_ref().agent_id)?;
        Ok(Response::new(agent_to_proto(&store::get_agent(&self.state.pool, &agent_id).await?)))
    }
}
