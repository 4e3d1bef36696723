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
use rapport_proto::contacts::v1::activity_service_client::ActivityServiceClient;
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use rapport_proto::contacts::v1::{
    Company, Contact, GetCompanyRequest, GetContactRequest, GetTimelineRequest, ListActivitiesRequest,
    get_timeline_request,
};
use rapport_proto::gateway::v1::customer_service_server::CustomerService;
use rapport_proto::gateway::v1::{
    CasesSection, CompanySection, ContactSection, Customer360, DealsSection, GetCustomer360Request,
    InvoicesSection, SectionStatus, TasksSection, TimelineSection,
};
use rapport_proto::pipeline::v1::deal_service_client::DealServiceClient;
use rapport_proto::pipeline::v1::order_service_client::OrderServiceClient;
use rapport_proto::pipeline::v1::{GetAccountStandingRequest, ListDealsRequest, ListInvoicesRequest};
use rapport_proto::support::v1::ListCasesRequest;
use rapport_proto::support::v1::case_service_client::CaseServiceClient;
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
    pipeline: Option<Backend>,
    support: Option<Backend>,
    default_deadline: Duration,
}

/// The backends a view is assembled from (`None`: not routed here).
pub struct Backends {
    pub contacts: Option<Backend>,
    pub pipeline: Option<Backend>,
    pub support: Option<Backend>,
}

/// How many open deals and unpaid invoices a view shows at most.
const SECTION_LIMIT: i32 = 50;
/// The most timeline entries Customer 360 shows.
const TIMELINE_LIMIT: i32 = 20;

impl Customer {
    /// A service fetching from `backends`.
    pub fn new(backends: Backends, default_deadline: Duration) -> Customer {
        Customer {
            contacts: backends.contacts,
            pipeline: backends.pipeline,
            support: backends.support,
            default_deadline,
        }
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

        let contact = self.contact(&outgoing, &contact_id).await?;
        let company_id = contact.contact.as_ref().map(|contact| contact.company_id.clone());
        // Everything else depends only on the contact: fetched concurrently.
        let (company, open_deals, unpaid_invoices, open_cases, recent_timeline, open_tasks) = tokio::join!(
            self.company(&outgoing, &contact.status, company_id.as_deref()),
            self.open_deals(&outgoing, &contact_id, company_id.as_deref()),
            self.unpaid_invoices(&outgoing, &contact.status, company_id.as_deref()),
            self.open_cases(&outgoing, &contact_id, company_id.as_deref()),
            self.recent_timeline(&outgoing, &contact_id),
            self.open_tasks(&outgoing, &contact_id),
        );
        Ok(Response::new(Customer360 {
            contact: Some(contact),
            company: Some(company),
            open_deals: Some(open_deals),
            unpaid_invoices: Some(unpaid_invoices),
            open_cases: Some(open_cases),
            recent_timeline: Some(recent_timeline),
            open_tasks: Some(open_tasks),
        }))
    }
}

impl Customer {
    /// The contact section; NOT_FOUND and INVALID_ARGUMENT fail the whole call.
    async fn contact(&self, outgoing: &Outgoing, contact_id: &str) -> Result<ContactSection, Status> {
        let Some(backend) = self.contacts.clone() else {
            return Ok(ContactSection {
                status: Some(section_status(&not_routed("contacts"))),
                contact: None,
            });
        };
        let contact: Result<Contact, Status> = async {
            let request = outgoing.request(GetContactRequest { id: contact_id.to_owned() });
            ContactServiceClient::new(backend).get_contact(request).await.map(Response::into_inner)
        }
        .instrument(tracing::info_span!("customer360.contact"))
        .await;
        match contact {
            Ok(contact) => Ok(ContactSection { status: Some(ok()), contact: Some(contact) }),
            Err(status) if matches!(status.code(), tonic::Code::NotFound | tonic::Code::InvalidArgument) => {
                Err(status)
            }
            Err(status) => Ok(ContactSection { status: Some(section_status(&status)), contact: None }),
        }
    }

    /// The contact's company: OK and empty without one; the contact
    /// section's error when the contact could not be read.
    async fn company(
        &self,
        outgoing: &Outgoing,
        contact_status: &Option<SectionStatus>,
        company_id: Option<&str>,
    ) -> CompanySection {
        let Some(company_id) = company_id else {
            return CompanySection { status: contact_status.clone(), company: None };
        };
        if company_id.is_empty() {
            return CompanySection { status: Some(ok()), company: None };
        }
        let Some(backend) = self.contacts.clone() else {
            return CompanySection { status: Some(section_status(&not_routed("contacts"))), company: None };
        };
        let company: Result<Company, Status> = async {
            let request = outgoing.request(GetCompanyRequest { id: company_id.to_owned() });
            ContactServiceClient::new(backend).get_company(request).await.map(Response::into_inner)
        }
        .instrument(tracing::info_span!("customer360.company"))
        .await;
        match company {
            Ok(company) => CompanySection { status: Some(ok()), company: Some(company) },
            Err(status) => CompanySection { status: Some(section_status(&status)), company: None },
        }
    }

    /// Open deals with the contact on the buying committee or of its
    /// company, soonest expected close first. Needs only the contact's id
    /// (and its company, when the contact could be read).
    async fn open_deals(
        &self,
        outgoing: &Outgoing,
        contact_id: &str,
        company_id: Option<&str>,
    ) -> DealsSection {
        let Some(backend) = self.pipeline.clone() else {
            return DealsSection {
                status: Some(section_status(&not_routed("pipeline"))),
                deals: Vec::new(),
                has_more: false,
            };
        };
        // Ids are checked UUIDs (the contact's own, the company's from Contacts): safe to quote.
        let filter = match company_id.filter(|id| uuid_like(id).is_some()) {
            Some(company_id) => {
                format!(r#"status = OPEN AND (contact_ids:"{contact_id}" OR company_id = "{company_id}")"#)
            }
            None => format!(r#"status = OPEN AND contact_ids:"{contact_id}""#),
        };
        let deals = async {
            let request = outgoing.request(ListDealsRequest {
                page_size: SECTION_LIMIT,
                filter,
                order_by: "expected_close_date".to_owned(),
                ..Default::default()
            });
            DealServiceClient::new(backend).list_deals(request).await.map(Response::into_inner)
        }
        .instrument(tracing::info_span!("customer360.open_deals"))
        .await;
        match deals {
            Ok(page) => DealsSection {
                status: Some(ok()),
                deals: page.deals,
                has_more: !page.next_page_token.is_empty(),
            },
            Err(status) => {
                DealsSection { status: Some(section_status(&status)), deals: Vec::new(), has_more: false }
            }
        }
    }

    /// Open cases the contact asked or of its company, the next SLA due
    /// first. Needs only the contact's id (and its company, when read).
    async fn open_cases(
        &self,
        outgoing: &Outgoing,
        contact_id: &str,
        company_id: Option<&str>,
    ) -> CasesSection {
        let Some(backend) = self.support.clone() else {
            return CasesSection {
                status: Some(section_status(&not_routed("support"))),
                cases: Vec::new(),
                has_more: false,
            };
        };
        let open = "status != RESOLVED AND status != CLOSED";
        // Ids are checked UUIDs: safe to quote.
        let filter = match company_id.filter(|id| uuid_like(id).is_some()) {
            Some(company_id) => {
                format!(
                    r#"{open} AND (requester_contact_id = "{contact_id}" OR company_id = "{company_id}")"#
                )
            }
            None => format!(r#"{open} AND requester_contact_id = "{contact_id}""#),
        };
        let cases = async {
            let request = outgoing.request(ListCasesRequest {
                page_size: SECTION_LIMIT,
                filter,
                order_by: "next_due_time".to_owned(),
                ..Default::default()
            });
            CaseServiceClient::new(backend).list_cases(request).await.map(Response::into_inner)
        }
        .instrument(tracing::info_span!("customer360.open_cases"))
        .await;
        match cases {
            Ok(page) => CasesSection {
                status: Some(ok()),
                cases: page.cases,
                has_more: !page.next_page_token.is_empty(),
            },
            Err(status) => {
                CasesSection { status: Some(section_status(&status)), cases: Vec::new(), has_more: false }
            }
        }
    }

    /// The contact's newest timeline entries.
    async fn recent_timeline(&self, outgoing: &Outgoing, contact_id: &str) -> TimelineSection {
        let Some(backend) = self.contacts.clone() else {
            let status = Some(section_status(&not_routed("contacts")));
            return TimelineSection { status, entries: Vec::new(), has_more: false };
        };
        let timeline = async {
            let request = outgoing.request(GetTimelineRequest {
                subject: Some(get_timeline_request::Subject::ContactId(contact_id.to_owned())),
                page_size: TIMELINE_LIMIT,
                ..Default::default()
            });
            ActivityServiceClient::new(backend).get_timeline(request).await.map(Response::into_inner)
        }
        .instrument(tracing::info_span!("customer360.recent_timeline"))
        .await;
        match timeline {
            Ok(page) => TimelineSection {
                status: Some(ok()),
                entries: page.entries,
                has_more: !page.next_page_token.is_empty(),
            },
            Err(status) => TimelineSection {
                status: Some(section_status(&status)),
                entries: Vec::new(),
                has_more: false,
            },
        }
    }

    /// Open tasks on the contact, the earliest due first.
    async fn open_tasks(&self, outgoing: &Outgoing, contact_id: &str) -> TasksSection {
        let Some(backend) = self.contacts.clone() else {
            let status = Some(section_status(&not_routed("contacts")));
            return TasksSection { status, tasks: Vec::new(), has_more: false };
        };
        let tasks = async {
            let request = outgoing.request(ListActivitiesRequest {
                // The id is a checked UUID: safe to quote.
                filter: format!(r#"contact_id = "{contact_id}" AND task_status = OPEN"#),
                order_by: "occur_time".to_owned(),
                page_size: SECTION_LIMIT,
                ..Default::default()
            });
            ActivityServiceClient::new(backend).list_activities(request).await.map(Response::into_inner)
        }
        .instrument(tracing::info_span!("customer360.open_tasks"))
        .await;
        match tasks {
            Ok(page) => TasksSection {
                status: Some(ok()),
                tasks: page.activities,
                has_more: !page.next_page_token.is_empty(),
            },
            Err(status) => {
                TasksSection { status: Some(section_status(&status)), tasks: Vec::new(), has_more: false }
            }
        }
    }

    /// The company's unpaid invoices, oldest due first, and its standing:
    /// OK and empty without a company.
    async fn unpaid_invoices(
        &self,
        outgoing: &Outgoing,
        contact_status: &Option<SectionStatus>,
        company_id: Option<&str>,
    ) -> InvoicesSection {
        let empty = |status| InvoicesSection {
            status: Some(status),
            invoices: Vec::new(),
            standing: None,
            has_more: false,
        };
        let Some(company_id) = company_id else {
            return InvoicesSection {
                status: contact_status.clone(),
                invoices: Vec::new(),
                standing: None,
                has_more: false,
            };
        };
        if company_id.is_empty() {
            return empty(ok());
        }
        if uuid_like(company_id).is_none() {
            return empty(section_status(&Status::internal("the contact's company id is not a UUID")));
        }
        let Some(backend) = self.pipeline.clone() else {
            return empty(section_status(&not_routed("pipeline")));
        };
        let invoices = {
            let request = outgoing.request(ListInvoicesRequest {
                page_size: SECTION_LIMIT,
                filter: format!(r#"company_id = "{company_id}" AND status != PAID"#),
                order_by: "due_date".to_owned(),
                ..Default::default()
            });
            let mut client = OrderServiceClient::new(backend.clone());
            async move { client.list_invoices(request).await.map(Response::into_inner) }
        };
        let standing = {
            let request = outgoing.request(GetAccountStandingRequest { company_id: company_id.to_owned() });
            let mut client = OrderServiceClient::new(backend);
            async move { client.get_account_standing(request).await.map(Response::into_inner) }
        };
        let (invoices, standing) = async { tokio::join!(invoices, standing) }
            .instrument(tracing::info_span!("customer360.unpaid_invoices"))
            .await;
        match (invoices, standing) {
            (Ok(page), Ok(standing)) => InvoicesSection {
                status: Some(ok()),
                has_more: !page.next_page_token.is_empty(),
                invoices: page.invoices,
                standing: Some(standing),
            },
            (Err(status), _) | (_, Err(status)) => empty(section_status(&status)),
        }
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
