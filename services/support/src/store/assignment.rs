//! Teams, agents, and the automatic choice of an assignee for a case that
//! arrives unassigned in a team's queue.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::sla::Sla;
use crate::error::Error;

pub use crate::model::{AgentRow, TeamRecord};

/// A member as the choice sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Member {
    agent_id: String,
    available: bool,
    capacity: i32,
    calendar_id: Option<Uuid>,
    last_turn: i64,
    open_cases: i64,
}

const AGENT_COLUMNS: &str = "a.agent_id, a.available, a.capacity, a.calendar_id, a.last_assign_time, \
    (SELECT count(*) FROM cases c WHERE c.assignee_id = a.agent_id AND c.delete_time IS NULL \
       AND c.status NOT IN ('RESOLVED', 'CLOSED')) AS open_cases";

/// Chooses the agent a new case of `team_id` goes to, under the team's
/// lock (held until the caller's transaction ends): `None` when the team
/// assigns nobody automatically or nobody is eligible.
pub async fn choose(
    tx: &mut PgConnection,
    team_id: &str,
    now: DateTime<Utc>,
    sla: &Sla,
) -> Result<Option<String>, Error> {
    if team_id.is_empty() {
        return Ok(None);
    }
    let team: Option<(String, i64)> =
        sqlx::query_as("SELECT mode, turn FROM support_teams WHERE team_id = $1 FOR UPDATE")
            .bind(team_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((mode, turn)) = team.filter(|(mode, _)| mode != "NONE") else {
        return Ok(None);
    };
    let members: Vec<Member> = sqlx::query_as(
        "SELECT a.agent_id, a.available, a.capacity, a.calendar_id, m.last_turn, \
           (SELECT count(*) FROM cases c WHERE c.assignee_id = a.agent_id AND c.delete_time IS NULL \
              AND c.status NOT IN ('RESOLVED', 'CLOSED')) AS open_cases \
         FROM support_team_members m JOIN support_agents a ON a.agent_id = m.agent_id \
         WHERE m.team_id = $1 ORDER BY a.agent_id",
    )
    .bind(team_id)
    .fetch_all(&mut *tx)
    .await?;
    let eligible = members.iter().filter(|member| {
        member.available
            && (member.capacity == 0 || member.open_cases < i64::from(member.capacity))
            && member
                .calendar_id
                .is_none_or(|calendar| sla.calendars.get(&calendar).is_none_or(|hours| hours.is_open(now)))
    });
    let chosen = match mode.as_str() {
        "LEAST_OPEN" => eligible.min_by_key(|member| (member.open_cases, member.last_turn)),
        _ => eligible.min_by_key(|member| member.last_turn),
    };
    let Some(chosen) = chosen else { return Ok(None) };
    let turn = turn + 1;
    sqlx::query("UPDATE support_teams SET turn = $2 WHERE team_id = $1")
        .bind(team_id)
        .bind(turn)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE support_team_members SET last_turn = $3 WHERE team_id = $1 AND agent_id = $2")
        .bind(team_id)
        .bind(&chosen.agent_id)
        .bind(turn)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE support_agents SET last_assign_time = $2 WHERE agent_id = $1")
        .bind(&chosen.agent_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(Some(chosen.agent_id.clone()))
}

async fn ensure_agents(
    tx: &mut PgConnection,
    agent_ids: &[String],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO support_agents (agent_id, update_time) SELECT unnest($1::text[]), $2 \
         ON CONFLICT (agent_id) DO NOTHING",
    )
    .bind(agent_ids)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Creates or replaces a team's mode and members (a member keeps their turn).
pub async fn set_team(
    pool: &PgPool,
    team_id: &str,
    mode: &str,
    agent_ids: &[String],
    now: DateTime<Utc>,
) -> Result<TeamRecord, Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO support_teams (team_id, mode, update_time) VALUES ($1, $2, $3) \
         ON CONFLICT (team_id) DO UPDATE SET mode = $2, update_time = $3",
    )
    .bind(team_id)
    .bind(mode)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    // The team row is locked now: no assignment runs while members change.
    sqlx::query("SELECT team_id FROM support_teams WHERE team_id = $1 FOR UPDATE")
        .bind(team_id)
        .execute(&mut *tx)
        .await?;
    ensure_agents(&mut tx, agent_ids, now).await?;
    sqlx::query("DELETE FROM support_team_members WHERE team_id = $1 AND NOT (agent_id = ANY($2))")
        .bind(team_id)
        .bind(agent_ids)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO support_team_members (team_id, agent_id) SELECT $1, unnest($2::text[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(team_id)
    .bind(agent_ids)
    .execute(&mut *tx)
    .await?;
    let team = read_team(&mut tx, team_id).await?;
    tx.commit().await?;
    Ok(team)
}

async fn read_team(conn: &mut PgConnection, team_id: &str) -> Result<TeamRecord, Error> {
    let team: Option<(String, DateTime<Utc>)> =
        sqlx::query_as("SELECT mode, update_time FROM support_teams WHERE team_id = $1")
            .bind(team_id)
            .fetch_optional(&mut *conn)
            .await?;
    let (mode, update_time) = team.ok_or_else(|| team_not_found(team_id))?;
    let sql = format!(
        "SELECT {AGENT_COLUMNS} FROM support_team_members m JOIN support_agents a ON a.agent_id = m.agent_id \
         WHERE m.team_id = $1 ORDER BY a.agent_id"
    );
    let agents = sqlx::query_as(&sql).bind(team_id).fetch_all(&mut *conn).await?;
    Ok(TeamRecord { team_id: team_id.to_owned(), mode, update_time, agents })
}

fn team_not_found(team_id: &str) -> Error {
    Error::not_found("TEAM_NOT_FOUND", "rapport.support.v1.Team", team_id)
}

/// One team.
pub async fn get_team(pool: &PgPool, team_id: &str) -> Result<TeamRecord, Error> {
    let mut conn = pool.acquire().await?;
    read_team(&mut conn, team_id).await
}

/// Every team, by id.
pub async fn list_teams(pool: &PgPool) -> Result<Vec<TeamRecord>, Error> {
    let mut conn = pool.acquire().await?;
    let ids: Vec<String> = sqlx::query_scalar("SELECT team_id FROM support_teams ORDER BY team_id")
        .fetch_all(&mut *conn)
        .await?;
    let mut teams = Vec::with_capacity(ids.len());
    for id in ids {
        teams.push(read_team(&mut conn, &id).await?);
    }
    Ok(teams)
}

/// What SetAgent changes.
#[derive(Debug, Clone, Default)]
pub struct AgentChange {
    pub available: Option<bool>,
    pub capacity: Option<i32>,
    pub calendar_id: Option<Option<Uuid>>,
}

/// Sets an agent's settings (creating the agent).
pub async fn set_agent(
    pool: &PgPool,
    agent_id: &str,
    change: &AgentChange,
    now: DateTime<Utc>,
) -> Result<AgentRow, Error> {
    let mut tx = pool.begin().await?;
    if let Some(Some(calendar)) = change.calendar_id {
        let found: Option<Uuid> = sqlx::query_scalar("SELECT id FROM sla_calendars WHERE id = $1")
            .bind(calendar)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(Error::precondition(
                "CALENDAR_NOT_FOUND",
                format!("calendar {calendar} does not exist"),
                "CALENDAR_EXISTS",
                &calendar.to_string(),
            ));
        }
    }
    ensure_agents(&mut tx, &[agent_id.to_owned()], now).await?;
    sqlx::query(
        "UPDATE support_agents SET available = COALESCE($2, available), capacity = COALESCE($3, capacity), \
           calendar_id = CASE WHEN $4 THEN $5 ELSE calendar_id END, update_time = $6 WHERE agent_id = $1",
    )
    .bind(agent_id)
    .bind(change.available)
    .bind(change.capacity)
    .bind(change.calendar_id.is_some())
    .bind(change.calendar_id.flatten())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let agent = read_agent(&mut tx, agent_id).await?;
    tx.commit().await?;
    Ok(agent)
}

async fn read_agent(conn: &mut PgConnection, agent_id: &str) -> Result<AgentRow, Error> {
    let sql = format!("SELECT {AGENT_COLUMNS} FROM support_agents a WHERE a.agent_id = $1");
    let row: Option<AgentRow> = sqlx::query_as(&sql).bind(agent_id).fetch_optional(&mut *conn).await?;
    row.ok_or_else(|| Error::not_found("AGENT_NOT_FOUND", "rapport.support.v1.Agent", agent_id))
}

/// One agent.
pub async fn get_agent(pool: &PgPool, agent_id: &str) -> Result<AgentRow, Error> {
    let mut conn = pool.acquire().await?;
    read_agent(&mut conn, agent_id).await
}
