//! Who may call which Support RPC, and who may change which case.

use rapport_kit::auth::{Fields, Owned, Ownership, Policy, Principal, Role};
use rapport_kit::error::Problem;
use rapport_proto::support::v1::assignment_service_server::SERVICE_NAME as ASSIGNMENT_SERVICE;
use rapport_proto::support::v1::case_service_server::SERVICE_NAME as CASE_SERVICE;
use rapport_proto::support::v1::knowledge_service_server::SERVICE_NAME as KNOWLEDGE_SERVICE;
use rapport_proto::support::v1::satisfaction_service_server::SERVICE_NAME as SATISFACTION_SERVICE;
use rapport_proto::support::v1::sla_service_server::SERVICE_NAME as SLA_SERVICE;

use crate::error::resource;

const EVERYONE: &[Role] = &Role::ALL;
const REPORTERS: &[Role] = &[
    Role::Admin,
    Role::SupportAgent,
    Role::SupportManager,
    Role::SalesManager,
    Role::SalesRep,
    Role::Integration,
];
const WORKERS: &[Role] = &[Role::Admin, Role::SupportAgent, Role::SupportManager, Role::Integration];
const MANAGERS: &[Role] = &[Role::Admin, Role::SupportManager];
const STAFF: &[Role] = &[Role::Admin, Role::SupportAgent, Role::SupportManager];

const CASES: &[(&str, &[Role])] = &[
    ("CreateCase", REPORTERS),
    ("GetCase", EVERYONE),
    ("UpdateCase", WORKERS),
    ("AssignCase", WORKERS),
    ("DeleteCase", MANAGERS),
    ("UndeleteCase", MANAGERS),
    ("ListCases", EVERYONE),
    ("SearchCases", EVERYONE),
    ("AddComment", REPORTERS),
    ("ListComments", EVERYONE),
    ("MergeCases", WORKERS),
    // The MTA pipe or inbound-mail webhook.
    ("IngestEmail", &[Role::Admin, Role::Integration]),
    ("WatchChanges", EVERYONE),
];

const SLA: &[(&str, &[Role])] = &[
    ("CreateCalendar", MANAGERS),
    ("GetCalendar", EVERYONE),
    ("UpdateCalendar", MANAGERS),
    ("ListCalendars", EVERYONE),
    ("ImportHolidays", MANAGERS),
    ("CreateSlaPolicy", MANAGERS),
    ("GetSlaPolicy", EVERYONE),
    ("UpdateSlaPolicy", MANAGERS),
    ("DeleteSlaPolicy", MANAGERS),
    ("ListSlaPolicies", EVERYONE),
    ("GetCaseSla", EVERYONE),
    ("SimulateSla", EVERYONE),
];

const ASSIGNMENT: &[(&str, &[Role])] = &[
    ("SetTeam", MANAGERS),
    ("GetTeam", EVERYONE),
    ("ListTeams", EVERYONE),
    // An agent sets their own availability (checked by the handler).
    ("SetAgent", &[Role::Admin, Role::SupportManager, Role::SupportAgent]),
    ("GetAgent", EVERYONE),
];

const KNOWLEDGE: &[(&str, &[Role])] = &[
    ("CreateArticle", STAFF),
    ("GetArticle", EVERYONE),
    ("UpdateArticle", STAFF),
    ("ListArticles", EVERYONE),
    ("ListArticleRevisions", EVERYONE),
    ("SearchArticles", EVERYONE),
    ("SuggestArticles", EVERYONE),
    ("UseSuggestion", STAFF),
    ("VoteArticle", EVERYONE),
];

/// Public: the survey token is the credential (no login).
const SATISFACTION: &[(&str, &[Role])] = &[("SubmitSatisfaction", EVERYONE)];

/// The role tables of every Support gRPC service.
pub fn policies() -> Vec<Policy> {
    vec![
        Policy::new(CASE_SERVICE, CASES),
        Policy::new(SLA_SERVICE, SLA),
        Policy::new(ASSIGNMENT_SERVICE, ASSIGNMENT),
        Policy::new(SATISFACTION_SERVICE, SATISFACTION).with_public(&["SubmitSatisfaction"]),
        Policy::new(KNOWLEDGE_SERVICE, KNOWLEDGE),
    ]
}

/// Who may change which case: an agent the cases assigned to them (the
/// owner is the assignee); support managers their teams'; admins and
/// integrations any. See [`may_change`] and [`may_assign`] for the queue.
pub const CASES_OWNERSHIP: Ownership = Ownership {
    kind: "case",
    bound: &[Role::SupportAgent],
    managers: &[Role::SupportManager],
    any: &[(Role::Integration, Fields::All)],
};

/// Whether `principal` is a bound agent working the queue of `team_id`.
fn works_queue(principal: &Principal, team_id: &str) -> bool {
    principal.has(Role::SupportAgent)
        && ((!team_id.is_empty() && principal.in_team(team_id))
            || (team_id.is_empty() && principal.teams.is_empty()))
}

/// May `principal` change `case` (an update, a status move, a merge)? The
/// ownership rules, and: an agent changes the unassigned cases of their
/// teams' queues (whoever picks one up works it).
pub fn may_change(principal: &Principal, case: Owned<'_>, changed: &[&str]) -> Result<(), Problem> {
    if case.owner_id.is_empty() && works_queue(principal, case.team_id) {
        return Ok(());
    }
    CASES_OWNERSHIP.change(principal, case, changed)
}

/// May `principal` move `from` to the assignee and team of `to`? The
/// ownership rules, and: an agent takes an unassigned case of their
/// team's queue for themselves, and hands a case assigned to them to
/// anyone in the same team, or back to its queue.
pub fn may_assign(principal: &Principal, from: Owned<'_>, to: Owned<'_>) -> Result<(), Problem> {
    let same_team = from.team_id == to.team_id;
    let takes =
        from.owner_id.is_empty() && to.owner_id == principal.subject && works_queue(principal, from.team_id);
    let hands_over =
        principal.has(Role::SupportAgent) && !from.owner_id.is_empty() && from.owner_id == principal.subject;
    if same_team && (takes || hands_over) {
        return Ok(());
    }
    CASES_OWNERSHIP.reassign(principal, Some(from), to)
}

/// May `principal` create a case for `to`? Anyone who may call
/// CreateCase puts an unassigned case in any team's queue (a rep reports a
/// customer's problem to support); assigning it at once follows the
/// ownership rules.
pub fn may_create(principal: &Principal, to: Owned<'_>) -> Result<(), Problem> {
    if to.owner_id.is_empty() {
        return Ok(());
    }
    CASES_OWNERSHIP.reassign(principal, None, to)
}

/// Which read RPC shows each resource type of Support's change feed.
pub const FEED_READS: &[(&str, &str, &str)] = &[
    (resource::CASE, CASE_SERVICE, "ListCases"),
    (resource::COMMENT, CASE_SERVICE, "ListComments"),
    (resource::SLA_ALERT, CASE_SERVICE, "ListCases"),
    (resource::SATISFACTION, CASE_SERVICE, "ListCases"),
];
