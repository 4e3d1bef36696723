//! GetDealHistory, ListStaleDeals, the account warning of deal writes,
//! and CreateDeal/UndeleteDeal retries.

use crate::common;
use crate::fixtures;

use common::{TestApp, reason};
use fixtures::deals::{company, count, create, deal, seed};
use fixtures::money;
use fixtures::orders::{self, OrderSpec, insert_order};
use prost::Message;
use rapport_proto::pipeline::v1::*;
use sqlx::PgPool;
use tonic::Code;

fn nanos(duration: Option<&prost_types::Duration>) -> i128 {
    let duration = duration.expect("a duration");
    i128::from(duration.seconds) * 1_000_000_000 + i128::from(duration.nanos)
}

fn at(timestamp: Option<&prost_types::Timestamp>) -> i128 {
    let timestamp = timestamp.expect("a timestamp");
    i128::from(timestamp.seconds) * 1_000_000_000 + i128::from(timestamp.nanos)
}

async fn sql(pool: &PgPool, statement: &str) {
    sqlx::query(statement).execute(pool).await.unwrap();
}

async fn history(clients: &common::Clients, id: &str) -> DealHistory {
    clients
        .deals
        .clone()
        .get_deal_history(GetDealHistoryRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn history_follows_moves_and_a_reopen_and_times_the_sales_cycle() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let clients = app.clients();
    let mut deals = clients.deals.clone();
    let created = create(&clients, deal("Journey", "EUR")).await.unwrap();
    let id = created.id.clone();
    let to = |stage: uuid::Uuid| MoveDealStageRequest {
        id: id.clone(),
        stage_id: stage.to_string(),
        ..Default::default()
    };
    deals.move_deal_stage(to(seed.proposal)).await.unwrap();
    deals.move_deal_stage(to(seed.qualify)).await.unwrap();
    // Stretch the first stay to a day, so totals are more than noise.
    let pool = app.pool();
    sql(&pool, &format!("UPDATE deal_stage_history SET enter_time = enter_time - interval '1 day' WHERE deal_id = '{id}' AND stage_id = '{}' AND enter_time = (SELECT min(enter_time) FROM deal_stage_history WHERE deal_id = '{id}')", seed.qualify)).await;
    let lost = deals
        .lose_deal(LoseDealRequest {
            id: id.clone(),
            lost_reason_id: seed.lost_reason.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let closed = history(&clients, &id).await;
    let cycle = nanos(closed.sales_cycle.as_ref());
    assert_eq!(cycle, at(lost.close_time.as_ref()) - at(created.create_time.as_ref()));
    deals.reopen_deal(ReopenDealRequest { id: id.clone(), ..Default::default() }).await.unwrap();

    let reopened = history(&clients, &id).await;
    assert_eq!(reopened.deal_id, id);
    assert!(reopened.sales_cycle.is_none(), "an open deal has no sales cycle");
    let path: Vec<(String, String)> =
        reopened.visits.iter().map(|v| (v.stage_id.clone(), v.stage_name.clone())).collect();
    let stage = |id: uuid::Uuid, name: &str| (id.to_string(), name.to_owned());
    assert_eq!(
        path,
        [
            stage(seed.qualify, "T Qualify"),
            stage(seed.proposal, "T Proposal"),
            stage(seed.qualify, "T Qualify"),
            stage(seed.lost, "T Lost"),
            stage(seed.qualify, "T Qualify"),
        ]
    );
    let (last, closed_visits) = reopened.visits.split_last().unwrap();
    assert!(last.leave_time.is_none());
    for (visit, next) in closed_visits.iter().zip(&reopened.visits[1..]) {
        assert_eq!(visit.leave_time, next.enter_time, "a stay ends when the next begins");
        assert_eq!(
            nanos(visit.duration.as_ref()),
            at(visit.leave_time.as_ref()) - at(visit.enter_time.as_ref())
        );
    }
    assert!(reopened.visits.iter().all(|v| nanos(v.duration.as_ref()) >= 0 && v.actor == "admin-1"));
    assert!(nanos(reopened.visits[0].duration.as_ref()) >= 86_400 * 1_000_000_000);
    // Totals: per stage, in pipeline order, summing every stay.
    let order: Vec<String> = reopened.time_in_stages.iter().map(|t| t.stage_name.clone()).collect();
    assert_eq!(order, ["T Qualify", "T Proposal", "T Lost"]);
    for total in &reopened.time_in_stages {
        let sum: i128 = reopened
            .visits
            .iter()
            .filter(|v| v.stage_id == total.stage_id)
            .map(|v| nanos(v.duration.as_ref()))
            .sum();
        // The open stay runs on between the two reads of "now"; all
        // closed stays are exact.
        let open_stay = if total.stage_id == last.stage_id { 1_000_000_000 } else { 0 };
        let got = nanos(total.duration.as_ref());
        assert!(got >= sum - open_stay && got <= sum + open_stay, "{}: {got} vs {sum}", total.stage_name);
    }

    let status = deals
        .get_deal_history(GetDealHistoryRequest { id: uuid::Uuid::now_v7().to_string() })
        .await
        .unwrap_err();
    assert_eq!((status.code(), reason(&status)), (Code::NotFound, "DEAL_NOT_FOUND".into()));
    let status = deals.get_deal_history(GetDealHistoryRequest { id: "nope".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    app.stop().await;
}

async fn stale(clients: &common::Clients, request: ListStaleDealsRequest) -> ListStaleDealsResponse {
    clients.deals.clone().list_stale_deals(request).await.unwrap().into_inner()
}

fn titles(response: &ListStaleDealsResponse) -> Vec<String> {
    response.deals.iter().map(|stale| stale.deal.as_ref().unwrap().title.clone()).collect()
}

const DAY: i128 = 86_400 * 1_000_000_000;

#[tokio::test]
async fn stale_deals_rot_by_activity_and_by_stage_longest_first() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let clients = app.clients();
    let pool = app.pool();
    let mut deals = clients.deals.clone();
    sql(&pool, &format!("UPDATE pipelines SET rotting_days = 30 WHERE id = '{}'", seed.pipeline)).await;
    sql(&pool, &format!("UPDATE stages SET rotting_days = 5 WHERE id = '{}'", seed.proposal)).await;
    let make = |title: &'static str, owner: &'static str| {
        let clients = clients.clone();
        async move { create(&clients, Deal { owner_id: owner.into(), ..deal(title, "EUR") }).await.unwrap().id }
    };
    let _fresh = make("Fresh", "rep-1").await;
    let idle = make("Idle", "rep-9").await;
    let stuck = make("Stuck", "rep-1").await;
    let both = make("Both", "rep-1").await;
    let young = make("Young", "rep-1").await;
    let lost = make("Lost", "rep-1").await;
    let gone = make("Gone", "rep-1").await;
    deals
        .move_deal_stage(MoveDealStageRequest {
            id: stuck.clone(),
            stage_id: seed.proposal.to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    deals
        .lose_deal(LoseDealRequest {
            id: lost.clone(),
            lost_reason_id: seed.lost_reason.to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    deals.delete_deal(DeleteDealRequest { id: gone.clone(), etag: String::new() }).await.unwrap();
    let back = |id: &str, column: &str, days: i32| {
        format!("UPDATE deals SET {column} = now() - interval '{days} days' WHERE id = '{id}'")
    };
    sql(&pool, &back(&idle, "last_activity_time", 40)).await; // 10 days past 30
    sql(&pool, &back(&stuck, "stage_enter_time", 8)).await; // 3 days past the stage's 5
    sql(&pool, &back(&both, "stage_enter_time", 31)).await; // 1 day past 30 (stage has 0)
    sql(&pool, &back(&both, "last_activity_time", 45)).await; // 15 days past 30
    sql(&pool, &back(&young, "stage_enter_time", 20)).await; // within 30
    for id in [&lost, &gone] {
        sql(&pool, &back(id, "last_activity_time", 90)).await;
    }

    let all = stale(&clients, ListStaleDealsRequest::default()).await;
    assert_eq!(titles(&all), ["Both", "Idle", "Stuck"]);
    assert!(all.next_page_token.is_empty());
    let reasons: Vec<Vec<StaleReason>> = all.deals.iter().map(|d| d.reasons().collect()).collect();
    assert_eq!(
        reasons,
        [
            vec![StaleReason::NoActivity, StaleReason::StuckInStage],
            vec![StaleReason::NoActivity],
            vec![StaleReason::StuckInStage],
        ]
    );
    let overdue: Vec<i128> = all.deals.iter().map(|d| nanos(d.overdue_by.as_ref())).collect();
    for (got, days) in overdue.iter().zip([15, 10, 3]) {
        assert!((got - days * DAY).abs() < 60 * 1_000_000_000, "{got} is not {days} days");
    }

    // Keyset pages of one, bound to the filters.
    let first = stale(&clients, ListStaleDealsRequest { page_size: 2, ..Default::default() }).await;
    assert_eq!(titles(&first), ["Both", "Idle"]);
    let second = stale(
        &clients,
        ListStaleDealsRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!((titles(&second), second.next_page_token.as_str()), (vec!["Stuck".to_owned()], ""));
    let status = deals
        .list_stale_deals(ListStaleDealsRequest {
            owner_id: "rep-1".into(),
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!((status.code(), reason(&status)), (Code::InvalidArgument, "INVALID_PAGE_TOKEN".into()));

    // Filters.
    let mine =
        stale(&clients, ListStaleDealsRequest { owner_id: "rep-9".into(), ..Default::default() }).await;
    assert_eq!(titles(&mine), ["Idle"]);
    let here = ListStaleDealsRequest { pipeline_id: seed.pipeline.to_string(), ..Default::default() };
    assert_eq!(titles(&stale(&clients, here).await).len(), 3);
    let elsewhere =
        ListStaleDealsRequest { pipeline_id: uuid::Uuid::now_v7().to_string(), ..Default::default() };
    assert!(stale(&clients, elsewhere).await.deals.is_empty());

    // A rotting period of 0 never rots: only the stage's own period is left.
    sql(&pool, &format!("UPDATE pipelines SET rotting_days = 0 WHERE id = '{}'", seed.pipeline)).await;
    let after = stale(&clients, ListStaleDealsRequest::default()).await;
    assert_eq!(titles(&after), ["Stuck"]);
    app.stop().await;
}

/// An invoice of `company` for 42.00 EUR, due `due_in_days` from today
/// (negative: overdue).
async fn invoice(pool: &PgPool, company: &str, number: &str, due_in_days: i32) {
    let company_id = uuid::Uuid::parse_str(company).unwrap();
    let (order_id, _) = insert_order(pool, &OrderSpec::eur(company_id)).await;
    sql(
        pool,
        &format!(
            "UPDATE orders SET status = 'ACKNOWLEDGED', external_ref = '{number}' WHERE id = '{order_id}'"
        ),
    )
    .await;
    sql(
        pool,
        &format!(
            "INSERT INTO invoices (id, order_id, company_id, number, currency_code, amount_minor, issue_date, \
               due_date, status, create_time, update_time) \
             VALUES ('{}', '{order_id}', '{company}', '{number}', 'EUR', 4200, current_date - 60, \
               current_date + {due_in_days}, 'OPEN', now(), now())",
            uuid::Uuid::now_v7()
        ),
    )
    .await;
}

#[tokio::test]
async fn account_warning_only_in_write_responses_of_owing_companies() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let clients = app.clients();
    let pool = app.pool();
    let mut deals = clients.deals.clone();
    let owing = company(&clients, "Owing").await;
    let paying = company(&clients, "Paying").await;
    invoice(&pool, &owing.id, "INV-1", -10).await;
    invoice(&pool, &paying.id, "INV-2", 10).await; // unpaid, not yet due

    let created =
        create(&clients, Deal { company_id: owing.id.clone(), ..deal("Risky", "EUR") }).await.unwrap();
    let warning = created.account_warning.clone().expect("a warning on create");
    let standing = warning.standing.unwrap();
    assert_eq!((standing.company_id.as_str(), standing.overdue_invoice_count), (owing.id.as_str(), 1));
    let due = orders::today(&pool).await - orders::days(10);
    assert_eq!(
        warning.message,
        format!("Company {} has 1 overdue invoice (42.00 EUR, oldest due {due}).", owing.id)
    );
    let id = created.id.clone();
    let updated = deals
        .update_deal(UpdateDealRequest {
            deal: Some(Deal { id: id.clone(), next_step: "call".into(), ..Deal::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["next_step".into()] }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(updated.account_warning.is_some(), "a warning on update");
    let moved = deals
        .move_deal_stage(MoveDealStageRequest {
            id: id.clone(),
            stage_id: seed.proposal.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(moved.account_warning.is_some(), "a warning on move");
    let fetched = deals.get_deal(GetDealRequest { id: id.clone() }).await.unwrap().into_inner();
    assert!(fetched.account_warning.is_none(), "never stored");
    let won = deals
        .win_deal(WinDealRequest { id: id.clone(), etag: String::new(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(won.account_warning.is_some(), "a warning on win");

    let rows: Vec<Vec<u8>> = sqlx::query_scalar(&format!(
        "SELECT resource FROM change_log WHERE resource_type = 'rapport.pipeline.v1.Deal' AND resource_id = '{id}'"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|row| Deal::decode(row.as_slice()).unwrap().account_warning.is_none()));

    let fine = create(&clients, Deal { company_id: paying.id.clone(), ..deal("Safe", "EUR") }).await.unwrap();
    assert!(fine.account_warning.is_none(), "unpaid but not overdue");
    let alone = create(&clients, deal("Alone", "EUR")).await.unwrap();
    assert!(alone.account_warning.is_none(), "no company");
    app.stop().await;
}

#[tokio::test]
async fn create_replays_by_request_id_and_undelete_is_idempotent() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let clients = app.clients();
    let pool = app.pool();
    let mut deals = clients.deals.clone();
    let request = |title: &str| CreateDealRequest {
        deal: Some(Deal { amount: money("EUR", 100), ..deal(title, "EUR") }),
        request_id: "req-1".into(),
    };
    let first = deals.create_deal(request("Once")).await.unwrap().into_inner();
    let again = deals.create_deal(request("Once")).await.unwrap().into_inner();
    assert_eq!(first, again);
    assert_eq!(count(&pool, "SELECT count(*) FROM deals WHERE title = 'Once'").await, 1);
    let status = deals.create_deal(request("Twice")).await.unwrap_err();
    assert_eq!((status.code(), reason(&status)), (Code::InvalidArgument, "REQUEST_ID_REUSED".into()));
    assert_eq!(count(&pool, "SELECT count(*) FROM deals WHERE title = 'Twice'").await, 0);

    let id = first.id.clone();
    deals.delete_deal(DeleteDealRequest { id: id.clone(), etag: String::new() }).await.unwrap();
    let restored =
        deals.undelete_deal(UndeleteDealRequest { id: id.clone(), etag: String::new() }).await.unwrap();
    let retried =
        deals.undelete_deal(UndeleteDealRequest { id: id.clone(), etag: String::new() }).await.unwrap();
    let (restored, retried) = (restored.into_inner(), retried.into_inner());
    assert!(restored.delete_time.is_none());
    assert_eq!(restored, retried, "a retried undelete changes nothing");
    let undeletes = count(
        &pool,
        &format!(
            "SELECT count(*) FROM change_log WHERE resource_id = '{id}' AND change_kind = {}",
            rapport_proto::common::v1::ChangeKind::Undeleted as i32
        ),
    )
    .await;
    assert_eq!(undeletes, 1);
    app.stop().await;
}
