//! ConsentService: history, the derived state, the mirrored
//! `email_opt_in`, do-not-contact, who may record what, validation and
//! idempotency.

use crate::common;

use common::{Client, TestApp, create, failure, get, reason, violated_fields};
use rapport_kit::auth::Role;
use rapport_kit::testing::Bearer;
use rapport_proto::contacts::v1::consent_history_entry::Entry;
use rapport_proto::contacts::v1::consent_service_client::ConsentServiceClient;
use rapport_proto::contacts::v1::{
    ConsentChannel, ConsentEvent, ConsentSource, Contact, ContactConsent, GetConsentRequest,
    ListConsentHistoryRequest, RecordConsentRequest, SetDoNotContactRequest, UpdateContactRequest,
};
use tonic::Code;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;

type Consents = ConsentServiceClient<InterceptedService<Channel, Bearer>>;

fn consents_as(app: &TestApp, subject: &str, roles: &[Role]) -> Consents {
    ConsentServiceClient::with_interceptor(app.channel(), rapport_kit::testing::bearer(subject, roles))
}

fn event(contact: &Contact, channel: ConsentChannel, granted: bool, source: ConsentSource) -> ConsentEvent {
    ConsentEvent {
        contact_id: contact.id.clone(),
        channel: channel as i32,
        granted,
        source: source as i32,
        ..Default::default()
    }
}

async fn record(client: &mut Consents, event: ConsentEvent) -> Result<ConsentEvent, tonic::Status> {
    client
        .record_consent(RecordConsentRequest { event: Some(event), request_id: String::new() })
        .await
        .map(tonic::Response::into_inner)
}

async fn state(client: &mut Consents, contact: &Contact) -> ContactConsent {
    client.get_consent(GetConsentRequest { contact_id: contact.id.clone() }).await.unwrap().into_inner()
}

async fn history(client: &mut Consents, contact: &Contact) -> Vec<Entry> {
    let request = ListConsentHistoryRequest { contact_id: contact.id.clone(), ..Default::default() };
    let page = client.list_consent_history(request).await.unwrap().into_inner();
    page.entries.into_iter().filter_map(|entry| entry.entry).collect()
}

/// (channel, purpose, granted) of each current consent.
fn current(state: &ContactConsent) -> Vec<(ConsentChannel, String, bool)> {
    state
        .consents
        .iter()
        .map(|consent| (consent.channel(), consent.purpose.clone(), consent.granted))
        .collect()
}

async fn someone(client: &mut Client, email: &str) -> Contact {
    create(client, Contact { given_name: "Ada".into(), email: email.into(), ..Default::default() }).await
}

#[tokio::test]
async fn changes_are_kept_as_history_and_the_latest_decides() {
    let app = TestApp::spawn().await;
    let mut contacts = app.client().await;
    let mut admin = consents_as(&app, "admin-1", &[Role::Admin]);
    let ada = someone(&mut contacts, "ada@example.com").await;

    let mut opt_in = event(&ada, ConsentChannel::Email, true, ConsentSource::Form);
    opt_in.evidence = "newsletter form, 203.0.113.7".into();
    let recorded = record(&mut admin, opt_in).await.unwrap();
    assert_eq!((recorded.purpose.as_str(), recorded.actor.as_str()), ("marketing", "admin-1"));
    let mut sms = event(&ada, ConsentChannel::Sms, true, ConsentSource::Agent);
    sms.purpose = "delivery-updates".into();
    record(&mut admin, sms).await.unwrap();
    assert_eq!(
        current(&state(&mut admin, &ada).await),
        [
            (ConsentChannel::Email, "marketing".to_owned(), true),
            (ConsentChannel::Sms, "delivery-updates".to_owned(), true),
        ]
    );
    // The email-marketing consent is the contact's email_opt_in.
    assert!(get(&mut contacts, &ada.id).await.email_opt_in);

    // A paper opt-out from before the opt-in, entered late: kept, not deciding.
    let mut late = event(&ada, ConsentChannel::Email, false, ConsentSource::Import);
    late.occur_time = Some(prost_types::Timestamp { seconds: 1_600_000_000, nanos: 0 });
    record(&mut admin, late).await.unwrap();
    assert!(state(&mut admin, &ada).await.consents[0].granted);
    assert_eq!(history(&mut admin, &ada).await.len(), 3);

    // An opt-out through the contact itself is history too.
    contacts
        .update_contact(UpdateContactRequest {
            contact: Some(Contact { id: ada.id.clone(), email_opt_in: false, ..Default::default() }),
            update_mask: common::mask(&["email_opt_in"]),
        })
        .await
        .unwrap();
    let entries = history(&mut admin, &ada).await;
    let Entry::Event(newest) = &entries[0] else { panic!("{entries:?}") };
    assert_eq!((newest.granted, newest.source()), (false, ConsentSource::Agent));
    assert!(!state(&mut admin, &ada).await.consents[0].granted);
}

#[tokio::test]
async fn an_opt_out_is_never_blocked_but_an_opt_in_needs_the_right_to_change_the_contact() {
    let app = TestApp::spawn().await;
    let mut owner = app.client_as("rep-1", &[Role::SalesRep]).await;
    let ada = someone(&mut owner, "ada@example.com").await;
    let mut other_rep = consents_as(&app, "rep-2", &[Role::SalesRep]);
    let mut agent = consents_as(&app, "agent-1", &[Role::SupportAgent]);
    let mut viewer = consents_as(&app, "viewer-1", &[Role::Viewer]);

    for client in [&mut other_rep, &mut agent] {
        let refused = record(client, event(&ada, ConsentChannel::Phone, true, ConsentSource::Agent)).await;
        assert_eq!(failure(refused.map(tonic::Response::new)).code(), Code::PermissionDenied);
        record(client, event(&ada, ConsentChannel::Phone, false, ConsentSource::Agent)).await.unwrap();
    }
    let refused = record(&mut viewer, event(&ada, ConsentChannel::Phone, false, ConsentSource::Agent)).await;
    assert_eq!(failure(refused.map(tonic::Response::new)).code(), Code::PermissionDenied);
    // The owner and marketing may opt in.
    let mut marketing = consents_as(&app, "mkt-1", &[Role::Marketing]);
    record(&mut marketing, event(&ada, ConsentChannel::Email, true, ConsentSource::Form)).await.unwrap();
    let mut owner_consents = consents_as(&app, "rep-1", &[Role::SalesRep]);
    record(&mut owner_consents, event(&ada, ConsentChannel::Phone, true, ConsentSource::Agent))
        .await
        .unwrap();

    // Do not contact: anyone sets it (with a reason); clearing is the owner's.
    let set = |reason: &str| SetDoNotContactRequest {
        contact_id: ada.id.clone(),
        do_not_contact: true,
        reason: reason.into(),
    };
    let no_reason = agent.set_do_not_contact(set(" ")).await;
    assert_eq!(violated_fields(&failure(no_reason)), ["reason"]);
    let flagged = agent.set_do_not_contact(set("asked on the phone")).await.unwrap().into_inner();
    assert!(flagged.do_not_contact);
    assert_eq!(flagged.do_not_contact_reason, "asked on the phone");
    let clear =
        SetDoNotContactRequest { contact_id: ada.id.clone(), do_not_contact: false, reason: String::new() };
    let refused = agent.set_do_not_contact(clear.clone()).await;
    assert_eq!(reason(&failure(refused)), "NOT_OWNER");
    let cleared = owner_consents.set_do_not_contact(clear.clone()).await.unwrap().into_inner();
    assert!(!cleared.do_not_contact);
    // Setting the state it has records nothing.
    owner_consents.set_do_not_contact(clear).await.unwrap();
    let changes: Vec<bool> = history(&mut owner_consents, &ada)
        .await
        .into_iter()
        .filter_map(|entry| match entry {
            Entry::DoNotContact(change) => Some(change.do_not_contact),
            Entry::Event(_) => None,
        })
        .collect();
    assert_eq!(changes, [false, true]);
}

#[tokio::test]
async fn bad_changes_are_refused_whole_and_retries_record_once() {
    let app = TestApp::spawn().await;
    let mut contacts = app.client().await;
    let mut admin = consents_as(&app, "admin-1", &[Role::Admin]);
    let ada = someone(&mut contacts, "ada@example.com").await;

    let mut bad = event(&ada, ConsentChannel::Unspecified, true, ConsentSource::Migrated);
    bad.purpose = "News Letter".into();
    bad.evidence = "\0".into();
    bad.occur_time = Some(prost_types::Timestamp { seconds: 4_000_000_000, nanos: 0 });
    let refused = record(&mut admin, bad).await;
    assert_eq!(
        violated_fields(&failure(refused.map(tonic::Response::new))),
        ["event.channel", "event.source", "event.purpose", "event.evidence", "event.occur_time"]
    );
    let mut missing = event(&ada, ConsentChannel::Email, true, ConsentSource::Form);
    missing.contact_id = uuid::Uuid::now_v7().to_string();
    let refused = record(&mut admin, missing).await;
    assert_eq!(failure(refused.map(tonic::Response::new)).code(), Code::NotFound);
    assert!(history(&mut admin, &ada).await.is_empty());

    let request = RecordConsentRequest {
        event: Some(event(&ada, ConsentChannel::Email, true, ConsentSource::Api)),
        request_id: "erp-42".into(),
    };
    let first = admin.record_consent(request.clone()).await.unwrap().into_inner();
    let again = admin.record_consent(request).await.unwrap().into_inner();
    assert_eq!(first, again);
    assert_eq!(history(&mut admin, &ada).await.len(), 1);
}
