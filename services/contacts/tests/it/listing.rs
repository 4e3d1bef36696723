//! ListContacts: filters, orders and keyset paging, and the errors of bad
//! filters, orders and page tokens.

use crate::common;

use std::cmp::Ordering;

use common::{Client, TestApp, create, error_metadata, failure, ids, list_all, reason, violated_fields};
use rapport_proto::contacts::v1::{Contact, DeleteContactRequest, LifecycleStage, ListContactsRequest};
use tonic::Code;

const GIVEN_NAMES: [&str; 7] = ["Ada", "Alan", "Barbara", "Donald", "Edsger", "Grace", "Ken"];
const FAMILY_NAMES: [&str; 5] = ["Hopper", "Knuth", "Liskov", "Ritchie", "Turing"];
const STAGES: [LifecycleStage; 4] =
    [LifecycleStage::Lead, LifecycleStage::Customer, LifecycleStage::Opportunity, LifecycleStage::Churned];

/// 57 contacts with repeating names (ties on the sort key), stages and
/// tags; every 13th is deleted. Returns them as they are stored now.
async fn seed(client: &mut Client) -> Vec<Contact> {
    let mut contacts = Vec::new();
    for i in 0..57 {
        let mut tags = Vec::new();
        if i % 3 == 0 {
            tags.push("vip".to_owned());
        }
        if i % 4 == 1 {
            tags.push("newsletter".to_owned());
        }
        let created = create(
            client,
            Contact {
                given_name: GIVEN_NAMES[i % GIVEN_NAMES.len()].into(),
                family_name: FAMILY_NAMES[i % FAMILY_NAMES.len()].into(),
                email: format!("p{i:02}-{}@example.com", i * 7 % 57),
                lifecycle_stage: STAGES[i % STAGES.len()].into(),
                tags,
                email_opt_in: i % 2 == 0,
                ..Default::default()
            },
        )
        .await;
        contacts.push(created);
    }
    for contact in contacts.iter_mut().step_by(13) {
        *contact = client
            .delete_contact(DeleteContactRequest { id: contact.id.clone(), etag: contact.etag.clone() })
            .await
            .unwrap()
            .into_inner();
    }
    contacts
}

fn compare(field: &str, a: &Contact, b: &Contact) -> Ordering {
    let time = |t: &Option<prost_types::Timestamp>| {
        let t = t.unwrap();
        (t.seconds, t.nanos)
    };
    let key = match field {
        "create_time" => time(&a.create_time).cmp(&time(&b.create_time)),
        "update_time" => time(&a.update_time).cmp(&time(&b.update_time)),
        "given_name" => a.given_name.cmp(&b.given_name),
        "family_name" => a.family_name.cmp(&b.family_name),
        "email" => a.email.cmp(&b.email),
        other => panic!("no such sort field {other}"),
    };
    key.then_with(|| a.id.cmp(&b.id))
}

/// Pages through `filter` in `order_by` ten at a time and asserts the
/// pages add up to exactly the `expected` subset of `all`, in order.
async fn check(
    client: &mut Client,
    all: &[Contact],
    filter: &str,
    order_by: &str,
    show_deleted: bool,
    expected: impl Fn(&Contact) -> bool,
) {
    let mut want: Vec<Contact> = all
        .iter()
        .filter(|contact| show_deleted || contact.delete_time.is_none())
        .filter(|contact| expected(contact))
        .cloned()
        .collect();
    let (field, descending) = match order_by.split_once(' ') {
        Some((field, direction)) => (field, direction == "desc"),
        None if order_by.is_empty() => ("create_time", false),
        None => (order_by, false),
    };
    want.sort_by(|a, b| compare(field, a, b));
    if descending {
        want.reverse();
    }
    assert!(want.len() > 10, "{filter:?} should need several pages");
    let got = list_all(
        client,
        ListContactsRequest {
            page_size: 10,
            filter: filter.into(),
            order_by: order_by.into(),
            show_deleted,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&got), ids(&want), "filter {filter:?}, order_by {order_by:?}");
    assert_eq!(got, want);
}

fn stage(contact: &Contact) -> LifecycleStage {
    LifecycleStage::try_from(contact.lifecycle_stage).unwrap()
}

fn has_tag(contact: &Contact, tag: &str) -> bool {
    contact.tags.iter().any(|t| t == tag)
}

#[tokio::test]
async fn pages_add_up_to_the_filtered_set_in_every_order() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let all = seed(&mut client).await;
    let c = &mut client;

    check(c, &all, "", "", false, |_| true).await;
    check(c, &all, "", "create_time desc", false, |_| true).await;
    check(c, &all, "", "family_name", false, |_| true).await;
    check(c, &all, "", "family_name desc", true, |_| true).await;
    check(c, &all, "", "update_time desc", true, |_| true).await;
    let customers_or_vips = |x: &Contact| stage(x) == LifecycleStage::Customer || has_tag(x, "vip");
    check(c, &all, "lifecycle_stage = CUSTOMER OR tags:vip", "given_name", false, customers_or_vips).await;
    check(
        c,
        &all,
        "lifecycle_stage = LIFECYCLE_STAGE_CUSTOMER OR tags:vip",
        "email desc",
        true,
        customers_or_vips,
    )
    .await;
    check(c, &all, "NOT tags:newsletter AND email_opt_in = true", "given_name desc", true, |x| {
        !has_tag(x, "newsletter") && x.email_opt_in
    })
    .await;
    check(c, &all, r#"family_name != "Knuth" AND NOT email:"-5""#, "family_name", true, |x| {
        x.family_name != "Knuth" && !x.email.contains("-5")
    })
    .await;
    let tenth = all[10].create_time.unwrap();
    let since = chrono::DateTime::from_timestamp(tenth.seconds, tenth.nanos as u32).unwrap();
    check(c, &all, &format!("create_time >= {:?}", since.to_rfc3339()), "create_time", false, |x| {
        compare("create_time", x, &all[10]) != Ordering::Less
    })
    .await;
}

#[tokio::test]
async fn page_size_defaults_to_fifty_and_must_not_be_negative() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let all = seed(&mut client).await;
    let live = all.iter().filter(|c| c.delete_time.is_none()).count();
    assert!(live > 50);

    let page = client.list_contacts(ListContactsRequest::default()).await.unwrap().into_inner();
    assert_eq!(page.contacts.len(), 50);
    assert!(!page.next_page_token.is_empty());

    let status =
        failure(client.list_contacts(ListContactsRequest { page_size: -1, ..Default::default() }).await);
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status), "INVALID_PAGE_SIZE");
    assert_eq!(violated_fields(&status), ["page_size"]);
}

#[tokio::test]
async fn page_tokens_only_continue_their_own_query() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    seed(&mut client).await;
    let first = ListContactsRequest { page_size: 5, filter: "tags:vip".into(), ..Default::default() };
    let token = client.list_contacts(first.clone()).await.unwrap().into_inner().next_page_token;
    assert!(!token.is_empty());

    let changed = [
        ListContactsRequest { filter: "tags:newsletter".into(), ..first.clone() },
        ListContactsRequest { order_by: "create_time desc".into(), ..first.clone() },
        ListContactsRequest { show_deleted: true, ..first.clone() },
    ];
    for request in changed {
        let status =
            failure(client.list_contacts(ListContactsRequest { page_token: token.clone(), ..request }).await);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(reason(&status), "INVALID_PAGE_TOKEN");
        assert_eq!(violated_fields(&status), ["page_token"]);
    }
    let status = failure(
        client.list_contacts(ListContactsRequest { page_token: "not-a-token".into(), ..first.clone() }).await,
    );
    assert_eq!(reason(&status), "INVALID_PAGE_TOKEN");

    // The same query continues with it (page sizes may differ).
    let next = client
        .list_contacts(ListContactsRequest { page_token: token, page_size: 7, ..first })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.contacts.len(), 7);
}

#[tokio::test]
async fn bad_filters_are_refused_with_their_position() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let cases = [
        (r#"given_name = "Ada" AND nickname = "x""#, 23),
        ("lifecycle_stage = ROYALTY", 18),
        ("tags > vip", 5),
        ("(given_name = Ada", 0),
        ("company_id = nope", 13),
    ];
    for (filter, position) in cases {
        let status = failure(
            client.list_contacts(ListContactsRequest { filter: filter.into(), ..Default::default() }).await,
        );
        assert_eq!(status.code(), Code::InvalidArgument, "{filter}");
        assert_eq!(reason(&status), "INVALID_FILTER", "{filter}");
        assert_eq!(violated_fields(&status), ["filter"], "{filter}");
        assert_eq!(
            error_metadata(&status)["position"],
            position.to_string(),
            "{filter}: {}",
            status.message()
        );
    }
}

#[tokio::test]
async fn unknown_sort_fields_are_refused() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    for order_by in ["nickname", "given_name sideways", "id; DROP TABLE contacts"] {
        let status = failure(
            client
                .list_contacts(ListContactsRequest { order_by: order_by.into(), ..Default::default() })
                .await,
        );
        assert_eq!(status.code(), Code::InvalidArgument, "{order_by}");
        assert_eq!(reason(&status), "INVALID_ORDER_BY", "{order_by}");
        assert_eq!(violated_fields(&status), ["order_by"], "{order_by}");
    }
}

#[tokio::test]
async fn a_page_token_works_only_for_the_caller_it_was_issued_to() {
    let app = common::TestApp::spawn().await;
    let mut admin = app.client().await;
    for n in 0..3 {
        common::create(&mut admin, common::contact("Page", &common::unique_email(&format!("page{n}")))).await;
    }
    let first = admin
        .list_contacts(ListContactsRequest { page_size: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    let next =
        ListContactsRequest { page_size: 1, page_token: first.next_page_token.clone(), ..Default::default() };
    assert_eq!(admin.list_contacts(next.clone()).await.unwrap().into_inner().contacts.len(), 1);
    let mut other = app.client_as("viewer-2", &[rapport_kit::auth::Role::Viewer]).await;
    let status = other.list_contacts(next).await.unwrap_err();
    assert_eq!(common::reason(&status), "INVALID_PAGE_TOKEN");
}
