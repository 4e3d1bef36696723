//! Teams' members, assignment rules, and assigning a new unowned contact
//! or company in its creating transaction: the first enabled rule (by
//! position) whose conditions it meets picks its team, and the team's turn
//! row (locked `FOR UPDATE`, so concurrent creates on any replica take
//! turns) picks the member — in turn, or the least loaded under capacity.
//! The assignment is recorded with the rule.

use chrono::{DateTime, Utc};
use prost::Message as _;
use rapport_kit::changelog::timestamp;
use rapport_kit::paging::Cursor;
use rapport_proto::contacts::v1::{Assignment, AssignmentMethod, AssignmentRule, TeamMember};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{check_etag, now};
use crate::domain::assignment::{Target, matches, method_from_name, method_name};
use crate::error::{ASSIGNMENT_RULE, Error};

/// The most rules that may exist.
const MAX_RULES: i64 = 500;

#[derive(sqlx::FromRow)]
struct MemberRow {
    team_id: String,
    user_id: String,
    display_name: String,
    active: bool,
    capacity: i32,
    update_time: DateTime<Utc>,
}

impl From<MemberRow> for TeamMember {
    fn from(row: MemberRow) -> TeamMember {
        TeamMember {
            team_id: row.team_id,
            user_id: row.user_id,
            display_name: row.display_name,
            active: row.active,
            capacity: row.capacity,
            update_time: Some(timestamp(row.update_time)),
        }
    }
}

/// Adds or replaces a validated member.
pub async fn set_member(pool: &PgPool, member: &TeamMember) -> Result<TeamMember, Error> {
    let row: MemberRow = sqlx::query_as(
        "INSERT INTO team_members (team_id, user_id, display_name, active, capacity, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (team_id, user_id) DO UPDATE SET display_name = excluded.display_name, \
           active = excluded.active, capacity = excluded.capacity, update_time = excluded.update_time \
         RETURNING *",
    )
    .bind(&member.team_id)
    .bind(&member.user_id)
    .bind(&member.display_name)
    .bind(member.active)
    .bind(member.capacity)
    .bind(now())
    .fetch_one(pool)
    .await?;
    Ok(row.into())
}

/// Removes a member.
pub async fn remove_member(pool: &PgPool, team_id: &str, user_id: &str) -> Result<TeamMember, Error> {
    let row: Option<MemberRow> =
        sqlx::query_as("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2 RETURNING *")
            .bind(team_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
    row.map(Into::into)
        .ok_or_else(|| Error::not_found("TEAM_MEMBER_NOT_FOUND", "rapport.contacts.v1.TeamMember", user_id))
}

/// The members of `team_id` (every team when empty).
pub async fn members(pool: &PgPool, team_id: &str) -> Result<Vec<TeamMember>, Error> {
    let rows: Vec<MemberRow> = sqlx::query_as(
        "SELECT * FROM team_members WHERE ($1 = '' OR team_id = $1) ORDER BY team_id, user_id LIMIT 10000",
    )
    .bind(team_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: Uuid,
    rule: Vec<u8>,
    position: i32,
    version: i64,
    update_time: DateTime<Utc>,
}

impl RuleRow {
    fn into_rule(self) -> Result<AssignmentRule, sqlx::Error> {
        let mut rule =
            AssignmentRule::decode(self.rule.as_slice()).map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
        rule.id = self.id.to_string();
        rule.position = self.position;
        rule.update_time = Some(timestamp(self.update_time));
        rule.etag = rapport_kit::db::etag(self.version);
        Ok(rule)
    }
}

/// Every rule in evaluation order.
pub async fn rules(db: impl sqlx::PgExecutor<'_>) -> Result<Vec<AssignmentRule>, sqlx::Error> {
    let rows: Vec<RuleRow> = sqlx::query_as(
        "SELECT id, rule, position, version, update_time FROM assignment_rules ORDER BY position, id",
    )
    .fetch_all(db)
    .await?;
    rows.into_iter().map(RuleRow::into_rule).collect()
}

/// Adds a validated rule.
pub async fn create_rule(pool: &PgPool, rule: &AssignmentRule) -> Result<AssignmentRule, Error> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM assignment_rules").fetch_one(pool).await?;
    if count >= MAX_RULES {
        return Err(rapport_kit::error::Problem::failed_precondition(
            "TOO_MANY_ASSIGNMENT_RULES",
            format!("at most {MAX_RULES} assignment rules exist; delete one first"),
        )
        .into());
    }
    let row: RuleRow = sqlx::query_as(
        "INSERT INTO assignment_rules (id, rule, position, update_time) VALUES ($1, $2, $3, $4) \
         RETURNING id, rule, position, version, update_time",
    )
    .bind(Uuid::now_v7())
    .bind(rule.encode_to_vec())
    .bind(rule.position)
    .bind(now())
    .fetch_one(pool)
    .await?;
    Ok(row.into_rule()?)
}

/// Replaces a rule with `merge(stored)` if `etag` is current.
pub async fn update_rule(
    pool: &PgPool,
    id: Uuid,
    etag: &str,
    merge: impl FnOnce(AssignmentRule) -> Result<AssignmentRule, Error>,
) -> Result<AssignmentRule, Error> {
    let mut tx = pool.begin().await?;
    let row = lock_rule(&mut tx, id).await?;
    check_etag(ASSIGNMENT_RULE, &id.to_string(), etag, row.version)?;
    let version = row.version;
    let merged = merge(row.into_rule()?)?;
    let row: RuleRow = sqlx::query_as(
        "UPDATE assignment_rules SET rule = $2, position = $3, version = $4, update_time = $5 WHERE id = $1 \
         RETURNING id, rule, position, version, update_time",
    )
    .bind(id)
    .bind(
        AssignmentRule { id: String::new(), update_time: None, etag: String::new(), ..merged.clone() }
            .encode_to_vec(),
    )
    .bind(merged.position)
    .bind(version + 1)
    .bind(now())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row.into_rule()?)
}

async fn lock_rule(tx: &mut PgConnection, id: Uuid) -> Result<RuleRow, Error> {
    let row: Option<RuleRow> = sqlx::query_as(
        "SELECT id, rule, position, version, update_time FROM assignment_rules WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    row.ok_or_else(|| Error::not_found("ASSIGNMENT_RULE_NOT_FOUND", ASSIGNMENT_RULE, id))
}

/// Removes a rule.
pub async fn delete_rule(pool: &PgPool, id: Uuid, etag: &str) -> Result<AssignmentRule, Error> {
    let mut tx = pool.begin().await?;
    let row = lock_rule(&mut tx, id).await?;
    check_etag(ASSIGNMENT_RULE, &id.to_string(), etag, row.version)?;
    sqlx::query("DELETE FROM assignment_rules WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(row.into_rule()?)
}

/// Who gets a new record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The member.
    pub owner_id: String,
    /// The team.
    pub team_id: String,
    /// The rule.
    pub rule_id: Uuid,
    /// How.
    pub method: AssignmentMethod,
}

/// The owner and team the rules give `target`, in the creating
/// transaction; `None` when no rule matches or the team has nobody
/// eligible.
pub async fn choose(tx: &mut PgConnection, target: &Target) -> Result<Option<Chosen>, sqlx::Error> {
    let rules = rules(&mut *tx).await?;
    let Some(rule) = rules.iter().find(|rule| rule.enabled && matches(rule, target)) else { return Ok(None) };
    let rule_id = Uuid::parse_str(&rule.id).map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
    sqlx::query("INSERT INTO assignment_turns (team_id) VALUES ($1) ON CONFLICT (team_id) DO NOTHING")
        .bind(&rule.team_id)
        .execute(&mut *tx)
        .await?;
    let turn: i64 = sqlx::query_scalar("SELECT turn FROM assignment_turns WHERE team_id = $1 FOR UPDATE")
        .bind(&rule.team_id)
        .fetch_one(&mut *tx)
        .await?;
    let members: Vec<(String, i32)> = sqlx::query_as(
        "SELECT user_id, capacity FROM team_members WHERE team_id = $1 AND active ORDER BY user_id",
    )
    .bind(&rule.team_id)
    .fetch_all(&mut *tx)
    .await?;
    if members.is_empty() {
        return Ok(None);
    }
    let method = AssignmentMethod::try_from(rule.method).unwrap_or(AssignmentMethod::RoundRobin);
    let owner = match method {
        AssignmentMethod::LeastLoaded => least_loaded(tx, &members).await?,
        _ => {
            let count = i64::try_from(members.len()).unwrap_or(1);
            usize::try_from(turn.rem_euclid(count))
                .ok()
                .and_then(|index| members.get(index))
                .map(|m| m.0.clone())
        }
    };
    let Some(owner_id) = owner else { return Ok(None) };
    sqlx::query("UPDATE assignment_turns SET turn = turn + 1 WHERE team_id = $1")
        .bind(&rule.team_id)
        .execute(&mut *tx)
        .await?;
    Ok(Some(Chosen { owner_id, team_id: rule.team_id.clone(), rule_id, method }))
}

/// The member owning the fewest live contacts and companies, under their
/// capacity (ties: the first by id).
async fn least_loaded(
    tx: &mut PgConnection,
    members: &[(String, i32)],
) -> Result<Option<String>, sqlx::Error> {
    let ids: Vec<&str> = members.iter().map(|(id, _)| id.as_str()).collect();
    let loads: Vec<(String, i64)> = sqlx::query_as(
        "SELECT owner_id, count(*) FROM ( \
           SELECT owner_id FROM contacts WHERE owner_id = ANY($1) AND delete_time IS NULL \
           UNION ALL SELECT owner_id FROM companies WHERE owner_id = ANY($1) AND delete_time IS NULL) owned \
         GROUP BY owner_id",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let load = |id: &str| loads.iter().find(|(owner, _)| owner == id).map_or(0, |(_, count)| *count);
    Ok(members
        .iter()
        .filter(|(id, capacity)| *capacity == 0 || load(id) < i64::from(*capacity))
        .min_by_key(|(id, _)| load(id))
        .map(|(id, _)| id.clone()))
}

/// Records that `chosen` got the record.
pub async fn record(
    tx: &mut PgConnection,
    resource_type: &str,
    resource_id: Uuid,
    chosen: &Chosen,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO assignments (id, resource_type, resource_id, rule_id, team_id, owner_id, method, assign_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::now_v7())
    .bind(resource_type)
    .bind(resource_id)
    .bind(chosen.rule_id)
    .bind(&chosen.team_id)
    .bind(&chosen.owner_id)
    .bind(method_name(chosen.method))
    .bind(now())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct AssignmentRow {
    id: Uuid,
    resource_type: String,
    resource_id: Uuid,
    rule_id: Uuid,
    team_id: String,
    owner_id: String,
    method: String,
    assign_time: DateTime<Utc>,
}

/// One page of assignments, newest first, and whether more follow.
pub async fn assignments(
    pool: &PgPool,
    resource_id: Option<Uuid>,
    rule_id: Option<Uuid>,
    limit: u32,
    after: Option<&Cursor>,
) -> Result<(Vec<Assignment>, Option<Uuid>), Error> {
    let rows: Vec<AssignmentRow> = sqlx::query_as(
        "SELECT * FROM assignments WHERE ($1::uuid IS NULL OR resource_id = $1) \
           AND ($2::uuid IS NULL OR rule_id = $2) AND ($3::uuid IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4",
    )
    .bind(resource_id)
    .bind(rule_id)
    .bind(after.map(|cursor| cursor.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    let more = rows.len() > limit as usize;
    let last = rows.get((limit as usize).saturating_sub(1)).map(|row| row.id).filter(|_| more);
    let assignments = rows
        .into_iter()
        .take(limit as usize)
        .map(|row| {
            Ok(Assignment {
                resource_type: row.resource_type,
                resource_id: row.resource_id.to_string(),
                rule_id: row.rule_id.to_string(),
                team_id: row.team_id,
                owner_id: row.owner_id,
                method: method_from_name(&row.method)?.into(),
                assign_time: Some(timestamp(row.assign_time)),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((assignments, last))
}

/// The company facts a contact's rules read: industry and size.
pub async fn company_facts(tx: &mut PgConnection, company_id: Uuid) -> Result<(String, i32), sqlx::Error> {
    let facts: Option<(String, i32)> =
        sqlx::query_as("SELECT industry, employee_count FROM companies WHERE id = $1")
            .bind(company_id)
            .fetch_optional(&mut *tx)
            .await?;
    Ok(facts.unwrap_or_default())
}
