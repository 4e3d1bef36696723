//! SearchContacts: ranking, prefixes, typos, company names, paging and
//! deleted contacts.

use crate::common;

use common::{Client, TestApp, create, create_company, failure, reason, violated_fields};
use rapport_proto::contacts::v1::{
    Contact, DeleteContactRequest, SearchContactsRequest, SearchContactsResponse, UndeleteContactRequest,
};
use tonic::Code;

/// The people every search test looks for.
struct People {
    john: Contact,
    jane: Contact,
    bob: Contact,
}

async fn seed(client: &mut Client) -> People {
    let acme = create_company(client, "Acme Widgets", "acme.example").await;
    let person = |given: &str, family: &str, email: &str, company_id: &str| Contact {
        given_name: given.into(),
        family_name: family.into(),
        email: email.into(),
        company_id: company_id.into(),
        ..Default::default()
    };
    let john = create(client, person("John", "Smith", "john.smith@acme.example", &acme.id)).await;
    let jane = create(client, person("Jane", "Smithers", "jane.smithers@acme.example", &acme.id)).await;
    let bob = create(client, person("Bob", "Jones", "bob.jones@acme.example", &acme.id)).await;
    create(client, person("Alice", "Wong", "alice@globex.example", "")).await;
    People { john, jane, bob }
}

async fn search(client: &mut Client, query: &str) -> SearchContactsResponse {
    client
        .search_contacts(SearchContactsRequest { query: query.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
}

/// Asserts `query` finds exactly `expected`, best first, with scores
/// descending.
async fn check(client: &mut Client, query: &str, expected: &[&Contact]) {
    let found = search(client, query).await;
    let names: Vec<String> =
        found.results.iter().map(|hit| hit.contact.as_ref().unwrap().email.clone()).collect();
    let want: Vec<String> = expected.iter().map(|c| c.email.clone()).collect();
    assert_eq!(names, want, "query {query:?}");
    for pair in found.results.windows(2) {
        assert!(pair[0].score >= pair[1].score, "query {query:?}: {pair:?}");
    }
    assert!(found.next_page_token.is_empty());
}

#[tokio::test]
async fn prefixes_and_typos_find_the_best_match_first() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let people = seed(&mut client).await;

    let found = search(&mut client, "jon smi").await;
    let first = found.results.first().expect("a hit for \"jon smi\"");
    assert_eq!(first.contact.as_ref(), Some(&people.john));

    check(&mut client, "smith", &[&people.john, &people.jane]).await;
    check(&mut client, "Smi", &[&people.john, &people.jane]).await;
    let typo = search(&mut client, "smiht").await;
    let emails: Vec<&str> =
        typo.results.iter().map(|hit| hit.contact.as_ref().unwrap().email.as_str()).collect();
    assert!(emails.contains(&people.john.email.as_str()), "{emails:?}");
    assert!(!emails.contains(&people.bob.email.as_str()), "{emails:?}");
    check(&mut client, "jones", &[&people.bob]).await;
}

#[tokio::test]
async fn company_names_are_searchable() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let people = seed(&mut client).await;
    let found = search(&mut client, "acme").await;
    let mut emails: Vec<String> =
        found.results.iter().map(|hit| hit.contact.as_ref().unwrap().email.clone()).collect();
    emails.sort();
    let mut want = vec![people.bob.email.clone(), people.jane.email.clone(), people.john.email.clone()];
    want.sort();
    assert_eq!(emails, want);
    // Every word must match: the others only share the company.
    check(&mut client, "widgets jones", &[&people.bob]).await;
}

#[tokio::test]
async fn an_exact_email_ranks_first() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let people = seed(&mut client).await;
    // A namesake at the same company matches every word of the query too.
    let namesake = create(
        &mut client,
        Contact {
            given_name: "John".into(),
            family_name: "Smith".into(),
            email: "jsmith@acme.example".into(),
            company_id: people.john.company_id.clone(),
            ..Default::default()
        },
    )
    .await;

    // Both match every word of John's address (the namesake by name and
    // domain); the exact address ranks first.
    let found = search(&mut client, "john.smith@acme.example").await;
    assert!(found.results.len() >= 2, "{found:?}");
    assert_eq!(found.results[0].contact.as_ref(), Some(&people.john));
    assert!(found.results[0].score > found.results[1].score);
    // Only the namesake has the word "jsmith"; case does not matter.
    check(&mut client, "JSmith@Acme.example", &[&namesake]).await;
}

#[tokio::test]
async fn deleted_contacts_are_not_found() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let people = seed(&mut client).await;
    client
        .delete_contact(DeleteContactRequest { id: people.bob.id.clone(), etag: String::new() })
        .await
        .unwrap();
    check(&mut client, "jones", &[]).await;
    let found = search(&mut client, "bob.jones@acme.example").await;
    assert!(found.results.iter().all(|hit| hit.contact.as_ref().unwrap().id != people.bob.id), "{found:?}");

    client
        .undelete_contact(UndeleteContactRequest { id: people.bob.id.clone(), etag: String::new() })
        .await
        .unwrap();
    let found = search(&mut client, "jones").await;
    assert_eq!(found.results.len(), 1);
    assert_eq!(found.results[0].contact.as_ref().unwrap().id, people.bob.id);
}

#[tokio::test]
async fn results_page_without_repeats() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let people = seed(&mut client).await;
    let mut seen = Vec::new();
    let mut token = String::new();
    for _ in 0..10 {
        let page = client
            .search_contacts(SearchContactsRequest { query: "acme".into(), page_size: 2, page_token: token })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.results.into_iter().map(|hit| hit.contact.unwrap().id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let mut want = vec![people.john.id, people.jane.id, people.bob.id];
    want.sort();
    seen.sort();
    assert_eq!(seen, want);

    let first = client
        .search_contacts(SearchContactsRequest {
            query: "acme".into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let status = failure(
        client
            .search_contacts(SearchContactsRequest {
                query: "smith".into(),
                page_size: 1,
                page_token: first.next_page_token,
            })
            .await,
    );
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status), "INVALID_PAGE_TOKEN");
}

#[tokio::test]
async fn queries_need_a_word() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    for query in ["", "   ", "@@ --", &"x".repeat(201)] {
        let status = failure(
            client.search_contacts(SearchContactsRequest { query: query.into(), ..Default::default() }).await,
        );
        assert_eq!(status.code(), Code::InvalidArgument, "{query:?}");
        assert_eq!(violated_fields(&status), ["query"], "{query:?}");
    }
}
