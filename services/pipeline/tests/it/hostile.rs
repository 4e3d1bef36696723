//! Input built to hurt: huge lists refused on their count before any
//! per-item work, NUL bytes refused as field violations, extreme amounts
//! answered cleanly — and nothing written.

use crate::common;
use crate::fixtures;
use crate::forecast_fixture;

use common::{TestApp, violated_fields};
use fixtures::deals::{count, create, deal, seed};
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
