//! DealService CRUD through a real client: defaults, line items in exact
//! money, references checked with Contacts, masks, etags, roles, lists.

use crate::common;
use crate::fixtures;

use common::{TestApp, reason, violated_fields};
use fixtures::deals::{company, contact, count, create, deal, seed};
use fixtures::money;
use rapport_kit::auth::{Principal, Role};
use rapport_proto::contacts::v1::LeadSource;
use rapport_proto::pipeline::v1::*;
use tonic::Code;

fn line(product_id: &str, quantity: &str, discount: &str) -> LineItem {
    LineItem {
        product_id: product_id.into(),
        quantity: quantity.into(),
        discount_percent: discount.into(),
        ..LineItem::default()
    }
}

#[tokio::test]
async fn create_defaults_pipeline_stage_owner_and_records_history() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let clients = app.clients_as("rep-1", &[Role::SalesRep]);
    let created = create(&clients, deal("Acme renewal", "EUR")).await.unwrap();
    assert_eq!(created.pipeline_id, seed.pipeline.to_string());
    assert_eq!(created.stage_id, seed.qualify.to_string());
    assert_eq!(created.owner_id, "rep-1");
    assert_eq!(created.status(), DealStatus::Open);
    assert_eq!(created.forecast_category(), ForecastCategory::Pipeline);
    assert_eq!((created.probability, created.probability_overridden), (Some(10), false));
    assert_eq!(created.amount, money("EUR", 0));
    assert!(created.account_warning.is_none());
    let pool = app.pool();
    let id = created.id.clone();
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM deal_stage_history WHERE deal_id = '{id}' AND leave_time IS NULL")
        )
        .await,
        1
    );
    assert_eq!(
        count(&pool, &format!("SELECT count(*) FROM change_log WHERE resource_type = 'rapport.pipeline.v1.Deal' AND resource_id = '{id}'")).await,
        1
    );
    let fetched = clients.deals.clone().get_deal(GetDealRequest { id }).await.unwrap().into_inner();
    assert_eq!(fetched, created);
    app.stop().await;
}

#[tokio::test]
async fn line_items_take_product_name_and_price_and_round_once() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let clients = app.clients();
    let product = seed.product.to_string();
    let check = |currency: &'static str, lines: Vec<LineItem>, amounts: Vec<i64>, total: i64| {
        let clients = clients.clone();
        async move {
            let created =
                create(&clients, Deal { line_items: lines, ..deal("Lines", currency) }).await.unwrap();
            let got: Vec<i64> =
                created.line_items.iter().map(|l| l.amount.as_ref().unwrap().minor_units).collect();
            assert_eq!(got, amounts, "{currency}");
            assert_eq!(created.amount, money(currency, total), "{currency}");
            created
        }
    };
    // 19.99 EUR × 1.5 × (1 − 50 %) = 14.9925 → 14.99; 19.99 × 3 × 87.5 % = 52.47375 → 52.47
    let eur =
        check("EUR", vec![line(&product, "1.5", "50"), line(&product, "3", "12.5")], vec![1499, 5247], 6746)
            .await;
    assert_eq!(eur.line_items[0].description, "Widget");
    assert_eq!(eur.line_items[0].unit_price, money("EUR", 1999));
    assert_eq!(
        (eur.line_items[0].quantity.as_str(), eur.line_items[0].discount_percent.as_str()),
        ("1.5", "50")
    );
    // 2500 JPY × 0.3 = 750; × 1.0001 × 33.3333 % off: 2500 × 1.0001 × 0.666667 = 1666.84 → 1667
    check("JPY", vec![line(&product, "0.3", ""), line(&product, "1.0001", "33.3333")], vec![750, 1667], 2417)
        .await;
    // 6.125 KWD × 2.5 = 15.3125 → 15.313 (half away from zero, 3 decimals)
    check("KWD", vec![line(&product, "2.5", "")], vec![15313], 15313).await;
    app.stop().await;
}

#[tokio::test]
async fn money_mistakes_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let clients = app.clients();
    let free = |price| LineItem { description: "Setup".into(), unit_price: price, ..LineItem::default() };
    let mixed = Deal { line_items: vec![free(money("USD", 100))], ..deal("Mixed", "EUR") };
    let status = create(&clients, mixed).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["deal.line_items[0].unit_price.currency_code"]);
    let both =
        Deal { amount: money("EUR", 5), line_items: vec![free(money("EUR", 100))], ..deal("Both", "EUR") };
    let status = create(&clients, both).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["deal.amount"]);
    let bad = Deal {
        probability: Some(101),
        line_items: vec![LineItem {
            quantity: "0".into(),
            discount_percent: "101".into(),
            ..free(money("EUR", 1))
        }],
        ..deal("", "EURO")
    };
    let status = create(&clients, bad).await.unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "deal.title",
            "deal.currency_code",
            "deal.line_items[0].quantity",
            "deal.line_items[0].discount_percent",
            "deal.probability"
        ]
    );
    let unpriced = fixtures::deals::product(&app.pool(), "Gadget", &[("EUR", 5)]).await.to_string();
    let status = create(&clients, Deal { line_items: vec![line(&unpriced, "1", "")], ..deal("USD", "USD") })
        .await
        .unwrap_err();
    assert_eq!((status.code(), reason(&status)), (Code::FailedPrecondition, "PRODUCT_PRICE_MISSING".into()));
    assert_eq!(count(&app.pool(), "SELECT count(*) FROM deals").await, 0);
    let _ = seed;
    app.stop().await;
}

#[tokio::test]
async fn references_are_checked_and_lead_source_carried_from_first_contact() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let clients = app.clients_as("rep-1", &[Role::SalesRep]);
    let acme = company(&clients, "Acme").await;
    let ada = contact(&clients, "ada@acme.test", LeadSource::TradeShow, "camp-7").await;
    let committee = |id: &str| vec![DealContact { contact_id: id.into(), role: BuyingRole::Champion.into() }];
    let created = create(
        &clients,
        Deal { company_id: acme.id.clone(), contacts: committee(&ada.id), ..deal("Acme", "EUR") },
    )
    .await
    .unwrap();
    assert_eq!(
        (created.lead_source(), created.source_campaign_id.as_str()),
        (LeadSource::TradeShow, "camp-7")
    );
    let unknown = uuid::Uuid::now_v7().to_string();
    let status =
        create(&clients, Deal { company_id: unknown.clone(), ..deal("X", "EUR") }).await.unwrap_err();
    assert_eq!((status.code(), reason(&status)), (Code::FailedPrecondition, "COMPANY_NOT_FOUND".into()));
    assert!(status.message().contains(&unknown));
    let status =
        create(&clients, Deal { contacts: committee(&unknown), ..deal("X", "EUR") }).await.unwrap_err();
    assert_eq!((status.code(), reason(&status)), (Code::FailedPrecondition, "CONTACT_NOT_FOUND".into()));
    assert!(status.message().contains(&unknown));
    app.clients()
        .contacts
        .delete_contact(rapport_proto::contacts::v1::DeleteContactRequest {
            id: ada.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let status =
        create(&clients, Deal { contacts: committee(&ada.id), ..deal("X", "EUR") }).await.unwrap_err();
    assert_eq!(reason(&status), "CONTACT_NOT_FOUND");
    assert!(status.message().contains(&ada.id));
    app.stop().await;
}

#[tokio::test]
async fn update_follows_the_mask_probability_override_and_etag() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let mut deals = app.clients().deals;
    let created = create(&app.clients(), deal("Mask", "EUR")).await.unwrap();
    let mask = |paths: &[&str]| {
        Some(prost_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() })
    };
    let update =
        |deal: Deal, paths: &[&str]| UpdateDealRequest { deal: Some(deal), update_mask: mask(paths) };
    let changed = Deal { probability: Some(75), title: "ignored".into(), ..created.clone() };
    let updated = deals.update_deal(update(changed, &["probability"])).await.unwrap().into_inner();
    assert_eq!(
        (updated.probability, updated.probability_overridden, updated.title.as_str()),
        (Some(75), true, "Mask")
    );
    let cleared = Deal { probability: None, ..updated.clone() };
    let back = deals.update_deal(update(cleared, &["probability"])).await.unwrap().into_inner();
    assert_eq!((back.probability, back.probability_overridden), (Some(10), false));
    let status = deals
        .update_deal(update(Deal { title: "Stale".into(), ..created.clone() }, &["title"]))
        .await
        .unwrap_err();
    assert_eq!((status.code(), reason(&status)), (Code::Aborted, "ETAG_MISMATCH".into()));
    let status = deals
        .update_deal(update(Deal { etag: String::new(), ..back.clone() }, &["status"]))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["update_mask"]);
    let status = deals
        .update_deal(update(
            Deal { forecast_category: ForecastCategory::Closed.into(), etag: String::new(), ..back.clone() },
            &["forecast_category"],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["deal.forecast_category"]);
    let now = deals.get_deal(GetDealRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert_eq!(now, back);
    app.stop().await;
}

#[tokio::test]
async fn sales_rep_creates_but_cannot_delete_and_lists_filter_by_contact() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let rep = app.clients_for(&Principal::new("rep-1", vec![Role::SalesRep]).with_teams(&["east"]));
    let ada = contact(&rep, "ada@x.test", LeadSource::Web, "").await;
    let with_ada = Deal {
        contacts: vec![DealContact { contact_id: ada.id.clone(), role: BuyingRole::DecisionMaker.into() }],
        ..deal("With Ada", "EUR")
    };
    let mine = create(&rep, with_ada).await.unwrap();
    create(&rep, deal("Other", "EUR")).await.unwrap();
    let status = rep
        .deals
        .clone()
        .delete_deal(DeleteDealRequest { id: mine.id.clone(), etag: String::new() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let list = |filter: String| {
        let mut deals = rep.deals.clone();
        async move {
            let request = ListDealsRequest { filter, page_size: 1, ..Default::default() };
            deals.list_deals(request).await.unwrap().into_inner()
        }
    };
    let found = list(format!("contact_ids:\"{}\"", ada.id)).await;
    assert_eq!(found.deals.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), [mine.id.as_str()]);
    assert!(found.next_page_token.is_empty());
    let first = list("status = OPEN".into()).await;
    assert!(!first.next_page_token.is_empty());
    // A manager of the deal's team deletes it.
    let manager = app.clients_for(&Principal::new("boss", vec![Role::SalesManager]).with_teams(&["east"]));
    let deleted = manager
        .deals
        .clone()
        .delete_deal(DeleteDealRequest { id: mine.id.clone(), etag: mine.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.delete_time.is_some());
    assert_eq!(list(format!("contact_ids:\"{}\"", ada.id)).await.deals.len(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_currency_change_never_relabels_an_amount() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let clients = app.clients();
    let created =
        create(&clients, Deal { amount: money("USD", 10_000), ..deal("Dollars", "USD") }).await.unwrap();
    // New currency, the line items emptied, no amount: 100.00 USD must not become 100.00 EUR.
    let status = clients
        .deals
        .clone()
        .update_deal(UpdateDealRequest {
            deal: Some(Deal { currency_code: "EUR".into(), line_items: Vec::new(), ..created.clone() }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["currency_code".into(), "line_items".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), violated_fields(&status)),
        (Code::InvalidArgument, vec!["deal.amount".to_owned()])
    );
    // With the amount in the new currency it is a plain update.
    let updated = clients
        .deals
        .clone()
        .update_deal(UpdateDealRequest {
            deal: Some(Deal { currency_code: "EUR".into(), amount: money("EUR", 9_200), ..created.clone() }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["currency_code".into(), "amount".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.currency_code.as_str(), updated.amount), ("EUR", money("EUR", 9_200)));
    app.stop().await;
}
