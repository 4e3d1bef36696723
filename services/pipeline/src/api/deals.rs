//! `DealService`: see `proto/rapport/pipeline/v1/deals.proto`.

use rapport_kit::auth::{self, Ownership};
use rapport_kit::idempotency::RequestKey;
use rapport_kit::listing::{ListQuery, ListRequest};
use rapport_proto::contacts::v1::LeadSource;
use rapport_proto::pipeline::v1::deal_service_server::DealService;
use rapport_proto::pipeline::v1::*;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Api, State};
use crate::convert::deals::account_warning;
use crate::domain::Violation;
use crate::domain::deal::{DealField, DealInput, lead_source_name};
use crate::domain::ids::{CompanyId, DealId, LostReasonId, PipelineId, StageId};
use crate::domain::search::SearchQuery;
use crate::error::Error;
use crate::store::deals::{self as store, moves::Move};
use crate::store::deals::{search::SearchRequest, stale::StaleRequest};
use crate::store::{Write, invoices};
use rapport_kit::peer::OnBehalf;

type Result<T> = std::result::Result<Response<T>, Status>;

/// Checks the company and contacts the write sets against Contacts, and
/// carries the lead source from the first contact when asked to.
async fn check_references(
    state: &State,
    on: &OnBehalf,
    input: &mut DealInput,
    carry_lead_source: bool,
) -> std::result::Result<(), Error> {
    if input.sets(DealField::CompanyId)
        && let Some(company_id) = input.company_id
    {
        state.contacts.check_company(on, company_id).await?;
    }
    if input.sets(DealField::Contacts) {
        let ids: Vec<_> = input.contacts.iter().map(|(id, _)| *id).collect();
        let contacts = state.contacts.live_contacts(on, &ids).await?;
        if carry_lead_source
            && input.lead_source.is_none()
            && let Some(first) = contacts.first()
        {
            let source = LeadSource::try_from(first.lead_source).unwrap_or_default();
            if source != LeadSource::Unspecified {
                input.lead_source = Some(lead_source_name(source));
            }
            if input.source_campaign_id.is_empty() {
                input.source_campaign_id = first.source_campaign_id.clone();
            }
        }
    }
    Ok(())
}

/// Asks Contacts, with the caller's credentials, about the ids a deal
/// write finds tombstoned in its transaction.
struct Recheck<'a> {
    state: &'a State,
    on: &'a OnBehalf,
}

#[tonic::async_trait]
impl store::references::Recheck for Recheck<'_> {
    async fn gone(&self, company: Option<Uuid>, contacts: &[Uuid]) -> std::result::Result<Vec<Uuid>, Error> {
        let contacts: Vec<_> = contacts.iter().map(|id| (*id).into()).collect();
        self.state.contacts.gone(self.on, company.map(Into::into), &contacts).await
    }
}

/// Fills `account_warning` when the deal's company has overdue invoices.
/// Read from the pool after the commit, so the warning is never stored
/// nor in the change log. A failed read only loses the warning: the write
/// stands, and failing the call would invite a retry.
async fn with_warning(state: &State, mut deal: Deal) -> Deal {
    let Ok(company_id) = CompanyId::parse("company_id", &deal.company_id) else {
        return deal;
    };
    match invoices::standing(&state.pool, company_id, state.config.credit_hold_days).await {
        Ok(standing) => deal.account_warning = account_warning(standing),
        Err(err) => {
            tracing::warn!(deal_id = %deal.id, error = ?err, "account standing unavailable; no account warning")
        }
    }
    deal
}

fn uuid_of(field: &str, raw: &str) -> std::result::Result<Uuid, Error> {
    Ok(DealId::parse(field, raw)?.uuid())
}

async fn create(state: &State, request: Request<CreateDealRequest>) -> Result<Deal> {
    let actor = auth::principal(&request)?.clone();
    let on = OnBehalf::caller(&request);
    let mut request = request.into_inner();
    let deal = request.deal.take().unwrap_or_default();
    let fields: Vec<_> = DealField::ALL.iter().map(|(field, _)| *field).collect();
    let mut input = DealInput::parse(&deal, &fields).map_err(Error::from)?;
    if input.stage_id.is_some() && input.pipeline_id.is_none() {
        // A stage names its pipeline only within one; keep the contract's
        // "stage of the pipeline" check simple by requiring both.
        return Err(Error::from(Violation::new("deal.pipeline_id", "is required with stage_id")).into());
    }
    let (owner, team) = Ownership::defaults(&actor, &input.owner_id, &input.team_id);
    (input.owner_id, input.team_id) = (owner.to_owned(), team.to_owned());
    check_references(state, &on, &mut input, true).await?;
    let request_id = std::mem::take(&mut request.request_id);
    request.deal = Some(deal);
    let key = RequestKey::new(request_id, &request);
    let write = key.write(&actor);
    let recheck = Recheck { state, on: &on };
    let created = store::create(&state.pool, &input, write, &recheck).await;
    state.written(&created);
    Ok(Response::new(with_warning(state, created?).await))
}

async fn update(state: &State, request: Request<UpdateDealRequest>) -> Result<Deal> {
    let actor = auth::principal(&request)?.clone();
    let on = OnBehalf::caller(&request);
    let request = request.into_inner();
    let deal = request.deal.unwrap_or_default();
    let id = DealId::parse("deal.id", &deal.id).map_err(Error::from)?;
    let paths = request.update_mask.map(|mask| mask.paths).unwrap_or_default();
    let fields = DealField::parse_mask(&paths).map_err(Error::from)?;
    let mut input = DealInput::parse(&deal, &fields).map_err(Error::from)?;
    check_references(state, &on, &mut input, false).await?;
    let recheck = Recheck { state, on: &on };
    let write = Write::by(&actor);
    let updated = store::update(&state.pool, id, &deal.etag, &input, write, &recheck).await;
    state.written(&updated);
    Ok(Response::new(with_warning(state, updated?).await))
}

async fn set_deleted<T>(
    state: &State,
    request: &Request<T>,
    id: &str,
    etag: &str,
    deleted: bool,
) -> Result<Deal> {
    let actor = auth::principal(request)?.clone();
    let on = OnBehalf::caller(request);
    let id = DealId::parse("id", id).map_err(Error::from)?;
    let recheck = Recheck { state, on: &on };
    let write = Write::by(&actor);
    let result = store::set_deleted(&state.pool, id, etag, deleted, write, &recheck).await;
    state.written(&result);
    Ok(Response::new(result?))
}

/// The idempotency key of a move: its `request_id` and the rest of the
/// request.
fn move_key<M: prost::Message + Clone>(
    request: &Request<M>,
    request_id: fn(&mut M) -> &mut String,
) -> RequestKey {
    let mut rest = request.get_ref().clone();
    let id = std::mem::take(request_id(&mut rest));
    RequestKey::new(id, &rest)
}

async fn apply_move<T>(
    state: &State,
    (request, key): (&Request<T>, RequestKey),
    id: &str,
    etag: &str,
    action: Move<'_>,
) -> Result<Deal> {
    let actor = auth::principal(request)?.clone();
    let id = uuid_of("id", id)?;
    let warn = matches!(action, Move::Stage { .. } | Move::Win);
    let result = store::moves::apply(&state.pool, id, etag, action, key.write(&actor)).await;
    state.written(&result);
    let deal = result?;
    Ok(Response::new(if warn { with_warning(state, deal).await } else { deal }))
}

fn lost_detail(detail: &str) -> std::result::Result<&str, Error> {
    if detail.chars().count() > 1000 {
        return Err(Violation::new("lost_reason_detail", "must be at most 1000 characters").into());
    }
    Ok(detail.trim())
}

#[tonic::async_trait]
impl DealService for Api {
    async fn create_deal(&self, request: Request<CreateDealRequest>) -> Result<Deal> {
        create(&self.state, request).await
    }

    async fn get_deal(&self, request: Request<GetDealRequest>) -> Result<Deal> {
        let id = DealId::parse("id", &request.get_ref().id).map_err(Error::from)?;
        let scope = self.state.deal_scope(auth::principal(&request)?);
        Ok(Response::new(readable(&scope, store::get(&self.state.pool, id).await?)?))
    }

    async fn update_deal(&self, request: Request<UpdateDealRequest>) -> Result<Deal> {
        update(&self.state, request).await
    }

    async fn delete_deal(&self, request: Request<DeleteDealRequest>) -> Result<Deal> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        set_deleted(&self.state, &request, &id, &etag, true).await
    }

    async fn undelete_deal(&self, request: Request<UndeleteDealRequest>) -> Result<Deal> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        set_deleted(&self.state, &request, &id, &etag, false).await
    }

    async fn list_deals(&self, request: Request<ListDealsRequest>) -> Result<ListDealsResponse> {
        let scope = self.state.deal_scope(auth::principal(&request)?);
        let request = request.into_inner();
        let list = ListRequest {
            filter: &request.filter,
            order_by: &request.order_by,
            page_size: request.page_size,
            page_token: &request.page_token,
            show_deleted: request.show_deleted,
        };
        let mut query = ListQuery::parse(&list, &store::list::LIST).map_err(Error::from)?;
        if !scope.is_all() {
            query.and(|first| scope.condition(store::SCOPE_COLUMNS, first));
        }
        let (deals, next_page_token) = store::list::list(&self.state.pool, &query).await?;
        Ok(Response::new(ListDealsResponse { deals, next_page_token }))
    }

    async fn search_deals(&self, request: Request<SearchDealsRequest>) -> Result<SearchDealsResponse> {
        let scope = self.state.deal_scope(auth::principal(&request)?);
        let request = request.into_inner();
        let query = SearchQuery::parse("query", &request.query).map_err(Error::from)?;
        let status = match DealStatus::try_from(request.status) {
            Ok(DealStatus::Unspecified) => None,
            Ok(status) => Some(status.as_str_name().trim_start_matches("DEAL_STATUS_")),
            Err(_) => return Err(Error::from(Violation::new("status", "is not a DealStatus")).into()),
        };
        let search = SearchRequest {
            query: &query,
            status,
            page_size: request.page_size,
            page_token: &request.page_token,
            scope: &scope,
        };
        let (deals, next_page_token) = store::search::search(&self.state.pool, &search).await?;
        Ok(Response::new(SearchDealsResponse { deals, next_page_token }))
    }

    async fn move_deal_stage(&self, request: Request<MoveDealStageRequest>) -> Result<Deal> {
        let body = request.get_ref();
        let stage_id = StageId::parse("stage_id", &body.stage_id).map_err(Error::from)?.uuid();
        let detail = lost_detail(&body.lost_reason_detail)?.to_owned();
        let lost_reason = if body.lost_reason_id.is_empty() {
            None
        } else {
            Some(LostReasonId::parse("lost_reason_id", &body.lost_reason_id).map_err(Error::from)?.uuid())
        };
        let (id, etag) = (body.id.clone(), body.etag.clone());
        let action =
            Move::Stage { stage_id, lost_reason: lost_reason.map(|reason| (reason, detail.as_str())) };
        let key = move_key(&request, |rest| &mut rest.request_id);
        apply_move(&self.state, (&request, key), &id, &etag, action).await
    }

    async fn win_deal(&self, request: Request<WinDealRequest>) -> Result<Deal> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        let key = move_key(&request, |rest| &mut rest.request_id);
        apply_move(&self.state, (&request, key), &id, &etag, Move::Win).await
    }

    async fn lose_deal(&self, request: Request<LoseDealRequest>) -> Result<Deal> {
        let body = request.get_ref();
        let lost_reason_id =
            LostReasonId::parse("lost_reason_id", &body.lost_reason_id).map_err(Error::from)?.uuid();
        let detail = lost_detail(&body.lost_reason_detail)?.to_owned();
        let (id, etag) = (body.id.clone(), body.etag.clone());
        let key = move_key(&request, |rest| &mut rest.request_id);
        apply_move(&self.state, (&request, key), &id, &etag, Move::Lose { lost_reason_id, detail: &detail })
            .await
    }

    async fn reopen_deal(&self, request: Request<ReopenDealRequest>) -> Result<Deal> {
        let body = request.get_ref();
        let stage_id = if body.stage_id.is_empty() {
            None
        } else {
            Some(StageId::parse("stage_id", &body.stage_id).map_err(Error::from)?.uuid())
        };
        let (id, etag) = (body.id.clone(), body.etag.clone());
        {
            let key = move_key(&request, |rest| &mut rest.request_id);
            apply_move(&self.state, (&request, key), &id, &etag, Move::Reopen { stage_id }).await
        }
    }

    async fn get_deal_history(&self, request: Request<GetDealHistoryRequest>) -> Result<DealHistory> {
        let id = DealId::parse("id", &request.get_ref().id).map_err(Error::from)?;
        let scope = self.state.deal_scope(auth::principal(&request)?);
        if !scope.is_all() {
            readable(&scope, store::get(&self.state.pool, id).await?)?;
        }
        Ok(Response::new(store::history::get(&self.state.pool, id).await?))
    }

    async fn list_stale_deals(
        &self,
        request: Request<ListStaleDealsRequest>,
    ) -> Result<ListStaleDealsResponse> {
        let scope = self.state.deal_scope(auth::principal(&request)?);
        let request = request.into_inner();
        let pipeline_id = match request.pipeline_id.trim() {
            "" => None,
            raw => Some(PipelineId::parse("pipeline_id", raw).map_err(Error::from)?),
        };
        let owner_id =
            rapport_kit::fields::text("owner_id", &request.owner_id, false, 256).map_err(Error::from)?;
        let stale = StaleRequest {
            pipeline_id,
            owner_id: &owner_id,
            page_size: request.page_size,
            page_token: &request.page_token,
            scope: &scope,
        };
        let (deals, next_page_token) = store::stale::list(&self.state.pool, &stale).await?;
        Ok(Response::new(ListStaleDealsResponse { deals, next_page_token }))
    }
}

/// `deal` when `scope` may read it, else `PERMISSION_DENIED` `NOT_IN_TEAM`.
fn readable(scope: &auth::ReadScope, deal: Deal) -> std::result::Result<Deal, Status> {
    if scope.may_read(super::deal_owned(&deal)) {
        Ok(deal)
    } else {
        Err(auth::ReadScope::refusal("deal").into_status())
    }
}
