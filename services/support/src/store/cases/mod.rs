//! Cases: reads, and the writes of CreateCase, UpdateCase, AssignCase,
//! DeleteCase and UndeleteCase, each with its change-log row. Every write
//! moves the case's SLA clocks in the same transaction. Lists are in
//! [`list`], MergeCases in [`merge`].

mod list;
mod merge;

pub use list::{FILTERS, LIST, LISTED, ORDERS, list};
pub use merge::merge;

use prost::Message as _;
use rapport_kit::auth::Owned;
use rapport_kit::changelog::{self, Change};
use rapport_kit::db::check_etag;
use rapport_kit::idempotency::Claim;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::support::v1::{Case, CaseStatus};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::sla::{self, Sla};
use super::{Ctx, Write};
use crate::convert::{View, case_to_proto, enums_of};
use crate::domain::case::{
    CaseField, CaseInput, channel_name, is_open, may_move, priority_name, status_name,
};
use crate::domain::sla::{CaseClocks, CaseFacts, Event, choose};
use crate::error::{self, Error, resource::CASE};
use crate::model::{CaseRecord, CaseRow};

/// The columns of [`CaseRow`].
pub const COLUMNS: &str = "id, number, subject, description, requester_contact_id, company_id, status, priority, \
    channel, category, product, assignee_id, team_id, tags, deal_id, sla_policy_id, sla_policy_version, \
    next_due_time, first_response_time, resolve_time, close_time, merged_into, follow_up_of, requester_deleted, \
    create_time, update_time, delete_time, version";

pub(crate) fn not_found(id: impl ToString) -> Error {
    Error::not_found("CASE_NOT_FOUND", CASE, id)
}

/// A case as the ownership rules see it: its assignee and team.
pub fn owned(row: &CaseRow) -> Owned<'_> {
    Owned::new(&row.assignee_id, &row.team_id)
}

/// The records of `rows`, with their clocks.
pub(crate) async fn with_clocks(
    conn: &mut PgConnection,
    rows: Vec<CaseRow>,
) -> Result<Vec<CaseRecord>, Error> {
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let clock_rows = sla::clock_rows(conn, &ids).await?;
    rows.into_iter()
        .map(|case| Ok(CaseRecord { clocks: sla::clocks_of(&clock_rows, case.id)?, case }))
        .collect()
}

/// One case by id or number, live or deleted, with the SLA definitions
/// to show it (the reads' cache).
pub async fn get(
    pool: &PgPool,
    (id, number): (Option<Uuid>, Option<i64>),
    cache: &sla::SlaCache,
) -> Result<(CaseRecord, std::sync::Arc<Sla>), Error> {
    let mut conn = pool.acquire().await?;
    let row: Option<CaseRow> = match (id, number) {
        (Some(id), _) => {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM cases WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        }
        (None, Some(number)) => {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM cases WHERE number = $1"))
                .bind(number)
                .fetch_optional(&mut *conn)
                .await?
        }
        (None, None) => None,
    };
    let missing =
        || not_found(id.map(|id| id.to_string()).or(number.map(|n| n.to_string())).unwrap_or_default());
    let row = row.ok_or_else(missing)?;
    let record = with_clocks(&mut conn, vec![row]).await?.pop().ok_or_else(missing)?;
    Ok((record, cache.get(&mut conn).await?))
}

/// The requester of case `id` (live or deleted).
pub async fn requester_of(pool: &PgPool, id: Uuid) -> Result<Uuid, Error> {
    let requester: Option<Uuid> = sqlx::query_scalar("SELECT requester_contact_id FROM cases WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    requester.ok_or_else(|| not_found(id))
}

/// Locks a case for a write.
pub(crate) async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<CaseRecord, Error> {
    let row: Option<CaseRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM cases WHERE id = $1 FOR UPDATE"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let row = row.ok_or_else(|| not_found(id))?;
    with_clocks(tx, vec![row]).await?.pop().ok_or_else(|| not_found(id))
}

/// Locks a live case, checks `may_change` first (a caller refused learns
/// nothing more), then the etag, deletion and merge.
pub(crate) async fn lock_live(
    tx: &mut PgConnection,
    id: Uuid,
    etag: &str,
    may_change: impl FnOnce(&CaseRecord) -> Result<(), Error>,
) -> Result<CaseRecord, Error> {
    let record = lock(tx, id).await?;
    may_change(&record)?;
    check_etag(CASE, &id.to_string(), etag, record.case.version)?;
    if record.case.delete_time.is_some() {
        return Err(rapport_kit::error::Problem::deleted(CASE, &id.to_string()).into());
    }
    if record.case.merged_into.is_some() {
        return Err(error::case_merged(&id.to_string()));
    }
    Ok(record)
}

/// Writes every changeable column of `row`.
pub(crate) async fn write_row(tx: &mut PgConnection, row: &CaseRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE cases SET subject = $2, description = $3, requester_contact_id = $4, company_id = $5, \
           status = $6, priority = $7, channel = $8, category = $9, product = $10, assignee_id = $11, \
           team_id = $12, tags = $13, deal_id = $14, sla_policy_id = $15, sla_policy_version = $16, \
           next_due_time = $17, first_response_time = $18, resolve_time = $19, close_time = $20, \
           merged_into = $21, follow_up_of = $22, update_time = $23, delete_time = $24, version = $25, \
           requester_deleted = $26 \
         WHERE id = $1",
    )
    .bind(row.id)
    .bind(&row.subject)
    .bind(&row.description)
    .bind(row.requester_contact_id)
    .bind(row.company_id)
    .bind(&row.status)
    .bind(&row.priority)
    .bind(&row.channel)
    .bind(&row.category)
    .bind(&row.product)
    .bind(&row.assignee_id)
    .bind(&row.team_id)
    .bind(&row.tags)
    .bind(row.deal_id)
    .bind(row.sla_policy_id)
    .bind(row.sla_policy_version)
    .bind(row.next_due_time)
    .bind(row.first_response_time)
    .bind(row.resolve_time)
    .bind(row.close_time)
    .bind(row.merged_into)
    .bind(row.follow_up_of)
    .bind(row.update_time)
    .bind(row.delete_time)
    .bind(row.version)
    .bind(row.requester_deleted)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Saves a changed case: bumps its version, writes it and its moved
/// clocks, and appends its change-log row; returns it as a `Case`.
pub(crate) async fn save(
    tx: &mut PgConnection,
    record: &mut CaseRecord,
    (kind, paths): (ChangeKind, Vec<String>),
    actor: &str,
    ctx: Ctx<'_>,
    sla: &Sla,
) -> Result<Case, Error> {
    record.case.version += 1;
    record.case.update_time = ctx.now;
    record.case.next_due_time = if is_open(enums_of(record)?.0) { record.clocks.next_due() } else { None };
    write_row(tx, &record.case).await?;
    sla::set_warnings(record, sla);
    sla::write_clocks(tx, record.case.id, &mut record.clocks).await?;
    let case = case_to_proto(record, View { prefix: ctx.prefix, now: ctx.now, calendars: sla })?;
    changelog::append(tx, &[Change::of(CASE, &case, record.case.id.to_string(), kind, actor, paths)]).await?;
    Ok(case)
}

/// Who a new case belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    /// The assignee (empty: unassigned).
    pub assignee_id: &'a str,
    /// The team.
    pub team_id: &'a str,
}

/// Draws the next case number (gap-free: the counter row is updated in the
/// creating transaction).
async fn next_number(tx: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("UPDATE case_number_counter SET last = last + 1 RETURNING last")
        .fetch_one(&mut *tx)
        .await
}

/// Creates a case (references checked by the caller), or replays the first
/// result of the same request id. Returns the record too, for callers that
/// go on (a follow-up case gets its first comment).
pub async fn create(
    tx: &mut PgConnection,
    input: &CaseInput,
    placement: Placement<'_>,
    write: Write<'_>,
    ctx: Ctx<'_>,
) -> Result<(Case, Option<CaseRecord>), Error> {
    if let Some(principal) = write.principal {
        crate::policy::may_create(principal, Owned::new(placement.assignee_id, placement.team_id))?;
    }
    if let Claim::Replay(response) = write.claim(tx, "CreateCase").await? {
        let case = Case::decode(response.as_slice())
            .map_err(|err| Error::Internal(anyhow::Error::new(err).context("stored response")))?;
        return Ok((case, None));
    }
    let sla = sla::load(tx).await?;
    let status = input.status.unwrap_or(CaseStatus::New);
    let facts = CaseFacts {
        priority: input.priority,
        channel: input.channel,
        category: &input.category,
        tags: &input.tags,
    };
    let policy = choose(sla.live_policies(), &facts);
    let requester = input.requester.ok_or_else(|| {
        Error::from(rapport_kit::fields::Violation::new("case.requester_contact_id", "is required"))
    })?;
    let mut record = CaseRecord {
        case: CaseRow {
            id: Uuid::now_v7(),
            // Drawn last, just before the row is written: the counter's row
            // lock is held from the draw to the commit.
            number: 0,
            subject: input.subject.clone(),
            description: input.description.clone(),
            requester_contact_id: requester.uuid(),
            company_id: input.company_id.map(|id| id.uuid()),
            status: status_name(status),
            priority: priority_name(input.priority),
            channel: channel_name(input.channel),
            category: input.category.clone(),
            product: input.product.clone(),
            assignee_id: match placement.assignee_id {
                "" => {
                    super::assignment::choose(tx, placement.team_id, ctx.now, &sla).await?.unwrap_or_default()
                }
                chosen => chosen.to_owned(),
            },
            team_id: placement.team_id.to_owned(),
            tags: input.tags.clone(),
            deal_id: input.deal_id.map(|id| id.uuid()),
            sla_policy_id: policy.map(|policy| policy.id),
            sla_policy_version: policy.map_or(0, |policy| policy.version),
            next_due_time: None,
            first_response_time: None,
            resolve_time: None,
            close_time: None,
            merged_into: None,
            follow_up_of: None,
            requester_deleted: false,
            create_time: ctx.now,
            update_time: ctx.now,
            delete_time: None,
            version: 0,
        },
        clocks: CaseClocks::default(),
    };
    record.clocks.apply(Event::Created(status), ctx.now, policy, input.priority, &sla);
    let number = next_number(tx).await?;
    record.case.number = number;
    sqlx::query(
        "INSERT INTO cases (id, number, subject, requester_contact_id, status, priority, channel, create_time, \
           update_time) VALUES ($1, $2, '', $3, 'NEW', 'NORMAL', 'WEB', $4, $4)",
    )
    .bind(record.case.id)
    .bind(number)
    .bind(requester.uuid())
    .bind(ctx.now)
    .execute(&mut *tx)
    .await?;
    let case = save(tx, &mut record, (ChangeKind::Created, Vec::new()), write.actor, ctx, &sla).await?;
    write.record(tx, &case.encode_to_vec()).await?;
    Ok((case, Some(record)))
}

/// Moves `record` to `to` at `ctx.now`: checks the transition, stamps the
/// resolve and close times, and moves the clocks.
pub(crate) fn move_status(
    record: &mut CaseRecord,
    to: CaseStatus,
    ctx: Ctx<'_>,
    sla: &Sla,
) -> Result<(), Error> {
    let (from, priority, _) = enums_of(record)?;
    if from == to {
        return Ok(());
    }
    if !may_move(from, to) {
        let id = record.case.id.to_string();
        return Err(if from == CaseStatus::Closed {
            error::case_closed(&id)
        } else {
            error::invalid_transition(&id, from, to)
        });
    }
    record.case.status = status_name(to);
    match to {
        CaseStatus::Resolved => record.case.resolve_time = Some(ctx.now),
        CaseStatus::Closed => record.case.close_time = Some(ctx.now),
        _ => {}
    }
    let policy = sla.policy(record.case.sla_policy_id);
    record.clocks.apply(Event::Status { from, to }, ctx.now, policy, priority, sla);
    Ok(())
}

/// Applies the fields of `input` to a live case if `etag` is current (or
/// empty). References were checked by the caller.
pub async fn update(
    pool: &PgPool,
    (id, etag): (Uuid, &str),
    input: &CaseInput,
    recipient: Option<&super::outbox::Recipient>,
    write: Write<'_>,
    ctx: Ctx<'_>,
) -> Result<Case, Error> {
    let mut tx = pool.begin().await?;
    let paths: Vec<&str> = input.fields.iter().map(|field| field.path()).collect();
    let mut record = lock_live(&mut tx, id, etag, |record| match write.principal {
        Some(principal) => {
            crate::policy::may_change(principal, owned(&record.case), &paths).map_err(Error::from)
        }
        None => Ok(()),
    })
    .await?;
    let sla = sla::load(&mut tx).await?;
    let before = record.case.clone();
    if before.status == "CLOSED" {
        return Err(error::case_closed(&id.to_string()));
    }
    for field in &input.fields {
        match field {
            CaseField::Subject => record.case.subject.clone_from(&input.subject),
            CaseField::Description => record.case.description.clone_from(&input.description),
            CaseField::Priority => record.case.priority = priority_name(input.priority),
            CaseField::Channel => record.case.channel = channel_name(input.channel),
            CaseField::Category => record.case.category.clone_from(&input.category),
            CaseField::Product => record.case.product.clone_from(&input.product),
            CaseField::Tags => record.case.tags.clone_from(&input.tags),
            CaseField::DealId => record.case.deal_id = input.deal_id.map(|id| id.uuid()),
            CaseField::CompanyId => record.case.company_id = input.company_id.map(|id| id.uuid()),
            CaseField::Requester => {
                if let Some(requester) = input.requester {
                    record.case.requester_contact_id = requester.uuid();
                    record.case.requester_deleted = false;
                }
            }
            CaseField::Status => {}
        }
    }
    if input.sets(CaseField::Priority) && record.case.priority != before.priority {
        // The new priority's goals apply to the targets still running.
        sla::retarget(&mut record, &sla)?;
    }
    if let Some(status) = input.status.filter(|_| input.sets(CaseField::Status)) {
        move_status(&mut record, status, ctx, &sla)?;
    } else if input.sets(CaseField::Status) {
        return Err(rapport_kit::fields::Violation::new(
            "case.status",
            "is required when named in update_mask",
        )
        .into());
    }
    if record.case.status == "RESOLVED" && before.status != "RESOLVED" {
        resolved(&mut tx, &record, recipient, write, ctx).await?;
    }
    let paths = input.fields.iter().map(|field| field.path().to_owned()).collect();
    let updated = save(&mut tx, &mut record, (ChangeKind::Updated, paths), write.actor, ctx, &sla).await?;
    tx.commit().await?;
    Ok(updated)
}

/// What resolving a case does besides its clocks: a satisfaction survey
/// credited to the resolving agent (the assignee, else whoever resolved
/// it), and the resolution mail with the survey link.
async fn resolved(
    tx: &mut PgConnection,
    record: &CaseRecord,
    recipient: Option<&super::outbox::Recipient>,
    write: Write<'_>,
    ctx: Ctx<'_>,
) -> Result<(), Error> {
    let agent = if record.case.assignee_id.is_empty() { write.actor } else { &record.case.assignee_id };
    let token = super::surveys::issue(tx, record.case.id, agent, ctx.now, ctx.survey_ttl).await?;
    let (Some(mail), Some(to)) = (ctx.mail, recipient) else {
        return Ok(());
    };
    let number = crate::domain::case::display_number(ctx.prefix, record.case.number);
    let link = (!mail.survey_url.is_empty()).then(|| format!("{}{token}", mail.survey_url));
    let mail = super::outbox::Mail {
        case_id: record.case.id,
        to,
        subject: crate::domain::email::reply_subject(&number, &record.case.subject),
        body: crate::domain::email::resolution_body(&number, &record.case.subject, link.as_deref()),
        message_id: ctx.message_id(),
    };
    super::outbox::enqueue(tx, mail, ctx.now).await?;
    Ok(())
}

/// Gives a live case a new assignee and team.
pub async fn assign(
    pool: &PgPool,
    id: Uuid,
    etag: &str,
    to: Placement<'_>,
    write: Write<'_>,
    ctx: Ctx<'_>,
) -> Result<Case, Error> {
    let mut tx = pool.begin().await?;
    let team = |record: &CaseRecord| {
        if to.team_id.is_empty() { record.case.team_id.clone() } else { to.team_id.to_owned() }
    };
    let mut record = lock_live(&mut tx, id, etag, |record| match write.principal {
        Some(principal) => {
            let team = team(record);
            crate::policy::may_assign(principal, owned(&record.case), Owned::new(to.assignee_id, &team))
                .map_err(Error::from)
        }
        None => Ok(()),
    })
    .await?;
    let sla = sla::load(&mut tx).await?;
    record.case.team_id = team(&record);
    record.case.assignee_id = to.assignee_id.to_owned();
    let paths = vec!["assignee_id".to_owned(), "team_id".to_owned()];
    let assigned = save(&mut tx, &mut record, (ChangeKind::Updated, paths), write.actor, ctx, &sla).await?;
    tx.commit().await?;
    Ok(assigned)
}

/// Soft-deletes or restores a case.
pub async fn set_deleted(
    pool: &PgPool,
    id: Uuid,
    etag: &str,
    deleted: bool,
    write: Write<'_>,
    ctx: Ctx<'_>,
) -> Result<Case, Error> {
    let mut tx = pool.begin().await?;
    let mut record = lock(&mut tx, id).await?;
    if let Some(principal) = write.principal {
        crate::policy::may_change(principal, owned(&record.case), &[]).map_err(Error::from)?;
    }
    check_etag(CASE, &id.to_string(), etag, record.case.version)?;
    let sla = sla::load(&mut tx).await?;
    let (kind, change) = match (deleted, record.case.delete_time) {
        (true, None) => (ChangeKind::Deleted, Some(Some(ctx.now))),
        (false, Some(_)) => (ChangeKind::Undeleted, Some(None)),
        _ => (ChangeKind::Updated, None),
    };
    let Some(delete_time) = change else {
        return case_to_proto(&record, View { prefix: ctx.prefix, now: ctx.now, calendars: &sla });
    };
    record.case.delete_time = delete_time;
    let saved = save(&mut tx, &mut record, (kind, Vec::new()), write.actor, ctx, &sla).await?;
    tx.commit().await?;
    Ok(saved)
}
