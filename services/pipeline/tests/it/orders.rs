//! OrderService orders: reads, listing, and the ERP's transitions.

use crate::common;
use crate::fixtures;

use common::{TestApp, reason, violated_fields};
use fixtures::orders::{self, OrderSpec, changes, insert_order};
use rapport_kit::auth::Role;
use rapport_proto::pipeline::v1::*;
use tonic::Code;

const ORDER: &str = "rapport.pipeline.v1.Order";

fn ack(id: &str, external_ref: &str) -> AcknowledgeOrderRequest {
    AcknowledgeOrderRequest { id: id.into(), external_ref: external_ref.into() }
}

#[tokio::test]
async fn get_order_returns_lines_total_and_not_found() {
    let app = TestApp::spawn().await;
    let mut orders = app.clients().orders;
    let company = uuid::Uuid::now_v7();
    let lines = [("1.5", 1_999, "0", 2_999), ("3", 3_333, "12.5", 8_749)];
    let spec = OrderSpec { company_id: company, owner_id: "rep-7", currency: "EUR", lines: &lines };
    let (id, deal_id) = insert_order(&app.pool(), &spec).await;

    let order = orders.get_order(GetOrderRequest { id: id.clone() }).await.unwrap().into_inner();
    assert_eq!(order.deal_id, deal_id);
    assert_eq!(order.company_id, company.to_string());
    assert_eq!(order.owner_id, "rep-7");
    assert_eq!(order.status(), OrderStatus::New);
    assert_eq!(order.total.as_ref().map(|m| m.minor_units), Some(11_748));
    let quantities: Vec<_> =
        order.lines.iter().map(|l| (l.quantity.as_str(), l.discount_percent.as_str())).collect();
    assert_eq!(quantities, [("1.5", "0"), ("3", "12.5")]);
    assert_eq!(
        order.lines[1].amount.as_ref().map(|m| (m.currency_code.as_str(), m.minor_units)),
        Some(("EUR", 8_749))
    );
    assert!(order.external_ref.is_empty() && order.acknowledge_time.is_none());

    let missing =
        orders.get_order(GetOrderRequest { id: uuid::Uuid::now_v7().to_string() }).await.unwrap_err();
    assert_eq!((missing.code(), reason(&missing).as_str()), (Code::NotFound, "ORDER_NOT_FOUND"));
    let bad = orders.get_order(GetOrderRequest { id: "nope".into() }).await.unwrap_err();
    assert_eq!((bad.code(), violated_fields(&bad)), (Code::InvalidArgument, vec!["id".to_owned()]));
    app.stop().await;
}

#[tokio::test]
async fn list_orders_filters_sorts_and_pages() {
    let app = TestApp::spawn().await;
    let mut orders = app.clients().orders;
    let (acme, other) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let (first, _) = insert_order(&app.pool(), &OrderSpec::eur(acme)).await;
    let (second, second_deal) = insert_order(&app.pool(), &OrderSpec::eur(acme)).await;
    let (third, _) = insert_order(&app.pool(), &OrderSpec::eur(other)).await;
    orders.acknowledge_order(ack(&first, "ERP-1")).await.unwrap();

    let list = |filter: &str, order_by: &str, page_size: i32, page_token: &str| ListOrdersRequest {
        filter: filter.into(),
        order_by: order_by.into(),
        page_size,
        page_token: page_token.into(),
    };
    let ids = |response: ListOrdersResponse| response.orders.into_iter().map(|o| o.id).collect::<Vec<_>>();
    let all = orders.list_orders(list("", "", 0, "")).await.unwrap().into_inner();
    assert_eq!(ids(all), [third.clone(), second.clone(), first.clone()], "newest first by default");
    let acme_filter = format!("company_id = \"{acme}\"");
    let by_company = orders.list_orders(list(&acme_filter, "create_time", 0, "")).await.unwrap().into_inner();
    assert_eq!(ids(by_company), [first.clone(), second.clone()]);
    let new_ones = orders.list_orders(list("status = NEW", "create_time", 0, "")).await.unwrap().into_inner();
    assert_eq!(ids(new_ones), [second.clone(), third.clone()]);
    let by_ref = orders.list_orders(list("external_ref = \"ERP-1\"", "", 0, "")).await.unwrap().into_inner();
    assert_eq!(ids(by_ref), std::slice::from_ref(&first));
    let by_deal = format!("deal_id = \"{second_deal}\" AND owner_id = \"rep-1\"");
    assert_eq!(
        ids(orders.list_orders(list(&by_deal, "", 0, "")).await.unwrap().into_inner()),
        std::slice::from_ref(&second)
    );
    let updated = orders.list_orders(list("", "update_time desc", 1, "")).await.unwrap().into_inner();
    assert_eq!(updated.orders[0].id, first, "the acknowledged order changed last");

    let page1 = orders.list_orders(list("", "create_time", 2, "")).await.unwrap().into_inner();
    assert!(!page1.next_page_token.is_empty());
    let token = page1.next_page_token.clone();
    let page2 = orders.list_orders(list("", "create_time", 2, &token)).await.unwrap().into_inner();
    assert_eq!(ids(page1), [first, second]);
    assert_eq!((ids(page2.clone()), page2.next_page_token), (vec![third], String::new()));

    let bad = orders.list_orders(list("amount > 3", "", 0, "")).await.unwrap_err();
    assert_eq!((bad.code(), reason(&bad).as_str()), (Code::InvalidArgument, "INVALID_FILTER"));
    let bad = orders.list_orders(list("", "total", 0, "")).await.unwrap_err();
    assert_eq!(reason(&bad), "INVALID_ORDER_BY");
    let bad = orders.list_orders(list("status = NEW", "create_time", 2, &token)).await.unwrap_err();
    assert_eq!(reason(&bad), "INVALID_PAGE_TOKEN");
    app.stop().await;
}

#[tokio::test]
async fn acknowledging_is_idempotent_by_reference() {
    let app = TestApp::spawn().await;
    let pool = app.pool();
    let mut erp = app.clients_as("erp-1", &[Role::Integration]).orders;
    let (id, _) = insert_order(&pool, &OrderSpec::eur(uuid::Uuid::now_v7())).await;
    let (other, _) = insert_order(&pool, &OrderSpec::eur(uuid::Uuid::now_v7())).await;

    let acknowledged = erp.acknowledge_order(ack(&id, " ERP-1 ")).await.unwrap().into_inner();
    assert_eq!(acknowledged.status(), OrderStatus::Acknowledged);
    assert_eq!(acknowledged.external_ref, "ERP-1");
    assert!(acknowledged.acknowledge_time.is_some());
    assert_ne!(acknowledged.etag, "\"1\"");
    assert_eq!(changes(&pool, ORDER, &id).await, 1);

    let again = erp.acknowledge_order(ack(&id, "ERP-1")).await.unwrap().into_inner();
    assert_eq!(again, acknowledged, "the same reference returns the order unchanged");
    assert_eq!(changes(&pool, ORDER, &id).await, 1, "and records nothing");

    let err = erp.acknowledge_order(ack(&id, "ERP-2")).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::FailedPrecondition, "ORDER_ALREADY_ACKNOWLEDGED"));
    let err = erp.acknowledge_order(ack(&other, "ERP-1")).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::AlreadyExists, "EXTERNAL_REF_CONFLICT"));
    let untouched = erp.get_order(GetOrderRequest { id: other.clone() }).await.unwrap().into_inner();
    assert_eq!((untouched.status(), untouched.external_ref.as_str()), (OrderStatus::New, ""));
    assert_eq!(changes(&pool, ORDER, &other).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_acknowledgements_record_one_change() {
    let app = TestApp::spawn().await;
    let pool = app.pool();
    let erp = app.clients_as("erp-1", &[Role::Integration]).orders;
    let (id, _) = insert_order(&pool, &OrderSpec::eur(uuid::Uuid::now_v7())).await;
    let calls = (0..8).map(|_| {
        let mut erp = erp.clone();
        let request = ack(&id, "ERP-7");
        async move { erp.acknowledge_order(request).await.map(|r| r.into_inner()) }
    });
    let results = futures::future::join_all(calls).await;
    let orders: Vec<Order> = results.into_iter().map(|r| r.unwrap()).collect();
    assert!(orders.iter().all(|order| order == &orders[0]), "every retry sees the same order");
    assert_eq!(orders[0].status(), OrderStatus::Acknowledged);
    assert_eq!(changes(&pool, ORDER, &id).await, 1);

    // Two orders racing for one reference: exactly one gets it.
    let (a, _) = insert_order(&pool, &OrderSpec::eur(uuid::Uuid::now_v7())).await;
    let (b, _) = insert_order(&pool, &OrderSpec::eur(uuid::Uuid::now_v7())).await;
    let (mut erp_a, mut erp_b) = (erp.clone(), erp.clone());
    let (ra, rb) =
        tokio::join!(erp_a.acknowledge_order(ack(&a, "ERP-8")), erp_b.acknowledge_order(ack(&b, "ERP-8")));
    assert_eq!(usize::from(ra.is_ok()) + usize::from(rb.is_ok()), 1);
    let loser = ra.err().or(rb.err()).unwrap();
    assert_eq!(reason(&loser), "EXTERNAL_REF_CONFLICT");
    app.stop().await;
}

#[tokio::test]
async fn fulfilling_and_cancelling_follow_the_status() {
    let app = TestApp::spawn().await;
    let pool = app.pool();
    let mut erp = app.clients_as("erp-1", &[Role::Integration]).orders;
    let (id, _) = insert_order(&pool, &OrderSpec::eur(uuid::Uuid::now_v7())).await;

    let err = erp.fulfill_order(FulfillOrderRequest { id: id.clone() }).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::FailedPrecondition, "ORDER_NOT_ACKNOWLEDGED"));
    erp.acknowledge_order(ack(&id, "ERP-1")).await.unwrap();
    let fulfilled = erp.fulfill_order(FulfillOrderRequest { id: id.clone() }).await.unwrap().into_inner();
    assert_eq!(fulfilled.status(), OrderStatus::Fulfilled);
    assert!(fulfilled.fulfill_time.is_some());
    let again = erp.fulfill_order(FulfillOrderRequest { id: id.clone() }).await.unwrap().into_inner();
    assert_eq!(again, fulfilled);
    assert_eq!(
        changes(&pool, ORDER, &id).await,
        2,
        "acknowledged and fulfilled, the repeat recorded nothing"
    );
    let cancel = |id: &str| CancelOrderRequest { id: id.into(), reason: "customer withdrew".into() };
    let err = erp.cancel_order(cancel(&id)).await.unwrap_err();
    assert_eq!(reason(&err), "ORDER_FULFILLED");

    let (fresh, _) = insert_order(&pool, &OrderSpec::eur(uuid::Uuid::now_v7())).await;
    let cancelled = erp.cancel_order(cancel(&fresh)).await.unwrap().into_inner();
    assert_eq!(cancelled.status(), OrderStatus::Cancelled);
    assert_eq!(cancelled.cancel_reason, "customer withdrew");
    assert!(cancelled.cancel_time.is_some());
    let err = erp.acknowledge_order(ack(&fresh, "ERP-9")).await.unwrap_err();
    assert_eq!(reason(&err), "ORDER_CANCELLED");

    let (invoiced, _) = insert_order(&pool, &OrderSpec::eur(uuid::Uuid::now_v7())).await;
    erp.acknowledge_order(ack(&invoiced, "ERP-10")).await.unwrap();
    let today = orders::today(&pool).await;
    erp.record_invoice(RecordInvoiceRequest {
        order_id: invoiced.clone(),
        number: "INV-1".into(),
        amount: fixtures::money("EUR", 100),
        issue_date: orders::date(today),
        due_date: orders::date(today),
    })
    .await
    .unwrap();
    let err = erp.cancel_order(cancel(&invoiced)).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::FailedPrecondition, "ORDER_HAS_INVOICES"));
    app.stop().await;
}

#[tokio::test]
async fn writes_need_the_integration_role_and_valid_input() {
    let app = TestApp::spawn().await;
    let pool = app.pool();
    let (id, _) = insert_order(&pool, &OrderSpec::eur(uuid::Uuid::now_v7())).await;
    let mut rep = app.clients_as("rep-1", &[Role::SalesRep]).orders;
    let err = rep.acknowledge_order(ack(&id, "ERP-1")).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err =
        rep.cancel_order(CancelOrderRequest { id: id.clone(), reason: String::new() }).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let read = rep.get_order(GetOrderRequest { id: id.clone() }).await.unwrap().into_inner();
    assert_eq!(read.status(), OrderStatus::New);

    let mut erp = app.clients_as("erp-1", &[Role::Integration]).orders;
    let err = erp.acknowledge_order(ack("x", " ")).await.unwrap_err();
    assert_eq!(
        (err.code(), violated_fields(&err)),
        (Code::InvalidArgument, vec!["id".into(), "external_ref".into()])
    );
    let err = erp.acknowledge_order(ack(&id, &"r".repeat(129))).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["external_ref"]);
    let long = CancelOrderRequest { id: id.clone(), reason: "x".repeat(1001) };
    let err = erp.cancel_order(long).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["reason"]);
    let unchanged = erp.get_order(GetOrderRequest { id: id.clone() }).await.unwrap().into_inner();
    assert_eq!(unchanged, read);
    assert_eq!(changes(&pool, ORDER, &id).await, 0);
    app.stop().await;
}
