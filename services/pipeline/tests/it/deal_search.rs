//! SearchDeals: word prefixes over titles and next steps, ranking, the
//! status filter, paging and refused queries.

use crate::common;
use crate::fixtures;

use common::{Clients, TestApp, reason};
use fixtures::deals::{create, deal, seed};
use rapport_proto::pipeline::v1::*;
use tonic::Code;

async fn search(
    clients: &Clients,
    request: SearchDealsRequest,
) -> Result<SearchDealsResponse, tonic::Status> {
    clients.deals.clone().search_deals(request).await.map(|response| response.into_inner())
}

async fn titles(clients: &Clients, query: &str, status: DealStatus) -> Vec<String> {
    let request = SearchDealsRequest { query: query.into(), status: status.into(), ..Default::default() };
    let mut titles: Vec<String> =
        search(clients, request).await.unwrap().deals.into_iter().map(|deal| deal.title).collect();
    titles.sort();
    titles
}

#[tokio::test]
async fn search_matches_every_word_as_a_prefix_with_status_filter() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let clients = app.clients();
    let mut deals = clients.deals.clone();
    let with_step = |title: &str, step: &str| Deal { next_step: step.into(), ..deal(title, "EUR") };
    create(&clients, with_step("Acme renewal 2026", "call procurement")).await.unwrap();
    create(&clients, with_step("Acme expansion", "")).await.unwrap();
    create(&clients, with_step("Globex renewal", "send the Acme-style proposal")).await.unwrap();
    let lost = create(&clients, deal("Acme pilot", "EUR")).await.unwrap();
    deals
        .lose_deal(LoseDealRequest {
            id: lost.id,
            lost_reason_id: seed.lost_reason.to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    let gone = create(&clients, deal("Acme archived", "EUR")).await.unwrap();
    deals.delete_deal(DeleteDealRequest { id: gone.id, etag: String::new() }).await.unwrap();

    let any = DealStatus::Unspecified;
    assert_eq!(
        titles(&clients, "acm", any).await,
        ["Acme expansion", "Acme pilot", "Acme renewal 2026", "Globex renewal"]
    );
    assert_eq!(titles(&clients, "ACME Renew", any).await, ["Acme renewal 2026", "Globex renewal"]);
    assert_eq!(titles(&clients, "renew 2026", any).await, ["Acme renewal 2026"]);
    assert_eq!(titles(&clients, "procure", any).await, ["Acme renewal 2026"]);
    assert_eq!(titles(&clients, "acme", DealStatus::Lost).await, ["Acme pilot"]);
    assert_eq!(titles(&clients, "acme", DealStatus::Open).await.len(), 3);
    assert!(titles(&clients, "acme zebra", any).await.is_empty());
    assert!(titles(&clients, "archived", any).await.is_empty(), "deleted deals are not found");
    // Operators and quotes are only separators, never syntax.
    assert_eq!(titles(&clients, "acme' | !renew:* & (2026", any).await, ["Acme renewal 2026"]);
    app.stop().await;
}

#[tokio::test]
async fn search_ranks_title_matches_first_and_pages_without_repeats() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let clients = app.clients();
    let step =
        create(&clients, Deal { next_step: "widget demo".into(), ..deal("Demo day", "EUR") }).await.unwrap();
    let title = create(&clients, deal("Widget order", "EUR")).await.unwrap();
    let request = SearchDealsRequest { query: "widget".into(), ..Default::default() };
    let ranked: Vec<String> =
        search(&clients, request).await.unwrap().deals.into_iter().map(|d| d.id).collect();
    assert_eq!(ranked, [title.id, step.id]);

    for n in 0..5 {
        create(&clients, deal(&format!("Gadget {n}"), "EUR")).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let request =
            SearchDealsRequest { query: "gadget".into(), page_size: 2, page_token, ..Default::default() };
        let page = search(&clients, request).await.unwrap();
        assert!(page.deals.len() <= 2);
        seen.extend(page.deals.into_iter().map(|deal| deal.title));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    seen.sort();
    assert_eq!(seen, (0..5).map(|n| format!("Gadget {n}")).collect::<Vec<_>>());

    let first =
        search(&clients, SearchDealsRequest { query: "gadget".into(), page_size: 2, ..Default::default() })
            .await
            .unwrap();
    let other = SearchDealsRequest {
        query: "widget".into(),
        page_token: first.next_page_token,
        ..Default::default()
    };
    let status = search(&clients, other).await.unwrap_err();
    assert_eq!((status.code(), reason(&status)), (Code::InvalidArgument, "INVALID_PAGE_TOKEN".into()));
    app.stop().await;
}

#[tokio::test]
async fn search_refuses_empty_long_and_wordless_queries() {
    let app = TestApp::spawn().await;
    let clients = app.clients();
    for query in [String::new(), "   ".into(), "&|!():*".into(), "a".repeat(201)] {
        let status = search(&clients, SearchDealsRequest { query, ..Default::default() }).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(common::violated_fields(&status), ["query"]);
    }
    let status = search(&clients, SearchDealsRequest { query: "a".into(), status: 9, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    app.stop().await;
}
