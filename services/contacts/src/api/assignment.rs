//! AssignmentService RPCs: team members, assignment rules, assignments made.

use rapport_kit::fields::Violation;
use rapport_kit::paging::{self, Cursor};
use rapport_proto::contacts::v1::*;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::State;
use crate::domain::assignment::{parse_member, parse_rule};
use crate::error::Error;
use crate::store::assignment as store;

type Result<T> = std::result::Result<Response<T>, Status>;

fn id(raw: &str, field: &str) -> std::result::Result<Uuid, Error> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| Error::from(Violation::new(field, format!("{raw:?} is not a valid id"))))
}

fn optional_id(raw: &str, field: &str) -> std::result::Result<Option<Uuid>, Error> {
    if raw.trim().is_empty() { Ok(None) } else { id(raw, field).map(Some) }
}

pub async fn set_member(state: &State, request: Request<SetTeamMemberRequest>) -> Result<TeamMember> {
    let member = parse_member(&request.into_inner().member.unwrap_or_default()).map_err(Error::from)?;
    Ok(Response::new(store::set_member(&state.pool, &member).await?))
}

pub async fn remove_member(state: &State, request: Request<RemoveTeamMemberRequest>) -> Result<TeamMember> {
    let request = request.into_inner();
    Ok(Response::new(store::remove_member(&state.pool, &request.team_id, &request.user_id).await?))
}

pub async fn members(
    state: &State,
    request: Request<ListTeamMembersRequest>,
) -> Result<ListTeamMembersResponse> {
    let team_id =
        rapport_kit::fields::text("team_id", &request.get_ref().team_id, false, 200).map_err(Error::from)?;
    Ok(Response::new(ListTeamMembersResponse { members: store::members(&state.pool, &team_id).await? }))
}

pub async fn create_rule(
    state: &State,
    request: Request<CreateAssignmentRuleRequest>,
) -> Result<AssignmentRule> {
    let rule = parse_rule(&request.into_inner().rule.unwrap_or_default()).map_err(Error::from)?;
    Ok(Response::new(store::create_rule(&state.pool, &rule).await?))
}

/// The fields an update may name.
const UPDATABLE: &[&str] = &[
    "name",
    "position",
    "countries",
    "regions",
    "industries",
    "min_employees",
    "max_employees",
    "lead_sources",
    "team_id",
    "method",
    "enabled",
];

pub async fn update_rule(
    state: &State,
    request: Request<UpdateAssignmentRuleRequest>,
) -> Result<AssignmentRule> {
    let request = request.into_inner();
    let input = request.rule.unwrap_or_default();
    let rule_id = id(&input.id, "rule.id")?;
    let paths = request.update_mask.map(|mask| mask.paths).unwrap_or_default();
    rapport_kit::fields::cap_mask(&paths).map_err(Error::from)?;
    if paths.is_empty() {
        return Err(
            Error::from(Violation::new("update_mask", "must name at least one field to update")).into()
        );
    }
    if let Some(unknown) = paths.iter().find(|path| !UPDATABLE.contains(&path.as_str())) {
        let violation = Violation::new("update_mask", format!("{unknown:?} is not an updatable rule field"));
        return Err(Error::from(violation).into());
    }
    let merge = |mut stored: AssignmentRule| {
        for path in &paths {
            match path.as_str() {
                "name" => stored.name.clone_from(&input.name),
                "position" => stored.position = input.position,
                "countries" => stored.countries.clone_from(&input.countries),
                "regions" => stored.regions.clone_from(&input.regions),
                "industries" => stored.industries.clone_from(&input.industries),
                "min_employees" => stored.min_employees = input.min_employees,
                "max_employees" => stored.max_employees = input.max_employees,
                "lead_sources" => stored.lead_sources.clone_from(&input.lead_sources),
                "team_id" => stored.team_id.clone_from(&input.team_id),
                "method" => stored.method = input.method,
                _ => stored.enabled = input.enabled,
            }
        }
        parse_rule(&stored).map_err(Error::from)
    };
    Ok(Response::new(store::update_rule(&state.pool, rule_id, &input.etag, merge).await?))
}

pub async fn delete_rule(
    state: &State,
    request: Request<DeleteAssignmentRuleRequest>,
) -> Result<AssignmentRule> {
    let request = request.into_inner();
    let rule_id = id(&request.id, "id")?;
    Ok(Response::new(store::delete_rule(&state.pool, rule_id, &request.etag).await?))
}

pub async fn rules(
    state: &State,
    _request: Request<ListAssignmentRulesRequest>,
) -> Result<ListAssignmentRulesResponse> {
    Ok(Response::new(ListAssignmentRulesResponse {
        rules: store::rules(&state.pool).await.map_err(Error::from)?,
    }))
}

pub async fn assignments(
    state: &State,
    request: Request<ListAssignmentsRequest>,
) -> Result<ListAssignmentsResponse> {
    let request = request.into_inner();
    let resource_id = optional_id(&request.resource_id, "resource_id")?;
    let rule_id = optional_id(&request.rule_id, "rule_id")?;
    let page_size = paging::page_size(request.page_size, 100, 500).map_err(Error::from)?;
    let fingerprint = paging::fingerprint(&["assignments", &request.resource_id, &request.rule_id]);
    let cursor = paging::decode_token(&request.page_token, &fingerprint).map_err(Error::from)?;
    let (assignments, last) =
        store::assignments(&state.pool, resource_id, rule_id, page_size, cursor.as_ref()).await?;
    let next_page_token = last
        .map(|id| paging::encode_token(&fingerprint, Cursor { value: String::new(), id }))
        .unwrap_or_default();
    Ok(Response::new(ListAssignmentsResponse { assignments, next_page_token }))
}
