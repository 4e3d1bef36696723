//! Who may change which record: the rules every service declares per
//! record kind next to its role tables, and the one check every write path
//! makes after reading the record it changes.
//!
//! The role table decides who may call an RPC at all; these rules decide
//! which records the caller may change through it:
//! - `admin` changes anything;
//! - a role listed in [`Ownership::any`] changes any record of the kind
//!   (optionally only some of its fields: marketing on a contact's lead
//!   source and consent);
//! - `sales_manager` changes any record of a team they are in;
//! - everyone else — the roles listed in [`Ownership::bound`], and any role
//!   the table lets call a write without naming it here — changes only
//!   what they own or, for deals, what they are on the deal team of.
//!
//! Reassigning a record (its owner or team) is a manager's act: a bound
//! caller can neither create a record for someone else nor take one. A
//! refusal is `PERMISSION_DENIED` with reason `NOT_OWNER` or `NOT_IN_TEAM`.

use super::{Principal, Role};
use crate::filter::{SqlFilter, SqlValue};
use crate::problem::Problem;

/// Reason: the caller may change only what they own (or are on the team of).
pub const NOT_OWNER: &str = "NOT_OWNER";
/// Reason: the record belongs to a team the caller is not in.
pub const NOT_IN_TEAM: &str = "NOT_IN_TEAM";

/// Which fields a role of [`Ownership::any`] may change on any record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// Every field, the owner and team included.
    All,
    /// Only these update-mask paths (never the owner or team).
    Only(&'static [&'static str]),
}

/// The ownership rules of one record kind.
#[derive(Debug, Clone, Copy)]
pub struct Ownership {
    /// The record kind, as refusals name it (`contact`, `deal`, ...).
    pub kind: &'static str,
    /// Roles that change only what they own (documentation: any role not
    /// granted more is bound).
    pub bound: &'static [Role],
    /// Roles that manage the records of their teams: change them, assign
    /// them within their teams (sales managers for sales records, support
    /// managers for cases).
    pub managers: &'static [Role],
    /// Roles that may change any record of the kind, and which fields.
    pub any: &'static [(Role, Fields)],
}

/// A record as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Owned<'a> {
    /// Its owner's subject; empty when nobody owns it.
    pub owner_id: &'a str,
    /// Its team; empty when it has none.
    pub team_id: &'a str,
    /// Others who may change it as if they owned it (a deal's team members).
    pub members: &'a [String],
}

impl<'a> Owned<'a> {
    /// A record of `owner_id` in `team_id`, without members.
    pub fn new(owner_id: &'a str, team_id: &'a str) -> Owned<'a> {
        Owned { owner_id, team_id, members: &[] }
    }

    fn is_owned_by(&self, principal: &Principal) -> bool {
        (!self.owner_id.is_empty() && self.owner_id == principal.subject)
            || self.members.contains(&principal.subject)
    }
}

impl Ownership {
    /// May `principal` change the fields `changed` (update-mask paths) of
    /// `record`? The owner and team are checked by [`Ownership::reassign`].
    pub fn change(&self, principal: &Principal, record: Owned<'_>, changed: &[&str]) -> Result<(), Problem> {
        if self.may_change_any(principal, changed) || record.is_owned_by(principal) {
            return Ok(());
        }
        if self.is_manager(principal) && principal.in_team(record.team_id) {
            return Ok(());
        }
        Err(self.refusal(principal, record))
    }

    /// May `principal` give `record` the owner and team of `to` (a create
    /// has no `from`)? A bound caller creates records for themselves in a
    /// team of theirs and never moves one; a manager assigns and moves
    /// records whose team (or, before, whose ownership) is theirs into one
    /// of their teams. A record leaves every team (an empty team) only by
    /// an admin's or an integration's hand, or when its creator has no team.
    pub fn reassign(
        &self,
        principal: &Principal,
        from: Option<Owned<'_>>,
        to: Owned<'_>,
    ) -> Result<(), Problem> {
        if let Some(from) = from
            && from.owner_id == to.owner_id
            && from.team_id == to.team_id
        {
            return Ok(());
        }
        if principal.has(Role::Admin) || self.grants_all(principal) {
            return Ok(());
        }
        // A destination team: one of the caller's, or none when the caller
        // has none at all (a deployment without teams).
        let destination_ok =
            |team: &str| principal.in_team(team) || (team.is_empty() && principal.teams.is_empty());
        let not_in_team = || self.denied(NOT_IN_TEAM, format!("you are not in team {:?}", to.team_id));
        if self.is_manager(principal) {
            // The source: a record of one of their teams, or one they own
            // (its owner, not a deal-team member).
            let source_ok = from.is_none_or(|from| {
                principal.in_team(from.team_id)
                    || (!from.owner_id.is_empty() && from.owner_id == principal.subject)
            });
            if source_ok && destination_ok(to.team_id) {
                return Ok(());
            }
            return Err(self.denied(
                NOT_IN_TEAM,
                format!(
                    "a manager moves {}s only within their teams ({})",
                    self.kind,
                    principal.teams.join(", ")
                ),
            ));
        }
        if to.owner_id != principal.subject || from.is_some_and(|from| from.owner_id != principal.subject) {
            return Err(self.denied(
                NOT_OWNER,
                format!("only a manager assigns a {} to someone else, or takes one", self.kind),
            ));
        }
        match from {
            // A create: in a team of theirs.
            None if destination_ok(to.team_id) => Ok(()),
            None => Err(not_in_team()),
            // Moving a record between teams is a manager's act.
            Some(_) => {
                Err(self.denied(NOT_IN_TEAM, format!("only a manager moves a {} to another team", self.kind)))
            }
        }
    }

    /// The owner and team a create gives a record when the request names
    /// none: the caller, and the caller's first team.
    pub fn defaults<'p>(principal: &'p Principal, owner_id: &'p str, team_id: &'p str) -> (&'p str, &'p str) {
        let owner = if owner_id.is_empty() { principal.subject.as_str() } else { owner_id };
        let team =
            if team_id.is_empty() { principal.teams.first().map_or("", String::as_str) } else { team_id };
        (owner, team)
    }

    fn grants_all(&self, principal: &Principal) -> bool {
        self.any.iter().any(|(role, fields)| *fields == Fields::All && principal.has(*role))
    }

    fn may_change_any(&self, principal: &Principal, changed: &[&str]) -> bool {
        principal.has(Role::Admin)
            || self.any.iter().any(|(role, fields)| {
                principal.has(*role)
                    && match fields {
                        Fields::All => true,
                        Fields::Only(allowed) => {
                            !changed.is_empty() && changed.iter().all(|path| allowed.contains(path))
                        }
                    }
            })
    }

    /// Whether `principal` has one of the kind's manager roles.
    pub fn is_manager(&self, principal: &Principal) -> bool {
        self.managers.iter().any(|role| principal.has(*role))
    }

    fn refusal(&self, principal: &Principal, record: Owned<'_>) -> Problem {
        if self.is_manager(principal) {
            self.denied(
                NOT_IN_TEAM,
                format!("this {} belongs to team {:?}, which you are not in", self.kind, record.team_id),
            )
        } else {
            self.denied(NOT_OWNER, format!("you may change only {}s you own", self.kind))
        }
    }

    fn denied(&self, reason: &str, message: String) -> Problem {
        Problem::permission_denied(reason, message).meta("resource_kind", self.kind)
    }
}

/// Which records of a kind a caller may read. Reading is open (`All`)
/// unless the kind is declared team-visible in the service's configuration
/// (Salesforce's "Organization-Wide Defaults" set to private): then a
/// caller reads the records they own, are a member of, or that belong to a
/// team they are in; admins and the roles that may change any record of the
/// kind read them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadScope {
    /// Every record.
    All,
    /// The records `subject` owns or is a member of, and those of `teams`.
    Own {
        /// The caller's subject.
        subject: String,
        /// The caller's teams.
        teams: Vec<String>,
    },
}

/// The columns a [`ReadScope`] condition reads.
#[derive(Debug, Clone, Copy)]
pub struct ScopeColumns {
    /// The owner's subject (`text`).
    pub owner: &'static str,
    /// The team (`text`), if the table has one.
    pub team: Option<&'static str>,
    /// The members (`text[]`), if the table has them.
    pub members: Option<&'static str>,
}

impl ReadScope {
    /// May this scope read `record`?
    pub fn may_read(&self, record: Owned<'_>) -> bool {
        match self {
            ReadScope::All => true,
            ReadScope::Own { subject, teams } => {
                (!record.owner_id.is_empty() && record.owner_id == subject)
                    || record.members.contains(subject)
                    || (!record.team_id.is_empty() && teams.iter().any(|team| team == record.team_id))
            }
        }
    }

    /// True when the scope reads every record.
    pub fn is_all(&self) -> bool {
        *self == ReadScope::All
    }

    /// The SQL condition of the scope over `columns`, its placeholders
    /// numbered from `$first` (three of them: whether all is readable, the
    /// subject, the teams).
    pub fn condition(&self, columns: ScopeColumns, first: usize) -> SqlFilter {
        let (all, subject, teams) = match self {
            ReadScope::All => (true, String::new(), Vec::new()),
            ReadScope::Own { subject, teams } => (false, subject.clone(), teams.clone()),
        };
        let (a, s, t) = (first, first + 1, first + 2);
        let mut sql = format!("${a}::boolean OR {} = ${s}::text", columns.owner);
        if let Some(members) = columns.members {
            sql.push_str(&format!(" OR ${s}::text = ANY({members})"));
        }
        match columns.team {
            Some(team) => sql.push_str(&format!(" OR {team} = ANY(${t}::text[])")),
            // The placeholder is bound either way; keep it typed.
            None => sql.push_str(&format!(" OR cardinality(${t}::text[]) < 0")),
        }
        SqlFilter {
            sql: format!("({sql})"),
            params: vec![SqlValue::Bool(all), SqlValue::Text(subject), SqlValue::TextArray(teams)],
        }
    }

    /// The refusal of a read of a record outside the scope.
    pub fn refusal(kind: &str) -> Problem {
        Problem::permission_denied(
            NOT_IN_TEAM,
            format!("{kind}s are visible only to their owners, members and teams, and you are none of these"),
        )
        .meta("resource_kind", kind)
    }
}

impl Ownership {
    /// What `principal` may read of this kind: everything unless
    /// `team_visible`; then admins and the roles that may change any record
    /// of the kind read everything, everyone else their own, their
    /// memberships' and their teams' ([`ReadScope`]).
    pub fn read_scope(&self, principal: &Principal, team_visible: bool) -> ReadScope {
        if !team_visible || principal.has(Role::Admin) || self.grants_all(principal) {
            return ReadScope::All;
        }
        ReadScope::Own { subject: principal.subject.clone(), teams: principal.teams.clone() }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const DEALS: Ownership = Ownership {
        kind: "deal",
        bound: &[Role::SalesRep],
        managers: &[Role::SalesManager],
        any: &[(Role::Integration, Fields::All)],
    };
    const CONTACTS: Ownership = Ownership {
        kind: "contact",
        bound: &[Role::SalesRep],
        managers: &[Role::SalesManager],
        any: &[(Role::Marketing, Fields::Only(&["lead_source", "email_opt_in"]))],
    };

    fn who(subject: &str, role: Role, teams: &[&str]) -> Principal {
        Principal::new(subject, vec![role]).with_teams(teams)
    }

    fn reason(result: Result<(), Problem>) -> String {
        result.map_or_else(|problem| problem.reason().to_owned(), |()| "OK".to_owned())
    }

    #[test]
    fn reps_change_what_they_own_or_are_on_the_team_of() {
        let rep = who("ann", Role::SalesRep, &["east"]);
        let members = ["ann".to_owned()];
        assert_eq!(reason(DEALS.change(&rep, Owned::new("ann", "east"), &["title"])), "OK");
        assert_eq!(reason(DEALS.change(&rep, Owned::new("bob", "east"), &["title"])), NOT_OWNER);
        let shared = Owned { owner_id: "bob", team_id: "west", members: &members };
        assert_eq!(reason(DEALS.change(&rep, shared, &["title"])), "OK");
        assert_eq!(reason(DEALS.change(&rep, Owned::new("", ""), &["title"])), NOT_OWNER);
    }

    #[test]
    fn managers_change_their_teams_records_and_admins_and_integrations_anything() {
        let manager = who("meg", Role::SalesManager, &["east"]);
        assert_eq!(reason(DEALS.change(&manager, Owned::new("bob", "east"), &["title"])), "OK");
        assert_eq!(reason(DEALS.change(&manager, Owned::new("bob", "west"), &["title"])), NOT_IN_TEAM);
        assert_eq!(reason(DEALS.change(&manager, Owned::new("meg", "west"), &["title"])), "OK");
        let admin = who("root", Role::Admin, &[]);
        assert_eq!(reason(DEALS.change(&admin, Owned::new("bob", "west"), &["title"])), "OK");
        let erp = who("erp", Role::Integration, &[]);
        assert_eq!(reason(DEALS.change(&erp, Owned::new("bob", "west"), &["title"])), "OK");
        assert_eq!(reason(CONTACTS.change(&erp, Owned::new("bob", "west"), &["title"])), NOT_OWNER);
    }

    #[test]
    fn marketing_changes_only_its_fields_of_others_contacts() {
        let marketer = who("mia", Role::Marketing, &[]);
        let others = Owned::new("bob", "east");
        assert_eq!(reason(CONTACTS.change(&marketer, others, &["lead_source", "email_opt_in"])), "OK");
        assert_eq!(reason(CONTACTS.change(&marketer, others, &["lead_source", "job_title"])), NOT_OWNER);
        assert_eq!(reason(CONTACTS.change(&marketer, Owned::new("mia", ""), &["job_title"])), "OK");
    }

    #[test]
    fn only_managers_reassign_and_only_within_their_teams() {
        let rep = who("ann", Role::SalesRep, &["east"]);
        let mine = Owned::new("ann", "east");
        assert_eq!(reason(DEALS.reassign(&rep, None, mine)), "OK");
        assert_eq!(reason(DEALS.reassign(&rep, None, Owned::new("bob", "east"))), NOT_OWNER);
        assert_eq!(reason(DEALS.reassign(&rep, None, Owned::new("ann", "west"))), NOT_IN_TEAM);
        assert_eq!(reason(DEALS.reassign(&rep, Some(Owned::new("bob", "east")), mine)), NOT_OWNER);
        assert_eq!(reason(DEALS.reassign(&rep, Some(mine), Owned::new("bob", "east"))), NOT_OWNER);
        assert_eq!(reason(DEALS.reassign(&rep, Some(mine), mine)), "OK");
        // A rep moves no record between teams, nor out of every team.
        assert_eq!(reason(DEALS.reassign(&rep, Some(mine), Owned::new("ann", ""))), NOT_IN_TEAM);
        let both = who("ann", Role::SalesRep, &["east", "west"]);
        assert_eq!(reason(DEALS.reassign(&both, Some(mine), Owned::new("ann", "west"))), NOT_IN_TEAM);
        // A rep without teams creates team-less records; one with teams does not.
        assert_eq!(reason(DEALS.reassign(&rep, None, Owned::new("ann", ""))), NOT_IN_TEAM);
        let loner = who("lou", Role::SalesRep, &[]);
        assert_eq!(reason(DEALS.reassign(&loner, None, Owned::new("lou", ""))), "OK");
        let manager = who("meg", Role::SalesManager, &["east"]);
        assert_eq!(
            reason(DEALS.reassign(&manager, Some(Owned::new("ann", "east")), Owned::new("bob", "east"))),
            "OK"
        );
        assert_eq!(
            reason(DEALS.reassign(&manager, Some(Owned::new("ann", "east")), Owned::new("bob", "west"))),
            NOT_IN_TEAM
        );
        assert_eq!(
            reason(DEALS.reassign(&manager, Some(Owned::new("ann", "west")), Owned::new("meg", "east"))),
            NOT_IN_TEAM
        );
        // A manager's deal-team membership is not ownership: no taking
        // another team's deal through it; and no record leaves every team.
        let members = ["meg".to_owned()];
        let bobs = Owned { owner_id: "bob", team_id: "west", members: &members };
        assert_eq!(reason(DEALS.reassign(&manager, Some(bobs), Owned::new("meg", "east"))), NOT_IN_TEAM);
        assert_eq!(
            reason(DEALS.reassign(&manager, Some(Owned::new("ann", "east")), Owned::new("ann", ""))),
            NOT_IN_TEAM
        );
        let erp = who("erp", Role::Integration, &[]);
        assert_eq!(reason(DEALS.reassign(&erp, None, Owned::new("bob", "west"))), "OK");
    }

    #[test]
    fn creates_default_to_the_caller_and_their_first_team() {
        let rep = who("ann", Role::SalesRep, &["east", "west"]);
        assert_eq!(Ownership::defaults(&rep, "", ""), ("ann", "east"));
        assert_eq!(Ownership::defaults(&rep, "bob", "west"), ("bob", "west"));
    }

    #[test]
    fn team_visible_kinds_are_read_by_owners_members_teams_and_the_unbound() {
        let rep = who("rep-1", Role::SalesRep, &["east"]);
        let manager = who("mgr-1", Role::SalesManager, &["east"]);
        let members = vec!["rep-1".to_owned()];
        let theirs = Owned::new("rep-2", "west");
        let east = Owned::new("rep-2", "east");
        let member_of = Owned { owner_id: "rep-2", team_id: "west", members: &members };
        assert!(DEALS.read_scope(&rep, false).is_all(), "open unless declared team-visible");
        for all in [who("a", Role::Admin, &[]), who("erp", Role::Integration, &[])] {
            assert!(DEALS.read_scope(&all, true).is_all(), "{all:?}");
        }
        let scope = DEALS.read_scope(&rep, true);
        assert!(scope.may_read(Owned::new("rep-1", "west")), "their own");
        assert!(scope.may_read(east), "their team's");
        assert!(scope.may_read(member_of), "a deal they are on the team of");
        assert!(!scope.may_read(theirs));
        assert!(!scope.may_read(Owned::new("", "")), "nobody's record in no team");
        let scope = DEALS.read_scope(&manager, true);
        assert!(scope.may_read(east) && !scope.may_read(theirs));
        let viewer = DEALS.read_scope(&who("v", Role::Viewer, &[]), true);
        assert!(!viewer.may_read(east));

        let columns =
            ScopeColumns { owner: "owner_id", team: Some("team_id"), members: Some("team_member_ids") };
        let condition = DEALS.read_scope(&rep, true).condition(columns, 3);
        assert_eq!(
            condition.sql,
            "($3::boolean OR owner_id = $4::text OR $4::text = ANY(team_member_ids) OR team_id = ANY($5::text[]))"
        );
        assert_eq!(
            condition.params,
            vec![
                SqlValue::Bool(false),
                SqlValue::Text("rep-1".into()),
                SqlValue::TextArray(vec!["east".into()])
            ]
        );
    }
}
