//! Per-service role tables.

use super::Role;

/// Which roles may call each RPC of one gRPC service.
///
/// ```text
/// const CONTACTS: &[(&str, &[Role])] = &[
///     ("GetContact", &[Role::Admin, Role::SalesManager, Role::SalesRep, Role::Viewer]),
///     ("DeleteContact", &[Role::Admin]),
/// ];
/// let policy = Policy::new("rapport.contacts.v1.ContactService", CONTACTS);
/// ```
///
/// Methods not listed are denied. A method listed with an empty role slice is callable by no
/// one; use `&Role::ALL` for "any authenticated caller". [`Role::Admin`] is never implied.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    service: &'static str,
    rules: &'static [(&'static str, &'static [Role])],
    public: &'static [&'static str],
}

impl Policy {
    /// A policy for `service`, the fully qualified service name as it appears in the gRPC
    /// path (e.g. `"rapport.contacts.v1.ContactService"`), with `rules` keyed by bare method
    /// name (e.g. `"ListContacts"`). If a method is listed twice the first entry wins.
    pub const fn new(service: &'static str, rules: &'static [(&'static str, &'static [Role])]) -> Policy {
        Policy { service, rules, public: &[] }
    }

    /// This policy with `methods` (bare names, also listed in the rules)
    /// callable without credentials: what they carry is the credential
    /// (e.g. a survey's single-use token). The auth layer lets them
    /// through unauthenticated; their handlers must not ask for a principal.
    pub const fn with_public(self, methods: &'static [&'static str]) -> Policy {
        Policy { public: methods, ..self }
    }

    /// Whether `method` is callable without credentials.
    pub fn is_public(&self, method: &str) -> bool {
        self.public.contains(&method)
    }

    /// The paths (`/<service>/<method>`) callable without credentials.
    pub fn public_paths(&self) -> impl Iterator<Item = String> + '_ {
        self.public.iter().map(|method| format!("/{}/{method}", self.service))
    }

    /// The fully qualified service name this policy covers.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The roles allowed to call `method` (bare name), or `None` if the method is not listed.
    pub fn allowed(&self, method: &str) -> Option<&'static [Role]> {
        self.rules.iter().find(|(name, _)| *name == method).map(|(_, roles)| *roles)
    }

    /// The method names this policy lists, in table order.
    pub fn methods(&self) -> impl Iterator<Item = &'static str> {
        self.rules.iter().map(|(name, _)| *name)
    }
}
