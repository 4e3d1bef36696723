//! GetTimeline: one subject's entries, newest first, from the projection.

use rapport_kit::fields::Violation;
use rapport_kit::paging;
use rapport_proto::contacts::v1::get_timeline_request::Subject as Requested;
use rapport_proto::contacts::v1::*;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::State;
use crate::convert;
use crate::error::Error;
use crate::store::timeline::{self as store, Subject};

type Result<T> = std::result::Result<Response<T>, Status>;

/// The most kinds one request filters on.
const MAX_KINDS: usize = 16;

fn subject(requested: Option<&Requested>) -> std::result::Result<(Subject, String), Violation> {
    let id = |field: &str, raw: &str| {
        Uuid::parse_str(raw.trim()).map_err(|_| Violation::new(field, format!("{raw:?} is not a valid id")))
    };
    Ok(match requested {
        Some(Requested::ContactId(raw)) => {
            (Subject::Contact(id("contact_id", raw)?), format!("contact:{raw}"))
        }
        Some(Requested::CompanyId(raw)) => {
            (Subject::Company(id("company_id", raw)?), format!("company:{raw}"))
        }
        Some(Requested::DealId(raw)) => (Subject::Deal(id("deal_id", raw)?), format!("deal:{raw}")),
        Some(Requested::CaseId(raw)) => (Subject::Case(id("case_id", raw)?), format!("case:{raw}")),
        None => {
            return Err(Violation::new(
                "subject",
                "one of contact_id, company_id, deal_id or case_id is required",
            ));
        }
    })
}

fn kinds(raw: &[i32]) -> std::result::Result<Vec<TimelineEntryKind>, Violation> {
    rapport_kit::fields::cap("kinds", raw, MAX_KINDS)?;
    raw.iter()
        .map(|value| match TimelineEntryKind::try_from(*value) {
            Ok(TimelineEntryKind::Unspecified) | Err(_) => {
                Err(Violation::new("kinds", format!("{value} is not a timeline entry kind")))
            }
            Ok(kind) => Ok(kind),
        })
        .collect()
}

pub async fn get(state: &State, request: Request<GetTimelineRequest>) -> Result<GetTimelineResponse> {
    let request = request.into_inner();
    let (subject, key) = subject(request.subject.as_ref()).map_err(Error::from)?;
    let kinds = kinds(&request.kinds).map_err(Error::from)?;
    let page_size = paging::page_size(request.page_size, 50, 200).map_err(Error::from)?;
    let kind_list: Vec<String> = request.kinds.iter().map(ToString::to_string).collect();
    let fingerprint = paging::fingerprint(&["timeline", &key, &kind_list.join(",")]);
    let cursor = paging::decode_token(&request.page_token, &fingerprint).map_err(Error::from)?;
    let (records, more) =
        store::page(&state.pool, subject, &kinds, page_size, cursor.as_ref()).await.map_err(Error::from)?;
    let last = records.last().map(|last| (last.occur_time, last.id));
    let next_page_token = super::time_page_token(&fingerprint, more, last);
    let now = state.config.now.now();
    Ok(Response::new(GetTimelineResponse {
        entries: records.iter().map(|record| convert::timeline_entry_to_proto(record, now)).collect(),
        next_page_token,
    }))
}
