//! Company RPCs.

use rapport_kit::auth::{self, Ownership};
use rapport_kit::idempotency::RequestKey;
use rapport_proto::contacts::v1::*;
use tonic::{Request, Response, Status};

use super::State;
use super::query::COMPANY_LIST;
use crate::convert;
use crate::domain::{CompanyDraft, CompanyField, CompanyId};
use crate::error::Error;
use crate::store::Write;
use crate::store::companies as store;
use rapport_kit::listing::{ListQuery, ListRequest};

type Result<T> = std::result::Result<Response<T>, Status>;

pub async fn create(state: &State, request: Request<CreateCompanyRequest>) -> Result<Company> {
    let actor = auth::principal(&request)?.clone();
    let mut request = request.into_inner();
    let input = request.company.take().unwrap_or_default();
    let mut company = CompanyDraft::parse(&input, &CompanyField::ALL).map_err(Error::from)?.into_new();
    let assign = super::assignable(&actor, &company.owner_id);
    let (owner, team) = Ownership::defaults(&actor, &company.owner_id, &company.team_id);
    (company.owner_id, company.team_id) = (owner.to_owned(), team.to_owned());
    let request_id = std::mem::take(&mut request.request_id);
    request.company = Some(input);
    let key = RequestKey::new(request_id, &request);
    let write = key.write(&actor);
    let created = store::create(&state.pool, company, write, assign).await?;
    state.feed.announce();
    Ok(Response::new(created))
}

pub async fn get(state: &State, request: Request<GetCompanyRequest>) -> Result<Company> {
    let id = CompanyId::parse("id", &request.get_ref().id).map_err(Error::from)?;
    let pool = &state.pool;
    let found = state
        .caches
        .companies
        .get_or_load(&id.to_string(), || async move {
            store::get(pool, id).await.map(|found| found.map(|record| convert::company_to_proto(&record)))
        })
        .await
        .map_err(|err| crate::error::load_failed(&err, "company"))?;
    match found {
        Some(company) => Ok(Response::new(company.as_ref().clone())),
        None => Err(crate::error::company_not_found(id).into()),
    }
}

pub async fn update(state: &State, request: Request<UpdateCompanyRequest>) -> Result<Company> {
    let actor = auth::principal(&request)?.clone();
    let request = request.into_inner();
    let input = request.company.unwrap_or_default();
    let id = CompanyId::parse("company.id", &input.id).map_err(Error::from)?;
    let paths = request.update_mask.map(|mask| mask.paths).unwrap_or_default();
    let fields = CompanyField::parse_mask(&paths).map_err(Error::from)?;
    let draft = CompanyDraft::parse(&input, &fields).map_err(Error::from)?;
    let updated = store::update(&state.pool, id, &input.etag, &draft, Write::by(&actor)).await;
    state.written(&state.caches.companies, &id.to_string(), &updated).await;
    Ok(Response::new(updated?))
}

pub async fn set_deleted<T>(
    state: &State,
    request: &Request<T>,
    id: &str,
    etag: &str,
    deleted: bool,
) -> Result<Company> {
    let actor = auth::principal(request)?.clone();
    let id = CompanyId::parse("id", id).map_err(Error::from)?;
    let result = store::set_deleted(&state.pool, id, etag, deleted, Write::by(&actor)).await;
    state.written(&state.caches.companies, &id.to_string(), &result).await;
    Ok(Response::new(result?))
}

pub async fn list(state: &State, request: Request<ListCompaniesRequest>) -> Result<ListCompaniesResponse> {
    let request = request.into_inner();
    let list = ListRequest {
        filter: &request.filter,
        order_by: &request.order_by,
        page_size: request.page_size,
        page_token: &request.page_token,
        show_deleted: request.show_deleted,
    };
    let query = ListQuery::parse(&list, &COMPANY_LIST).map_err(Error::from)?;
    let (records, next_page_token) = store::list(&state.pool, &query).await?;
    Ok(Response::new(ListCompaniesResponse {
        companies: records.iter().map(convert::company_to_proto).collect(),
        next_page_token,
    }))
}
