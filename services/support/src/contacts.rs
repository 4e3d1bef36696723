//! The Contacts service client: checks that a case's requester and company
//! exist, with the caller's own credentials.

use rapport_kit::peer::{Failure, Identity, OnBehalf, Peer, PeerSettings};
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use rapport_proto::contacts::v1::contact_service_server::SERVICE_NAME;
use rapport_proto::contacts::v1::{GetCompanyRequest, GetContactRequest};
use tonic::transport::Channel;

use crate::domain::ids::{CompanyId, ContactId};
use crate::error::Error;

/// The Contacts service as Support calls it (one channel, cheap to clone).
#[derive(Clone)]
pub struct Contacts {
    peer: Peer<ContactServiceClient<Channel>>,
}

impl Contacts {
    /// A client of the Contacts service as `settings` say (connects on
    /// first use), acting as the service itself with `identity`.
    pub fn new(settings: &PeerSettings, identity: Option<Identity>) -> anyhow::Result<Contacts> {
        Ok(Contacts {
            peer: Peer::new("contacts", SERVICE_NAME, settings, identity, ContactServiceClient::new)?,
        })
    }

    /// FAILED_PRECONDITION (CONTACT_NOT_FOUND) unless `id` is a live contact.
    pub async fn check_contact(&self, on: &OnBehalf, id: ContactId) -> Result<(), Error> {
        let request = GetContactRequest { id: id.to_string() };
        let read = self.peer.read(on, "GetContact", request, |mut client, request| async move {
            client.get_contact(request).await
        });
        let live = match read.await {
            Ok(contact) => contact.delete_time.is_none(),
            Err(status) => match Failure::of(status, "Contacts", "CONTACTS_DENIED") {
                Failure::NotFound => false,
                failure => return Err(failed(failure)),
            },
        };
        if live { Ok(()) } else { Err(missing("CONTACT_NOT_FOUND", "contact", &id.to_string())) }
    }

    /// FAILED_PRECONDITION (COMPANY_NOT_FOUND) unless `id` is a live company.
    pub async fn check_company(&self, on: &OnBehalf, id: CompanyId) -> Result<(), Error> {
        let request = GetCompanyRequest { id: id.to_string() };
        let read = self.peer.read(on, "GetCompany", request, |mut client, request| async move {
            client.get_company(request).await
        });
        let live = match read.await {
            Ok(company) => company.delete_time.is_none(),
            Err(status) => match Failure::of(status, "Contacts", "CONTACTS_DENIED") {
                Failure::NotFound => false,
                failure => return Err(failed(failure)),
            },
        };
        if live { Ok(()) } else { Err(missing("COMPANY_NOT_FOUND", "company", &id.to_string())) }
    }
}

fn missing(reason: &str, what: &str, id: &str) -> Error {
    Error::precondition(reason, format!("{what} {id} does not exist or is deleted"), reason, id)
}

fn failed(failure: Failure) -> Error {
    failure.into_error(
        "CONTACTS_UNAVAILABLE",
        "the Contacts service, which checks the case's requester and company, is unreachable; retry shortly",
    )
}
