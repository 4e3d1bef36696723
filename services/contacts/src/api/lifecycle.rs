//! LifecycleService RPCs: explicit stage moves, qualification, history.

use rapport_kit::auth;
use rapport_kit::paging;
use rapport_proto::contacts::v1::*;
use tonic::{Request, Response, Status};

use super::State;
use crate::convert;
use crate::domain::{ContactId, qualification};
use crate::error::Error;
use crate::store::Write;
use crate::store::lifecycle::{self as store, StageChange};

type Result<T> = std::result::Result<Response<T>, Status>;

async fn change<T>(
    state: &State,
    request: &Request<T>,
    id: &str,
    etag: &str,
    change: StageChange,
) -> Result<Contact> {
    let actor = auth::principal(request)?.clone();
    let id = ContactId::parse("contact_id", id).map_err(Error::from)?;
    let result = store::change_stage(&state.pool, id, etag, change, Write::by(&actor)).await;
    state.written(&state.caches.contacts, &id.to_string(), &result).await;
    Ok(Response::new(result?))
}

pub async fn set_stage(state: &State, request: Request<SetLifecycleStageRequest>) -> Result<Contact> {
    let input = request.get_ref();
    let stage = LifecycleStage::try_from(input.stage)
        .map_err(|_| Error::from(rapport_kit::fields::Violation::new("stage", "is not a lifecycle stage")))?;
    let reason = qualification::reason("reason", &input.reason).map_err(Error::from)?;
    let (id, etag) = (input.contact_id.clone(), input.etag.clone());
    change(state, &request, &id, &etag, StageChange::Set { stage, reason }).await
}

pub async fn reopen(state: &State, request: Request<ReopenLeadRequest>) -> Result<Contact> {
    let input = request.get_ref();
    let reason = qualification::reason("reason", &input.reason).map_err(Error::from)?;
    let (id, etag) = (input.contact_id.clone(), input.etag.clone());
    change(state, &request, &id, &etag, StageChange::Reopen { reason }).await
}

pub async fn qualify(state: &State, request: Request<QualifyLeadRequest>) -> Result<Contact> {
    let actor = auth::principal(&request)?.subject.clone();
    let input = request.get_ref();
    let answers = input.qualification.clone().unwrap_or_default();
    let (answers, decision_maker) =
        qualification::parse(&answers, &actor, state.config.now.now()).map_err(Error::from)?;
    let (id, etag) = (input.contact_id.clone(), input.etag.clone());
    change(state, &request, &id, &etag, StageChange::Qualify { answers: Box::new(answers), decision_maker })
        .await
}

pub async fn disqualify(state: &State, request: Request<DisqualifyLeadRequest>) -> Result<Contact> {
    let input = request.get_ref();
    let reason = qualification::reason("reason", &input.reason).map_err(Error::from)?;
    let (id, etag) = (input.contact_id.clone(), input.etag.clone());
    change(state, &request, &id, &etag, StageChange::Disqualify { reason }).await
}

pub async fn history(
    state: &State,
    request: Request<GetLifecycleHistoryRequest>,
) -> Result<GetLifecycleHistoryResponse> {
    let request = request.into_inner();
    let id = ContactId::parse("contact_id", &request.contact_id).map_err(Error::from)?;
    let page_size = paging::page_size(request.page_size, 100, 500).map_err(Error::from)?;
    let fingerprint = paging::fingerprint(&["lifecycle", &id.to_string()]);
    let cursor = paging::decode_token(&request.page_token, &fingerprint).map_err(Error::from)?;
    if !store::exists(&state.pool, id).await.map_err(Error::from)? {
        return Err(crate::error::contact_not_found(id).into());
    }
    let (records, more) =
        store::history(&state.pool, id, page_size, cursor.as_ref()).await.map_err(Error::from)?;
    let last = records.last().map(|last| (last.change_time, last.id));
    let next_page_token = super::time_page_token(&fingerprint, more, last);
    Ok(Response::new(GetLifecycleHistoryResponse {
        transitions: records.iter().map(convert::transition_to_proto).collect(),
        next_page_token,
    }))
}
