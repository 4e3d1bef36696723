//! SearchContacts and SearchCompanies: ranking, prefixes, typos corrected
//! against stored words, accents, phones, company names, paging and
//! deleted records.

use crate::common;

use common::{Client, Options, TestApp, create, create_company, failure, reason, violated_fields};
use rapport_proto::contacts::v1::{
    Contact, DeleteCompanyRequest, DeleteContactRequest, SearchCompaniesRequest, SearchCompaniesResponse,
    SearchContactsRequest, SearchContactsResponse, UndeleteContactRequest, UpdateContactRequest,
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

fn named(given: &str, family: &str, email: &str) -> Contact {
    Contact {
        given_name: given.into(),
        family_name: family.into(),
        email: email.into(),
        ..Default::default()
    }
}

/// The emails of a search's hits, best first.
async fn emails(client: &mut Client, query: &str) -> Vec<String> {
    search(client, query).await.results.into_iter().map(|hit| hit.contact.unwrap().email).collect()
}

#[tokio::test]
async fn typos_in_first_and_last_names_are_corrected_against_stored_words() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let jennifer = create(&mut client, named("Jennifer", "Thompson", "jt@one.example")).await;
    let jenny = create(&mut client, named("Jenny", "Thomas", "jenny@two.example")).await;
    create(&mut client, named("William", "Tanaka", "wt@three.example")).await;

    // A typo in the last name or in the first name: a word typed right
    // is not corrected, so only Jennifer Thompson matches.
    for query in ["jennifer tompson", "jenifer thompson"] {
        assert_eq!(emails(&mut client, query).await, [jennifer.email.as_str()], "{query:?}");
    }
    // Typos in both: Jenny Thomas is near enough too, but ranks second.
    assert_eq!(emails(&mut client, "jenifer thompsen").await, [jennifer.email.clone(), jenny.email.clone()]);
    // A typo that is nearer to another stored name finds that one too, the
    // closer spelling first; words typed right are never lost.
    let found = emails(&mut client, "tomas").await;
    assert_eq!(found.first(), Some(&jenny.email), "{found:?}");
    // Nothing similar is stored: nothing is found.
    assert!(emails(&mut client, "zzyzx").await.is_empty());

    // Words a write adds are learned at once (the rename's new name).
    client
        .update_contact(UpdateContactRequest {
            contact: Some(Contact {
                id: jenny.id.clone(),
                family_name: "Kowalczyk".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["family_name".into()] }),
        })
        .await
        .unwrap();
    assert_eq!(emails(&mut client, "kowalcyk").await, [jenny.email.as_str()]);
}

#[tokio::test]
async fn accents_phones_and_email_words_are_searchable() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let jose = create(
        &mut client,
        Contact {
            phone: "+1 (555) 010-2030".into(),
            ..named("José", "Müller", "maria.garcia42@acme.example")
        },
    )
    .await;
    let plain = create(&mut client, named("Jose", "Muller", "jm@other.example")).await;

    // Accents fold both ways; both spellings match both people.
    for query in ["jose muller", "José Müller", "JOSÉ"] {
        let mut found = emails(&mut client, query).await;
        found.sort();
        let mut want = vec![jose.email.clone(), plain.email.clone()];
        want.sort();
        assert_eq!(found, want, "{query:?}");
    }
    // The words of an email address, without its digits.
    assert_eq!(emails(&mut client, "garcia42").await, [jose.email.as_str()]);
    assert_eq!(emails(&mut client, "maria garc").await, [jose.email.as_str()]);
    // A phone number by its digits, however it is punctuated.
    for query in ["+1 555 010 2030", "15550102030", "1-555-010"] {
        assert_eq!(emails(&mut client, query).await, [jose.email.as_str()], "{query:?}");
    }
    assert!(emails(&mut client, "555 010 2030").await.is_empty(), "a phone matches from its first digit");
}

async fn search_companies(client: &mut Client, query: &str, page_token: &str) -> SearchCompaniesResponse {
    client
        .search_companies(SearchCompaniesRequest {
            query: query.into(),
            page_size: 2,
            page_token: page_token.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn company_names(found: &SearchCompaniesResponse) -> Vec<String> {
    found.results.iter().map(|hit| hit.company.as_ref().unwrap().name.clone()).collect()
}

#[tokio::test]
async fn companies_are_searched_by_name_domain_and_typo() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let acme = create_company(&mut client, "Acme Widgets", "acme.example").await;
    create_company(&mut client, "Acme Logistics", "acmelog.example").await;
    create_company(&mut client, "Acme Rockets", "rockets.example").await;
    create_company(&mut client, "Globex Corporation", "globex.example").await;
    let initech = create_company(&mut client, "Initech", "").await;

    assert_eq!(company_names(&search_companies(&mut client, "acme wid", "").await), ["Acme Widgets"]);
    assert_eq!(company_names(&search_companies(&mut client, "globx", "").await), ["Globex Corporation"]);
    // The exact domain ranks first.
    let found = search_companies(&mut client, "acme.example", "").await;
    assert_eq!(company_names(&found)[0], "Acme Widgets");
    assert!(found.results[0].score > found.results.get(1).map_or(0.0, |hit| hit.score));

    // Pages: two, then one, no repeats.
    let first = search_companies(&mut client, "acme", "").await;
    assert_eq!(first.results.len(), 2);
    assert!(!first.next_page_token.is_empty());
    // A contacts search token is not a companies search token.
    let status = failure(
        client
            .search_contacts(SearchContactsRequest {
                query: "acme".into(),
                page_size: 2,
                page_token: first.next_page_token.clone(),
            })
            .await,
    );
    assert_eq!(reason(&status), "INVALID_PAGE_TOKEN");
    let second = search_companies(&mut client, "acme", &first.next_page_token).await;
    assert!(second.next_page_token.is_empty(), "{second:?}");
    let mut seen = company_names(&first);
    seen.extend(company_names(&second));
    seen.sort();
    assert_eq!(seen, ["Acme Logistics", "Acme Rockets", "Acme Widgets"]);

    // Deleted companies are not found.
    client.delete_company(DeleteCompanyRequest { id: acme.id.clone(), etag: String::new() }).await.unwrap();
    assert_eq!(company_names(&search_companies(&mut client, "widgets", "").await), Vec::<String>::new());
    assert_eq!(company_names(&search_companies(&mut client, "initech", "").await), [initech.name]);
}

#[tokio::test]
async fn a_word_no_record_holds_any_more_is_corrected_again() {
    let app = TestApp::spawn_with(Options {
        env: vec![("CONTACTS_VOCABULARY_INTERVAL".into(), "50ms".into())],
        ..Default::default()
    })
    .await;
    let mut client = app.client().await;
    let smyth = create(&mut client, named("Anna", "Smyth", "anna@one.example")).await;
    client
        .update_contact(UpdateContactRequest {
            contact: Some(Contact {
                id: smyth.id.clone(),
                family_name: "Smith".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["family_name".into()] }),
        })
        .await
        .unwrap();
    // Until the pruner drops "smyth", it counts as a known word and is not
    // corrected; afterwards it is, to "smith".
    let pool = app.pool();
    let pruned = "SELECT NOT EXISTS (SELECT 1 FROM contacts.search_words WHERE word = 'smyth')";
    app.until("the vocabulary to drop smyth", pruned).await;
    assert_eq!(emails(&mut client, "anna smyth").await, [smyth.email.as_str()]);
    let kept: Vec<String> = sqlx::query_scalar("SELECT word FROM contacts.search_words ORDER BY word")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(kept, ["anna", "example", "one", "smith"]);
}
