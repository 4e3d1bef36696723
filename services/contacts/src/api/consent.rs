//! ConsentService: recording consent changes and do-not-contact, reading
//! the current state and the history.

use rapport_kit::auth;
use rapport_kit::idempotency::RequestKey;
use rapport_kit::paging;
use rapport_proto::contacts::v1::*;
use tonic::{Request, Response, Status};

use super::State;
use crate::convert;
use crate::domain::ContactId;
use crate::domain::consent::{ConsentDraft, parse_reason};
use crate::error::Error;
use crate::store::Write;
use crate::store::consent as store;

type Result<T> = std::result::Result<Response<T>, Status>;

pub async fn record(state: &State, request: Request<RecordConsentRequest>) -> Result<ConsentEvent> {
    let actor = auth::principal(&request)?.clone();
    let mut request = request.into_inner();
    let input = request.event.clone().unwrap_or_default();
    let id = ContactId::parse("event.contact_id", &input.contact_id).map_err(Error::from)?;
    let draft = ConsentDraft::parse(&input, state.config.now.now()).map_err(Error::from)?;
    let request_id = std::mem::take(&mut request.request_id);
    let key = RequestKey::new(request_id, &request);
    let result = store::record(&state.pool, id, draft, key.write(&actor)).await;
    // An email-marketing change moves the contact's `email_opt_in`.
    if result.as_ref().is_ok_and(|recorded| recorded.contact_changed) {
        state.caches.contacts.invalidate(&id.to_string()).await;
    }
    state.feed.announce();
    Ok(Response::new(result?.response))
}

pub async fn get(state: &State, request: Request<GetConsentRequest>) -> Result<ContactConsent> {
    let id = ContactId::parse("contact_id", &request.get_ref().contact_id).map_err(Error::from)?;
    let record = store::get(&state.pool, id).await?;
    Ok(Response::new(convert::contact_consent_to_proto(&record)))
}

pub async fn history(
    state: &State,
    request: Request<ListConsentHistoryRequest>,
) -> Result<ListConsentHistoryResponse> {
    let request = request.into_inner();
    let id = ContactId::parse("contact_id", &request.contact_id).map_err(Error::from)?;
    let page_size = paging::page_size(request.page_size, 50, 200).map_err(Error::from)?;
    let fingerprint = paging::fingerprint(&["consent-history", &id.to_string()]);
    let cursor = paging::decode_token(&request.page_token, &fingerprint).map_err(Error::from)?;
    let (records, more) = store::history(&state.pool, id, page_size, cursor.as_ref()).await?;
    let last = records.last().map(|last| (last.record_time, last.id));
    Ok(Response::new(ListConsentHistoryResponse {
        entries: records.iter().map(convert::consent_history_entry_to_proto).collect(),
        next_page_token: super::time_page_token(&fingerprint, more, last),
    }))
}

pub async fn set_do_not_contact(
    state: &State,
    request: Request<SetDoNotContactRequest>,
) -> Result<ContactConsent> {
    let actor = auth::principal(&request)?.clone();
    let request = request.into_inner();
    let id = ContactId::parse("contact_id", &request.contact_id).map_err(Error::from)?;
    let reason = parse_reason(request.do_not_contact, &request.reason).map_err(Error::from)?;
    let record =
        store::set_do_not_contact(&state.pool, id, request.do_not_contact, reason, Write::by(&actor)).await?;
    state.feed.announce();
    Ok(Response::new(convert::contact_consent_to_proto(&record)))
}
