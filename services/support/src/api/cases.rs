//! `CaseService`: see `proto/rapport/support/v1/cases.proto`.

use std::sync::Arc;

use rapport_kit::auth::{self, Ownership, Role};
use rapport_kit::changelog::{FeedReads, Visible, WatchStream};
use rapport_kit::idempotency::RequestKey;
use rapport_kit::listing::{ListQuery, ListRequest};
use rapport_kit::peer::OnBehalf;
use rapport_proto::support::v1::case_service_server::CaseService;
use rapport_proto::support::v1::*;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Api, State};
use crate::domain::case::{CaseField, CaseInput, parse_number};
use crate::domain::comment::{Author, CommentInput};
use crate::domain::ids::CaseId;
use crate::error::{self, Error, resource};
use crate::store::Write;
use crate::store::cases::{self as store, Placement};
use crate::store::comments::{self, NewComment};
use crate::store::outbox::Recipient;

type Result<T> = std::result::Result<Response<T>, Status>;

/// Checks the requester and company a write names against Contacts.
async fn check_references(state: &State, on: &OnBehalf, input: &CaseInput) -> std::result::Result<(), Error> {
    if input.sets(CaseField::Requester)
        && let Some(requester) = input.requester
    {
        state.contacts.check_contact(on, requester).await?;
    }
    if input.sets(CaseField::CompanyId)
        && let Some(company) = input.company_id
    {
        state.contacts.check_company(on, company).await?;
    }
    Ok(())
}

fn case_id(field: &str, raw: &str) -> std::result::Result<Uuid, Error> {
    Ok(CaseId::parse(field, raw)?.uuid())
}

async fn create(state: &State, request: Request<CreateCaseRequest>) -> Result<Case> {
    let actor = auth::principal(&request)?.clone();
    let on = OnBehalf::caller(&request);
    let mut request = request.into_inner();
    let case = request.case.take().unwrap_or_default();
    let fields: Vec<_> = CaseField::ALL.iter().map(|(field, _)| *field).collect();
    let input = CaseInput::parse(&case, &fields).map_err(Error::from)?;
    if !matches!(input.status, None | Some(CaseStatus::New | CaseStatus::Open)) {
        return Err(Error::from(rapport_kit::fields::Violation::new(
            "case.status",
            "a case starts NEW or OPEN",
        ))
        .into());
    }
    let assignee =
        rapport_kit::fields::text("case.assignee_id", &case.assignee_id, false, 200).map_err(Error::from)?;
    let team = rapport_kit::fields::text("case.team_id", &case.team_id, false, 200).map_err(Error::from)?;
    let team = Ownership::defaults(&actor, "", &team).1.to_owned();
    let placement = Placement { assignee_id: &assignee, team_id: &team };
    check_references(state, &on, &input).await?;
    let request_id = std::mem::take(&mut request.request_id);
    request.case = Some(case.clone());
    let key = RequestKey::new(request_id, &request);
    let write = key.write(&actor);
    let ctx = state.ctx();
    let created = async {
        let mut tx = state.pool.begin().await?;
        let (case, _) = store::create(&mut tx, &input, placement, write, ctx).await?;
        tx.commit().await?;
        Ok::<_, Error>(case)
    }
    .await;
    state.written(&created);
    Ok(Response::new(created?))
}

async fn update(state: &State, request: Request<UpdateCaseRequest>) -> Result<Case> {
    let actor = auth::principal(&request)?.clone();
    let on = OnBehalf::caller(&request);
    let request = request.into_inner();
    let case = request.case.unwrap_or_default();
    let id = case_id("case.id", &case.id)?;
    let paths = request.update_mask.map(|mask| mask.paths).unwrap_or_default();
    let fields = CaseField::parse_mask(&paths).map_err(Error::from)?;
    let input = CaseInput::parse(&case, &fields).map_err(Error::from)?;
    check_references(state, &on, &input).await?;
    let resolving = input.sets(CaseField::Status) && input.status == Some(CaseStatus::Resolved);
    let recipient = match resolving {
        true => {
            let requester = store::requester_of(&state.pool, id).await?;
            recipient(state, &on, requester).await?
        }
        false => None,
    };
    let write = Write::by(&actor);
    let updated =
        store::update(&state.pool, (id, &case.etag), &input, recipient.as_ref(), write, state.ctx()).await;
    state.written(&updated);
    Ok(Response::new(updated?))
}

/// The requester `contact_id` as a mail recipient, when mail is configured
/// and the contact has an address.
async fn recipient(
    state: &State,
    on: &OnBehalf,
    contact_id: Uuid,
) -> std::result::Result<Option<Recipient>, Error> {
    if state.config.mail.is_none() {
        return Ok(None);
    }
    let contact = state.contacts.contact(on, contact_id.into()).await?;
    if contact.email.is_empty() {
        return Ok(None);
    }
    let name = format!("{} {}", contact.given_name, contact.family_name).trim().to_owned();
    Ok(Some(Recipient { address: contact.email, name }))
}

/// Integrations act for requesters: they never read internal notes.
fn may_read_internal(principal: &auth::Principal) -> bool {
    !principal.has(Role::Integration) || principal.has(Role::Admin)
}

#[tonic::async_trait]
impl CaseService for Api {
    async fn create_case(&self, request: Request<CreateCaseRequest>) -> Result<Case> {
        create(&self.state, request).await
    }

    async fn get_case(&self, request: Request<GetCaseRequest>) -> Result<Case> {
        let raw = request.get_ref().id.trim();
        let prefix = &self.state.config.case_number_prefix;
        let (id, number) = match parse_number(prefix, raw) {
            Some(number) => (None, Some(number)),
            None => (Some(case_id("id", raw)?), None),
        };
        let (record, sla) = store::get(&self.state.pool, (id, number), &self.state.sla).await?;
        let ctx = self.state.ctx();
        let view = crate::convert::View { prefix: ctx.prefix, now: ctx.now, calendars: sla.as_ref() };
        Ok(Response::new(crate::convert::case_to_proto(&record, view)?))
    }

    async fn update_case(&self, request: Request<UpdateCaseRequest>) -> Result<Case> {
        update(&self.state, request).await
    }

    async fn assign_case(&self, request: Request<AssignCaseRequest>) -> Result<Case> {
        let actor = auth::principal(&request)?.clone();
        let request = request.into_inner();
        let id = case_id("id", &request.id)?;
        let assignee = rapport_kit::fields::text("assignee_id", &request.assignee_id, false, 200)
            .map_err(Error::from)?;
        let team = rapport_kit::fields::text("team_id", &request.team_id, false, 200).map_err(Error::from)?;
        let to = Placement { assignee_id: &assignee, team_id: &team };
        let assigned =
            store::assign(&self.state.pool, id, &request.etag, to, Write::by(&actor), self.state.ctx()).await;
        self.state.written(&assigned);
        Ok(Response::new(assigned?))
    }

    async fn delete_case(&self, request: Request<DeleteCaseRequest>) -> Result<Case> {
        let actor = auth::principal(&request)?.clone();
        let id = case_id("id", &request.get_ref().id)?;
        let etag = &request.get_ref().etag;
        let result =
            store::set_deleted(&self.state.pool, id, etag, true, Write::by(&actor), self.state.ctx()).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }

    async fn undelete_case(&self, request: Request<UndeleteCaseRequest>) -> Result<Case> {
        let actor = auth::principal(&request)?.clone();
        let id = case_id("id", &request.get_ref().id)?;
        let etag = &request.get_ref().etag;
        let result =
            store::set_deleted(&self.state.pool, id, etag, false, Write::by(&actor), self.state.ctx()).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }

    async fn list_cases(&self, request: Request<ListCasesRequest>) -> Result<ListCasesResponse> {
        let request = request.into_inner();
        let list = ListRequest {
            filter: &request.filter,
            order_by: &request.order_by,
            page_size: request.page_size,
            page_token: &request.page_token,
            show_deleted: request.show_deleted,
        };
        let query = ListQuery::parse(&list, &store::LIST).map_err(Error::from)?;
        let (cases, next_page_token) =
            store::list(&self.state.pool, &query, self.state.ctx(), &self.state.sla).await?;
        Ok(Response::new(ListCasesResponse { cases, next_page_token }))
    }

    async fn search_cases(&self, request: Request<SearchCasesRequest>) -> Result<SearchCasesResponse> {
        let request = request.into_inner();
        let query = rapport_kit::search::SearchQuery::parse("query", &request.query).map_err(Error::from)?;
        let page = (request.page_size, request.page_token.as_str());
        let (cases, next_page_token) = crate::store::search::cases(
            &self.state.pool,
            &query,
            request.open_only,
            page,
            self.state.ctx(),
            &self.state.sla,
        )
        .await?;
        Ok(Response::new(SearchCasesResponse { cases, next_page_token }))
    }

    async fn add_comment(&self, request: Request<AddCommentRequest>) -> Result<AddCommentResponse> {
        let actor = auth::principal(&request)?.clone();
        let on = OnBehalf::caller(&request);
        let mut request = request.into_inner();
        let id = case_id("case_id", &request.case_id)?;
        let comment = request.comment.clone().unwrap_or_default();
        let input = CommentInput::parse(&comment).map_err(Error::from)?;
        if input.author == Author::Requester && !(actor.has(Role::Integration) || actor.has(Role::Admin)) {
            return Err(error::requester_comment_denied().into());
        }
        let requester = store::requester_of(&self.state.pool, id).await?;
        let author_id = match input.author {
            Author::Requester => requester.to_string(),
            Author::Agent => actor.subject.clone(),
        };
        let request_id = std::mem::take(&mut request.request_id);
        let key = RequestKey::new(request_id, &request);
        let window =
            chrono::Duration::from_std(self.state.config.reopen_window).unwrap_or(chrono::Duration::MAX);
        let recipient = match (input.author, input.internal) {
            (Author::Agent, false) => recipient(&self.state, &on, requester).await?,
            _ => None,
        };
        let new = NewComment {
            case_id: id,
            input: &input,
            author_id,
            message_id: "",
            reopen_window: window,
            recipient: recipient.as_ref(),
        };
        let added = comments::add(&self.state.pool, new, key.write(&actor), self.state.ctx()).await;
        self.state.written(&added);
        Ok(Response::new(added?))
    }

    async fn list_comments(&self, request: Request<ListCommentsRequest>) -> Result<ListCommentsResponse> {
        let principal = auth::principal(&request)?.clone();
        let request = request.into_inner();
        let id = case_id("case_id", &request.case_id)?;
        if request.include_internal && !may_read_internal(&principal) {
            return Err(error::internal_notes_hidden().into());
        }
        let page_size = rapport_kit::paging::page_size(request.page_size, 100, 500).map_err(Error::from)?;
        let (comments, next_page_token) =
            comments::list(&self.state.pool, id, request.include_internal, page_size, &request.page_token)
                .await?;
        Ok(Response::new(ListCommentsResponse { comments, next_page_token }))
    }

    async fn merge_cases(&self, request: Request<MergeCasesRequest>) -> Result<Case> {
        let actor = auth::principal(&request)?.clone();
        let survivor = case_id("survivor_case_id", &request.get_ref().survivor_case_id)?;
        let merged = case_id("merged_case_id", &request.get_ref().merged_case_id)?;
        let result =
            store::merge(&self.state.pool, survivor, merged, Write::by(&actor), self.state.ctx()).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }

    async fn ingest_email(&self, request: Request<IngestEmailRequest>) -> Result<IngestEmailResponse> {
        let actor = auth::principal(&request)?.clone();
        let on = OnBehalf::caller(&request);
        let request = request.into_inner();
        let inbound = crate::domain::email::parse(&request.raw_message).map_err(Error::from)?;
        let team_id =
            rapport_kit::fields::text("team_id", &request.team_id, false, 200).map_err(Error::from)?;
        let (contact, contact_created) =
            self.state.contacts.find_or_create(&on, &inbound.from_address, &inbound.from_name).await?;
        let requester =
            crate::domain::ids::ContactId::parse("requester", &contact.id).map_err(Error::from)?;
        let window =
            chrono::Duration::from_std(self.state.config.reopen_window).unwrap_or(chrono::Duration::MAX);
        let ingest = crate::store::emails::Ingest {
            inbound: &inbound,
            requester: requester.uuid(),
            team_id: &team_id,
            reopen_window: window,
        };
        let result =
            crate::store::emails::ingest(&self.state.pool, ingest, Write::by(&actor), self.state.ctx()).await;
        self.state.written(&result);
        let mut response = result?;
        response.contact_created = contact_created && !response.duplicate;
        Ok(Response::new(response))
    }

    type WatchChangesStream = WatchStream<WatchChangesResponse>;

    async fn watch_changes(&self, request: Request<WatchChangesRequest>) -> Result<Self::WatchChangesStream> {
        let policies = crate::policy::policies();
        let reads = FeedReads { reads: crate::policy::FEED_READS, policies: &policies };
        self.state.feed.serve_visible(request, &reads, |principal| {
            (!may_read_internal(principal)).then(public_comments_only)
        })
    }
}

/// The stream predicate of callers who never read internal notes.
fn public_comments_only() -> Visible {
    Arc::new(|change: &rapport_proto::common::v1::ChangeEvent| {
        let public = change.resource_type != resource::COMMENT
            || change
                .resource
                .as_ref()
                .and_then(|any| <Comment as prost::Message>::decode(any.value.as_slice()).ok())
                .is_some_and(|comment| !comment.internal);
        Box::pin(async move { public })
    })
}
