//! OrderService invoices and payments: idempotent recording, concurrent
//! payments, overdue marking and account standing.

use crate::common;
use crate::fixtures;

use chrono::NaiveDate;
use common::{Clients, TestApp, reason, violated_fields};
use fixtures::money;
use fixtures::orders::{OrderSpec, changes, date, days, insert_order, today};
use rapport_kit::auth::Role;
use rapport_proto::pipeline::v1::order_service_client::OrderServiceClient;
use rapport_proto::pipeline::v1::*;
use tonic::Code;

const INVOICE: &str = "rapport.pipeline.v1.Invoice";

type Orders = OrderServiceClient<common::Authed>;

fn erp(app: &TestApp) -> Orders {
    let Clients { orders, .. } = app.clients_as("erp-1", &[Role::Integration]);
    orders
}

/// An acknowledged order of `company` in `currency`; returns its id.
async fn acknowledged_order(app: &TestApp, erp: &mut Orders, company: uuid::Uuid, currency: &str) -> String {
    let spec = OrderSpec { currency, ..OrderSpec::eur(company) };
    let (id, _) = insert_order(&app.pool(), &spec).await;
    let external_ref = format!("ERP-{id}");
    erp.acknowledge_order(AcknowledgeOrderRequest { id: id.clone(), external_ref }).await.unwrap();
    id
}

fn invoice(
    order_id: &str,
    number: &str,
    amount: Option<rapport_proto::common::v1::Money>,
    issue: NaiveDate,
    due: NaiveDate,
) -> RecordInvoiceRequest {
    RecordInvoiceRequest {
        order_id: order_id.into(),
        number: number.into(),
        amount,
        issue_date: date(issue),
        due_date: date(due),
    }
}

fn payment(invoice_id: &str, minor_units: i64, external_ref: &str, on: NaiveDate) -> RecordPaymentRequest {
    RecordPaymentRequest {
        invoice_id: invoice_id.into(),
        amount: money("EUR", minor_units),
        payment_date: date(on),
        external_ref: external_ref.into(),
    }
}

fn minor(amount: &Option<rapport_proto::common::v1::Money>) -> i64 {
    amount.as_ref().map(|m| m.minor_units).unwrap()
}

#[tokio::test]
async fn invoices_are_recorded_once_per_number() {
    let app = TestApp::spawn().await;
    let pool = app.pool();
    let mut erp = erp(&app);
    let day = today(&pool).await;
    let company = uuid::Uuid::now_v7();
    let (new_order, _) = insert_order(&pool, &OrderSpec::eur(company)).await;
    let err =
        erp.record_invoice(invoice(&new_order, "INV-0", money("EUR", 100), day, day)).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::FailedPrecondition, "ORDER_NOT_ACKNOWLEDGED"));

    let order = acknowledged_order(&app, &mut erp, company, "EUR").await;
    let request = invoice(&order, "INV-1", money("EUR", 12_000), day, day + days(30));
    let first = erp.record_invoice(request.clone()).await.unwrap().into_inner();
    assert_eq!(first.status(), InvoiceStatus::Open);
    assert_eq!(
        (first.company_id.as_str(), first.order_id.as_str()),
        (company.to_string().as_str(), order.as_str())
    );
    assert_eq!(
        (minor(&first.amount), minor(&first.paid_amount), minor(&first.outstanding_amount)),
        (12_000, 0, 12_000)
    );
    assert_eq!(first.due_date, date(day + days(30)));
    let again = erp.record_invoice(request.clone()).await.unwrap().into_inner();
    assert_eq!(again, first, "a retry returns the first invoice");
    assert_eq!(changes(&pool, INVOICE, &first.id).await, 1);

    let different = RecordInvoiceRequest { amount: money("EUR", 12_001), ..request.clone() };
    let err = erp.record_invoice(different).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::AlreadyExists, "EXTERNAL_REF_CONFLICT"));
    let got = erp.get_invoice(GetInvoiceRequest { id: first.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got, first);

    // Concurrent retries of a new number: one invoice, one id.
    let calls = (0..8).map(|_| {
        let mut erp = erp.clone();
        let request = invoice(&order, "INV-2", money("EUR", 500), day, day);
        async move { erp.record_invoice(request).await.map(|r| r.into_inner().id) }
    });
    let ids: Vec<String> = futures::future::join_all(calls).await.into_iter().map(|r| r.unwrap()).collect();
    assert!(ids.iter().all(|id| id == &ids[0]));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices WHERE number = 'INV-2'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(changes(&pool, INVOICE, &ids[0]).await, 1);

    let late =
        erp.record_invoice(invoice(&order, "INV-3", money("EUR", 700), day - days(40), day - days(10))).await;
    assert_eq!(late.unwrap().into_inner().status(), InvoiceStatus::Overdue, "past due at once");
    app.stop().await;
}

#[tokio::test]
async fn bad_invoices_are_refused_naming_fields() {
    let app = TestApp::spawn().await;
    let pool = app.pool();
    let mut erp = erp(&app);
    let day = today(&pool).await;
    let order = acknowledged_order(&app, &mut erp, uuid::Uuid::now_v7(), "EUR").await;
    let cases = [
        (invoice(&order, "INV-1", money("USD", 100), day, day), vec!["amount.currency_code"]),
        (invoice(&order, "INV-1", money("EUR", 0), day, day), vec!["amount.minor_units"]),
        (invoice(&order, "INV-1", money("EUR", 100), day, day - days(1)), vec!["due_date"]),
        (invoice("x", "", None, day, day), vec!["order_id", "number", "amount"]),
        (
            RecordInvoiceRequest {
                issue_date: None,
                ..invoice(&order, &"n".repeat(65), money("EUR", 1), day, day)
            },
            vec!["number", "issue_date"],
        ),
    ];
    for (request, fields) in cases {
        let err = erp.record_invoice(request).await.unwrap_err();
        assert_eq!(
            (err.code(), violated_fields(&err)),
            (Code::InvalidArgument, fields.iter().map(|f| f.to_string()).collect())
        );
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices").fetch_one(&pool).await.unwrap();
    assert_eq!(rows, 0);
    let missing = uuid::Uuid::now_v7().to_string();
    let err = erp.record_invoice(invoice(&missing, "INV-1", money("EUR", 100), day, day)).await.unwrap_err();
    assert_eq!(reason(&err), "ORDER_NOT_FOUND");
    let err = erp.get_invoice(GetInvoiceRequest { id: missing }).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::NotFound, "INVOICE_NOT_FOUND"));
    app.stop().await;
}

#[tokio::test]
async fn payments_settle_invoices_once_per_reference() {
    let app = TestApp::spawn().await;
    let pool = app.pool();
    let mut erp = erp(&app);
    let day = today(&pool).await;
    let order = acknowledged_order(&app, &mut erp, uuid::Uuid::now_v7(), "EUR").await;
    let inv = erp
        .record_invoice(invoice(&order, "INV-1", money("EUR", 10_000), day, day + days(14)))
        .await
        .unwrap()
        .into_inner();

    let part = erp.record_payment(payment(&inv.id, 4_000, "PAY-1", day)).await.unwrap().into_inner();
    let (first, after) = (part.payment.unwrap(), part.invoice.unwrap());
    assert_eq!(
        (after.status(), minor(&after.paid_amount), minor(&after.outstanding_amount)),
        (InvoiceStatus::PartiallyPaid, 4_000, 6_000)
    );
    assert!(after.paid_time.is_none());
    let retry = erp.record_payment(payment(&inv.id, 4_000, "PAY-1", day)).await.unwrap().into_inner();
    assert_eq!(retry.payment.as_ref(), Some(&first), "a retry returns the first payment");
    assert_eq!(minor(&retry.invoice.unwrap().paid_amount), 4_000, "and books nothing");
    let err = erp.record_payment(payment(&inv.id, 4_001, "PAY-1", day)).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::AlreadyExists, "EXTERNAL_REF_CONFLICT"));
    let err = erp.record_payment(payment(&inv.id, 6_001, "PAY-2", day)).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "PAYMENT_EXCEEDS_OUTSTANDING")
    );
    let wrong = RecordPaymentRequest { amount: money("USD", 100), ..payment(&inv.id, 1, "PAY-3", day) };
    assert_eq!(violated_fields(&erp.record_payment(wrong).await.unwrap_err()), ["amount.currency_code"]);
    let bad = RecordPaymentRequest { payment_date: None, ..payment("x", -5, "", day) };
    let err = erp.record_payment(bad).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["invoice_id", "amount.minor_units", "payment_date", "external_ref"]);

    let full = erp.record_payment(payment(&inv.id, 6_000, "PAY-4", day)).await.unwrap().into_inner();
    let paid = full.invoice.unwrap();
    assert_eq!((paid.status(), minor(&paid.outstanding_amount)), (InvoiceStatus::Paid, 0));
    assert!(paid.paid_time.is_some());
    let listed =
        erp.list_payments(ListPaymentsRequest { invoice_id: inv.id.clone() }).await.unwrap().into_inner();
    let refs: Vec<_> = listed.payments.iter().map(|p| p.external_ref.as_str()).collect();
    assert_eq!(refs, ["PAY-1", "PAY-4"], "oldest first");
    assert_eq!(changes(&pool, INVOICE, &inv.id).await, 3, "created, part paid, paid");

    let mut rep = app.clients_as("rep-1", &[Role::SalesRep]).orders;
    let err = rep.record_payment(payment(&inv.id, 1, "PAY-5", day)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = rep.record_invoice(invoice(&order, "INV-9", money("EUR", 1), day, day)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(rep.get_invoice(GetInvoiceRequest { id: inv.id.clone() }).await.unwrap().into_inner(), paid);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_payments_never_overbook() {
    let app = TestApp::spawn().await;
    let pool = app.pool();
    let mut erp = erp(&app);
    let day = today(&pool).await;
    let order = acknowledged_order(&app, &mut erp, uuid::Uuid::now_v7(), "EUR").await;
    let inv = erp
        .record_invoice(invoice(&order, "INV-1", money("EUR", 10_000), day, day))
        .await
        .unwrap()
        .into_inner();

    // The same payment retried 8 times at once: one row, one id.
    let same = (0..8).map(|_| {
        let mut erp = erp.clone();
        let request = payment(&inv.id, 1_000, "PAY-SAME", day);
        async move { erp.record_payment(request).await.map(|r| r.into_inner().payment.unwrap().id) }
    });
    let ids: Vec<String> = futures::future::join_all(same).await.into_iter().map(|r| r.unwrap()).collect();
    assert!(ids.iter().all(|id| id == &ids[0]));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM payments").fetch_one(&pool).await.unwrap();
    assert_eq!(rows, 1);

    // 8 different payments of 30.00 against 90.00 outstanding: exactly 3 fit.
    let different = (0..8).map(|n| {
        let mut erp = erp.clone();
        let request = payment(&inv.id, 3_000, &format!("PAY-{n}"), day);
        async move { erp.record_payment(request).await }
    });
    let results = futures::future::join_all(different).await;
    let booked = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(booked, 3);
    for err in results.into_iter().filter_map(Result::err) {
        assert_eq!(reason(&err), "PAYMENT_EXCEEDS_OUTSTANDING");
    }
    let now = erp.get_invoice(GetInvoiceRequest { id: inv.id.clone() }).await.unwrap().into_inner();
    assert_eq!(
        (minor(&now.paid_amount), minor(&now.outstanding_amount), now.status()),
        (10_000, 0, InvoiceStatus::Paid)
    );
    let sum: i64 =
        sqlx::query_scalar("SELECT sum(amount_minor)::bigint FROM payments").fetch_one(&pool).await.unwrap();
    assert_eq!(sum, 10_000);
    app.stop().await;
}

#[tokio::test]
async fn the_worker_marks_past_due_invoices_overdue() {
    let app = TestApp::spawn().await;
    let pool = app.pool();
    let mut erp = erp(&app);
    let day = today(&pool).await;
    let order = acknowledged_order(&app, &mut erp, uuid::Uuid::now_v7(), "EUR").await;
    let open = erp
        .record_invoice(invoice(&order, "INV-1", money("EUR", 10_000), day, day))
        .await
        .unwrap()
        .into_inner();
    let part = erp
        .record_invoice(invoice(&order, "INV-2", money("EUR", 10_000), day, day))
        .await
        .unwrap()
        .into_inner();
    let future = erp
        .record_invoice(invoice(&order, "INV-3", money("EUR", 10_000), day, day + days(1)))
        .await
        .unwrap()
        .into_inner();
    erp.record_payment(payment(&part.id, 2_500, "PAY-1", day)).await.unwrap();
    // Both fall due yesterday (stored OPEN and PARTIALLY_PAID).
    sqlx::query("UPDATE invoices SET issue_date = issue_date - 5, due_date = due_date - 1 WHERE number IN ('INV-1', 'INV-2')")
        .execute(&pool)
        .await
        .unwrap();
    let read = erp.get_invoice(GetInvoiceRequest { id: open.id.clone() }).await.unwrap().into_inner();
    assert_eq!(read.status(), InvoiceStatus::Overdue, "reads show OVERDUE at once");

    assert_eq!(rapport_pipeline::overdue::mark_overdue(&pool).await.unwrap(), 2);
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT status FROM invoices ORDER BY number").fetch_all(&pool).await.unwrap();
    assert_eq!(stored, ["OVERDUE", "OVERDUE", "OPEN"]);
    assert_eq!(changes(&pool, INVOICE, &open.id).await, 2);
    assert_eq!(changes(&pool, INVOICE, &future.id).await, 1);
    assert_eq!(rapport_pipeline::overdue::mark_overdue(&pool).await.unwrap(), 0, "nothing left to mark");

    let paid = erp.record_payment(payment(&part.id, 2_500, "PAY-2", day)).await.unwrap().into_inner();
    assert_eq!(paid.invoice.unwrap().status(), InvoiceStatus::Overdue, "part paid stays overdue");
    let paid = erp.record_payment(payment(&part.id, 5_000, "PAY-3", day)).await.unwrap().into_inner();
    assert_eq!(paid.invoice.unwrap().status(), InvoiceStatus::Paid);

    let list = |filter: &str| ListInvoicesRequest { filter: filter.into(), ..Default::default() };
    let overdue = erp.list_invoices(list("status = OVERDUE")).await.unwrap().into_inner();
    assert_eq!(overdue.invoices.iter().map(|i| i.number.as_str()).collect::<Vec<_>>(), ["INV-1"]);
    app.stop().await;
}

#[tokio::test]
async fn account_standing_sums_what_is_owed_and_overdue() {
    let app = TestApp::spawn().await;
    let pool = app.pool();
    let mut erp = erp(&app);
    let day = today(&pool).await;
    let (acme, calm) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let eur = acknowledged_order(&app, &mut erp, acme, "EUR").await;
    let usd = acknowledged_order(&app, &mut erp, acme, "USD").await;
    // EUR: 100.00 due in 10 days, 30.00 paid; 50.00 overdue by 10 days; 20.00 paid in full.
    let a = erp
        .record_invoice(invoice(&eur, "A", money("EUR", 10_000), day, day + days(10)))
        .await
        .unwrap()
        .into_inner();
    erp.record_payment(payment(&a.id, 3_000, "P-A", day)).await.unwrap();
    erp.record_invoice(invoice(&eur, "B", money("EUR", 5_000), day - days(40), day - days(10)))
        .await
        .unwrap();
    let c = erp
        .record_invoice(invoice(&eur, "C", money("EUR", 2_000), day - days(90), day - days(60)))
        .await
        .unwrap()
        .into_inner();
    erp.record_payment(payment(&c.id, 2_000, "P-C", day)).await.unwrap();
    // USD: 200.00 overdue by 45 days.
    let d = erp
        .record_invoice(invoice(&usd, "D", money("USD", 20_000), day - days(75), day - days(45)))
        .await
        .unwrap()
        .into_inner();

    let standing = erp
        .get_account_standing(GetAccountStandingRequest { company_id: acme.to_string() })
        .await
        .unwrap()
        .into_inner();
    let amounts = |list: &[rapport_proto::common::v1::Money]| {
        list.iter().map(|m| (m.currency_code.clone(), m.minor_units)).collect::<Vec<_>>()
    };
    assert_eq!(amounts(&standing.outstanding), [("EUR".into(), 12_000), ("USD".into(), 20_000)]);
    assert_eq!(amounts(&standing.overdue), [("EUR".into(), 5_000), ("USD".into(), 20_000)]);
    assert_eq!((standing.unpaid_invoice_count, standing.overdue_invoice_count), (3, 2));
    assert_eq!(standing.oldest_overdue_invoice_id, d.id);
    assert_eq!(standing.oldest_overdue_due_date, date(day - days(45)));
    assert_eq!((standing.days_overdue, standing.credit_hold), (45, true));

    let calm_order = acknowledged_order(&app, &mut erp, calm, "EUR").await;
    erp.record_invoice(invoice(&calm_order, "E", money("EUR", 700), day - days(41), day - days(30)))
        .await
        .unwrap();
    let calm_standing = erp
        .get_account_standing(GetAccountStandingRequest { company_id: calm.to_string() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (calm_standing.days_overdue, calm_standing.credit_hold),
        (30, false),
        "30 days is not more than 30"
    );

    let nobody = uuid::Uuid::now_v7().to_string();
    let empty = erp
        .get_account_standing(GetAccountStandingRequest { company_id: nobody.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(empty, AccountStanding { company_id: nobody, ..Default::default() });

    let unpaid = format!("company_id = \"{acme}\" AND status != PAID");
    let listed = erp
        .list_invoices(ListInvoicesRequest { filter: unpaid, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let numbers: Vec<_> = listed.invoices.iter().map(|i| i.number.as_str()).collect();
    assert_eq!(numbers, ["D", "B", "A"], "by due date");
    let eur_only = ListInvoicesRequest {
        filter: "currency_code = \"EUR\"".into(),
        order_by: "issue_date desc".into(),
        page_size: 2,
        ..Default::default()
    };
    let page = erp.list_invoices(eur_only.clone()).await.unwrap().into_inner();
    assert_eq!(page.invoices.iter().map(|i| i.number.as_str()).collect::<Vec<_>>(), ["A", "B"]);
    let rest = erp
        .list_invoices(ListInvoicesRequest { page_token: page.next_page_token, ..eur_only })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.invoices.iter().map(|i| i.number.as_str()).collect::<Vec<_>>(), ["E", "C"]);
    let due_filter = format!("due_date < \"{}\"", day - days(40));
    let old = erp
        .list_invoices(ListInvoicesRequest { filter: due_filter, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(old.invoices.iter().map(|i| i.number.as_str()).collect::<Vec<_>>(), ["C", "D"]);
    app.stop().await;
}
