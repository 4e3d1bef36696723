//! PipelineService through a real client: pipelines themselves, the
//! default data and the change feed. Stages and lost reasons are in
//! `pipeline_stages.rs`.

use crate::common;
use crate::fixtures;

use common::{TestApp, reason, violated_fields};
use fixtures::pipelines::*;
use futures::StreamExt;
use rapport_kit::auth::Role;
use rapport_pipeline::domain::ids::PipelineId;
use rapport_proto::pipeline::v1::watch_changes_response::Event;
use rapport_proto::pipeline::v1::*;
use tonic::Code;

#[tokio::test]
async fn default_pipeline_and_lost_reasons_exist_from_the_first_start() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients_as("viewer-1", &[Role::Viewer]);
    let pipelines = list(&mut clients, false).await;
    assert_eq!(pipelines.len(), 1);
    let sales = &pipelines[0];
    assert_eq!((sales.name.as_str(), sales.is_default, sales.rotting_days), ("Sales", true, Some(30)));
    let stages: Vec<(&str, StageKind, i32, i32)> = sales
        .stages
        .iter()
        .map(|s| (s.name.as_str(), s.kind(), s.probability.unwrap_or(-1), s.position))
        .collect();
    assert_eq!(
        stages,
        [
            ("Qualification", StageKind::Open, 10, 0),
            ("Needs analysis", StageKind::Open, 25, 1),
            ("Proposal", StageKind::Open, 50, 2),
            ("Negotiation", StageKind::Open, 75, 3),
            ("Closed won", StageKind::Won, 100, 4),
            ("Closed lost", StageKind::Lost, 0, 5),
        ]
    );
    let reasons = clients.pipelines.list_lost_reasons(ListLostReasonsRequest::default()).await.unwrap();
    let labels: Vec<String> = reasons.into_inner().lost_reasons.into_iter().map(|r| r.label).collect();
    assert_eq!(labels, ["Competitor", "No budget", "No decision", "Other", "Price", "Timing"]);
    app.stop().await;
}

#[tokio::test]
async fn starting_replicas_together_creates_the_defaults_once() {
    let app = TestApp::spawn().await;
    let database = rapport_kit::testing::TestDatabase::create().await.unwrap();
    let config = || {
        rapport_pipeline::Config::from_env(&common::base_env(&database.url))
            .unwrap()
            .with_contacts(app.contacts.addr)
    };
    // Migrate first: kit's migrate races on CREATE SCHEMA (reported).
    rapport_pipeline::migrate(&config()).await.unwrap();
    let (first, second) = tokio::join!(rapport_pipeline::build(config()), rapport_pipeline::build(config()));
    let (_first, _second) = (first.unwrap(), second.unwrap());
    let again = rapport_pipeline::build(config()).await.unwrap();
    drop(again);
    let pool = rapport_kit::db::pool(&config().service.db).unwrap();
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pipelines), (SELECT count(*) FROM pipelines WHERE is_default), \
           (SELECT count(*) FROM lost_reasons)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(counts, (1, 1, 6));
    let logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM change_log WHERE resource_type = 'rapport.pipeline.v1.Pipeline' AND actor = 'system'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(logged, 1);
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn create_validates_every_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let bad = Pipeline {
        name: " ".into(),
        rotting_days: Some(-2),
        stages: vec![stage("Lead", StageKind::Open, 120), stage("lead", StageKind::Won, 0)],
        ..Default::default()
    };
    let err = clients
        .pipelines
        .create_pipeline(CreatePipelineRequest { pipeline: Some(bad), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        ["pipeline.name", "pipeline.rotting_days", "pipeline.stages[0].probability"]
    );
    let missing_kinds = Pipeline { stages: vec![stage("Lead", StageKind::Open, 5)], ..three_stages("P") };
    let err = clients
        .pipelines
        .create_pipeline(CreatePipelineRequest { pipeline: Some(missing_kinds), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["pipeline.stages", "pipeline.stages"]);
    assert_eq!(list(&mut clients, true).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn create_fills_defaults_replays_request_ids_and_refuses_taken_names() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let request =
        CreatePipelineRequest { pipeline: Some(three_stages("Renewals")), request_id: "req-1".into() };
    let created = clients.pipelines.create_pipeline(request.clone()).await.unwrap().into_inner();
    assert_eq!((created.rotting_days, created.is_default, created.etag.is_empty()), (Some(30), false, false));
    let probabilities: Vec<(i32, i32)> =
        created.stages.iter().map(|s| (s.probability.unwrap_or(-1), s.position)).collect();
    assert_eq!(probabilities, [(20, 0), (100, 1), (0, 2)]);
    let replayed = clients.pipelines.create_pipeline(request).await.unwrap().into_inner();
    assert_eq!(replayed, created);
    let reused = CreatePipelineRequest { pipeline: Some(three_stages("Other")), request_id: "req-1".into() };
    let err = clients.pipelines.create_pipeline(reused).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::InvalidArgument, "REQUEST_ID_REUSED"));
    let err = clients
        .pipelines
        .create_pipeline(CreatePipelineRequest {
            pipeline: Some(three_stages("renewals")),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::AlreadyExists, "PIPELINE_NAME_TAKEN"));
    let fetched =
        clients.pipelines.get_pipeline(GetPipelineRequest { id: created.id.clone() }).await.unwrap();
    assert_eq!(fetched.into_inner(), created);
    let err = clients
        .pipelines
        .get_pipeline(GetPipelineRequest { id: PipelineId::generate().to_string() })
        .await
        .unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::NotFound, "PIPELINE_NOT_FOUND"));
    assert_eq!(list(&mut clients, false).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn sales_reps_read_but_cannot_change_pipelines() {
    let app = TestApp::spawn().await;
    let mut rep = app.clients_as("rep-1", &[Role::SalesRep]);
    let err = rep
        .pipelines
        .create_pipeline(CreatePipelineRequest {
            pipeline: Some(three_stages("Mine")),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = rep
        .pipelines
        .create_lost_reason(CreateLostReasonRequest {
            lost_reason: Some(LostReason { label: "Mine".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(list(&mut rep, false).await.len(), 1);
    let mut manager = app.clients_as("manager-1", &[Role::SalesManager]);
    create(&mut manager, "Managed").await;
    app.stop().await;
}

#[tokio::test]
async fn update_moves_the_default_checks_etags_and_refuses_clearing_it() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let sales = list(&mut clients, false).await.remove(0);
    let other = create(&mut clients, "Partners").await;
    let update = |pipeline: Pipeline, paths: &[&str]| UpdatePipelineRequest {
        pipeline: Some(pipeline),
        update_mask: mask(paths),
    };
    let renamed = clients
        .pipelines
        .update_pipeline(update(
            Pipeline { name: "Channel".into(), rotting_days: Some(7), ..other.clone() },
            &["name", "rotting_days"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((renamed.name.as_str(), renamed.rotting_days), ("Channel", Some(7)));
    assert_ne!(renamed.etag, other.etag);
    let err = clients
        .pipelines
        .update_pipeline(update(Pipeline { name: "Stale".into(), ..other.clone() }, &["name"]))
        .await
        .unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::Aborted, "ETAG_MISMATCH"));
    let err = clients
        .pipelines
        .update_pipeline(update(
            Pipeline { is_default: false, rotting_days: Some(-1), ..sales.clone() },
            &["is_default", "rotting_days", "stages"],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["update_mask"]);
    let err = clients
        .pipelines
        .update_pipeline(update(
            Pipeline { is_default: false, rotting_days: Some(-1), ..sales.clone() },
            &["is_default", "rotting_days"],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["pipeline.is_default", "pipeline.rotting_days"]);
    let made_default = clients
        .pipelines
        .update_pipeline(update(
            Pipeline { is_default: true, etag: String::new(), ..renamed },
            &["is_default"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(made_default.is_default);
    let pipelines = list(&mut clients, false).await;
    let defaults: Vec<(&str, bool)> = pipelines.iter().map(|p| (p.name.as_str(), p.is_default)).collect();
    assert_eq!(defaults, [("Channel", true), ("Sales", false)]);
    app.stop().await;
}

#[tokio::test]
async fn delete_refuses_the_default_and_pipelines_with_open_deals() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let sales = list(&mut clients, false).await.remove(0);
    let delete = |id: &str| DeletePipelineRequest { id: id.into(), etag: String::new() };
    let err = clients.pipelines.delete_pipeline(delete(&sales.id)).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::FailedPrecondition, "PIPELINE_IS_DEFAULT"));
    let busy = create(&mut clients, "Busy").await;
    let pool = app.pool();
    sqlx::query(
        "INSERT INTO deals (id, title, pipeline_id, stage_id, currency_code, forecast_category, status, \
           stage_enter_time, last_activity_time, create_time, update_time) \
         VALUES (gen_random_uuid(), 'Deal', $1::uuid, $2::uuid, 'EUR', 'PIPELINE', 'OPEN', now(), now(), now(), now())",
    )
    .bind(&busy.id)
    .bind(&busy.stages[0].id)
    .execute(&pool)
    .await
    .unwrap();
    let err = clients.pipelines.delete_pipeline(delete(&busy.id)).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::FailedPrecondition, "PIPELINE_HAS_OPEN_DEALS"));
    let idle = create(&mut clients, "Idle").await;
    let stale = DeletePipelineRequest { id: idle.id.clone(), etag: "\"9\"".into() };
    assert_eq!(clients.pipelines.delete_pipeline(stale).await.unwrap_err().code(), Code::Aborted);
    let deleted = clients.pipelines.delete_pipeline(delete(&idle.id)).await.unwrap().into_inner();
    assert!(deleted.delete_time.is_some());
    assert_eq!(list(&mut clients, false).await.len(), 2);
    assert_eq!(list(&mut clients, true).await.len(), 3);
    let err = clients
        .pipelines
        .add_stage(AddStageRequest {
            pipeline_id: idle.id.clone(),
            stage: Some(stage("X", StageKind::Open, 1)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "PIPELINE_DELETED");
    let restored = clients
        .pipelines
        .undelete_pipeline(UndeletePipelineRequest { id: idle.id.clone(), etag: deleted.etag })
        .await
        .unwrap()
        .into_inner();
    assert!(restored.delete_time.is_none());
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn list_pages_default_first_then_by_creation() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    for name in ["A", "B", "C"] {
        create(&mut clients, name).await;
    }
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = ListPipelinesRequest { page_size: 2, page_token, show_deleted: false };
        let page = clients.pipelines.list_pipelines(request).await.unwrap().into_inner();
        assert!(page.pipelines.len() <= 2);
        seen.extend(page.pipelines.into_iter().map(|p| p.name));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen, ["Sales", "A", "B", "C"]);
    let err = clients
        .pipelines
        .list_pipelines(ListPipelinesRequest { page_token: "garbage".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    app.stop().await;
}

#[tokio::test]
async fn changes_are_streamed_with_the_whole_pipeline() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let request = WatchChangesRequest {
        after_sequence: 0,
        resource_types: vec!["rapport.pipeline.v1.Pipeline".into()],
    };
    let mut stream = clients.pipelines.watch_changes(request).await.unwrap().into_inner();
    let created = create(&mut clients, "Watched").await;
    loop {
        let Some(Event::Change(change)) = stream.next().await.unwrap().unwrap().event else { continue };
        if change.resource_id == created.id {
            let any = change.resource.unwrap();
            let pipeline = <Pipeline as prost::Message>::decode(any.value.as_slice()).unwrap();
            assert_eq!(names(&pipeline), ["Lead", "Won", "Lost"]);
            break;
        }
    }
    app.stop().await;
}
