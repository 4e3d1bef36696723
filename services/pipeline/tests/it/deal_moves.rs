//! Stage moves, winning (with its order), losing and reopening.

use crate::common;
use crate::fixtures;

use common::{TestApp, reason};
use fixtures::deals::{company, count, create, deal, seed};
use fixtures::money;
use rapport_proto::pipeline::v1::*;
use tonic::Code;

#[tokio::test]
async fn concurrent_moves_with_one_etag_one_wins_one_aborts() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let clients = app.clients();
    let created = create(&clients, deal("Race", "EUR")).await.unwrap();
    let move_to = |stage: uuid::Uuid| {
        let mut deals = clients.deals.clone();
        let request = MoveDealStageRequest {
            id: created.id.clone(),
            stage_id: stage.to_string(),
            etag: created.etag.clone(),
            ..Default::default()
        };
        async move { deals.move_deal_stage(request).await }
    };
    let (a, b) = tokio::join!(move_to(seed.proposal), move_to(seed.proposal));
    let results = [a, b];
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    let failed = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(failed.code(), Code::Aborted);
    let id = &created.id;
    assert_eq!(
        count(&app.pool(), &format!("SELECT count(*) FROM deal_stage_history WHERE deal_id = '{id}'")).await,
        2
    );
    app.stop().await;
}

#[tokio::test]
async fn win_creates_one_order_and_reopen_cancels_it() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let clients = app.clients();
    let mut deals = clients.deals.clone();
    let no_company =
        create(&clients, Deal { amount: money("EUR", 500), ..deal("Lonely", "EUR") }).await.unwrap();
    let status = deals
        .win_deal(WinDealRequest { id: no_company.id.clone(), etag: String::new(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!((status.code(), reason(&status)), (Code::FailedPrecondition, "DEAL_COMPANY_REQUIRED".into()));
    let acme = company(&clients, "Acme").await;
    let created = create(
        &clients,
        Deal { company_id: acme.id.clone(), amount: money("EUR", 123_456), ..deal("Big", "EUR") },
    )
    .await
    .unwrap();
    let won = deals
        .win_deal(WinDealRequest { id: created.id.clone(), etag: created.etag.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((won.status(), won.forecast_category()), (DealStatus::Won, ForecastCategory::Closed));
    assert_eq!(won.stage_id, seed.won.to_string());
    assert!(won.close_time.is_some());
    let pool = app.pool();
    let order_id = won.order_id.clone();
    let row: (String, i64, String) = sqlx::query_as(&format!(
        "SELECT status, total_minor, company_id::text FROM orders WHERE deal_id = '{}'",
        created.id
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row, ("NEW".to_owned(), 123_456, acme.id.clone()));
    assert_eq!(count(&pool, &format!("SELECT count(*) FROM order_lines WHERE order_id = '{order_id}' AND amount_minor = 123456 AND description = 'Big'")).await, 1);
    assert_eq!(count(&pool, &format!("SELECT count(*) FROM change_log WHERE resource_type = 'rapport.pipeline.v1.Order' AND resource_id = '{order_id}'")).await, 1);
    let status = deals
        .move_deal_stage(MoveDealStageRequest {
            id: won.id.clone(),
            stage_id: seed.qualify.to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "DEAL_CLOSED");
    // What the order was made from stays as it was: reopen to change it.
    for paths in [&["amount"][..], &["line_items"], &["currency_code", "amount"], &["company_id"]] {
        let status = deals
            .update_deal(UpdateDealRequest {
                deal: Some(Deal { id: won.id.clone(), amount: money("EUR", 1), ..won.clone() }),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|p| (*p).to_owned()).collect(),
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(
            (status.code(), reason(&status)),
            (Code::FailedPrecondition, "DEAL_CLOSED".into()),
            "{paths:?}"
        );
    }
    let renamed = deals
        .update_deal(UpdateDealRequest {
            deal: Some(Deal { id: won.id.clone(), next_step: "Send thanks".into(), ..won.clone() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["next_step".to_owned()] }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((renamed.next_step.as_str(), renamed.amount.clone()), ("Send thanks", money("EUR", 123_456)));
    let reopened = deals
        .reopen_deal(ReopenDealRequest { id: won.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reopened.status(), reopened.stage_id.clone()), (DealStatus::Open, seed.qualify.to_string()));
    assert!(reopened.order_id.is_empty() && reopened.close_time.is_none());
    let cancelled: (String, String) =
        sqlx::query_as(&format!("SELECT status, cancel_reason FROM orders WHERE id = '{order_id}'"))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(cancelled, ("CANCELLED".to_owned(), "deal reopened".to_owned()));
    // Won again, then acknowledged by the ERP: reopening is refused.
    let won = deals
        .win_deal(WinDealRequest { id: won.id.clone(), etag: String::new(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    sqlx::query(&format!("UPDATE orders SET status = 'ACKNOWLEDGED' WHERE id = '{}'", won.order_id))
        .execute(&pool)
        .await
        .unwrap();
    let status =
        deals.reopen_deal(ReopenDealRequest { id: won.id.clone(), ..Default::default() }).await.unwrap_err();
    assert_eq!(
        (status.code(), reason(&status)),
        (Code::FailedPrecondition, "ORDER_ALREADY_ACKNOWLEDGED".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn lose_needs_a_live_reason_and_moving_to_lost_stage_loses() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let clients = app.clients();
    let mut deals = clients.deals.clone();
    let created = create(&clients, deal("Lost", "EUR")).await.unwrap();
    let lose = |reason: uuid::Uuid| LoseDealRequest {
        id: created.id.clone(),
        lost_reason_id: reason.to_string(),
        lost_reason_detail: "too pricey".into(),
        etag: String::new(),
        ..Default::default()
    };
    let status = deals.lose_deal(lose(seed.retired_reason)).await.unwrap_err();
    assert_eq!((status.code(), reason(&status)), (Code::FailedPrecondition, "LOST_REASON_RETIRED".into()));
    let status = deals
        .move_deal_stage(MoveDealStageRequest {
            id: created.id.clone(),
            stage_id: seed.lost.to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let lost = deals
        .move_deal_stage(MoveDealStageRequest {
            id: created.id.clone(),
            stage_id: seed.lost.to_string(),
            lost_reason_id: seed.lost_reason.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((lost.status(), lost.forecast_category()), (DealStatus::Lost, ForecastCategory::Omitted));
    assert_eq!(lost.lost_reason_id, seed.lost_reason.to_string());
    let reopened = deals
        .reopen_deal(ReopenDealRequest { id: lost.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reopened.status(), reopened.lost_reason_id.as_str()), (DealStatus::Open, ""));
    sqlx::query(&format!("UPDATE stages SET retired = true WHERE id = '{}'", seed.proposal))
        .execute(&app.pool())
        .await
        .unwrap();
    let status = deals
        .move_deal_stage(MoveDealStageRequest {
            id: created.id.clone(),
            stage_id: seed.proposal.to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "STAGE_RETIRED");
    app.stop().await;
}

/// A deleted pipeline has no live open deals (DeletePipeline refuses one
/// with any): neither reopening a closed deal nor undeleting an open one
/// brings one back into it.
#[tokio::test]
async fn no_open_deal_comes_back_into_a_deleted_pipeline() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let mut clients = app.clients();
    let side = fixtures::pipelines::create(&mut clients, "Side").await;
    let in_side = |title: &str| Deal { pipeline_id: side.id.clone(), ..deal(title, "EUR") };
    let lost = create(&clients, in_side("Lost in Side")).await.unwrap();
    let lost = clients
        .deals
        .clone()
        .lose_deal(LoseDealRequest {
            id: lost.id.clone(),
            lost_reason_id: seed.lost_reason.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let open = create(&clients, in_side("Parked in Side")).await.unwrap();
    let deleted_deal = clients
        .deals
        .clone()
        .delete_deal(DeleteDealRequest { id: open.id.clone(), etag: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted_deal.delete_time.is_some());
    clients
        .pipelines
        .delete_pipeline(DeletePipelineRequest { id: side.id.clone(), etag: String::new() })
        .await
        .unwrap();

    // Reopening into the stage it closed from, or (that failing) the first
    // open stage: both are in the deleted pipeline.
    let status = clients
        .deals
        .clone()
        .reopen_deal(ReopenDealRequest { id: lost.id.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!((status.code(), reason(&status)), (Code::FailedPrecondition, "PIPELINE_DELETED".into()));
    let status = clients
        .deals
        .clone()
        .undelete_deal(UndeleteDealRequest { id: open.id.clone(), etag: String::new() })
        .await
        .unwrap_err();
    assert_eq!((status.code(), reason(&status)), (Code::FailedPrecondition, "PIPELINE_DELETED".into()));
    let live_open = count(
        &app.pool(),
        &format!(
            "SELECT count(*) FROM deals WHERE pipeline_id = '{}' AND status = 'OPEN' AND delete_time IS NULL",
            side.id
        ),
    )
    .await;
    assert_eq!(live_open, 0);

    // Once the pipeline is back, so can the deals be.
    clients
        .pipelines
        .undelete_pipeline(UndeletePipelineRequest { id: side.id.clone(), etag: String::new() })
        .await
        .unwrap();
    let reopened = clients
        .deals
        .clone()
        .reopen_deal(ReopenDealRequest { id: lost.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reopened.status(), DealStatus::Open);
    clients
        .deals
        .clone()
        .undelete_deal(UndeleteDealRequest { id: open.id.clone(), etag: String::new() })
        .await
        .unwrap();
    app.stop().await;
}

#[tokio::test]
async fn a_retried_win_or_loss_with_its_request_id_replays_the_first_answer() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let clients = app.clients();
    let mut deals = clients.deals.clone();
    let acme = company(&clients, "Acme").await;
    let created = create(
        &clients,
        Deal { company_id: acme.id.clone(), amount: money("EUR", 500), ..deal("Retry", "EUR") },
    )
    .await
    .unwrap();
    let win = WinDealRequest { id: created.id.clone(), request_id: "win-1".into(), ..Default::default() };
    let first = deals.win_deal(win.clone()).await.unwrap().into_inner();
    // The network lost the answer; the ERP retries: the same deal, one order.
    let again = deals.win_deal(win.clone()).await.unwrap().into_inner();
    assert_eq!(
        (again.id.as_str(), again.etag.as_str(), again.order_id.as_str()),
        (first.id.as_str(), first.etag.as_str(), first.order_id.as_str())
    );
    let pool = app.pool();
    let orders = count(&pool, &format!("SELECT count(*) FROM orders WHERE deal_id = '{}'", created.id)).await;
    assert_eq!(orders, 1);
    // Without the key, the retry is refused as the deal is closed.
    let status =
        deals.win_deal(WinDealRequest { request_id: String::new(), ..win.clone() }).await.unwrap_err();
    assert_eq!(reason(&status), "DEAL_CLOSED");
    // The key with another request is refused, not replayed.
    let other = create(&clients, Deal { company_id: acme.id.clone(), ..deal("Other", "EUR") }).await.unwrap();
    let reused = WinDealRequest { id: other.id.clone(), request_id: "win-1".into(), ..Default::default() };
    assert_eq!(reason(&deals.win_deal(reused).await.unwrap_err()), "REQUEST_ID_REUSED");
    // Another caller's same key is theirs alone.
    let manager = app.clients_as("boss", &[rapport_kit::auth::Role::Admin]);
    let lose = LoseDealRequest {
        id: other.id.clone(),
        lost_reason_id: seed.lost_reason.to_string(),
        request_id: "win-1".into(),
        ..Default::default()
    };
    let lost = manager.deals.clone().lose_deal(lose.clone()).await.unwrap().into_inner();
    assert_eq!(lost.status(), DealStatus::Lost);
    assert_eq!(manager.deals.clone().lose_deal(lose).await.unwrap().into_inner().etag, lost.etag);
}
