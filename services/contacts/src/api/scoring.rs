//! ScoringService RPCs: rules and settings (admins and marketing), and a
//! contact's explained score.

use rapport_kit::auth;
use rapport_kit::fields::Violation;
use rapport_proto::contacts::v1::*;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::State;
use crate::domain::ContactId;
use crate::domain::scoring::parse_rule;
use crate::error::Error;
use crate::store::scoring as store;

type Result<T> = std::result::Result<Response<T>, Status>;

fn rule_id(raw: &str, field: &str) -> std::result::Result<Uuid, Error> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| Error::from(Violation::new(field, format!("{raw:?} is not a valid id"))))
}

pub async fn create(state: &State, request: Request<CreateScoringRuleRequest>) -> Result<ScoringRule> {
    let actor = auth::principal(&request)?.subject.clone();
    let input = request.into_inner().rule.unwrap_or_default();
    let rule = parse_rule(&input).map_err(Error::from)?;
    let created = store::create(&state.pool, rule, &actor).await;
    state.feed.written(&created);
    Ok(Response::new(created?))
}

/// The fields an update may name.
const UPDATABLE: &[&str] = &["name", "points", "condition", "profile", "engagement", "decay_days", "enabled"];

pub async fn update(state: &State, request: Request<UpdateScoringRuleRequest>) -> Result<ScoringRule> {
    let actor = auth::principal(&request)?.subject.clone();
    let request = request.into_inner();
    let input = request.rule.unwrap_or_default();
    let id = rule_id(&input.id, "rule.id")?;
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
    let merge = |mut stored: ScoringRule| {
        for path in &paths {
            match path.as_str() {
                "name" => stored.name.clone_from(&input.name),
                "points" => stored.points = input.points,
                "decay_days" => stored.decay_days = input.decay_days,
                "enabled" => stored.enabled = input.enabled,
                _ => stored.condition.clone_from(&input.condition),
            }
        }
        parse_rule(&stored).map_err(Error::from)
    };
    let updated = store::update(&state.pool, id, &input.etag, merge, &actor).await;
    state.feed.written(&updated);
    Ok(Response::new(updated?))
}

pub async fn delete(state: &State, request: Request<DeleteScoringRuleRequest>) -> Result<ScoringRule> {
    let actor = auth::principal(&request)?.subject.clone();
    let request = request.into_inner();
    let id = rule_id(&request.id, "id")?;
    let deleted = store::delete(&state.pool, id, &request.etag, &actor).await;
    state.feed.written(&deleted);
    Ok(Response::new(deleted?))
}

pub async fn list(
    state: &State,
    _request: Request<ListScoringRulesRequest>,
) -> Result<ListScoringRulesResponse> {
    let rules = store::rules(&state.pool).await.map_err(Error::from)?;
    Ok(Response::new(ListScoringRulesResponse { rules }))
}

pub async fn settings(
    state: &State,
    _request: Request<GetScoringSettingsRequest>,
) -> Result<ScoringSettings> {
    Ok(Response::new(store::settings(&state.pool).await.map_err(Error::from)?))
}

pub async fn update_settings(
    state: &State,
    request: Request<UpdateScoringSettingsRequest>,
) -> Result<ScoringSettings> {
    let threshold = request.into_inner().settings.unwrap_or_default().mql_threshold;
    if !(0..=100).contains(&threshold) {
        return Err(Error::from(Violation::new("settings.mql_threshold", "must be between 0 and 100")).into());
    }
    Ok(Response::new(store::set_threshold(&state.pool, threshold).await?))
}

pub async fn lead_score(state: &State, request: Request<GetLeadScoreRequest>) -> Result<LeadScore> {
    let id = ContactId::parse("contact_id", &request.get_ref().contact_id).map_err(Error::from)?;
    match store::lead_score(&state.pool, id, state.config.now.now()).await? {
        Some(score) => Ok(Response::new(score)),
        None => Err(crate::error::contact_not_found(id).into()),
    }
}
