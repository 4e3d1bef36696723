//! Contact RPCs.

use rapport_kit::idempotency::RequestKey;
use std::collections::HashMap;

use rapport_kit::auth::{self, Ownership};
use rapport_proto::contacts::v1::*;
use tonic::{Request, Response, Status};

use super::State;
use super::query::CONTACT_LIST;
use crate::convert;
use crate::domain::{ContactDraft, ContactField, ContactId, Violation};
use crate::error::Error;
use crate::store::Write;
use crate::store::contacts as store;
use rapport_kit::listing::{ListQuery, ListRequest};

type Result<T> = std::result::Result<Response<T>, Status>;

/// The longest BatchGet.
const MAX_BATCH: usize = 1000;

pub async fn create(state: &State, request: Request<CreateContactRequest>) -> Result<Contact> {
    let actor = auth::principal(&request)?.clone();
    let mut request = request.into_inner();
    let input = request.contact.take().unwrap_or_default();
    let draft = ContactDraft::parse(&input, &ContactField::ALL).map_err(Error::from)?;
    let mut contact = draft.into_new(crate::store::now()).map_err(Error::from)?;
    let assign = super::assignable(&actor, &contact.owner_id);
    let (owner, team) = Ownership::defaults(&actor, &contact.owner_id, &contact.team_id);
    (contact.owner_id, contact.team_id) = (owner.to_owned(), team.to_owned());
    let request_id = std::mem::take(&mut request.request_id);
    // The idempotency fingerprint covers the request without its key.
    request.contact = Some(input);
    let key = RequestKey::new(request_id, &request);
    let write = key.write(&actor);
    let created = store::create(&state.pool, contact, write, assign).await?;
    state.feed.announce();
    Ok(Response::new(created))
}

pub async fn get(state: &State, request: Request<GetContactRequest>) -> Result<Contact> {
    let id = ContactId::parse("id", &request.get_ref().id).map_err(Error::from)?;
    let pool = &state.pool;
    let found = state
        .caches
        .contacts
        .get_or_load(&id.to_string(), || async move {
            store::get(pool, id).await.map(|found| found.map(|record| convert::contact_to_proto(&record)))
        })
        .await
        .map_err(|err| crate::error::load_failed(&err, "contact"))?;
    match found {
        Some(contact) => Ok(Response::new(contact.as_ref().clone())),
        None => Err(crate::error::contact_not_found(id).into()),
    }
}

pub async fn batch_get(
    state: &State,
    request: Request<BatchGetContactsRequest>,
) -> Result<BatchGetContactsResponse> {
    let ids = &request.get_ref().ids;
    if ids.len() > MAX_BATCH {
        return Err(Error::from(Violation::new("ids", format!("at most {MAX_BATCH} ids per call"))).into());
    }
    let mut parsed = Vec::with_capacity(ids.len());
    let mut violations = Vec::new();
    for (index, raw) in ids.iter().enumerate() {
        match ContactId::parse(&format!("ids[{index}]"), raw) {
            Ok(id) => parsed.push(id),
            Err(violation) => violations.push(violation),
        }
    }
    if !violations.is_empty() {
        return Err(Error::Invalid(violations).into());
    }
    let uuids: Vec<uuid::Uuid> = parsed.iter().map(|id| id.uuid()).collect();
    let records = store::get_many(&state.pool, &uuids).await.map_err(Error::from)?;
    let by_id: HashMap<ContactId, Contact> =
        records.iter().map(|record| (record.id, convert::contact_to_proto(record))).collect();
    let contacts = parsed
        .iter()
        .map(|id| by_id.get(id).cloned().ok_or_else(|| crate::error::contact_not_found(id)))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Response::new(BatchGetContactsResponse { contacts }))
}

pub async fn update(state: &State, request: Request<UpdateContactRequest>) -> Result<Contact> {
    let actor = auth::principal(&request)?.clone();
    let request = request.into_inner();
    let input = request.contact.unwrap_or_default();
    let id = ContactId::parse("contact.id", &input.id).map_err(Error::from)?;
    let paths = request.update_mask.map(|mask| mask.paths).unwrap_or_default();
    let fields = ContactField::parse_mask(&paths).map_err(Error::from)?;
    let draft = ContactDraft::parse(&input, &fields).map_err(Error::from)?;
    let updated = store::update(&state.pool, id, &input.etag, &draft, Write::by(&actor)).await;
    state.written(&state.caches.contacts, &id.to_string(), &updated).await;
    Ok(Response::new(updated?))
}

pub async fn set_deleted<T>(
    state: &State,
    request: &Request<T>,
    id: &str,
    etag: &str,
    deleted: bool,
) -> Result<Contact> {
    let actor = auth::principal(request)?.clone();
    let id = ContactId::parse("id", id).map_err(Error::from)?;
    let result = store::set_deleted(&state.pool, id, etag, deleted, Write::by(&actor)).await;
    state.written(&state.caches.contacts, &id.to_string(), &result).await;
    Ok(Response::new(result?))
}

pub async fn list(state: &State, request: Request<ListContactsRequest>) -> Result<ListContactsResponse> {
    let request = request.into_inner();
    let list = ListRequest {
        filter: &request.filter,
        order_by: &request.order_by,
        page_size: request.page_size,
        page_token: &request.page_token,
        show_deleted: request.show_deleted,
    };
    let query = ListQuery::parse(&list, &CONTACT_LIST).map_err(Error::from)?;
    let (records, next_page_token) = store::list(&state.pool, &query).await?;
    Ok(Response::new(ListContactsResponse {
        contacts: records.iter().map(convert::contact_to_proto).collect(),
        next_page_token,
    }))
}
