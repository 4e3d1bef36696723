//! FindDuplicates: one contact's likely duplicates, or candidate groups
//! across the whole book.

use std::collections::HashMap;

use rapport_kit::error::Problem;
use rapport_kit::paging::{self, Cursor};
use rapport_proto::contacts::v1::*;
use tonic::{Request, Response, Status};

use super::State;
use crate::convert;
use crate::domain::ContactId;
use crate::domain::duplicates::Reason;
use crate::error::Error;
use crate::model::contacts::ContactRecord;
use crate::store::contacts;
use crate::store::duplicates::{self as store, Group, Position, Stage};

type Result<T> = std::result::Result<Response<T>, Status>;

pub async fn find(state: &State, request: Request<FindDuplicatesRequest>) -> Result<FindDuplicatesResponse> {
    let request = request.into_inner();
    let page_size = paging::page_size(request.page_size, 50, 200).map_err(Error::from)?;
    let by_email = !request.exact_email_only;
    if request.contact_id.is_empty() {
        return book(state, &request, page_size as usize, by_email).await;
    }
    let id = ContactId::parse("contact_id", &request.contact_id).map_err(Error::from)?;
    let contact = contacts::get(&state.pool, id).await.map_err(Error::from)?;
    let contact = contact.ok_or_else(|| crate::error::contact_not_found(&request.contact_id))?;
    let phone = state.config.phone_region.e164(&contact.state.phone);
    let candidates =
        store::of_contact(&state.pool, id.uuid(), phone.as_deref(), by_email, page_size as usize)
            .await
            .map_err(Error::from)?;
    let ids: Vec<uuid::Uuid> = candidates.iter().map(|candidate| candidate.id).collect();
    let found = records(state, &ids).await?;
    let me = convert::contact_to_proto(&contact);
    let groups = candidates
        .into_iter()
        .filter_map(|candidate| {
            let other = found.get(&candidate.id)?;
            Some(DuplicateGroup {
                contacts: vec![me.clone(), convert::contact_to_proto(other)],
                score: candidate.score,
                reasons: candidate.reasons.iter().map(|reason| reason_to_proto(*reason) as i32).collect(),
                key: String::new(),
                size: 2,
            })
        })
        .collect();
    Ok(Response::new(FindDuplicatesResponse { groups, next_page_token: String::new() }))
}

async fn book(
    state: &State,
    request: &FindDuplicatesRequest,
    page_size: usize,
    by_email: bool,
) -> Result<FindDuplicatesResponse> {
    let fingerprint = paging::fingerprint(&["duplicates", if by_email { "email" } else { "exact" }]);
    let from = match paging::decode_token(&request.page_token, &fingerprint)? {
        Some(cursor) => position(&cursor.value).ok_or_else(|| {
            Error::from(Problem::invalid_field("INVALID_PAGE_TOKEN", "page_token", "is corrupt"))
        })?,
        None => Position::start(),
    };
    let (groups, next) =
        store::book_page(&state.pool, from, page_size, by_email).await.map_err(Error::from)?;
    let ids: Vec<uuid::Uuid> = groups.iter().flat_map(|group| group.ids.iter().copied()).collect();
    let found = records(state, &ids).await?;
    let next_page_token = next
        .map(|next| {
            let value = format!("{}:{}", next.stage.name(), next.after);
            paging::encode_token(&fingerprint, Cursor { value, id: uuid::Uuid::nil() })
        })
        .unwrap_or_default();
    let groups = groups.into_iter().map(|group| group_to_proto(group, &found)).collect();
    Ok(Response::new(FindDuplicatesResponse { groups, next_page_token }))
}

/// The contacts with these ids, by id.
async fn records(
    state: &State,
    ids: &[uuid::Uuid],
) -> std::result::Result<HashMap<uuid::Uuid, ContactRecord>, Status> {
    let records = contacts::get_many(&state.pool, ids).await.map_err(Error::from)?;
    Ok(records.into_iter().map(|record| (record.id.uuid(), record)).collect())
}

fn group_to_proto(group: Group, found: &HashMap<uuid::Uuid, ContactRecord>) -> DuplicateGroup {
    DuplicateGroup {
        contacts: group.ids.iter().filter_map(|id| found.get(id)).map(convert::contact_to_proto).collect(),
        score: group.score,
        reasons: vec![reason_to_proto(group.reason) as i32],
        key: group.key,
        size: i32::try_from(group.size).unwrap_or(i32::MAX),
    }
}

fn reason_to_proto(reason: Reason) -> DuplicateReason {
    match reason {
        Reason::SameEmail => DuplicateReason::SameEmail,
        Reason::SamePhone => DuplicateReason::SamePhone,
        Reason::SimilarNameSameCompany => DuplicateReason::SimilarNameSameCompany,
        Reason::SimilarNameSameDomain => DuplicateReason::SimilarNameSameDomain,
    }
}

/// The scan position a page token carries, e.g. `phone:+14155552671`.
fn position(value: &str) -> Option<Position> {
    let (stage, after) = value.split_once(':')?;
    Some(Position { stage: Stage::from_name(stage)?, after: after.to_owned() })
}
