//! Who may call which ContactService RPC (the one role table), and who
//! may change which contact and company (their ownership rules).

use rapport_kit::auth::{Fields, Ownership, Policy, Role};
use rapport_proto::contacts::v1::contact_service_server::SERVICE_NAME;

use crate::error::{COMPANY, CONTACT};

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
    Policy::new(SERVICE_NAME, RULES)
}

/// Who may change which contact: a sales rep only their own; marketing the
/// lead-source and consent fields of any; an integration any (the verbs
/// its role table allows); managers their teams'; admins all.
pub const CONTACTS: Ownership = Ownership {
    kind: "contact",
    bound: &[Role::SalesRep],
    managers: &[Role::SalesManager],
    any: &[
        (Role::Integration, Fields::All),
        (
            Role::Marketing,
            Fields::Only(&["lead_source", "lead_source_detail", "source_campaign_id", "email_opt_in"]),
        ),
    ],
};

/// Who may change which company: a sales rep only their own; an
/// integration any; managers their teams'; admins all.
pub const COMPANIES: Ownership = Ownership {
    kind: "company",
    bound: &[Role::SalesRep],
    managers: &[Role::SalesManager],
    any: &[(Role::Integration, Fields::All)],
};

/// Which read RPC shows each resource type of Contacts' change feed.
pub const FEED_READS: &[(&str, &str, &str)] =
    &[(CONTACT, SERVICE_NAME, "ListContacts"), (COMPANY, SERVICE_NAME, "ListCompanies")];
