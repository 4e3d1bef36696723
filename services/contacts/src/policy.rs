//! Who may call which ContactService RPC: the one role table.

use rapport_kit::auth::{Policy, Role};

const EVERYONE: &[Role] = &Role::ALL;
const WRITERS: &[Role] =
    &[Role::Admin, Role::SalesManager, Role::SalesRep, Role::Marketing, Role::Integration];
const DELETERS: &[Role] = &[Role::Admin, Role::SalesManager];

const RULES: &[(&str, &[Role])] = &[
    ("CreateContact", WRITERS),
    ("GetContact", EVERYONE),
    ("BatchGetContacts", EVERYONE),
    ("UpdateContact", WRITERS),
    ("DeleteContact", DELETERS),
    ("UndeleteContact", DELETERS),
    ("ListContacts", EVERYONE),
    ("SearchContacts", EVERYONE),
    ("CreateCompany", WRITERS),
    ("GetCompany", EVERYONE),
    ("UpdateCompany", WRITERS),
    ("DeleteCompany", DELETERS),
    ("UndeleteCompany", DELETERS),
    ("ListCompanies", EVERYONE),
    ("WatchChanges", EVERYONE),
];

/// The ContactService role table.
pub fn policy() -> Policy {
    Policy::new("rapport.contacts.v1.ContactService", RULES)
}
