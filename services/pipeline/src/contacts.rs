//! The Contacts service client: checks that the companies and contacts a
//! deal names exist, with the caller's own credentials.

use rapport_kit::error::Problem;
use rapport_kit::peer::{Failure, Identity, OnBehalf, Peer, PeerSettings};
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use rapport_proto::contacts::v1::contact_service_server::SERVICE_NAME;
use rapport_proto::contacts::v1::{BatchGetContactsRequest, Contact, GetCompanyRequest, GetContactRequest};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::domain::ids::{CompanyId, ContactId};
use crate::error::Error;

/// The Contacts service as Pipeline calls it (one channel, built once at
/// startup, cheap to clone), through the kit's peer client: deadlines
/// forwarded, trace context carried, reads retried when Contacts is
/// briefly unavailable.
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

    /// The peer client (the change feed consumer opens its stream on it).
    pub fn peer(&self) -> &Peer<ContactServiceClient<Channel>> {
        &self.peer
    }

    /// FAILED_PRECONDITION (COMPANY_NOT_FOUND) unless `id` is a live company.
    pub async fn check_company(&self, on: &OnBehalf, id: CompanyId) -> Result<(), Error> {
        match self.company_live(on, id).await? {
            true => Ok(()),
            false => Err(company_missing(id)),
        }
    }

    /// Whether Contacts has company `id`, not deleted.
    pub async fn company_live(&self, on: &OnBehalf, id: CompanyId) -> Result<bool, Error> {
        let request = GetCompanyRequest { id: id.to_string() };
        let read = self.peer.read(on, "GetCompany", request, |mut client, request| async move {
            client.get_company(request).await
        });
        match read.await {
            Ok(company) => Ok(company.delete_time.is_none()),
            Err(status) => match Failure::of(status, "Contacts", "CONTACTS_DENIED") {
                Failure::NotFound => Ok(false),
                failure => Err(failed(failure)),
            },
        }
    }

    /// Whether Contacts has contact `id`, not deleted.
    async fn contact_live(&self, on: &OnBehalf, id: ContactId) -> Result<bool, Error> {
        let request = GetContactRequest { id: id.to_string() };
        let read = self.peer.read(on, "GetContact", request, |mut client, request| async move {
            client.get_contact(request).await
        });
        match read.await {
            Ok(contact) => Ok(contact.delete_time.is_none()),
            Err(status) => match Failure::of(status, "Contacts", "CONTACTS_DENIED") {
                Failure::NotFound => Ok(false),
                failure => Err(failed(failure)),
            },
        }
    }

    /// The live contacts `ids`, in order; FAILED_PRECONDITION
    /// (CONTACT_NOT_FOUND) naming the first missing or deleted one.
    pub async fn live_contacts(&self, on: &OnBehalf, ids: &[ContactId]) -> Result<Vec<Contact>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match self.batch_get(on, ids).await? {
            Some(contacts) => {
                match ids.iter().zip(&contacts).find(|(_, contact)| contact.delete_time.is_some()) {
                    Some((id, _)) => Err(contact_missing(*id)),
                    None => Ok(contacts),
                }
            }
            None => match self.contacts_gone(on, ids).await?.first() {
                Some(id) => Err(contact_missing((*id).into())),
                // Each one is there now: they changed between the calls.
                None => Err(Error::Problem(Problem::aborted(
                    "CONTACTS_CHANGED",
                    "the deal's contacts changed while being checked; retry",
                ))),
            },
        }
    }

    /// Those of `ids` that Contacts does not have, or has deleted, in order.
    pub async fn contacts_gone(&self, on: &OnBehalf, ids: &[ContactId]) -> Result<Vec<Uuid>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(contacts) = self.batch_get(on, ids).await? {
            return Ok(ids
                .iter()
                .zip(&contacts)
                .filter(|(_, contact)| contact.delete_time.is_some())
                .map(|(id, _)| id.uuid())
                .collect());
        }
        // All or nothing: ask one by one.
        let mut gone = Vec::new();
        for id in ids {
            if !self.contact_live(on, *id).await? {
                gone.push(id.uuid());
            }
        }
        Ok(gone)
    }

    /// Of `company` and `contacts`, those that do not exist or are deleted.
    pub async fn gone(
        &self,
        on: &OnBehalf,
        company: Option<CompanyId>,
        contacts: &[ContactId],
    ) -> Result<Vec<Uuid>, Error> {
        let mut gone = Vec::new();
        if let Some(company) = company
            && !self.company_live(on, company).await?
        {
            gone.push(company.uuid());
        }
        gone.extend(self.contacts_gone(on, contacts).await?);
        Ok(gone)
    }

    /// `ids` in order, deleted ones included; `None` when one of them does
    /// not exist (BatchGetContacts is all or nothing).
    async fn batch_get(&self, on: &OnBehalf, ids: &[ContactId]) -> Result<Option<Vec<Contact>>, Error> {
        let request = BatchGetContactsRequest { ids: ids.iter().map(ToString::to_string).collect() };
        let read = self.peer.read(on, "BatchGetContacts", request, |mut client, request| async move {
            client.batch_get_contacts(request).await
        });
        match read.await {
            Ok(response) => {
                let contacts = response.contacts;
                if contacts.len() != ids.len() {
                    return Err(Error::Internal(anyhow::anyhow!(
                        "BatchGetContacts answered {} contacts for {} ids",
                        contacts.len(),
                        ids.len()
                    )));
                }
                Ok(Some(contacts))
            }
            Err(status) => match Failure::of(status, "Contacts", "CONTACTS_DENIED") {
                Failure::NotFound => Ok(None),
                failure => Err(failed(failure)),
            },
        }
    }
}

pub(crate) fn company_missing(id: CompanyId) -> Error {
    Error::precondition(
        "COMPANY_NOT_FOUND",
        format!("company {id} does not exist or is deleted"),
        "COMPANY_LIVE",
        &id.to_string(),
    )
}

pub(crate) fn contact_missing(id: ContactId) -> Error {
    Error::precondition(
        "CONTACT_NOT_FOUND",
        format!("contact {id} does not exist or is deleted"),
        "CONTACT_LIVE",
        &id.to_string(),
    )
}

/// A failure of the Contacts call itself (see `Failure::into_error`).
fn failed(failure: Failure) -> Error {
    failure.into_error(
        "CONTACTS_UNAVAILABLE",
        "the Contacts service, which checks the deal's company and contacts, is unreachable; retry shortly",
    )
}
