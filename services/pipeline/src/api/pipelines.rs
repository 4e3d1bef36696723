//! `PipelineService`: see `proto/rapport/pipeline/v1/pipelines.proto`.

use rapport_kit::idempotency::RequestKey;

use rapport_kit::auth;
use rapport_kit::changelog::{FeedReads, WatchStream};
use rapport_kit::paging;
use rapport_proto::pipeline::v1::pipeline_service_server::PipelineService;
use rapport_proto::pipeline::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::domain::Violation;
use crate::domain::ids::{LostReasonId, PipelineId, StageId};
use crate::domain::pipeline::{
    self as rules, MAX_STAGES, PipelineDraft, PipelinePatch, StageDraft, StagePatch,
};
use crate::error::{Error, resource};
use crate::store::{Write, lost_reasons, pipelines as store, stages};

type Result<T> = std::result::Result<Response<T>, Status>;

/// The caller.
fn actor<T>(request: &Request<T>) -> std::result::Result<auth::Principal, Status> {
    Ok(auth::principal(request)?.clone())
}

fn pipeline_id(field: &str, raw: &str) -> std::result::Result<PipelineId, Error> {
    Ok(PipelineId::parse(field, raw)?)
}

fn stage_id(field: &str, raw: &str) -> std::result::Result<StageId, Error> {
    Ok(StageId::parse(field, raw)?)
}

/// The update mask's paths.
fn paths(mask: Option<prost_types::FieldMask>) -> Vec<String> {
    mask.map(|mask| mask.paths).unwrap_or_default()
}

#[tonic::async_trait]
impl PipelineService for Api {
    async fn create_pipeline(&self, request: Request<CreatePipelineRequest>) -> Result<Pipeline> {
        let actor = actor(&request)?;
        let mut request = request.into_inner();
        let draft =
            PipelineDraft::parse(&request.pipeline.clone().unwrap_or_default()).map_err(Error::from)?;
        let request_id = std::mem::take(&mut request.request_id);
        let key = RequestKey::new(request_id, &request);
        let write = key.write(&actor);
        let created = store::create(&self.state.pool, &draft, write).await;
        self.state.written(&created);
        Ok(Response::new(created?))
    }

    async fn get_pipeline(&self, request: Request<GetPipelineRequest>) -> Result<Pipeline> {
        let id = pipeline_id("id", &request.get_ref().id)?;
        Ok(Response::new(store::get(&self.state.pool, id).await?))
    }

    async fn update_pipeline(&self, request: Request<UpdatePipelineRequest>) -> Result<Pipeline> {
        let actor = actor(&request)?;
        let request = request.into_inner();
        let input = request.pipeline.unwrap_or_default();
        let id = pipeline_id("pipeline.id", &input.id);
        let patch = PipelinePatch::parse(&input, &paths(request.update_mask));
        let (id, patch) = match (id, patch) {
            (Ok(id), Ok(patch)) => (id, patch),
            (id, patch) => return Err(invalid(id.err(), patch.err()).into()),
        };
        let write = Write::by(&actor);
        let updated = store::update(&self.state.pool, id, &input.etag, &patch, write).await;
        self.state.written(&updated);
        Ok(Response::new(updated?))
    }

    async fn delete_pipeline(&self, request: Request<DeletePipelineRequest>) -> Result<Pipeline> {
        let actor = actor(&request)?;
        let id = pipeline_id("id", &request.get_ref().id)?;
        let write = Write::by(&actor);
        let result = store::set_deleted(&self.state.pool, id, &request.get_ref().etag, true, write).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }

    async fn undelete_pipeline(&self, request: Request<UndeletePipelineRequest>) -> Result<Pipeline> {
        let actor = actor(&request)?;
        let id = pipeline_id("id", &request.get_ref().id)?;
        let write = Write::by(&actor);
        let result = store::set_deleted(&self.state.pool, id, &request.get_ref().etag, false, write).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }

    async fn list_pipelines(&self, request: Request<ListPipelinesRequest>) -> Result<ListPipelinesResponse> {
        let request = request.into_inner();
        let page_size = paging::page_size(request.page_size, 50, 200).map_err(Error::from)?;
        let fingerprint =
            paging::fingerprint(&["pipelines", if request.show_deleted { "deleted" } else { "live" }]);
        let cursor = paging::decode_token(&request.page_token, &fingerprint).map_err(Error::from)?;
        let (pipelines, next) =
            store::list(&self.state.pool, page_size, cursor.as_ref(), request.show_deleted).await?;
        let next_page_token =
            next.map(|cursor| paging::encode_token(&fingerprint, cursor)).unwrap_or_default();
        Ok(Response::new(ListPipelinesResponse { pipelines, next_page_token }))
    }

    async fn add_stage(&self, request: Request<AddStageRequest>) -> Result<Pipeline> {
        let actor = actor(&request)?;
        let request = request.into_inner();
        let mut violations = Vec::new();
        let id = pipeline_id("pipeline_id", &request.pipeline_id)
            .map_err(|err| collect(err, &mut violations))
            .ok();
        let draft = StageDraft::parse("stage", &request.stage.unwrap_or_default())
            .map_err(|mut found| violations.append(&mut found))
            .ok();
        let position = match request.position {
            Some(position) if position < 0 => {
                violations.push(Violation::new("position", "must not be negative"));
                None
            }
            position => position.map(i32::unsigned_abs),
        };
        let (Some(id), Some(draft)) = (id, draft) else { return Err(Error::Invalid(violations).into()) };
        if !violations.is_empty() {
            return Err(Error::Invalid(violations).into());
        }
        let write = Write::by(&actor);
        let result = stages::add(&self.state.pool, id, &request.etag, (&draft, position), write).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }

    async fn update_stage(&self, request: Request<UpdateStageRequest>) -> Result<Pipeline> {
        let actor = actor(&request)?;
        let request = request.into_inner();
        let input = request.stage.unwrap_or_default();
        let mut violations = Vec::new();
        let id = pipeline_id("pipeline_id", &request.pipeline_id)
            .map_err(|err| collect(err, &mut violations))
            .ok();
        let stage = stage_id("stage.id", &input.id).map_err(|err| collect(err, &mut violations)).ok();
        let patch = StagePatch::parse(&input, &paths(request.update_mask))
            .map_err(|mut found| violations.append(&mut found))
            .ok();
        let (Some(id), Some(stage), Some(patch)) = (id, stage, patch) else {
            return Err(Error::Invalid(violations).into());
        };
        let write = Write::by(&actor);
        let result = stages::update(&self.state.pool, (id, stage), &request.etag, &patch, write).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }

    async fn reorder_stages(&self, request: Request<ReorderStagesRequest>) -> Result<Pipeline> {
        let actor = actor(&request)?;
        let request = request.get_ref();
        rapport_kit::fields::cap("stage_ids", &request.stage_ids, MAX_STAGES).map_err(Error::from)?;
        let mut violations = Vec::new();
        let id = pipeline_id("pipeline_id", &request.pipeline_id)
            .map_err(|err| collect(err, &mut violations))
            .ok();
        let order: Vec<StageId> = request
            .stage_ids
            .iter()
            .enumerate()
            .filter_map(|(index, raw)| {
                stage_id(&format!("stage_ids[{index}]"), raw)
                    .map_err(|err| collect(err, &mut violations))
                    .ok()
            })
            .collect();
        let Some(id) = id.filter(|_| violations.is_empty()) else {
            return Err(Error::Invalid(violations).into());
        };
        let write = Write::by(&actor);
        let result = stages::reorder(&self.state.pool, id, &request.etag, &order, write).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }

    async fn retire_stage(&self, request: Request<RetireStageRequest>) -> Result<Pipeline> {
        let actor = actor(&request)?;
        let request = request.get_ref();
        self.set_stage_retired(&actor, (&request.pipeline_id, &request.stage_id), &request.etag, true).await
    }

    async fn unretire_stage(&self, request: Request<UnretireStageRequest>) -> Result<Pipeline> {
        let actor = actor(&request)?;
        let request = request.get_ref();
        self.set_stage_retired(&actor, (&request.pipeline_id, &request.stage_id), &request.etag, false).await
    }

    async fn create_lost_reason(&self, request: Request<CreateLostReasonRequest>) -> Result<LostReason> {
        let actor = actor(&request)?;
        let mut request = request.into_inner();
        let input = request.lost_reason.clone().unwrap_or_default();
        let label = rules::lost_reason_label("lost_reason.label", &input.label).map_err(Error::from)?;
        let request_id = std::mem::take(&mut request.request_id);
        let key = RequestKey::new(request_id, &request);
        let write = key.write(&actor);
        let created = lost_reasons::create(&self.state.pool, &label, write).await;
        self.state.written(&created);
        Ok(Response::new(created?))
    }

    async fn update_lost_reason(&self, request: Request<UpdateLostReasonRequest>) -> Result<LostReason> {
        let actor = actor(&request)?;
        let request = request.into_inner();
        let input = request.lost_reason.unwrap_or_default();
        let mut violations = Vec::new();
        let id = LostReasonId::parse("lost_reason.id", &input.id).map_err(|v| violations.push(v)).ok();
        let fields = rules::parse_mask(&paths(request.update_mask), rules::LOST_REASON_FIELDS)
            .map_err(|mut found| violations.append(&mut found))
            .unwrap_or_default();
        let label = if fields.contains(&"label") {
            rules::lost_reason_label("lost_reason.label", &input.label).map_err(|v| violations.push(v)).ok()
        } else {
            None
        };
        let retired = fields.contains(&"retired").then_some(input.retired);
        let Some(id) = id.filter(|_| violations.is_empty()) else {
            return Err(Error::Invalid(violations).into());
        };
        let write = Write::by(&actor);
        let result =
            lost_reasons::update(&self.state.pool, id, &input.etag, (label.as_deref(), retired), write).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }

    async fn list_lost_reasons(
        &self,
        request: Request<ListLostReasonsRequest>,
    ) -> Result<ListLostReasonsResponse> {
        let lost_reasons = lost_reasons::list(&self.state.pool, request.get_ref().show_retired).await?;
        Ok(Response::new(ListLostReasonsResponse { lost_reasons }))
    }

    type WatchChangesStream = WatchStream<WatchChangesResponse>;

    async fn watch_changes(&self, request: Request<WatchChangesRequest>) -> Result<Self::WatchChangesStream> {
        let policies = crate::policy::policies();
        let reads = FeedReads { reads: crate::policy::FEED_READS, policies: &policies };
        let state = &self.state;
        self.state.feed.serve_visible(request, &reads, |principal| {
            visible_changes(state.deal_scope(principal), state.quota_scope(principal), state.pool.clone())
        })
    }
}

impl Api {
    async fn set_stage_retired(
        &self,
        actor: &auth::Principal,
        (pipeline, stage): (&str, &str),
        etag: &str,
        retired: bool,
    ) -> Result<Pipeline> {
        let mut violations = Vec::new();
        let id = pipeline_id("pipeline_id", pipeline).map_err(|err| collect(err, &mut violations)).ok();
        let stage = stage_id("stage_id", stage).map_err(|err| collect(err, &mut violations)).ok();
        let (Some(id), Some(stage)) = (id, stage) else { return Err(Error::Invalid(violations).into()) };
        let write = Write::by(actor);
        let result = stages::set_retired(&self.state.pool, (id, stage), etag, retired, write).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }
}

/// Adds an id parse error's violations to `violations`.
fn collect(err: Error, violations: &mut Vec<Violation>) {
    if let Error::Invalid(mut found) = err {
        violations.append(&mut found);
    }
}

/// INVALID_ARGUMENT with the violations of an id and of the rest.
fn invalid(id: Option<Error>, rest: Option<Vec<Violation>>) -> Error {
    let mut violations = Vec::new();
    if let Some(err) = id {
        collect(err, &mut violations);
    }
    violations.extend(rest.unwrap_or_default());
    Error::Invalid(violations)
}

/// The deal and quota changes of a stream whose caller reads only some
/// (their kinds are team-visible): a change the caller may not read
/// through `GetDeal` or `ListQuotas` is left out, and so are the orders,
/// invoices and payments of deals it may not read (looked up in `pool`).
/// `None` when both are read in full.
fn visible_changes(
    deals: rapport_kit::auth::ReadScope,
    quotas: rapport_kit::auth::ReadScope,
    pool: sqlx::PgPool,
) -> Option<rapport_kit::changelog::Visible> {
    use crate::store::deals::{Through, owners_through};
    use futures::FutureExt as _;
    use prost::Message as _;
    use rapport_kit::auth::Owned;
    if deals.is_all() && quotas.is_all() {
        return None;
    }
    let deals = std::sync::Arc::new(deals);
    Some(std::sync::Arc::new(move |change| {
        let payload = change.resource.as_ref().map(|any| any.value.as_slice()).unwrap_or_default();
        let through = |id: &str| id.parse().ok();
        let hanging = match change.resource_type.as_str() {
            resource::DEAL if !deals.is_all() => {
                let kept = Deal::decode(payload).is_ok_and(|deal| deals.may_read(super::deal_owned(&deal)));
                return futures::future::ready(kept).boxed();
            }
            resource::QUOTA if !quotas.is_all() => {
                let kept = Quota::decode(payload)
                    .is_ok_and(|quota| quotas.may_read(Owned::new(&quota.owner_id, "")));
                return futures::future::ready(kept).boxed();
            }
            resource::ORDER if !deals.is_all() => through(&change.resource_id).map(Through::Order),
            resource::INVOICE if !deals.is_all() => through(&change.resource_id).map(Through::Invoice),
            resource::PAYMENT if !deals.is_all() => through(&change.resource_id).map(Through::Payment),
            _ => return futures::future::ready(true).boxed(),
        };
        let (pool, deals) = (pool.clone(), deals.clone());
        async move {
            let Some(through) = hanging else { return false };
            match owners_through(&pool, through).await {
                Ok(Some(owners)) => deals.may_read(owners.owned()),
                Ok(None) => false,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot check a change's deal; leaving it out of the stream");
                    false
                }
            }
        }
        .boxed()
    }))
}
