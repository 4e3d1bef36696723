//! PipelineService through a real client: a pipeline's stages, lost
//! reasons, and the store API deals use to find their stage.

use crate::common;
use crate::fixtures;

use common::{TestApp, reason, violated_fields};
use fixtures::pipelines::*;
use rapport_pipeline::domain::ids::{PipelineId, StageId};
use rapport_pipeline::domain::pipeline::StageKind as Kind;
use rapport_pipeline::store::pipelines::{first_live_stage_of_kind, stage_for_deal};
use rapport_proto::pipeline::v1::*;
use tonic::Code;

#[tokio::test]
async fn stages_are_added_updated_reordered_retired_and_brought_back() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let pipeline = create(&mut clients, "Stages").await;
    let add = |stage: Stage, position: Option<i32>, etag: &str| AddStageRequest {
        pipeline_id: pipeline.id.clone(),
        stage: Some(stage),
        position,
        etag: etag.into(),
    };
    let first = clients
        .pipelines
        .add_stage(add(stage("Intro", StageKind::Open, 5), Some(0), &pipeline.etag))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&first), ["Intro", "Lead", "Won", "Lost"]);
    assert_ne!(first.etag, pipeline.etag);
    let err = clients
        .pipelines
        .add_stage(add(stage("Late", StageKind::Open, 5), None, &pipeline.etag))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let err = clients
        .pipelines
        .add_stage(add(stage("", StageKind::Unspecified, 300), Some(-1), ""))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["stage.name", "stage.kind", "stage.probability", "position"]);
    let err =
        clients.pipelines.add_stage(add(stage("intro", StageKind::Open, 5), None, "")).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::AlreadyExists, "STAGE_NAME_TAKEN"));
    let appended = clients
        .pipelines
        .add_stage(add(stage("Lost too", StageKind::Lost, 0), Some(99), ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&appended), ["Intro", "Lead", "Won", "Lost", "Lost too"]);
    let positions: Vec<i32> = appended.stages.iter().map(|s| s.position).collect();
    assert_eq!(positions, [0, 1, 2, 3, 4]);

    let lead = appended.stages[1].clone();
    let update = |stage: Stage, paths: &[&str]| UpdateStageRequest {
        pipeline_id: pipeline.id.clone(),
        stage: Some(stage),
        update_mask: mask(paths),
        etag: String::new(),
    };
    let updated = clients
        .pipelines
        .update_stage(update(
            Stage { name: "Qualified".into(), probability: Some(30), kind: 2, ..lead.clone() },
            &["name", "probability"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.stages[1].name.as_str(), updated.stages[1].probability, updated.stages[1].kind()),
        ("Qualified", Some(30), StageKind::Open)
    );
    let err = clients
        .pipelines
        .update_stage(update(Stage { probability: Some(101), ..lead.clone() }, &["probability", "kind"]))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["update_mask"]);
    let err = clients
        .pipelines
        .update_stage(update(
            Stage { probability: Some(101), rotting_days: -1, ..lead.clone() },
            &["probability", "rotting_days"],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["stage.probability", "stage.rotting_days"]);
    let err = clients
        .pipelines
        .update_stage(update(Stage { id: StageId::generate().to_string(), ..lead.clone() }, &["name"]))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "STAGE_NOT_FOUND");

    let ids: Vec<String> = updated.stages.iter().rev().map(|s| s.id.clone()).collect();
    let reorder = |stage_ids: Vec<String>| ReorderStagesRequest {
        pipeline_id: pipeline.id.clone(),
        stage_ids,
        etag: String::new(),
    };
    let err = clients.pipelines.reorder_stages(reorder(ids[1..].to_vec())).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["stage_ids"]);
    let err = clients
        .pipelines
        .reorder_stages(reorder([ids.clone(), vec![ids[0].clone()]].concat()))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["stage_ids"]);
    let reordered = clients.pipelines.reorder_stages(reorder(ids)).await.unwrap().into_inner();
    assert_eq!(names(&reordered), ["Lost too", "Lost", "Won", "Qualified", "Intro"]);

    let retire = |stage: &Stage| RetireStageRequest {
        pipeline_id: pipeline.id.clone(),
        stage_id: stage.id.clone(),
        etag: String::new(),
    };
    let won = reordered.stages[2].clone();
    let err = clients.pipelines.retire_stage(retire(&won)).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::FailedPrecondition, "LAST_STAGE_OF_KIND"));
    let lost = reordered.stages[1].clone();
    let retired = clients.pipelines.retire_stage(retire(&lost)).await.unwrap().into_inner();
    assert!(retired.stages[1].retired);
    let err = clients.pipelines.retire_stage(retire(&retired.stages[0])).await.unwrap_err();
    assert_eq!(reason(&err), "LAST_STAGE_OF_KIND");
    let back = clients
        .pipelines
        .unretire_stage(UnretireStageRequest {
            pipeline_id: pipeline.id.clone(),
            stage_id: lost.id.clone(),
            etag: retired.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!back.stages[1].retired);
    assert_ne!(back.etag, retired.etag);
    app.stop().await;
}

#[tokio::test]
async fn lost_reasons_are_created_renamed_retired_and_listed() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let create = |label: &str| CreateLostReasonRequest {
        lost_reason: Some(LostReason { label: label.into(), ..Default::default() }),
        request_id: String::new(),
    };
    let err = clients.pipelines.create_lost_reason(create(" ")).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["lost_reason.label"]);
    let err = clients.pipelines.create_lost_reason(create("price")).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::AlreadyExists, "LOST_REASON_LABEL_TAKEN"));
    let created = clients.pipelines.create_lost_reason(create("Too slow")).await.unwrap().into_inner();
    let update = |reason: LostReason, paths: &[&str]| UpdateLostReasonRequest {
        lost_reason: Some(reason),
        update_mask: mask(paths),
    };
    let retired = clients
        .pipelines
        .update_lost_reason(update(
            LostReason { label: "Slow delivery".into(), retired: true, ..created.clone() },
            &["label", "retired"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((retired.label.as_str(), retired.retired), ("Slow delivery", true));
    let err = clients.pipelines.update_lost_reason(update(created, &["label"])).await.unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let labels = |show_retired| {
        let mut clients = clients.clone();
        async move {
            let response =
                clients.pipelines.list_lost_reasons(ListLostReasonsRequest { show_retired }).await.unwrap();
            response.into_inner().lost_reasons.into_iter().map(|r| r.label).collect::<Vec<_>>()
        }
    };
    assert!(!labels(false).await.contains(&"Slow delivery".to_owned()));
    assert!(labels(true).await.contains(&"Slow delivery".to_owned()));
    app.stop().await;
}

#[tokio::test]
async fn deals_find_their_stage_through_the_store_api() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let sales = list(&mut clients, false).await.remove(0);
    let other = create(&mut clients, "Other").await;
    let pool = app.pool();
    let mut conn = pool.acquire().await.unwrap();
    let id = |raw: &str| uuid::Uuid::parse_str(raw).unwrap();
    let default = stage_for_deal(&mut conn, None, None).await.unwrap();
    assert_eq!(
        (default.pipeline_id.uuid(), default.stage_id.uuid()),
        (id(&sales.id), id(&sales.stages[0].id))
    );
    assert_eq!((default.kind, default.probability, default.position), (Kind::Open, 10, 0));
    let other_id = PipelineId::from(id(&other.id));
    let won = first_live_stage_of_kind(&mut conn, other_id, Kind::Won).await.unwrap();
    assert_eq!((won.stage_id.uuid(), won.probability), (id(&other.stages[1].id), 100));
    let sales_won = StageId::from(id(&sales.stages[4].id));
    let err = stage_for_deal(&mut conn, Some(other_id), Some(sales_won)).await.unwrap_err();
    assert_eq!(tonic::Status::from(err).code(), Code::InvalidArgument);
    let err = stage_for_deal(&mut conn, None, Some(StageId::generate())).await.unwrap_err();
    assert_eq!(tonic::Status::from(err).code(), Code::NotFound);
    drop(conn);
    let retire = RetireStageRequest {
        pipeline_id: sales.id.clone(),
        stage_id: sales.stages[1].id.clone(),
        etag: String::new(),
    };
    clients.pipelines.retire_stage(retire).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let err =
        stage_for_deal(&mut conn, None, Some(StageId::from(id(&sales.stages[1].id)))).await.unwrap_err();
    assert_eq!(reason(&tonic::Status::from(err)), "STAGE_RETIRED");
    drop(conn);
    pool.close().await;
    app.stop().await;
}
