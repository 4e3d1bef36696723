//! The shared record across services: Contacts follows Pipeline's and
//! Support's change feeds, so one contact's timeline holds its calls,
//! deals (opened, won), invoices (issued, paid) and cases (opened,
//! resolved); deals move its lifecycle stage; activities on a deal keep
//! the deal fresh in Pipeline; a deleted deal is marked on its
//! activities; and Customer 360 shows the recent timeline and open tasks.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::common;

use common::{Options, Stack, bearer, contact};
use rapport_kit::auth::Role;
use rapport_proto::common::v1::{Date, Money};
use rapport_proto::contacts::v1::activity_service_client::ActivityServiceClient;
use rapport_proto::contacts::v1::lifecycle_service_client::LifecycleServiceClient;
use rapport_proto::contacts::v1::{
    Activity, ActivityKind, Company, CreateCompanyRequest, CreateContactRequest, GetActivityRequest,
    GetContactRequest, GetLifecycleHistoryRequest, GetTimelineRequest, LifecycleCause, LifecycleStage,
    LogActivityRequest, Task, TimelineEntryKind, TimelineSource, get_timeline_request,
};
use rapport_proto::gateway::v1::GetCustomer360Request;
use rapport_proto::gateway::v1::customer_service_client::CustomerServiceClient;
use rapport_proto::pipeline::v1::deal_service_client::DealServiceClient;
use rapport_proto::pipeline::v1::order_service_client::OrderServiceClient;
use rapport_proto::pipeline::v1::{
    AcknowledgeOrderRequest, CreateDealRequest, Deal, DealContact, DeleteDealRequest, GetDealRequest,
    RecordInvoiceRequest, RecordPaymentRequest, WinDealRequest,
};
use rapport_proto::support::v1::case_service_client::CaseServiceClient;
use rapport_proto::support::v1::{Case, CaseStatus, CreateCaseRequest, UpdateCaseRequest};

/// Polls `check` until it yields a value (the feeds are asynchronous), for
/// at most 30 seconds.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn one_timeline_holds_what_every_department_did_and_deals_move_the_lifecycle() {
    let stack = Stack::start_with(Options { pipeline: true, support: true, ..Options::default() }).await;
    let mut contacts = stack.contacts();
    let company = contacts
        .create_company(CreateCompanyRequest {
            company: Some(Company { name: "Globex".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut person = contact("Hank");
    person.company_id = company.id.clone();
    let person = contacts
        .create_contact(CreateContactRequest { contact: Some(person), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(person.lifecycle_stage, LifecycleStage::Lead as i32);

    let rep = bearer("rep-1", &[Role::SalesRep]);
    let activities = ActivityServiceClient::with_interceptor(stack.channel(), rep.clone());
    let log = |activity: Activity| {
        let mut activities = activities.clone();
        async move {
            activities
                .log_activity(LogActivityRequest { activity: Some(activity), request_id: String::new() })
                .await
                .unwrap()
                .into_inner()
        }
    };
    log(Activity {
        kind: ActivityKind::Note.into(),
        subject: "Met at the trade show".into(),
        contact_id: person.id.clone(),
        ..Activity::default()
    })
    .await;
    let task = log(Activity {
        kind: ActivityKind::Task.into(),
        subject: "Send the proposal".into(),
        contact_id: person.id.clone(),
        occur_time: Some(prost_types::Timestamp { seconds: 4_102_444_800, nanos: 0 }),
        task: Some(Task::default()),
        ..Activity::default()
    })
    .await;

    // Sales opens a deal with the contact: it becomes an opportunity.
    let mut deals = DealServiceClient::with_interceptor(stack.channel(), rep.clone());
    let eur = |minor_units| Some(Money { currency_code: "EUR".into(), minor_units });
    let deal = deals
        .create_deal(CreateDealRequest {
            deal: Some(Deal {
                title: "Globex rollout".into(),
                currency_code: "EUR".into(),
                amount: eur(10_000),
                company_id: company.id.clone(),
                contacts: vec![DealContact { contact_id: person.id.clone(), role: 1 }],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let stage_of = |contacts: &mut common::Contacts| {
        let mut contacts = contacts.clone();
        let id = person.id.clone();
        async move { contacts.get_contact(GetContactRequest { id }).await.unwrap().into_inner().lifecycle_stage }
    };
    eventually("the contact to become an opportunity", || {
        let stage = stage_of(&mut contacts);
        async move { (stage.await == LifecycleStage::Opportunity as i32).then_some(()) }
    })
    .await;

    // A call on the deal keeps it fresh in Pipeline.
    let call = log(Activity {
        kind: ActivityKind::Call.into(),
        subject: "Pricing call".into(),
        contact_id: person.id.clone(),
        deal_id: deal.id.clone(),
        ..Activity::default()
    })
    .await;
    eventually("the deal's last activity to be the call", || {
        let mut deals = deals.clone();
        let (id, when) = (deal.id.clone(), call.occur_time);
        async move {
            let read = deals.get_deal(GetDealRequest { id }).await.unwrap().into_inner();
            (read.last_activity_time == when).then_some(())
        }
    })
    .await;

    // Won: a customer. Accounting invoices and is paid; support opens and
    // resolves a case.
    let won = deals.win_deal(WinDealRequest { id: deal.id.clone(), ..Default::default() }).await.unwrap();
    let won = won.into_inner();
    let mut erp = OrderServiceClient::with_interceptor(stack.channel(), bearer("erp", &[Role::Integration]));
    erp.acknowledge_order(AcknowledgeOrderRequest { id: won.order_id.clone(), external_ref: "SO-1".into() })
        .await
        .unwrap();
    let date = |year, month, day| Some(Date { year, month, day });
    let invoice = erp
        .record_invoice(RecordInvoiceRequest {
            order_id: won.order_id.clone(),
            number: "INV-7".into(),
            amount: eur(10_000),
            issue_date: date(2026, 1, 1),
            due_date: date(2026, 12, 31),
        })
        .await
        .unwrap()
        .into_inner();
    erp.record_payment(RecordPaymentRequest {
        invoice_id: invoice.id.clone(),
        amount: eur(10_000),
        payment_date: date(2026, 2, 1),
        external_ref: "PAY-7".into(),
    })
    .await
    .unwrap();
    let mut cases = CaseServiceClient::with_interceptor(stack.channel(), bearer("agent-1", &[Role::Admin]));
    let case = cases
        .create_case(CreateCaseRequest {
            case: Some(Case {
                subject: "Cannot log in".into(),
                requester_contact_id: person.id.clone(),
                ..Case::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    cases
        .update_case(UpdateCaseRequest {
            case: Some(Case { id: case.id.clone(), status: CaseStatus::Resolved as i32, ..Case::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["status".into()] }),
        })
        .await
        .unwrap();

    let timeline_of = |subject: get_timeline_request::Subject| {
        let mut activities = activities.clone();
        async move {
            let request = GetTimelineRequest { subject: Some(subject), page_size: 100, ..Default::default() };
            activities.get_timeline(request).await.unwrap().into_inner().entries
        }
    };
    let expected = [
        TimelineEntryKind::Activity,
        TimelineEntryKind::DealOpened,
        TimelineEntryKind::DealWon,
        TimelineEntryKind::OrderInvoiced,
        TimelineEntryKind::InvoicePaid,
        TimelineEntryKind::CaseOpened,
        TimelineEntryKind::CaseResolved,
    ];
    let entries = eventually("every department's entries on the contact's timeline", || {
        let entries = timeline_of(get_timeline_request::Subject::ContactId(person.id.clone()));
        async move {
            let entries = entries.await;
            let has = |kind: TimelineEntryKind| entries.iter().any(|entry| entry.kind == kind as i32);
            expected.iter().all(|kind| has(*kind)).then_some(entries)
        }
    })
    .await;
    // Newest first, whichever feed delivered what when.
    let times: Vec<(i64, i32)> = entries
        .iter()
        .map(|entry| entry.occur_time.map(|time| (time.seconds, time.nanos)).unwrap_or_default())
        .collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "{times:?}");
    let won_entry = entries.iter().find(|entry| entry.kind == TimelineEntryKind::DealWon as i32).unwrap();
    assert_eq!(won_entry.source, TimelineSource::Pipeline as i32);
    assert_eq!(
        (won_entry.title.as_str(), won_entry.resource_id.as_str()),
        ("Deal won: Globex rollout", deal.id.as_str())
    );
    let case_entry = entries.iter().find(|entry| entry.kind == TimelineEntryKind::CaseOpened as i32).unwrap();
    assert_eq!(case_entry.source, TimelineSource::Support as i32);
    assert!(case_entry.title.starts_with(&case.number), "{case_entry:?}");
    // The deal's and the company's timelines have their share.
    let deal_kinds: Vec<i32> = timeline_of(get_timeline_request::Subject::DealId(deal.id.clone()))
        .await
        .iter()
        .map(|e| e.kind)
        .collect();
    for kind in [TimelineEntryKind::DealOpened, TimelineEntryKind::DealWon, TimelineEntryKind::InvoicePaid] {
        assert!(deal_kinds.contains(&(kind as i32)), "{kind:?} missing from the deal's timeline");
    }
    assert!(deal_kinds.contains(&(TimelineEntryKind::Activity as i32)), "the call is on the deal");

    // The lifecycle moved with the deals, each move recorded with its cause.
    let history = LifecycleServiceClient::with_interceptor(stack.channel(), rep.clone())
        .get_lifecycle_history(GetLifecycleHistoryRequest {
            contact_id: person.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .transitions;
    let moves: Vec<(i32, i32, &str)> =
        history.iter().map(|t| (t.to_stage, t.cause, t.cause_id.as_str())).collect();
    assert_eq!(
        moves,
        [
            (LifecycleStage::Lead as i32, LifecycleCause::Created as i32, ""),
            (LifecycleStage::Opportunity as i32, LifecycleCause::DealOpened as i32, deal.id.as_str()),
            (LifecycleStage::Customer as i32, LifecycleCause::DealWon as i32, deal.id.as_str()),
        ]
    );

    // Customer 360 shows the recent timeline and the open task.
    let mut customers =
        CustomerServiceClient::with_interceptor(stack.channel(), bearer("viewer-1", &[Role::Viewer]));
    let view = customers
        .get_customer360(GetCustomer360Request { contact_id: person.id.clone() })
        .await
        .unwrap()
        .into_inner();
    let recent = view.recent_timeline.unwrap();
    assert_eq!(recent.status.unwrap().code, 0);
    assert_eq!(recent.entries.first(), entries.first());
    let tasks = view.open_tasks.unwrap();
    assert_eq!(tasks.status.unwrap().code, 0);
    assert_eq!(tasks.tasks.iter().map(|task| task.id.as_str()).collect::<Vec<_>>(), [task.id.as_str()]);

    // Pipeline deletes the deal: the call keeps its id, marked.
    let mut admin_deals =
        DealServiceClient::with_interceptor(stack.channel(), bearer("admin", &[Role::Admin]));
    admin_deals.delete_deal(DeleteDealRequest { id: deal.id.clone(), etag: String::new() }).await.unwrap();
    eventually("the call to mark its deal deleted", || {
        let mut activities = activities.clone();
        let id = call.id.clone();
        async move {
            let read = activities.get_activity(GetActivityRequest { id }).await.unwrap().into_inner();
            (read.deleted_links == ["deal_id"]).then_some(())
        }
    })
    .await;
    stack.stop().await;
}
