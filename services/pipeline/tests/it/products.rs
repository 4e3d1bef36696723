//! ProductService through a real client.

use crate::common;

use common::{Clients, TestApp, reason, violated_fields};
use futures::StreamExt;
use prost_types::FieldMask;
use rapport_kit::auth::Role;
use rapport_proto::common::v1::Money;
use rapport_proto::pipeline::v1::watch_changes_response::Event;
use rapport_proto::pipeline::v1::*;
use tonic::Code;

fn eur(minor_units: i64) -> Money {
    Money { currency_code: "EUR".into(), minor_units }
}

fn product(sku: &str, name: &str) -> Product {
    Product { sku: sku.into(), name: name.into(), prices: vec![eur(1999)], ..Default::default() }
}

async fn create(clients: &mut Clients, product: Product) -> Result<Product, tonic::Status> {
    let request = CreateProductRequest { product: Some(product), request_id: String::new() };
    clients.products.create_product(request).await.map(tonic::Response::into_inner)
}

async fn skus(clients: &mut Clients, request: ListProductsRequest) -> Vec<String> {
    let page = clients.products.list_products(request).await.unwrap().into_inner();
    page.products.into_iter().map(|p| p.sku).collect()
}

#[tokio::test]
async fn create_validates_defaults_active_and_replays_request_ids() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let bad = Product {
        sku: "no spaces".into(),
        prices: vec![eur(1), eur(2), Money { currency_code: "USD".into(), minor_units: -1 }],
        ..Default::default()
    };
    let err = create(&mut clients, bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        ["product.sku", "product.name", "product.prices[1].currency_code", "product.prices[2].minor_units"]
    );
    assert!(
        skus(&mut clients, ListProductsRequest { show_deleted: true, ..Default::default() }).await.is_empty()
    );
    let request =
        CreateProductRequest { product: Some(product("SKU-1", "Widget")), request_id: "p-1".into() };
    let created = clients.products.create_product(request.clone()).await.unwrap().into_inner();
    assert_eq!((created.active, created.prices.clone()), (Some(true), vec![eur(1999)]));
    let replayed = clients.products.create_product(request).await.unwrap().into_inner();
    assert_eq!(replayed, created);
    let fetched = clients.products.get_product(GetProductRequest { id: created.id.clone() }).await.unwrap();
    assert_eq!(fetched.into_inner(), created);
    let inactive =
        create(&mut clients, Product { active: Some(false), ..product("SKU-2", "Off") }).await.unwrap();
    assert_eq!(inactive.active, Some(false));
    app.stop().await;
}

#[tokio::test]
async fn skus_are_unique_among_live_products() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let first = create(&mut clients, product("ABC", "First")).await.unwrap();
    let err = create(&mut clients, product("abc", "Second")).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::AlreadyExists, "PRODUCT_SKU_TAKEN"));
    use tonic_types::StatusExt;
    assert_eq!(err.get_details_resource_info().unwrap().resource_name, first.id);
    let deleted = clients
        .products
        .delete_product(DeleteProductRequest { id: first.id.clone(), etag: first.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.delete_time.is_some());
    let second = create(&mut clients, product("abc", "Second")).await.unwrap();
    let err = clients
        .products
        .undelete_product(UndeleteProductRequest { id: first.id.clone(), etag: String::new() })
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "PRODUCT_SKU_TAKEN");
    clients
        .products
        .delete_product(DeleteProductRequest { id: second.id, etag: String::new() })
        .await
        .unwrap();
    let restored = clients
        .products
        .undelete_product(UndeleteProductRequest { id: first.id, etag: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert!(restored.delete_time.is_none());
    app.stop().await;
}

#[tokio::test]
async fn update_applies_the_mask_and_checks_etags() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let created = create(&mut clients, product("UPD", "Before")).await.unwrap();
    let update = |product: Product, paths: &[&str]| UpdateProductRequest {
        product: Some(product),
        update_mask: Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
    };
    let usd = Money { currency_code: "USD".into(), minor_units: 2500 };
    let changed = Product {
        name: "After".into(),
        prices: vec![usd.clone(), eur(0)],
        active: Some(false),
        ..created.clone()
    };
    let updated = clients
        .products
        .update_product(update(changed, &["name", "prices", "active"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.name.as_str(), updated.active), ("After", Some(false)));
    assert_eq!(updated.prices, [eur(0), usd]);
    assert_eq!(updated.sku, "UPD");
    let err = clients
        .products
        .update_product(update(Product { name: "Stale".into(), ..created.clone() }, &["name"]))
        .await
        .unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::Aborted, "ETAG_MISMATCH"));
    let err = clients
        .products
        .update_product(update(
            Product { name: String::new(), etag: String::new(), ..created.clone() },
            &["name", "create_time"],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["update_mask"]);
    let err = clients
        .products
        .update_product(update(Product { name: String::new(), etag: String::new(), ..created }, &["name"]))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["product.name"]);
    app.stop().await;
}

#[tokio::test]
async fn list_filters_orders_and_pages() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    for (sku, name, active) in [("C-3", "Gamma", true), ("A-1", "Beta", true), ("B-2", "Alpha", false)] {
        create(&mut clients, Product { active: Some(active), ..product(sku, name) }).await.unwrap();
    }
    let list = |filter: &str, order_by: &str, page_size| ListProductsRequest {
        filter: filter.into(),
        order_by: order_by.into(),
        page_size,
        ..Default::default()
    };
    assert_eq!(skus(&mut clients, list("", "", 0)).await, ["A-1", "B-2", "C-3"]);
    assert_eq!(skus(&mut clients, list("", "name", 0)).await, ["B-2", "A-1", "C-3"]);
    assert_eq!(skus(&mut clients, list("active = true", "sku desc", 0)).await, ["C-3", "A-1"]);
    let first = clients.products.list_products(list("", "create_time", 2)).await.unwrap().into_inner();
    assert_eq!(first.products.len(), 2);
    let next = ListProductsRequest { page_token: first.next_page_token, ..list("", "create_time", 2) };
    let second = clients.products.list_products(next).await.unwrap().into_inner();
    assert_eq!(second.products.iter().map(|p| p.sku.as_str()).collect::<Vec<_>>(), ["B-2"]);
    assert!(second.next_page_token.is_empty());
    let err = clients.products.list_products(list("price = 1", "", 0)).await.unwrap_err();
    assert_eq!((err.code(), reason(&err).as_str()), (Code::InvalidArgument, "INVALID_FILTER"));
    app.stop().await;
}

#[tokio::test]
async fn sales_reps_read_but_cannot_change_products() {
    let app = TestApp::spawn().await;
    let mut rep = app.clients_as("rep-1", &[Role::SalesRep]);
    let err = create(&mut rep, product("REP", "Mine")).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(skus(&mut rep, ListProductsRequest::default()).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn created_products_are_streamed() {
    let app = TestApp::spawn().await;
    let mut clients = app.clients();
    let request =
        WatchChangesRequest { after_sequence: 0, resource_types: vec!["rapport.pipeline.v1.Product".into()] };
    let mut stream = clients.pipelines.watch_changes(request).await.unwrap().into_inner();
    let created = create(&mut clients, product("WATCH", "Watched")).await.unwrap();
    loop {
        let Some(Event::Change(change)) = stream.next().await.unwrap().unwrap().event else { continue };
        assert_eq!(change.resource_type, "rapport.pipeline.v1.Product");
        if change.resource_id == created.id {
            let decoded =
                <Product as prost::Message>::decode(change.resource.unwrap().value.as_slice()).unwrap();
            assert_eq!(decoded, created);
            break;
        }
    }
    app.stop().await;
}
