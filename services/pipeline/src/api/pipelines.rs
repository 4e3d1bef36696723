//! `PipelineService`: see `proto/rapport/pipeline/v1/pipelines.proto`.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use rapport_kit::changelog::FeedItem;
use rapport_proto::pipeline::v1::pipeline_service_server::PipelineService;
use rapport_proto::pipeline::v1::watch_changes_response::Event;
use rapport_proto::pipeline::v1::*;
use tonic::{Request, Response, Status};

use super::Api;

type Result<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl PipelineService for Api {
    async fn create_pipeline(&self, _request: Request<CreatePipelineRequest>) -> Result<Pipeline> {
        Err(super::not_yet("CreatePipeline"))
    }

    async fn get_pipeline(&self, _request: Request<GetPipelineRequest>) -> Result<Pipeline> {
        Err(super::not_yet("GetPipeline"))
    }

    async fn update_pipeline(&self, _request: Request<UpdatePipelineRequest>) -> Result<Pipeline> {
        Err(super::not_yet("UpdatePipeline"))
    }

    async fn delete_pipeline(&self, _request: Request<DeletePipelineRequest>) -> Result<Pipeline> {
        Err(super::not_yet("DeletePipeline"))
    }

    async fn undelete_pipeline(&self, _request: Request<UndeletePipelineRequest>) -> Result<Pipeline> {
        Err(super::not_yet("UndeletePipeline"))
    }

    async fn list_pipelines(&self, _request: Request<ListPipelinesRequest>) -> Result<ListPipelinesResponse> {
        Err(super::not_yet("ListPipelines"))
    }

    async fn add_stage(&self, _request: Request<AddStageRequest>) -> Result<Pipeline> {
        Err(super::not_yet("AddStage"))
    }

    async fn update_stage(&self, _request: Request<UpdateStageRequest>) -> Result<Pipeline> {
        Err(super::not_yet("UpdateStage"))
    }

    async fn reorder_stages(&self, _request: Request<ReorderStagesRequest>) -> Result<Pipeline> {
        Err(super::not_yet("ReorderStages"))
    }

    async fn retire_stage(&self, _request: Request<RetireStageRequest>) -> Result<Pipeline> {
        Err(super::not_yet("RetireStage"))
    }

    async fn unretire_stage(&self, _request: Request<UnretireStageRequest>) -> Result<Pipeline> {
        Err(super::not_yet("UnretireStage"))
    }

    async fn create_lost_reason(&self, _request: Request<CreateLostReasonRequest>) -> Result<LostReason> {
        Err(super::not_yet("CreateLostReason"))
    }

    async fn update_lost_reason(&self, _request: Request<UpdateLostReasonRequest>) -> Result<LostReason> {
        Err(super::not_yet("UpdateLostReason"))
    }

    async fn list_lost_reasons(
        &self,
        _request: Request<ListLostReasonsRequest>,
    ) -> Result<ListLostReasonsResponse> {
        Err(super::not_yet("ListLostReasons"))
    }

    type WatchChangesStream =
        Pin<Box<dyn Stream<Item = std::result::Result<WatchChangesResponse, Status>> + Send>>;

    async fn watch_changes(&self, request: Request<WatchChangesRequest>) -> Result<Self::WatchChangesStream> {
        let request = request.into_inner();
        let stream = self.state.feed.watch(request.after_sequence, request.resource_types)?;
        let stream = stream.map(|item| {
            item.map(|item| WatchChangesResponse {
                event: Some(match item {
                    FeedItem::Change(change) => Event::Change(change),
                    FeedItem::Heartbeat(heartbeat) => Event::Heartbeat(heartbeat),
                }),
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
