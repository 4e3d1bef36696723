//! Customer 360: one call returns the contact and its company; a backend
//! that is down yields a partial view with that section's error, not a
//! failed call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

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
