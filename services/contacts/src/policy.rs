//! Who may call which ContactService RPC (the one role table), and who
//! may change which contact and company (their ownership rules).

use rapport_kit::auth::{Fields, Ownership, Policy, Role};
use rapport_proto::contacts::v1::activity_service_server::SERVICE_NAME as ACTIVITY_SERVICE;
use rapport_proto::contacts::v1::assignment_service_server::SERVICE_NAME as ASSIGNMENT_SERVICE;
use rapport_proto::contacts::v1::consent_service_server::SERVICE_NAME as CONSENT_SERVICE;
use rapport_proto::contacts::v1::contact_service_server::SERVICE_NAME;
use rapport_proto::contacts::v1::lifecycle_service_server::SERVICE_NAME as LIFECYCLE_SERVICE;
use rapport_proto::contacts::v1::scoring_service_server::SERVICE_NAME as SCORING_SERVICE;

use crate::error::{ACTIVITY, COMPANY, CONTACT, CONTACT_CONSENT, SCORING_RULE, TASK_REMINDER};

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
    ("FindDuplicates", EVERYONE),
    ("CreateCompany", WRITERS),
    ("GetCompany", EVERYONE),
    ("UpdateCompany", WRITERS),
    ("DeleteCompany", DELETERS),
    ("UndeleteCompany", DELETERS),
    ("ListCompanies", EVERYONE),
    ("SearchCompanies", EVERYONE),
    ("WatchChanges", EVERYONE),
];

/// Who logs and changes activities: everyone who works with customers.
const ACTIVITY_WRITERS: &[Role] = &[
    Role::Admin,
    Role::SalesManager,
    Role::SalesRep,
    Role::Marketing,
    Role::SupportAgent,
    Role::SupportManager,
    Role::Integration,
];

const ACTIVITY_RULES: &[(&str, &[Role])] = &[
    ("LogActivity", ACTIVITY_WRITERS),
    ("GetActivity", EVERYONE),
    ("UpdateActivity", ACTIVITY_WRITERS),
    ("DeleteActivity", ACTIVITY_WRITERS),
    ("UndeleteActivity", ACTIVITY_WRITERS),
    ("ListActivities", EVERYONE),
    ("CompleteTask", ACTIVITY_WRITERS),
    ("ReopenTask", ACTIVITY_WRITERS),
    ("ListMyTasks", EVERYONE),
    ("GetTimeline", EVERYONE),
];

/// Who records consent: everyone who works with customers (an opt-out is
/// never blocked; an opt-in needs the right to change the contact).
const CONSENT_RULES: &[(&str, &[Role])] = &[
    ("RecordConsent", ACTIVITY_WRITERS),
    ("GetConsent", EVERYONE),
    ("ListConsentHistory", EVERYONE),
    ("SetDoNotContact", ACTIVITY_WRITERS),
];

const QUALIFIERS: &[Role] = &[Role::Admin, Role::SalesManager, Role::SalesRep, Role::Integration];
const MANAGERS: &[Role] = &[Role::Admin, Role::SalesManager];

const LIFECYCLE_RULES: &[(&str, &[Role])] = &[
    ("SetLifecycleStage", MANAGERS),
    ("ReopenLead", MANAGERS),
    ("QualifyLead", QUALIFIERS),
    ("DisqualifyLead", QUALIFIERS),
    ("GetLifecycleHistory", EVERYONE),
];

const SCORING_ADMINS: &[Role] = &[Role::Admin, Role::Marketing];

const SCORING_RULES: &[(&str, &[Role])] = &[
    ("CreateScoringRule", SCORING_ADMINS),
    ("UpdateScoringRule", SCORING_ADMINS),
    ("DeleteScoringRule", SCORING_ADMINS),
    ("ListScoringRules", EVERYONE),
    ("GetScoringSettings", EVERYONE),
    ("UpdateScoringSettings", SCORING_ADMINS),
    ("GetLeadScore", EVERYONE),
];

const ASSIGNMENT_RULES: &[(&str, &[Role])] = &[
    ("SetTeamMember", MANAGERS),
    ("RemoveTeamMember", MANAGERS),
    ("ListTeamMembers", EVERYONE),
    ("CreateAssignmentRule", MANAGERS),
    ("UpdateAssignmentRule", MANAGERS),
    ("DeleteAssignmentRule", MANAGERS),
    ("ListAssignmentRules", EVERYONE),
    ("ListAssignments", EVERYONE),
];

/// The ContactService role table.
pub fn policy() -> Policy {
    Policy::new(SERVICE_NAME, RULES)
}

/// Every role table of the Contacts service.
pub fn policies() -> Vec<Policy> {
    vec![
        policy(),
        Policy::new(ACTIVITY_SERVICE, ACTIVITY_RULES),
        Policy::new(LIFECYCLE_SERVICE, LIFECYCLE_RULES),
        Policy::new(SCORING_SERVICE, SCORING_RULES),
        Policy::new(ASSIGNMENT_SERVICE, ASSIGNMENT_RULES),
        Policy::new(CONSENT_SERVICE, CONSENT_RULES),
    ]
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
            Fields::Only(&[
                "lead_source",
                "lead_source_detail",
                "source_campaign_id",
                "email_opt_in",
                "consent",
            ]),
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

/// Who may change which activity (a task: its assignee is its owner):
/// its owner; managers of its team (sales or support); an integration
/// any; admins all. Logging one on someone else's customer is open
/// (team selling); logging one for someone else is a manager's act.
pub const ACTIVITIES: Ownership = Ownership {
    kind: "activity",
    bound: &[Role::SalesRep, Role::Marketing, Role::SupportAgent],
    managers: &[Role::SalesManager, Role::SupportManager],
    any: &[(Role::Integration, Fields::All)],
};

/// Which read RPC shows each resource type of Contacts' change feed.
pub const FEED_READS: &[(&str, &str, &str)] = &[
    (CONTACT, SERVICE_NAME, "ListContacts"),
    (COMPANY, SERVICE_NAME, "ListCompanies"),
    (ACTIVITY, ACTIVITY_SERVICE, "ListActivities"),
    (TASK_REMINDER, ACTIVITY_SERVICE, "ListMyTasks"),
    (SCORING_RULE, SCORING_SERVICE, "ListScoringRules"),
    (CONTACT_CONSENT, CONSENT_SERVICE, "GetConsent"),
];
