//! FindDuplicates: one contact's likely duplicates (normalized email,
//! E.164 phone, similar names at a company or under a domain) and the
//! whole book's candidate groups, paged.

use crate::common;

use common::{Client, Options, TestApp, create, create_company, failure, reason};
use rapport_proto::contacts::v1::{
    Contact, DeleteContactRequest, DuplicateGroup, DuplicateReason, FindDuplicatesRequest,
};
use tonic::Code;

fn person(given: &str, family: &str, email: &str) -> Contact {
    Contact {
        given_name: given.into(),
        family_name: family.into(),
        email: email.into(),
        ..Default::default()
    }
}

async fn find(client: &mut Client, request: FindDuplicatesRequest) -> Vec<DuplicateGroup> {
    client.find_duplicates(request).await.unwrap().into_inner().groups
}

async fn duplicates_of(
    client: &mut Client,
    contact: &Contact,
    exact_email_only: bool,
) -> Vec<DuplicateGroup> {
    let request =
        FindDuplicatesRequest { contact_id: contact.id.clone(), exact_email_only, ..Default::default() };
    find(client, request).await
}

/// (the candidate's email, its reasons) of each group, best first.
fn candidates(groups: &[DuplicateGroup]) -> Vec<(String, Vec<DuplicateReason>)> {
    groups
        .iter()
        .map(|group| {
            assert_eq!(group.contacts.len(), 2, "{group:?}");
            (group.contacts[1].email.clone(), group.reasons().collect())
        })
        .collect()
}

/// A server whose phone keys are computed at once.
async fn spawn() -> TestApp {
    TestApp::spawn_with(Options {
        env: vec![("CONTACTS_PHONE_KEY_INTERVAL".into(), "20ms".into())],
        ..Default::default()
    })
    .await
}

/// Waits until every contact's phone key is computed.
async fn phones_normalized(app: &TestApp) {
    let done = "SELECT NOT EXISTS (SELECT 1 FROM contacts.contacts WHERE phone_e164 IS NULL)";
    app.until("phone keys", done).await;
}

#[tokio::test]
async fn a_contacts_duplicates_by_email_phone_and_name() {
    let app = spawn().await;
    let mut client = app.client().await;
    let ada = create(
        &mut client,
        Contact {
            phone: "+1 415 555 2671".into(),
            ..person("Ada", "Lovelace", "ada.lovelace+news@gmail.com")
        },
    )
    .await;
    let dotted = create(&mut client, person("A.", "Lovelace", "a.d.a.lovelace@googlemail.com")).await;
    let same_phone = create(
        &mut client,
        Contact { phone: "(415) 555-2671".into(), ..person("Grace", "Hopper", "grace@navy.example") },
    )
    .await;
    create(
        &mut client,
        Contact { phone: "+44 20 7946 0958".into(), ..person("Bob", "Jones", "bob@other.example") },
    )
    .await;
    phones_normalized(&app).await;

    let found = candidates(&duplicates_of(&mut client, &ada, false).await);
    assert_eq!(
        found,
        [
            (dotted.email.clone(), vec![DuplicateReason::SameEmail]),
            (same_phone.email.clone(), vec![DuplicateReason::SamePhone]),
        ]
    );
    // Addresses as stored only: the Gmail rules are off.
    let found = candidates(&duplicates_of(&mut client, &ada, true).await);
    assert_eq!(found, [(same_phone.email.clone(), vec![DuplicateReason::SamePhone])]);

    // A deleted contact is no candidate.
    client.delete_contact(DeleteContactRequest { id: dotted.id.clone(), etag: String::new() }).await.unwrap();
    let found = candidates(&duplicates_of(&mut client, &ada, false).await);
    assert_eq!(found, [(same_phone.email.clone(), vec![DuplicateReason::SamePhone])]);

    // A changed phone is compared again once normalized.
    client
        .update_contact(rapport_proto::contacts::v1::UpdateContactRequest {
            contact: Some(Contact {
                id: same_phone.id.clone(),
                phone: "+1 212 555 0100".into(),
                ..Default::default()
            }),
            update_mask: common::mask(&["phone"]),
        })
        .await
        .unwrap();
    phones_normalized(&app).await;
    assert!(duplicates_of(&mut client, &ada, false).await.is_empty());
}

#[tokio::test]
async fn similar_names_count_at_one_company_and_under_one_domain_but_not_freemail() {
    let app = spawn().await;
    let mut client = app.client().await;
    let acme = create_company(&mut client, "Acme", "acme.example").await;
    let at = |contact: Contact| Contact { company_id: acme.id.clone(), ..contact };
    let jon = create(&mut client, at(person("Jonathan", "Smith", "jonathan@acme.example"))).await;
    let john = create(&mut client, at(person("Jonathon", "Smith", "js@acme.example"))).await;
    create(&mut client, at(person("Mary", "Major", "mary@acme.example"))).await;
    // The same domain without the company.
    let domain = create(&mut client, person("Jonathan", "Smyth", "jsmyth@acme.example")).await;
    // Freemail: a shared domain says nothing.
    let free_a = create(&mut client, person("Maria", "Garcia", "maria.g@gmail.com")).await;
    create(&mut client, person("Maria", "Garcia", "mgarcia@gmail.com")).await;

    let groups = duplicates_of(&mut client, &jon, false).await;
    let found = candidates(&groups);
    assert_eq!(
        found[0],
        (
            john.email.clone(),
            vec![DuplicateReason::SimilarNameSameCompany, DuplicateReason::SimilarNameSameDomain]
        )
    );
    assert_eq!(found[1], (domain.email.clone(), vec![DuplicateReason::SimilarNameSameDomain]));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(groups[0].score > groups[1].score && groups[0].score < 1.0, "{groups:?}");
    assert!(duplicates_of(&mut client, &free_a, false).await.is_empty());
}

#[tokio::test]
async fn the_whole_book_pages_through_every_group() {
    let app = spawn().await;
    let mut client = app.client().await;
    let acme = create_company(&mut client, "Acme", "acme.example").await;
    let a = create(&mut client, person("Ada", "Lovelace", "ada+one@example.org")).await;
    let b = create(&mut client, person("Ada", "L", "ada+two@example.org")).await;
    let c = create(
        &mut client,
        Contact { phone: "+1 415 555 2671".into(), ..person("C", "One", "c1@x.example") },
    )
    .await;
    let d = create(&mut client, Contact { phone: "4155552671".into(), ..person("D", "Two", "d2@y.example") })
        .await;
    let e = create(
        &mut client,
        Contact { company_id: acme.id.clone(), ..person("Jonathan", "Smith", "e@z.example") },
    )
    .await;
    let f = create(
        &mut client,
        Contact { company_id: acme.id.clone(), ..person("Jonathon", "Smith", "f@w.example") },
    )
    .await;
    create(&mut client, person("Unique", "Person", "u@v.example")).await;
    phones_normalized(&app).await;

    let mut seen = Vec::new();
    let mut token = String::new();
    for _ in 0..50 {
        let page = client
            .find_duplicates(FindDuplicatesRequest { page_size: 1, page_token: token, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert!(page.groups.len() <= 1);
        for group in page.groups {
            let mut ids: Vec<String> = group.contacts.iter().map(|contact| contact.id.clone()).collect();
            ids.sort();
            seen.push((group.reasons().next().unwrap(), group.key.clone(), ids, group.size));
        }
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let sorted = |ids: [&str; 2]| {
        let mut ids = ids.map(str::to_owned).to_vec();
        ids.sort();
        ids
    };
    assert_eq!(
        seen,
        [
            (DuplicateReason::SameEmail, "ada@example.org".to_owned(), sorted([&a.id, &b.id]), 2),
            (DuplicateReason::SamePhone, "+14155552671".to_owned(), sorted([&c.id, &d.id]), 2),
            (DuplicateReason::SimilarNameSameCompany, acme.id.clone(), sorted([&e.id, &f.id]), 2),
        ]
    );

    // A token from an exact-email scan is not one for the default scan.
    let exact = client
        .find_duplicates(FindDuplicatesRequest { page_size: 1, exact_email_only: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let status = failure(
        client
            .find_duplicates(FindDuplicatesRequest {
                page_size: 1,
                page_token: exact.next_page_token,
                ..Default::default()
            })
            .await,
    );
    assert_eq!(reason(&status), "INVALID_PAGE_TOKEN");
}

#[tokio::test]
async fn unknown_and_malformed_contacts_are_refused() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let missing = client
        .find_duplicates(FindDuplicatesRequest {
            contact_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await;
    assert_eq!(failure(missing).code(), Code::NotFound);
    let malformed = client
        .find_duplicates(FindDuplicatesRequest { contact_id: "x\0".into(), ..Default::default() })
        .await;
    assert_eq!(failure(malformed).code(), Code::InvalidArgument);
    let negative =
        client.find_duplicates(FindDuplicatesRequest { page_size: -1, ..Default::default() }).await;
    assert_eq!(common::violated_fields(&failure(negative)), ["page_size"]);
    // A huge page is capped, not refused.
    let huge =
        client.find_duplicates(FindDuplicatesRequest { page_size: 100_000, ..Default::default() }).await;
    assert!(huge.unwrap().into_inner().groups.is_empty());
}
