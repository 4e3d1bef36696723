//! Activity and task RPCs.

use std::sync::Arc;

use rapport_kit::auth::{self, Ownership, Principal};
use rapport_kit::changelog::Visible;
use rapport_kit::idempotency::RequestKey;
use rapport_kit::listing::{ListQuery, ListRequest};
use rapport_kit::paging;
use rapport_proto::common::v1::ChangeEvent;
use rapport_proto::contacts::v1::*;
use tonic::{Request, Response, Status};

use super::State;
use super::query::ACTIVITY_LIST;
use crate::convert;
use crate::domain::activity::{ActivityDraft, ActivityField, ActivityId};
use crate::error::{ACTIVITY, Error, TASK_REMINDER};
use crate::store::Write;
use crate::store::activities as store;

type Result<T> = std::result::Result<Response<T>, Status>;

pub async fn log(state: &State, request: Request<LogActivityRequest>) -> Result<Activity> {
    let actor = auth::principal(&request)?.clone();
    let mut request = request.into_inner();
    let input = request.activity.as_ref().cloned().unwrap_or_default();
    let draft = ActivityDraft::parse(&input, &ActivityField::ALL).map_err(Error::from)?;
    let (owner, team) = draft.owner_and_team();
    let (owner, team) = Ownership::defaults(&actor, owner, team);
    let owner_and_team = (owner.to_owned(), team.to_owned());
    // The idempotency fingerprint covers the request without its key.
    let request_id = std::mem::take(&mut request.request_id);
    let key = RequestKey::new(request_id, &request);
    let result =
        store::create(&state.pool, draft, owner_and_team, key.write(&actor), state.config.at()).await;
    state.activity_written(&result).await;
    Ok(Response::new(result?.activity))
}

pub async fn get(state: &State, request: Request<GetActivityRequest>) -> Result<Activity> {
    let id = ActivityId::parse("id", &request.get_ref().id).map_err(Error::from)?;
    match store::get(&state.pool, id).await.map_err(Error::from)? {
        Some(record) => Ok(Response::new(convert::activity_to_proto(&record, state.config.now.now()))),
        None => Err(crate::error::activity_not_found(id).into()),
    }
}

pub async fn update(state: &State, request: Request<UpdateActivityRequest>) -> Result<Activity> {
    let actor = auth::principal(&request)?.clone();
    let request = request.into_inner();
    let input = request.activity.unwrap_or_default();
    let id = ActivityId::parse("activity.id", &input.id).map_err(Error::from)?;
    let paths = request.update_mask.map(|mask| mask.paths).unwrap_or_default();
    let fields = ActivityField::parse_mask(&paths).map_err(Error::from)?;
    let draft = ActivityDraft::parse(&input, &fields).map_err(Error::from)?;
    let result =
        store::update(&state.pool, id, &input.etag, &draft, Write::by(&actor), state.config.at()).await;
    state.activity_written(&result).await;
    Ok(Response::new(result?.activity))
}

pub async fn set_deleted<T>(
    state: &State,
    request: &Request<T>,
    id: &str,
    etag: &str,
    deleted: bool,
) -> Result<Activity> {
    let actor = auth::principal(request)?.clone();
    let id = ActivityId::parse("id", id).map_err(Error::from)?;
    let result =
        store::set_deleted(&state.pool, id, etag, deleted, Write::by(&actor), state.config.at()).await;
    state.activity_written(&result).await;
    Ok(Response::new(result?.activity))
}

pub async fn set_completed<T>(
    state: &State,
    request: &Request<T>,
    id: &str,
    etag: &str,
    complete: bool,
) -> Result<Activity> {
    let actor = auth::principal(request)?.clone();
    let id = ActivityId::parse("id", id).map_err(Error::from)?;
    let result =
        store::set_completed(&state.pool, id, etag, complete, Write::by(&actor), state.config.at()).await;
    state.activity_written(&result).await;
    Ok(Response::new(result?.activity))
}

pub async fn list(state: &State, request: Request<ListActivitiesRequest>) -> Result<ListActivitiesResponse> {
    let request = request.into_inner();
    let list = ListRequest {
        filter: &request.filter,
        order_by: &request.order_by,
        page_size: request.page_size,
        page_token: &request.page_token,
        show_deleted: request.show_deleted,
    };
    let query = ListQuery::parse(&list, &ACTIVITY_LIST).map_err(Error::from)?;
    let (records, next_page_token) = store::list(&state.pool, &query).await?;
    let now = state.config.now.now();
    Ok(Response::new(ListActivitiesResponse {
        activities: records.iter().map(|record| convert::activity_to_proto(record, now)).collect(),
        next_page_token,
    }))
}

pub async fn my_tasks(state: &State, request: Request<ListMyTasksRequest>) -> Result<ListMyTasksResponse> {
    let owner = auth::principal(&request)?.subject.clone();
    let request = request.into_inner();
    let page_size = paging::page_size(request.page_size, 50, 200).map_err(Error::from)?;
    let fingerprint = paging::fingerprint(&["my-tasks", &owner]);
    let cursor = paging::decode_token(&request.page_token, &fingerprint).map_err(Error::from)?;
    let (records, more) = store::open_tasks(&state.pool, &owner, page_size, cursor.as_ref()).await?;
    let last = records.last().map(|last| (last.state.occur_time, last.id.uuid()));
    let next_page_token = super::time_page_token(&fingerprint, more, last);
    let now = state.config.now.now();
    Ok(Response::new(ListMyTasksResponse {
        tasks: records.iter().map(|record| convert::activity_to_proto(record, now)).collect(),
        next_page_token,
    }))
}

/// The `only_mine` filter of WatchChanges: the caller's own activities
/// and the reminders of their own tasks; nothing else.
pub fn owned_by(principal: &Principal) -> Visible {
    let subject: Arc<str> = Arc::from(principal.subject.as_str());
    Arc::new(move |event: &ChangeEvent| {
        let mine = owner_of(event).is_some_and(|owner| owner == *subject);
        Box::pin(async move { mine })
    })
}

/// The owner of the activity an event carries (or whose reminder it is).
fn owner_of(event: &ChangeEvent) -> Option<String> {
    use prost::Message as _;
    let bytes = event.resource.as_ref()?.value.as_slice();
    match event.resource_type.as_str() {
        ACTIVITY => Activity::decode(bytes).ok().map(|activity| activity.owner_id),
        TASK_REMINDER => TaskReminder::decode(bytes).ok()?.task.map(|task| task.owner_id),
        _ => None,
    }
}
