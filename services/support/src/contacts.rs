//! The Contacts service client: checks that a case's requester and company
//! exist, with the caller's own credentials.

use rapport_kit::peer::{Failure, Identity, OnBehalf, Peer, PeerSettings};
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use rapport_proto::contacts::v1::contact_service_server::SERVICE_NAME;
use rapport_proto::contacts::v1::{
    Contact, CreateContactRequest, GetCompanyRequest, GetContactRequest, LeadSource, ListContactsRequest,
};
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

impl Contacts {
    /// The peer client (the contacts feed opens its stream on it).
    pub fn peer(&self) -> &Peer<ContactServiceClient<Channel>> {
        &self.peer
    }

    /// Whether Contacts has contact `id`, not deleted.
    pub async fn contact_live(&self, on: &OnBehalf, id: ContactId) -> Result<bool, Error> {
        match self.contact(on, id).await {
            Ok(contact) => Ok(contact.delete_time.is_none()),
            Err(err) if err.reason() == Some("CONTACT_NOT_FOUND") => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Whether Contacts has company `id`, not deleted.
    pub async fn company_live(&self, on: &OnBehalf, id: CompanyId) -> Result<bool, Error> {
        match self.check_company(on, id).await {
            Ok(()) => Ok(true),
            Err(err) if err.reason() == Some("COMPANY_NOT_FOUND") => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// The contact `id` (its email for mail out).
    pub async fn contact(&self, on: &OnBehalf, id: ContactId) -> Result<Contact, Error> {
        let request = GetContactRequest { id: id.to_string() };
        let read = self.peer.read(on, "GetContact", request, |mut client, request| async move {
            client.get_contact(request).await
        });
        match read.await {
            Ok(contact) => Ok(contact),
            Err(status) => match Failure::of(status, "Contacts", "CONTACTS_DENIED") {
                Failure::NotFound => Err(missing("CONTACT_NOT_FOUND", "contact", &id.to_string())),
                failure => Err(failed(failure)),
            },
        }
    }

    /// The live contact with email `address`, if any.
    async fn by_email(&self, on: &OnBehalf, address: &str) -> Result<Option<Contact>, Error> {
        let filter = format!("email = {}", serde_json::Value::String(address.to_owned()));
        let request = ListContactsRequest { page_size: 1, filter, ..ListContactsRequest::default() };
        let read = self.peer.read(on, "ListContacts", request, |mut client, request| async move {
            client.list_contacts(request).await
        });
        match read.await {
            Ok(response) => Ok(response.contacts.into_iter().next()),
            Err(status) => Err(failed(Failure::of(status, "Contacts", "CONTACTS_DENIED"))),
        }
    }

    /// The contact with email `address`, created (lead source
    /// SUPPORT_EMAIL, named `name`) when there is none; true when created.
    pub async fn find_or_create(
        &self,
        on: &OnBehalf,
        address: &str,
        name: &str,
    ) -> Result<(Contact, bool), Error> {
        if let Some(contact) = self.by_email(on, address).await? {
            return Ok((contact, false));
        }
        let (given, family) = match name.rsplit_once(' ') {
            Some((given, family)) => (given.trim(), family.trim()),
            None if name.trim().is_empty() => (address.split('@').next().unwrap_or(address), ""),
            None => (name.trim(), ""),
        };
        let contact = Contact {
            given_name: given.chars().take(100).collect(),
            family_name: family.chars().take(100).collect(),
            email: address.to_owned(),
            lead_source: LeadSource::SupportEmail as i32,
            ..Contact::default()
        };
        // Keyed by the address: a retried ingest creates one contact.
        let request =
            CreateContactRequest { contact: Some(contact), request_id: format!("support-email:{address}") };
        let created = self.peer.call(on, "CreateContact", request, |mut client, request| async move {
            client.create_contact(request).await
        });
        match created.await {
            Ok(contact) => Ok((contact, true)),
            // Created meanwhile by a concurrent ingest: read it.
            Err(status) if status.code() == tonic::Code::AlreadyExists => {
                match self.by_email(on, address).await? {
                    Some(contact) => Ok((contact, false)),
                    None => Err(failed(Failure::Unavailable)),
                }
            }
            Err(status) => Err(failed(Failure::of(status, "Contacts", "CONTACTS_DENIED"))),
        }
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
