//! Customer 360: one call returns the contact, its company, its open deals
//! and its company's unpaid invoices with the account standing; a backend
//! that is down yields a partial view with that section's error, not a
//! failed call.

use crate::common;

use common::{Options, Stack, bearer, contact};
use rapport_kit::auth::Role;
use rapport_proto::contacts::v1::{Company, CreateCompanyRequest, CreateContactRequest};
use rapport_proto::gateway::v1::GetCustomer360Request;
use rapport_proto::gateway::v1::customer_service_client::CustomerServiceClient;
use tonic::Code;

type Customers = CustomerServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, common::Bearer>,
>;

fn customers(stack: &Stack) -> Customers {
    CustomerServiceClient::with_interceptor(stack.channel(), bearer("viewer-1", &[Role::Viewer]))
}

fn request(contact_id: &str) -> GetCustomer360Request {
    GetCustomer360Request { contact_id: contact_id.to_owned() }
}

#[tokio::test]
async fn the_view_has_the_contact_and_its_company() {
    let stack = Stack::start().await;
    let mut contacts = stack.contacts();
    let company = contacts
        .create_company(CreateCompanyRequest {
            company: Some(Company {
                name: "Initech".into(),
                domain: "initech.example".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut person = contact("Peter");
    person.company_id = company.id.clone();
    let person = contacts
        .create_contact(CreateContactRequest { contact: Some(person), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    let loner = contacts
        .create_contact(CreateContactRequest { contact: Some(contact("Loner")), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();

    let mut customers = customers(&stack);
    let view = customers.get_customer360(request(&person.id)).await.unwrap().into_inner();
    let contact_section = view.contact.unwrap();
    assert_eq!(contact_section.status.unwrap().code, 0);
    assert_eq!(contact_section.contact.unwrap(), person);
    let company_section = view.company.unwrap();
    assert_eq!(company_section.status.unwrap().code, 0);
    assert_eq!(company_section.company.unwrap(), company);

    // Pipeline is not routed by this gateway: its sections say so, the rest is there.
    for status in [view.open_deals.unwrap().status.unwrap(), view.unpaid_invoices.unwrap().status.unwrap()] {
        assert_eq!(status.code, Code::Unavailable as i32, "{status:?}");
        assert_eq!(status.reason, "BACKEND_NOT_ROUTED");
    }

    // No company: the section is OK and empty.
    let view = customers.get_customer360(request(&loner.id)).await.unwrap().into_inner();
    let company_section = view.company.unwrap();
    assert_eq!(company_section.status.unwrap().code, 0);
    assert!(company_section.company.is_none());

    // Only an invalid or unknown contact fails the whole call.
    let status = customers.get_customer360(request("nope")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = customers.get_customer360(request(&uuid::Uuid::now_v7().to_string())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Credentials are required.
    let mut anonymous = CustomerServiceClient::new(stack.channel());
    assert_eq!(
        anonymous.get_customer360(request(&person.id)).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_backend_down_yields_a_partial_view_with_the_sections_error() {
    // Contacts routed to a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let stack = Stack::start_with(Options {
        contacts: false,
        echo: false,
        contacts_target: Some(closed.to_string()),
        ..Options::default()
    })
    .await;
    let mut customers = customers(&stack);
    let started = std::time::Instant::now();
    let view =
        customers.get_customer360(request(&uuid::Uuid::now_v7().to_string())).await.unwrap().into_inner();
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    for status in [view.contact.unwrap().status.unwrap(), view.company.unwrap().status.unwrap()] {
        assert_eq!(status.code, Code::Unavailable as i32, "{status:?}");
        assert!(!status.message.is_empty());
    }
    stack.stop().await;
}

#[tokio::test]
async fn the_view_has_open_deals_and_unpaid_invoices_with_the_standing() {
    use rapport_proto::common::v1::{Date, Money};
    use rapport_proto::pipeline::v1::deal_service_client::DealServiceClient;
    use rapport_proto::pipeline::v1::order_service_client::OrderServiceClient;
    use rapport_proto::pipeline::v1::{
        AcknowledgeOrderRequest, CreateDealRequest, Deal, DealContact, RecordInvoiceRequest,
        RecordPaymentRequest, WinDealRequest,
    };

    let stack = Stack::start_with(Options { pipeline: true, ..Options::default() }).await;
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
    let elsewhere = contacts
        .create_contact(CreateContactRequest { contact: Some(contact("Other")), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();

    let deals = DealServiceClient::with_interceptor(stack.channel(), bearer("rep-1", &[Role::SalesRep]));
    let eur = |minor_units| Some(Money { currency_code: "EUR".into(), minor_units });
    let create = |title: &str, company_id: &str, contact_ids: &[&str]| {
        let deal = Deal {
            title: title.into(),
            currency_code: "EUR".into(),
            amount: eur(10_000),
            company_id: company_id.into(),
            contacts: contact_ids
                .iter()
                .map(|id| DealContact { contact_id: (*id).into(), role: 1 })
                .collect(),
            ..Default::default()
        };
        let mut deals = deals.clone();
        async move {
            deals
                .create_deal(CreateDealRequest { deal: Some(deal), request_id: String::new() })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let of_company = create("Company deal", &company.id, &[]).await;
    let on_committee = create("Committee deal", "", &[&person.id]).await;
    let unrelated = create("Unrelated", "", &[&elsewhere.id]).await;
    let won = create("Won deal", &company.id, &[&person.id]).await;
    let won = deals
        .clone()
        .win_deal(WinDealRequest { id: won.id, ..Default::default() })
        .await
        .unwrap()
        .into_inner();

    // Accounting books the won deal's order: invoiced, due in the past, part paid.
    let mut erp = OrderServiceClient::with_interceptor(stack.channel(), bearer("erp", &[Role::Integration]));
    erp.acknowledge_order(AcknowledgeOrderRequest { id: won.order_id.clone(), external_ref: "SO-1".into() })
        .await
        .unwrap();
    let date = |year, month, day| Some(Date { year, month, day });
    let invoice = erp
        .record_invoice(RecordInvoiceRequest {
            order_id: won.order_id.clone(),
            number: "INV-1".into(),
            amount: eur(12_000),
            issue_date: date(2026, 1, 1),
            due_date: date(2026, 1, 31),
        })
        .await
        .unwrap()
        .into_inner();
    erp.record_payment(RecordPaymentRequest {
        invoice_id: invoice.id.clone(),
        amount: eur(2_000),
        payment_date: date(2026, 2, 1),
        external_ref: "PAY-1".into(),
    })
    .await
    .unwrap();

    let view = customers(&stack).get_customer360(request(&person.id)).await.unwrap().into_inner();
    let open_deals = view.open_deals.unwrap();
    assert_eq!(open_deals.status.unwrap().code, 0);
    let mut ids: Vec<_> = open_deals.deals.iter().map(|deal| deal.id.clone()).collect();
    ids.sort();
    let mut expected = vec![of_company.id.clone(), on_committee.id.clone()];
    expected.sort();
    assert_eq!(ids, expected, "open deals of the company or with the contact, not {}", unrelated.id);
    assert!(!open_deals.has_more);
    let unpaid = view.unpaid_invoices.unwrap();
    assert_eq!(unpaid.status.unwrap().code, 0);
    assert_eq!(unpaid.invoices.len(), 1);
    assert_eq!(unpaid.invoices[0].number, "INV-1");
    assert_eq!(unpaid.invoices[0].outstanding_amount, eur(10_000));
    let standing = unpaid.standing.unwrap();
    assert_eq!(standing.overdue_invoice_count, 1);
    assert_eq!(standing.overdue, vec![eur(10_000).unwrap()]);
    assert_eq!(standing.oldest_overdue_invoice_id, invoice.id);
    assert!(!unpaid.has_more);

    // Past the 50 a view shows, it says there are more.
    for index in 0..48 {
        create(&format!("More {index}"), &company.id, &[]).await;
    }
    let view = customers(&stack).get_customer360(request(&person.id)).await.unwrap().into_inner();
    let open_deals = view.open_deals.unwrap();
    assert_eq!((open_deals.deals.len(), open_deals.has_more), (50, false));
    create("The 51st", &company.id, &[]).await;
    let view = customers(&stack).get_customer360(request(&person.id)).await.unwrap().into_inner();
    let open_deals = view.open_deals.unwrap();
    assert_eq!((open_deals.deals.len(), open_deals.has_more), (50, true));

    // A contact without a company: its committee deals, and no invoices to owe.
    let view = customers(&stack).get_customer360(request(&elsewhere.id)).await.unwrap().into_inner();
    let open_deals = view.open_deals.unwrap();
    assert_eq!(
        open_deals.deals.iter().map(|deal| deal.id.as_str()).collect::<Vec<_>>(),
        [unrelated.id.as_str()]
    );
    let unpaid = view.unpaid_invoices.unwrap();
    assert_eq!(unpaid.status.unwrap().code, 0);
    assert!(unpaid.invoices.is_empty() && unpaid.standing.is_none());
    stack.stop().await;
}

#[tokio::test]
async fn open_cases_show_with_priority_and_sla_state_and_surveys_pass_without_login() {
    use rapport_proto::support::v1::case_service_client::CaseServiceClient;
    use rapport_proto::support::v1::satisfaction_service_client::SatisfactionServiceClient;
    use rapport_proto::support::v1::{
        Case, CasePriority, CaseStatus, CreateCaseRequest, SlaMetric, SlaState, SubmitSatisfactionRequest,
        UpdateCaseRequest,
    };

    let stack = Stack::start_with(Options { support: true, ..Options::default() }).await;
    let mut contacts = stack.contacts();
    let company = contacts
        .create_company(CreateCompanyRequest {
            company: Some(Company { name: "Umbrella".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut person = contact("Alice");
    person.company_id = company.id.clone();
    let person = contacts
        .create_contact(CreateContactRequest { contact: Some(person), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    let colleague = contacts
        .create_contact(CreateContactRequest {
            contact: Some(rapport_proto::contacts::v1::Contact {
                company_id: company.id.clone(),
                ..contact("Bob")
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut cases = CaseServiceClient::with_interceptor(stack.channel(), bearer("agent-1", &[Role::Admin]));
    let open = |subject: &str, requester: &str, company_id: &str, priority: CasePriority| {
        let case = Case {
            subject: subject.into(),
            requester_contact_id: requester.into(),
            company_id: company_id.into(),
            priority: priority as i32,
            ..Case::default()
        };
        let mut cases = cases.clone();
        async move {
            cases
                .create_case(CreateCaseRequest { case: Some(case), request_id: String::new() })
                .await
                .unwrap()
                .into_inner()
        }
    };
    open("Hers, urgent", &person.id, "", CasePriority::Urgent).await;
    open("Her colleague's", &colleague.id, &company.id, CasePriority::Low).await;
    let done = open("Solved", &person.id, "", CasePriority::High).await;
    let resolve = UpdateCaseRequest {
        case: Some(Case { id: done.id.clone(), status: CaseStatus::Resolved as i32, ..Case::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["status".into()] }),
    };
    cases.update_case(resolve).await.unwrap();

    let view = customers(&stack).get_customer360(request(&person.id)).await.unwrap().into_inner();
    let section = view.open_cases.unwrap();
    assert_eq!(section.status.unwrap().code, 0);
    let shown: Vec<(&str, CasePriority)> =
        section.cases.iter().map(|case| (case.subject.as_str(), case.priority())).collect();
    // The urgent one is due first; the resolved one is not shown.
    assert_eq!(shown, [("Hers, urgent", CasePriority::Urgent), ("Her colleague's", CasePriority::Low)]);
    let first = &section.cases[0].sla_targets[0];
    assert_eq!((first.metric(), first.state()), (SlaMetric::FirstResponse, SlaState::Active));
    assert!(!section.has_more);

    // The survey call goes through the gateway with no credentials at all
    // (an unknown token: the service's answer, not the gateway's refusal).
    let mut anonymous = SatisfactionServiceClient::new(stack.channel());
    let status = anonymous
        .submit_satisfaction(SubmitSatisfactionRequest {
            token: "no-such-token".into(),
            rating: 5,
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    stack.stop().await;
}
