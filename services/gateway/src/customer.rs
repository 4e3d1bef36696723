//! `CustomerService.GetCustomer360`: one view of a customer, fanned out to
//! every service that holds part of it.
//!
//! Each section is fetched with the caller's own credentials (so each
//! service applies its own permissions), inside the call's deadline, in
//! its own span. A section that fails reports its error in its `status`;
//! only an invalid or unknown contact fails the whole call. Later services
//! add their sections here, fetched concurrently with the others.

use std::time::{Duration, Instant};

use rapport_kit::error::Problem;
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use rapport_proto::contacts::v1::{Company, Contact, GetCompanyRequest, GetContactRequest};
use rapport_proto::gateway::v1::customer_service_server::CustomerService;
use rapport_proto::gateway::v1::{
    CompanySection, ContactSection, Customer360, GetCustomer360Request, SectionStatus,
};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};
use tonic_types::StatusExt;
use tracing::Instrument;

use crate::backend::Backend;

/// The fully-qualified gRPC service name.
pub const SERVICE_NAME: &str = "rapport.gateway.v1.CustomerService";

/// The Customer 360 service.
pub struct Customer {
    contacts: Option<Backend>,
    default_deadline: Duration,
}

impl Customer {
    /// A service fetching from the given backends (`None`: not routed here).
    pub fn new(contacts: Option<Backend>, default_deadline: Duration) -> Customer {
        Customer { contacts, default_deadline }
    }
}

/// The role table: every role may ask; each section is authorized by the
/// service that owns it.
pub fn policy() -> rapport_kit::auth::Policy {
    const RULES: &[(&str, &[rapport_kit::auth::Role])] = &[("GetCustomer360", &rapport_kit::auth::Role::ALL)];
    rapport_kit::auth::Policy::new(SERVICE_NAME, RULES)
}

/// What each section call carries: the caller's credentials and the time left.
struct Outgoing {
    credentials: MetadataMap,
    deadline: Instant,
}

impl Outgoing {
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        for key in ["authorization", "x-api-key"] {
            if let Some(value) = self.credentials.get(key) {
                request.metadata_mut().insert(key, value.clone());
            }
        }
        rapport_kit::telemetry::inject_trace(request.metadata_mut());
        request.set_timeout(self.deadline.saturating_duration_since(Instant::now()));
        request
    }
}

#[tonic::async_trait]
impl CustomerService for Customer {
    async fn get_customer360(
        &self,
        request: Request<GetCustomer360Request>,
    ) -> Result<Response<Customer360>, Status> {
        let budget = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|value| {
                crate::proxy::parse_grpc_timeout(&http::HeaderValue::from_bytes(value.as_bytes()).ok()?)
            })
            .unwrap_or(self.default_deadline)
            .min(self.default_deadline);
        let outgoing =
            Outgoing { credentials: request.metadata().clone(), deadline: Instant::now() + budget };
        let contact_id = request.into_inner().contact_id;
        if uuid_like(&contact_id).is_none() {
            return Err(Problem::invalid_field("INVALID_ID", "contact_id", "must be a contact id (a UUID)")
                .into_status());
        }

        let (contact, company) = self.contact_and_company(&outgoing, &contact_id).await?;
        Ok(Response::new(Customer360 { contact: Some(contact), company: Some(company), ..Default::default() }))
    }
}

impl Customer {
    /// The contact, then its company (the company id comes from the contact).
    async fn contact_and_company(
        &self,
        outgoing: &Outgoing,
        contact_id: &str,
    ) -> Result<(ContactSection, CompanySection), Status> {
        let Some(backend) = self.contacts.clone() else {
            let status = section_status(&not_routed("contacts"));
            return Ok((
                ContactSection { status: Some(status.clone()), contact: None },
                CompanySection { status: Some(status), company: None },
            ));
        };
        let mut client = ContactServiceClient::new(backend);
        let contact: Result<Contact, Status> = async {
            let request = outgoing.request(GetContactRequest { id: contact_id.to_owned() });
            client.get_contact(request).await.map(Response::into_inner)
        }
        .instrument(tracing::info_span!("customer360.contact"))
        .await;
        let contact = match contact {
            Ok(contact) => contact,
            Err(status) if status.code() == tonic::Code::NotFound => return Err(status),
            Err(status) if status.code() == tonic::Code::InvalidArgument => return Err(status),
            Err(status) => {
                let failed = section_status(&status);
                return Ok((
                    ContactSection { status: Some(failed.clone()), contact: None },
                    CompanySection { status: Some(failed), company: None },
                ));
            }
        };
        let company: Result<Option<Company>, Status> = async {
            if contact.company_id.is_empty() {
                return Ok(None);
            }
            let request = outgoing.request(GetCompanyRequest { id: contact.company_id.clone() });
            client.get_company(request).await.map(|response| Some(response.into_inner()))
        }
        .instrument(tracing::info_span!("customer360.company"))
        .await;
        let company = match company {
            Ok(company) => CompanySection { status: Some(ok()), company },
            Err(status) => CompanySection { status: Some(section_status(&status)), company: None },
        };
        Ok((ContactSection { status: Some(ok()), contact: Some(contact) }, company))
    }
}

fn uuid_like(raw: &str) -> Option<()> {
    let hex: String = raw.chars().filter(|c| *c != '-').collect();
    (raw.len() == 36 && hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(())
}

fn ok() -> SectionStatus {
    SectionStatus { code: 0, message: String::new(), reason: String::new() }
}

fn not_routed(area: &str) -> Status {
    Problem::new(
        tonic::Code::Unavailable,
        "BACKEND_NOT_ROUTED",
        format!("{area} is not routed by this gateway"),
    )
    .into_status()
}

/// A failed section's status: the owning service's code, message and reason.
fn section_status(status: &Status) -> SectionStatus {
    let reason = status.get_details_error_info().map(|info| info.reason).unwrap_or_default();
    SectionStatus { code: status.code() as i32, message: status.message().to_owned(), reason }
}
