//! Input built to hurt: huge lists refused on their count before any
//! per-item work, NUL bytes refused as field violations, extreme amounts
//! answered cleanly — and nothing written.

use crate::common;
use crate::fixtures;
use crate::forecast_fixture;

use common::{TestApp, violated_fields};
use fixtures::deals::{count, create, deal, seed};
use rapport_proto::common::v1::Money;
use rapport_proto::pipeline::v1::*;
use tonic::Code;

#[tokio::test]
async fn huge_lists_and_nul_bytes_are_field_violations_and_write_nothing() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let clients = app.clients();
    let pool = app.pool();
    let deals_before = count(&pool, "SELECT count(*) FROM deals").await;

    let mut lines = deal("Lines", "EUR");
    lines.line_items = vec![LineItem { quantity: "1".into(), ..LineItem::default() }; 300_000];
    let status = create(&clients, lines).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["deal.line_items"]);

    let mut team = deal("Team", "EUR");
    team.team_member_ids = (0..300_000).map(|n| format!("user-{n}")).collect();
    let status = create(&clients, team).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["deal.team_member_ids"]);

    let mut nul = deal("Nul", "EUR");
    nul.next_step = "call\0back".into();
    let status = create(&clients, nul).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    let mut deals = clients.deals.clone();
    let stale = deals
        .list_stale_deals(ListStaleDealsRequest { owner_id: "rep\0".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&stale), ["owner_id"]);
    let search = deals
        .search_deals(SearchDealsRequest { query: "acme\0".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(search.code(), Code::InvalidArgument, "{search:?}");

    let mut forecasts = clients.forecasts.clone();
    let mut request = forecast_fixture::request((2026, 1, 1), (2026, 1, 31), ForecastGrouping::Owner);
    request.owner_ids = vec!["rep\0".into()];
    let status = forecasts.get_forecast(request.clone()).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["owner_ids[0]"]);
    request.owner_ids = (0..100_000).map(|n| format!("rep-{n}")).collect();
    let status = forecasts.get_forecast(request).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["owner_ids"]);

    let mut pipelines = clients.pipelines.clone();
    let watch = pipelines
        .watch_changes(WatchChangesRequest { after_sequence: 0, resource_types: vec!["\0".into()] })
        .await
        .unwrap_err();
    assert_eq!(watch.code(), Code::InvalidArgument);

    assert_eq!(count(&pool, "SELECT count(*) FROM deals").await, deals_before);
}

/// The extreme minor-unit amounts a hostile or broken client sends.
const EXTREMES: [i64; 7] = [i64::MAX, i64::MAX - 1, 5_000_000_000_000_000_000, i64::MIN, i64::MIN + 1, -1, 0];

/// A call's outcome is clean: it worked, or it was refused with a code the
/// caller can act on and an `ErrorInfo` saying why — never INTERNAL,
/// UNKNOWN or a reset connection (UNAVAILABLE) from a panic.
fn clean<T>(what: &str, outcome: Result<tonic::Response<T>, tonic::Status>) -> Option<T> {
    match outcome {
        Ok(response) => Some(response.into_inner()),
        Err(status) => {
            let acceptable = [Code::InvalidArgument, Code::OutOfRange, Code::FailedPrecondition];
            assert!(acceptable.contains(&status.code()), "{what}: {status:?}");
            assert!(!common::reason(&status).is_empty(), "{what}: no ErrorInfo in {status:?}");
            None
        }
    }
}

/// Every money field Pipeline takes, sent every extreme amount, and then
/// every aggregate over what was accepted: each answer is clean, and the
/// service still serves.
#[tokio::test]
async fn extreme_amounts_in_every_money_field_and_aggregate_are_answered_cleanly() {
    use forecast_fixture::{date, money};
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let admin = app.clients();
    let (mut deals, mut forecasts, mut products, mut orders) =
        (admin.deals.clone(), admin.forecasts.clone(), admin.products.clone(), admin.orders.clone());
    let company = uuid::Uuid::now_v7();
    let (order_id, _) =
        fixtures::orders::insert_order(&app.pool(), &fixtures::orders::OrderSpec::eur(company)).await;
    orders
        .acknowledge_order(AcknowledgeOrderRequest { id: order_id.clone(), external_ref: "ERP-1".into() })
        .await
        .unwrap();
    let base_invoice = orders
        .record_invoice(RecordInvoiceRequest {
            order_id: order_id.clone(),
            number: "INV-BASE".into(),
            amount: money("EUR", 10_000),
            issue_date: date(2027, 1, 1),
            due_date: date(2027, 2, 1),
        })
        .await
        .unwrap()
        .into_inner();
    let existing = create(&admin, deal("Existing", "EUR")).await.unwrap();
    for (n, amount) in EXTREMES.into_iter().enumerate() {
        for currency in ["EUR", "JPY", "KWD"] {
            let amounted = Deal {
                amount: money(currency, amount),
                expected_close_date: date(2027, 1, 15),
                ..deal(&format!("Extreme {n} {currency}"), currency)
            };
            clean(
                "CreateDeal amount",
                deals.create_deal(CreateDealRequest { deal: Some(amounted), ..Default::default() }).await,
            );
            for quantity in ["1", "1000000", "999999999999"] {
                let line = LineItem {
                    product_id: seed.product.to_string(),
                    quantity: quantity.into(),
                    unit_price: money(currency, amount),
                    ..Default::default()
                };
                let lined = Deal {
                    line_items: vec![line.clone(), line],
                    expected_close_date: date(2027, 1, 20),
                    ..deal(&format!("Lines {n} {currency} {quantity}"), currency)
                };
                clean(
                    "CreateDeal lines",
                    deals.create_deal(CreateDealRequest { deal: Some(lined), ..Default::default() }).await,
                );
            }
        }
        let update = UpdateDealRequest {
            deal: Some(Deal { id: existing.id.clone(), amount: money("EUR", amount), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["amount".into()] }),
        };
        clean("UpdateDeal amount", deals.update_deal(update).await);
        for owner in ["q-1", "q-2"] {
            let quota = Quota {
                owner_id: owner.into(),
                year: 2027,
                month: 2 + n as i32,
                amount: money("EUR", amount),
                ..Default::default()
            };
            clean("SetQuota", forecasts.set_quota(SetQuotaRequest { quota: Some(quota) }).await);
        }
        let product = Product {
            sku: format!("X-{n}"),
            name: "Extreme".into(),
            prices: vec![Money { currency_code: "EUR".into(), minor_units: amount }],
            ..Default::default()
        };
        clean(
            "CreateProduct",
            products
                .create_product(CreateProductRequest { product: Some(product), request_id: String::new() })
                .await,
        );
        let invoice = RecordInvoiceRequest {
            order_id: order_id.clone(),
            number: format!("INV-{n}"),
            amount: money("EUR", amount),
            issue_date: date(2027, 1, 1),
            due_date: date(2027, 2, 1),
        };
        clean("RecordInvoice", orders.record_invoice(invoice).await);
        let payment = RecordPaymentRequest {
            invoice_id: base_invoice.id.clone(),
            amount: money("EUR", amount),
            payment_date: date(2027, 1, 2),
            external_ref: format!("PAY-{n}"),
        };
        clean("RecordPayment", orders.record_payment(payment).await);
    }

    // The case that once panicked: two quotas of 5×10^18 in one month.
    for owner in ["q-1", "q-2"] {
        let quota = Quota {
            owner_id: owner.into(),
            year: 2027,
            month: 1,
            amount: money("EUR", 5_000_000_000_000_000_000),
            ..Default::default()
        };
        forecasts.set_quota(SetQuotaRequest { quota: Some(quota) }).await.unwrap();
    }

    // The aggregates below face amounts near the 64-bit limit: some were
    // accepted (the limits are the type's, not smaller).
    let pool = app.pool();
    let huge = "SELECT count(*) FROM deals WHERE amount_minor >= 4000000000000000000";
    assert!(count(&pool, huge).await >= 2, "no extreme deal was accepted: the aggregates test nothing");
    let quotas = "SELECT count(*) FROM quotas WHERE amount_minor >= 4000000000000000000";
    assert!(count(&pool, quotas).await >= 4, "huge quotas (their sums overflow 64 bits)");

    // Every aggregate over whatever was accepted.
    for group_by in [
        ForecastGrouping::Owner,
        ForecastGrouping::Team,
        ForecastGrouping::Month,
        ForecastGrouping::Stage,
        ForecastGrouping::Pipeline,
    ] {
        for currency in ["EUR", "JPY", "KWD"] {
            let request = GetForecastRequest {
                start_date: date(2027, 1, 1),
                end_date: date(2027, 8, 31),
                group_by: group_by.into(),
                currency_code: currency.into(),
                ..Default::default()
            };
            clean(&format!("GetForecast {group_by:?} {currency}"), forecasts.get_forecast(request).await);
        }
    }
    for currency in ["EUR", "JPY"] {
        let request = GetPipelineSummaryRequest { currency_code: currency.into(), ..Default::default() };
        clean("GetPipelineSummary", forecasts.get_pipeline_summary(request).await);
    }
    let standing = GetAccountStandingRequest { company_id: company.to_string() };
    clean("GetAccountStanding", orders.get_account_standing(standing).await);
    clean("ListQuotas", forecasts.list_quotas(ListQuotasRequest { year: 2027, ..Default::default() }).await);
    clean("ListInvoices", orders.list_invoices(ListInvoicesRequest::default()).await);
    let listed =
        clean("ListDeals", deals.list_deals(ListDealsRequest { page_size: 500, ..Default::default() }).await);
    assert!(listed.is_some_and(|page| !page.deals.is_empty()));

    // Still serving.
    create(&admin, deal("After", "EUR")).await.unwrap();
    app.stop().await;
}
