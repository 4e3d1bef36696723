//! Deals and quotas declared team-visible (`PIPELINE_TEAM_VISIBLE`): a rep
//! reads the deals they own, are on the deal team of, or that belong to a
//! team of theirs, and their own quotas — on every read path (Get, List,
//! Search, history, stale deals, forecasts, summaries, the change stream);
//! admins and integrations read everything; and with nothing declared,
//! everyone reads everything.

use std::collections::BTreeSet;

use crate::common;
use crate::fixtures;

use common::{Clients, Options, TestApp, reason};
use fixtures::deals::seed;
use futures::StreamExt as _;
use rapport_kit::auth::{Principal, Role};
use rapport_proto::common::v1::{Date, Money};
use rapport_proto::pipeline::v1::watch_changes_response::Event;
use rapport_proto::pipeline::v1::*;

/// The deals of the test, by title: (owner, team, members).
const DEALS: &[(&str, &str, &str, &[&str])] = &[
    ("Acme visible mine", "me", "east", &[]),
    ("Acme visible colleague", "pat", "east", &[]),
    ("Acme visible member", "kim", "west", &["me"]),
    ("Acme hidden other", "kim", "west", &[]),
    ("Acme hidden teamless", "lee", "", &[]),
];

fn visible_to_me() -> BTreeSet<String> {
    DEALS
        .iter()
        .filter(|(title, ..)| title.contains("visible"))
        .map(|(title, ..)| (*title).to_owned())
        .collect()
}

fn all() -> BTreeSet<String> {
    DEALS.iter().map(|(title, ..)| (*title).to_owned()).collect()
}

fn eur(minor_units: i64) -> Option<Money> {
    Some(Money { currency_code: "EUR".into(), minor_units })
}

/// Creates the deals as an admin (open, closing in January 2027, 1,000.00
/// EUR each), sets quotas for `me` and `kim`, and makes every deal stale.
async fn prepare(app: &TestApp) -> Vec<Deal> {
    seed(app).await;
    let admin = app.clients();
    let mut created = Vec::new();
    for (title, owner, team, members) in DEALS {
        let deal = Deal {
            title: (*title).into(),
            currency_code: "EUR".into(),
            amount: eur(100_000),
            owner_id: (*owner).into(),
            team_id: (*team).into(),
            team_member_ids: members.iter().map(|member| (*member).to_owned()).collect(),
            expected_close_date: Some(Date { year: 2027, month: 1, day: 15 }),
            ..Default::default()
        };
        let request = CreateDealRequest { deal: Some(deal), ..Default::default() };
        created.push(admin.deals.clone().create_deal(request).await.unwrap().into_inner());
    }
    for owner in ["me", "kim"] {
        let quota = Quota {
            owner_id: owner.into(),
            year: 2027,
            month: 1,
            amount: eur(500_000),
            ..Default::default()
        };
        admin.forecasts.clone().set_quota(SetQuotaRequest { quota: Some(quota) }).await.unwrap();
    }
    let pool = app.pool();
    sqlx::query("UPDATE pipelines SET rotting_days = 1").execute(&pool).await.unwrap();
    sqlx::query("UPDATE deals SET last_activity_time = now() - interval '10 days', stage_enter_time = now() - interval '10 days'")
        .execute(&pool)
        .await
        .unwrap();
    created
}

fn titles<'a>(deals: impl IntoIterator<Item = &'a Deal>) -> BTreeSet<String> {
    deals.into_iter().map(|deal| deal.title.clone()).collect()
}

/// What `caller` reads of the deals through each path, as titles (and the
/// forecast's and summary's counts and the quota owners).
#[derive(Debug, PartialEq)]
struct Reads {
    listed: BTreeSet<String>,
    searched: BTreeSet<String>,
    stale: BTreeSet<String>,
    streamed: BTreeSet<String>,
    forecast_count: i64,
    forecast_owners: BTreeSet<String>,
    summary_count: i64,
    quota_owners: BTreeSet<String>,
}

/// (Forecasts, summaries and quotas a role may not call read as empty.)
async fn reads(caller: &Clients, created: &[Deal]) -> Reads {
    let mut deals = caller.deals.clone();
    let listed = deals
        .list_deals(ListDealsRequest { page_size: 100, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let searched = deals
        .search_deals(SearchDealsRequest { query: "acme".into(), page_size: 100, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let stale = deals
        .list_stale_deals(ListStaleDealsRequest { page_size: 100, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let forecast = caller
        .forecasts
        .clone()
        .get_forecast(GetForecastRequest {
            start_date: Some(Date { year: 2027, month: 1, day: 1 }),
            end_date: Some(Date { year: 2027, month: 1, day: 31 }),
            group_by: ForecastGrouping::Owner.into(),
            currency_code: "EUR".into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
        .unwrap_or_default();
    let summary = caller
        .forecasts
        .clone()
        .get_pipeline_summary(GetPipelineSummaryRequest { currency_code: "EUR".into(), ..Default::default() })
        .await
        .map(tonic::Response::into_inner)
        .unwrap_or_default();
    let quotas = caller
        .forecasts
        .clone()
        .list_quotas(ListQuotasRequest { year: 2027, ..Default::default() })
        .await
        .map(|response| response.into_inner().quotas.into_iter().map(|quota| quota.owner_id).collect())
        .unwrap_or_default();
    Reads {
        listed: titles(&listed.deals),
        searched: titles(&searched.deals),
        stale: stale
            .deals
            .iter()
            .filter_map(|stale| stale.deal.as_ref())
            .map(|deal| deal.title.clone())
            .collect(),
        streamed: streamed(caller, created).await,
        forecast_count: forecast.total.as_ref().map_or(0, |total| total.count),
        forecast_owners: forecast
            .groups
            .iter()
            .filter(|group| group.figures.as_ref().is_some_and(|figures| figures.count > 0))
            .map(|group| group.key.clone())
            .collect(),
        summary_count: summary.stages.iter().map(|stage| stage.count).sum(),
        quota_owners: quotas,
    }
}

/// The titles of the deals `caller`'s change stream replays, up to its
/// first heartbeat (sent once it has read everything).
async fn streamed(caller: &Clients, created: &[Deal]) -> BTreeSet<String> {
    let request =
        WatchChangesRequest { after_sequence: 0, resource_types: vec!["rapport.pipeline.v1.Deal".into()] };
    let mut stream = caller.pipelines.clone().watch_changes(request).await.unwrap().into_inner();
    let mut seen = BTreeSet::new();
    loop {
        match stream.next().await.unwrap().unwrap().event {
            Some(Event::Change(change)) => {
                let deal = created.iter().find(|deal| deal.id == change.resource_id).unwrap();
                seen.insert(deal.title.clone());
            }
            Some(Event::Heartbeat(_)) => return seen,
            None => {}
        }
    }
}

fn rep() -> Principal {
    Principal::new("me", vec![Role::SalesRep]).with_teams(&["east"])
}

#[tokio::test]
async fn team_visible_deals_and_quotas_are_read_by_owners_members_and_teams_only() {
    let options = Options { env: vec![("PIPELINE_TEAM_VISIBLE".into(), "deals,quotas".into())] };
    let app = TestApp::spawn_with(options).await;
    let created = prepare(&app).await;

    let me = app.clients_for(&rep());
    let mine = reads(&me, &created).await;
    let visible = visible_to_me();
    assert_eq!(mine.listed, visible);
    assert_eq!(mine.searched, visible);
    assert_eq!(mine.stale, visible);
    assert_eq!(mine.streamed, visible);
    assert_eq!(mine.forecast_count, 3);
    assert_eq!(mine.forecast_owners, BTreeSet::from(["me".to_owned(), "pat".to_owned(), "kim".to_owned()]));
    assert_eq!(mine.summary_count, 3);
    assert_eq!(mine.quota_owners, BTreeSet::from(["me".to_owned()]), "a rep reads their own quota");

    for deal in &created {
        let mut deals = me.deals.clone();
        let got = deals.get_deal(GetDealRequest { id: deal.id.clone() }).await;
        let history = deals.get_deal_history(GetDealHistoryRequest { id: deal.id.clone() }).await;
        if visible.contains(&deal.title) {
            assert_eq!(got.unwrap().into_inner().id, deal.id);
            history.unwrap();
        } else {
            for refused in [got.map(drop).unwrap_err(), history.map(drop).unwrap_err()] {
                assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{}: {refused:?}", deal.title);
                assert_eq!(reason(&refused), "NOT_IN_TEAM");
            }
            // A write with a stale etag learns nothing of the deal's
            // version: the refusal comes first.
            let update = UpdateDealRequest {
                deal: Some(Deal {
                    id: deal.id.clone(),
                    title: "Mine now".into(),
                    etag: "\"999\"".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["title".into()] }),
            };
            let refused = deals.update_deal(update).await.unwrap_err();
            assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{}: {refused:?}", deal.title);
            let moved = deals
                .move_deal_stage(MoveDealStageRequest {
                    id: deal.id.clone(),
                    stage_id: deal.stage_id.clone(),
                    etag: "\"999\"".into(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert_eq!(moved.code(), tonic::Code::PermissionDenied, "{}: {moved:?}", deal.title);
        }
    }

    // A manager of the west team reads its deals, the deals they own, and
    // every quota (managers set them).
    let manager = app.clients_for(&Principal::new("boss", vec![Role::SalesManager]).with_teams(&["west"]));
    let west = reads(&manager, &created).await;
    let expected: BTreeSet<String> = ["Acme visible member", "Acme hidden other"].map(str::to_owned).into();
    assert_eq!(
        (west.listed.clone(), west.streamed.clone(), west.summary_count),
        (expected.clone(), expected, 2)
    );
    assert_eq!(west.quota_owners, BTreeSet::from(["me".to_owned(), "kim".to_owned()]));

    // Admins and integrations read every deal.
    for caller in [app.clients(), app.clients_as("erp", &[Role::Integration])] {
        let everything = reads(&caller, &created).await;
        assert_eq!((everything.listed, everything.streamed, everything.stale), (all(), all(), all()));
    }
    app.stop().await;
}

#[tokio::test]
async fn without_team_visible_kinds_every_role_reads_every_deal() {
    let app = TestApp::spawn().await;
    let created = prepare(&app).await;
    let mine = reads(&app.clients_for(&rep()), &created).await;
    assert_eq!((mine.listed, mine.searched, mine.stale, mine.streamed), (all(), all(), all(), all()));
    assert_eq!((mine.forecast_count, mine.summary_count), (5, 5));
    assert_eq!(mine.quota_owners, BTreeSet::from(["me".to_owned(), "kim".to_owned()]));
    app.stop().await;
}

/// A follower who may read little of a busy feed still gets heartbeats
/// (whose sequence moves its cursor past what it may not read), however
/// fast the records it may not read are written.
#[tokio::test]
async fn records_left_out_of_a_stream_do_not_hold_back_its_heartbeats() {
    let options = Options { env: vec![("PIPELINE_TEAM_VISIBLE".into(), "deals".into())] };
    let app = TestApp::spawn_with(options).await;
    seed(&app).await;
    let me = app.clients_for(&rep());
    let request = WatchChangesRequest { after_sequence: 0, resource_types: Vec::new() };
    let mut stream = me.pipelines.clone().watch_changes(request).await.unwrap().into_inner();
    let mut latest = 0;
    while latest == 0 {
        if let Some(Event::Heartbeat(heartbeat)) = stream.next().await.unwrap().unwrap().event {
            latest = heartbeat.latest_sequence.max(1);
        }
    }
    // Someone else's deals, written back to back (hundreds: far longer
    // than a heartbeat interval); the follower's cursor must move past
    // them while they are still being written.
    let writer = {
        let admin = app.clients();
        tokio::spawn(async move {
            for n in 0..500 {
                let deal = Deal {
                    title: format!("Hidden {n}"),
                    currency_code: "EUR".into(),
                    owner_id: "kim".into(),
                    team_id: "west".into(),
                    ..Default::default()
                };
                let request = CreateDealRequest { deal: Some(deal), ..Default::default() };
                admin.deals.clone().create_deal(request).await.unwrap();
            }
        })
    };
    let first_hidden = loop {
        let sequence: Option<i64> =
            sqlx::query_scalar("SELECT max(sequence) FROM change_log").fetch_one(&app.pool()).await.unwrap();
        if sequence.unwrap_or(0) > latest {
            break sequence.unwrap_or(0);
        }
        tokio::task::yield_now().await;
    };
    loop {
        match stream.next().await.unwrap().unwrap().event {
            Some(Event::Change(change)) => panic!("a hidden change was sent: {}", change.resource_id),
            Some(Event::Heartbeat(heartbeat)) if heartbeat.latest_sequence >= first_hidden => break,
            _ => {}
        }
    }
    assert!(!writer.is_finished(), "the heartbeat came only once the writes had stopped");
    writer.await.unwrap();
    app.stop().await;
}

/// The orders, invoices and payments of deals a caller may not read are
/// team-visible with them: refused one by one, left out of lists and of
/// the change stream.
#[tokio::test]
async fn orders_invoices_and_payments_follow_their_deals() {
    use fixtures::orders::{OrderSpec, insert_order};
    let options = Options { env: vec![("PIPELINE_TEAM_VISIBLE".into(), "deals".into())] };
    let app = TestApp::spawn_with(options).await;
    let pool = app.pool();
    let erp = app.clients_as("erp", &[Role::Integration]);
    let mut orders = erp.orders.clone();
    let mut ids = Vec::new();
    for (n, owner) in ["me", "kim"].into_iter().enumerate() {
        let spec = OrderSpec { owner_id: owner, ..OrderSpec::eur(uuid::Uuid::now_v7()) };
        let (order_id, _) = insert_order(&pool, &spec).await;
        let ack = AcknowledgeOrderRequest { id: order_id.clone(), external_ref: format!("ERP-{n}") };
        orders.acknowledge_order(ack).await.unwrap();
        let invoice = orders
            .record_invoice(RecordInvoiceRequest {
                order_id: order_id.clone(),
                number: format!("INV-{n}"),
                amount: eur(10_000),
                issue_date: Some(Date { year: 2027, month: 1, day: 1 }),
                due_date: Some(Date { year: 2027, month: 2, day: 1 }),
            })
            .await
            .unwrap()
            .into_inner();
        let payment = orders
            .record_payment(RecordPaymentRequest {
                invoice_id: invoice.id.clone(),
                amount: eur(100),
                payment_date: Some(Date { year: 2027, month: 1, day: 2 }),
                external_ref: format!("PAY-{n}"),
            })
            .await
            .unwrap()
            .into_inner();
        ids.push((order_id, invoice.id, payment.payment.unwrap().id));
    }
    let (mine, theirs) = (&ids[0], &ids[1]);

    let me = app.clients_for(&rep());
    let mut my_orders = me.orders.clone();
    let listed = my_orders.list_orders(ListOrdersRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.orders.iter().map(|order| &order.id).collect::<Vec<_>>(), [&mine.0]);
    let invoices = my_orders.list_invoices(ListInvoicesRequest::default()).await.unwrap().into_inner();
    assert_eq!(invoices.invoices.iter().map(|invoice| &invoice.id).collect::<Vec<_>>(), [&mine.1]);
    my_orders.get_order(GetOrderRequest { id: mine.0.clone() }).await.unwrap();
    my_orders.get_invoice(GetInvoiceRequest { id: mine.1.clone() }).await.unwrap();
    my_orders.list_payments(ListPaymentsRequest { invoice_id: mine.1.clone() }).await.unwrap();
    let refusals = [
        my_orders.get_order(GetOrderRequest { id: theirs.0.clone() }).await.map(drop),
        my_orders.get_invoice(GetInvoiceRequest { id: theirs.1.clone() }).await.map(drop),
        my_orders.list_payments(ListPaymentsRequest { invoice_id: theirs.1.clone() }).await.map(drop),
    ];
    for refused in refusals {
        let refused = refused.unwrap_err();
        assert_eq!(
            (refused.code(), reason(&refused).as_str()),
            (tonic::Code::PermissionDenied, "NOT_IN_TEAM")
        );
    }

    // The stream: only the caller's order, invoice and payment.
    let types = ["Order", "Invoice", "Payment"].map(|name| format!("rapport.pipeline.v1.{name}"));
    let request = WatchChangesRequest { after_sequence: 0, resource_types: types.to_vec() };
    let mut stream = me.pipelines.clone().watch_changes(request).await.unwrap().into_inner();
    let mut seen = BTreeSet::new();
    loop {
        match stream.next().await.unwrap().unwrap().event {
            Some(Event::Change(change)) => {
                seen.insert(change.resource_id);
            }
            Some(Event::Heartbeat(_)) => break,
            None => {}
        }
    }
    assert_eq!(seen, BTreeSet::from([mine.0.clone(), mine.1.clone(), mine.2.clone()]));
    // An integration sees both.
    let all = erp.orders.clone().list_orders(ListOrdersRequest::default()).await.unwrap().into_inner();
    assert_eq!(all.orders.len(), 2);
    app.stop().await;
}
