//! The Contacts service client: checks that the companies and contacts a
//! deal names exist, with the caller's own credentials.

use rapport_kit::error::Problem;
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use rapport_proto::contacts::v1::{BatchGetContactsRequest, Contact, GetCompanyRequest, GetContactRequest};
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use uuid::Uuid;

use crate::domain::ids::{CompanyId, ContactId};
use crate::error::Error;

/// A lazily connected client of the Contacts service (one channel, built
/// once at startup, cheap to clone).
#[derive(Clone)]
pub struct Contacts {
    client: ContactServiceClient<Channel>,
}

/// The caller's credentials, forwarded to Contacts so it applies the
/// caller's own permissions.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    authorization: Option<AsciiMetadataValue>,
    api_key: Option<AsciiMetadataValue>,
}

impl Credentials {
    /// The `authorization` and `x-api-key` headers of an incoming call.
    pub fn of(metadata: &MetadataMap) -> Credentials {
        Credentials {
            authorization: metadata.get("authorization").cloned(),
            api_key: metadata.get("x-api-key").cloned(),
        }
    }

    /// The service's own credentials (the change-feed consumer): a bearer
    /// token and/or an API key.
    pub fn service(
        authorization: Option<AsciiMetadataValue>,
        api_key: Option<AsciiMetadataValue>,
    ) -> Credentials {
        Credentials { authorization, api_key }
    }

    /// `message` as a request carrying these credentials.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = &self.authorization {
            request.metadata_mut().insert("authorization", value.clone());
        }
        if let Some(value) = &self.api_key {
            request.metadata_mut().insert("x-api-key", value.clone());
        }
        request
    }
}

impl Contacts {
    /// A client of the Contacts service at `addr` (connects on first use).
    pub fn new(addr: &str) -> anyhow::Result<Contacts> {
        let endpoint = Endpoint::from_shared(addr.to_owned())
            .map_err(|err| anyhow::anyhow!("PIPELINE_CONTACTS_ADDR {addr:?} is not a URI: {err}"))?
            .connect_timeout(std::time::Duration::from_secs(3));
        Ok(Contacts { client: ContactServiceClient::new(endpoint.connect_lazy()) })
    }

    /// The generated client on the shared channel.
    pub(crate) fn client(&self) -> ContactServiceClient<Channel> {
        self.client.clone()
    }

    /// FAILED_PRECONDITION (COMPANY_NOT_FOUND) unless `id` is a live company.
    pub async fn check_company(&self, credentials: &Credentials, id: CompanyId) -> Result<(), Error> {
        match self.company_live(credentials, id).await? {
            true => Ok(()),
            false => Err(company_missing(id)),
        }
    }

    /// Whether Contacts has company `id`, not deleted.
    pub async fn company_live(&self, credentials: &Credentials, id: CompanyId) -> Result<bool, Error> {
        let request = credentials.request(GetCompanyRequest { id: id.to_string() });
        match self.client.clone().get_company(request).await {
            Ok(company) => Ok(company.get_ref().delete_time.is_none()),
            Err(status) if status.code() == Code::NotFound => Ok(false),
            Err(status) => Err(failed(status)),
        }
    }

    /// Whether Contacts has contact `id`, not deleted.
    async fn contact_live(&self, credentials: &Credentials, id: ContactId) -> Result<bool, Error> {
        let request = credentials.request(GetContactRequest { id: id.to_string() });
        match self.client.clone().get_contact(request).await {
            Ok(contact) => Ok(contact.get_ref().delete_time.is_none()),
            Err(status) if status.code() == Code::NotFound => Ok(false),
            Err(status) => Err(failed(status)),
        }
    }

    /// The live contacts `ids`, in order; FAILED_PRECONDITION
    /// (CONTACT_NOT_FOUND) naming the first missing or deleted one.
    pub async fn live_contacts(
        &self,
        credentials: &Credentials,
        ids: &[ContactId],
    ) -> Result<Vec<Contact>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match self.batch_get(credentials, ids).await? {
            Some(contacts) => {
                match ids.iter().zip(&contacts).find(|(_, contact)| contact.delete_time.is_some()) {
                    Some((id, _)) => Err(contact_missing(*id)),
                    None => Ok(contacts),
                }
            }
            None => match self.contacts_gone(credentials, ids).await?.first() {
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
    pub async fn contacts_gone(
        &self,
        credentials: &Credentials,
        ids: &[ContactId],
    ) -> Result<Vec<Uuid>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(contacts) = self.batch_get(credentials, ids).await? {
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
            if !self.contact_live(credentials, *id).await? {
                gone.push(id.uuid());
            }
        }
        Ok(gone)
    }

    /// Of `company` and `contacts`, those that do not exist or are deleted.
    pub async fn gone(
        &self,
        credentials: &Credentials,
        company: Option<CompanyId>,
        contacts: &[ContactId],
    ) -> Result<Vec<Uuid>, Error> {
        let mut gone = Vec::new();
        if let Some(company) = company
            && !self.company_live(credentials, company).await?
        {
            gone.push(company.uuid());
        }
        gone.extend(self.contacts_gone(credentials, contacts).await?);
        Ok(gone)
    }

    /// `ids` in order, deleted ones included; `None` when one of them does
    /// not exist (BatchGetContacts is all or nothing).
    async fn batch_get(
        &self,
        credentials: &Credentials,
        ids: &[ContactId],
    ) -> Result<Option<Vec<Contact>>, Error> {
        let request = credentials
            .request(BatchGetContactsRequest { ids: ids.iter().map(ToString::to_string).collect() });
        match self.client.clone().batch_get_contacts(request).await {
            Ok(response) => {
                let contacts = response.into_inner().contacts;
                if contacts.len() != ids.len() {
                    return Err(Error::Internal(anyhow::anyhow!(
                        "BatchGetContacts answered {} contacts for {} ids",
                        contacts.len(),
                        ids.len()
                    )));
                }
                Ok(Some(contacts))
            }
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(failed(status)),
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

/// A failure of the Contacts call itself: unreachable is UNAVAILABLE (the
/// client may retry); the caller's own denial passes through; anything
/// else is internal.
fn failed(status: Status) -> Error {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded => Error::Problem(Problem::new(
            Code::Unavailable,
            "CONTACTS_UNAVAILABLE",
            "the Contacts service, which checks the deal's company and contacts, is unreachable; retry shortly",
        )),
        Code::PermissionDenied | Code::Unauthenticated => Error::Problem(Problem::new(
            status.code(),
            "CONTACTS_DENIED",
            format!(
                "the Contacts service refused to show the deal's company or contacts: {}",
                status.message()
            ),
        )),
        _ => Error::Internal(anyhow::anyhow!("contacts service: {status}")),
    }
}
