//! Deals: the stored record, reads, and the writes of CreateDeal,
//! UpdateDeal, DeleteDeal and UndeleteDeal (each with its change-log row).
//! Stage moves are in [`moves`], lists in [`list`], search in [`search`],
//! stage history in [`history`], stale deals in [`stale`], and references
//! dropped when Contacts deletes a company or contact in [`references`].

pub mod history;
pub mod list;
pub mod moves;
pub mod references;
mod resolve;
pub mod search;
pub mod stale;

use chrono::{DateTime, Utc};
use prost::Message;
use rapport_kit::auth::{Owned, ReadScope, ScopeColumns};
use rapport_kit::changelog::{self, Change};
use rapport_kit::idempotency::Claim;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::pipeline::v1::Deal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Write, check_etag, now};
use crate::convert::deals::deal_to_proto;
use crate::domain::deal::{DealField, DealInput};
use crate::domain::ids::DealId;
use crate::error::{Error, resource::DEAL};
pub use crate::model::deals::DealRecord;
pub use crate::model::deals::DealRow;
pub use crate::model::deals::LineRow;
use crate::policy::DEALS_OWNERSHIP as DEALS;

/// The deals table joined with the current stage, as `deals` (for lists).
pub(crate) const DEALS_WITH_STAGE: &str =
    "(SELECT d.*, s.probability AS stage_probability FROM deals d JOIN stages s ON s.id = d.stage_id) deals";

/// The columns a caller's read scope is checked against (over `deals` and
/// [`DEALS_WITH_STAGE`]).
pub const SCOPE_COLUMNS: rapport_kit::auth::ScopeColumns = rapport_kit::auth::ScopeColumns {
    owner: "owner_id",
    team: Some("team_id"),
    members: Some("team_member_ids"),
};

/// The columns of [`DealRow`] over [`DEALS_WITH_STAGE`].
pub(crate) const COLUMNS: &str = "id, title, pipeline_id, stage_id, currency_code, amount_minor, amount_derived, \
    expected_close_date, probability_override, stage_probability, forecast_category, owner_id, team_member_ids, \
    company_id, contact_ids, contact_roles, lead_source, source_campaign_id, next_step, status, lost_reason_id, \
    lost_reason_detail, close_time, reopen_stage_id, stage_enter_time, last_activity_time, order_id, \
    create_time, update_time, delete_time, version, team_id";

/// The lines of `deal_ids`, in order.
pub(crate) async fn lines_of(tx: &mut PgConnection, deal_ids: &[Uuid]) -> Result<Vec<LineRow>, sqlx::Error> {
    const SQL: &str = concat!(
        "SELECT id, deal_id, product_id, description, quantity::text AS quantity, unit_price_minor, ",
        "discount_percent::text AS discount_percent, amount_minor ",
        "FROM deal_line_items WHERE deal_id = ANY($1) ORDER BY deal_id, position"
    );
    sqlx::query_as(SQL).bind(deal_ids).fetch_all(&mut *tx).await
}

/// Attaches their lines to `rows`.
pub(crate) async fn with_lines(
    tx: &mut PgConnection,
    rows: Vec<DealRow>,
) -> Result<Vec<DealRecord>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let mut lines = lines_of(tx, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|deal| {
            let (mine, rest) = lines.drain(..).partition(|line| line.deal_id == deal.id);
            lines = rest;
            DealRecord { deal, lines: mine }
        })
        .collect())
}

/// One deal, live or deleted.
pub async fn get(pool: &PgPool, id: DealId) -> Result<Deal, Error> {
    let mut conn = pool.acquire().await?;
    let sql = format!("SELECT {COLUMNS} FROM {DEALS_WITH_STAGE} WHERE id = $1");
    let row: Option<DealRow> = sqlx::query_as(&sql).bind(id.uuid()).fetch_optional(&mut *conn).await?;
    let row = row.ok_or_else(|| not_found(id.uuid()))?;
    let record = with_lines(&mut conn, vec![row]).await?.pop().ok_or_else(|| not_found(id.uuid()))?;
    Ok(deal_to_proto(&record)?)
}

pub(crate) fn not_found(id: Uuid) -> Error {
    Error::not_found("DEAL_NOT_FOUND", DEAL, id)
}

/// The columns of [`DealRow`] over `deals d`, the stage probability by a
/// subquery (not a join: see [`lock`]).
const LOCK_DEAL: &str = "SELECT d.id, d.title, d.pipeline_id, d.stage_id, d.currency_code, d.amount_minor, \
    d.amount_derived, d.expected_close_date, d.probability_override, \
    (SELECT s.probability FROM stages s WHERE s.id = d.stage_id) AS stage_probability, d.forecast_category, \
    d.owner_id, d.team_member_ids, d.company_id, d.contact_ids, d.contact_roles, d.lead_source, \
    d.source_campaign_id, d.next_step, d.status, d.lost_reason_id, d.lost_reason_detail, d.close_time, \
    d.reopen_stage_id, d.stage_enter_time, d.last_activity_time, d.order_id, d.create_time, d.update_time, \
    d.delete_time, d.version, d.team_id \
    FROM deals d WHERE d.id = $1 FOR UPDATE";

/// Locks a deal for a write and returns it, in one statement. The lock is
/// taken on the deal alone and the stage probability read by a subquery
/// of the (re-checked) locked row: with the stage joined, a row whose
/// stage a concurrent move changed would fail the re-checked join and
/// vanish (NOT_FOUND instead of the etag mismatch). The lines are read
/// after the lock is held, so they are current.
pub(crate) async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<DealRecord, Error> {
    let row: Option<DealRow> = sqlx::query_as(LOCK_DEAL).bind(id).fetch_optional(&mut *tx).await?;
    let row = row.ok_or_else(|| not_found(id))?;
    with_lines(tx, vec![row]).await?.pop().ok_or_else(|| not_found(id))
}

/// Locks a live deal, checks that `may_change` allows the write, then the
/// etag: a caller refused learns nothing of the deal's version or whether
/// it is deleted.
pub(crate) async fn lock_live(
    tx: &mut PgConnection,
    id: Uuid,
    etag: &str,
    may_change: impl FnOnce(&DealRecord) -> Result<(), Error>,
) -> Result<DealRecord, Error> {
    let record = lock(tx, id).await?;
    may_change(&record)?;
    check_etag(DEAL, &id.to_string(), etag, record.deal.version)?;
    if record.deal.delete_time.is_some() {
        return Err(Error::precondition(
            "DEAL_DELETED",
            format!("deal {id} is deleted; undelete it first"),
            "DEAL_LIVE",
            &id.to_string(),
        ));
    }
    Ok(record)
}

/// The UPDATE of every changeable column of a deal.
macro_rules! update_deal {
    () => {
        "UPDATE deals SET title = $2, pipeline_id = $3, stage_id = $4, currency_code = $5, amount_minor = $6, \
           amount_derived = $7, expected_close_date = $8, probability_override = $9, forecast_category = $10, \
           owner_id = $11, team_member_ids = $12, company_id = $13, contact_ids = $14, contact_roles = $15, \
           lead_source = $16, source_campaign_id = $17, next_step = $18, status = $19, lost_reason_id = $20, \
           lost_reason_detail = $21, close_time = $22, reopen_stage_id = $23, stage_enter_time = $24, \
           last_activity_time = $25, order_id = $26, update_time = $27, delete_time = $28, version = $29, \
           team_id = $30 \
         WHERE id = $1"
    };
}

/// Binds the columns of `deal` as $1 to $30 of [`update_deal`].
fn bind_row<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    deal: &'q DealRow,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(deal.id)
        .bind(&deal.title)
        .bind(deal.pipeline_id)
        .bind(deal.stage_id)
        .bind(&deal.currency_code)
        .bind(deal.amount_minor)
        .bind(deal.amount_derived)
        .bind(deal.expected_close_date)
        .bind(deal.probability_override)
        .bind(&deal.forecast_category)
        .bind(&deal.owner_id)
        .bind(&deal.team_member_ids)
        .bind(deal.company_id)
        .bind(&deal.contact_ids)
        .bind(&deal.contact_roles)
        .bind(&deal.lead_source)
        .bind(&deal.source_campaign_id)
        .bind(&deal.next_step)
        .bind(&deal.status)
        .bind(deal.lost_reason_id)
        .bind(&deal.lost_reason_detail)
        .bind(deal.close_time)
        .bind(deal.reopen_stage_id)
        .bind(deal.stage_enter_time)
        .bind(deal.last_activity_time)
        .bind(deal.order_id)
        .bind(deal.update_time)
        .bind(deal.delete_time)
        .bind(deal.version)
        .bind(&deal.team_id)
}

/// Writes every changeable column of `deal` (and bumps the version).
pub(crate) async fn write_row(tx: &mut PgConnection, deal: &DealRow) -> Result<(), sqlx::Error> {
    bind_row(sqlx::query(update_deal!()), deal).execute(&mut *tx).await?;
    Ok(())
}

/// [`write_row`] and [`enter_stage`] (into `deal.stage_id` at
/// `deal.stage_enter_time`) in one statement.
pub(crate) async fn write_row_entering(
    tx: &mut PgConnection,
    deal: &DealRow,
    actor: &str,
) -> Result<(), sqlx::Error> {
    const SQL: &str = concat!(
        "WITH closed AS (UPDATE deal_stage_history SET leave_time = $24 ",
        "WHERE deal_id = $1 AND leave_time IS NULL), ",
        "opened AS (INSERT INTO deal_stage_history (deal_id, stage_id, enter_time, actor) ",
        "VALUES ($1, $4, $24, $31)) ",
        update_deal!()
    );
    bind_row(sqlx::query(SQL), deal).bind(actor).execute(&mut *tx).await?;
    Ok(())
}

/// Replaces the lines of `deal_id`.
pub(crate) async fn write_lines(
    tx: &mut PgConnection,
    deal_id: Uuid,
    lines: &[LineRow],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM deal_line_items WHERE deal_id = $1").bind(deal_id).execute(&mut *tx).await?;
    for (position, line) in (0_i32..).zip(lines) {
        sqlx::query(
            "INSERT INTO deal_line_items (id, deal_id, position, product_id, description, quantity, \
               unit_price_minor, discount_percent, amount_minor) \
             VALUES ($1, $2, $3, $4, $5, $6::numeric, $7, $8::numeric, $9)",
        )
        .bind(line.id)
        .bind(deal_id)
        .bind(position)
        .bind(line.product_id)
        .bind(&line.description)
        .bind(&line.quantity)
        .bind(line.unit_price_minor)
        .bind(&line.discount_percent)
        .bind(line.amount_minor)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Closes the open stage visit of `deal_id` and opens one in `stage_id`.
pub(crate) async fn enter_stage(
    tx: &mut PgConnection,
    deal_id: Uuid,
    stage_id: Uuid,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE deal_stage_history SET leave_time = $2 WHERE deal_id = $1 AND leave_time IS NULL")
        .bind(deal_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO deal_stage_history (deal_id, stage_id, enter_time, actor) VALUES ($1, $2, $3, $4)",
    )
    .bind(deal_id)
    .bind(stage_id)
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Appends the change-log row of `record` and returns it as a Deal.
pub(crate) async fn log(
    tx: &mut PgConnection,
    record: &DealRecord,
    kind: ChangeKind,
    actor: &str,
    paths: Vec<String>,
) -> Result<Deal, Error> {
    let deal = deal_to_proto(record)?;
    changelog::append(tx, &[Change::of(DEAL, &deal, record.deal.id.to_string(), kind, actor, paths)]).await?;
    Ok(deal)
}

/// Creates a deal from `input` (references already checked; `owner_id`
/// already defaulted), or replays the first result of the same request id.
/// `recheck` asks Contacts about a company or contact with a tombstone
/// (see [`references`]).
pub async fn create(
    pool: &PgPool,
    input: &DealInput,
    write: Write<'_>,
    recheck: &dyn references::Recheck,
) -> Result<Deal, Error> {
    write.may_assign(&DEALS, None, Owned::new(&input.owner_id, &input.team_id))?;
    let mut tx = pool.begin().await?;
    if let Claim::Replay(response) = write.claim(&mut tx, "CreateDeal").await? {
        return Deal::decode(response.as_slice())
            .map_err(|err| Error::Internal(anyhow::Error::new(err).context("stored response")));
    }
    let contact_ids: Vec<Uuid> = input.contacts.iter().map(|(id, _)| id.uuid()).collect();
    references::refuse_deleted(&mut tx, input.company_id.map(|id| id.uuid()), &contact_ids, recheck).await?;
    let now = now();
    let stage = resolve::open_stage(&mut tx, input.pipeline_id, input.stage_id).await?;
    let currency = input
        .currency
        .ok_or_else(|| Error::from(crate::domain::Violation::new("deal.currency_code", "is required")))?;
    let id = DealId::generate().uuid();
    let lines = resolve::lines(&mut tx, id, currency, &input.line_items, &[]).await?;
    let (amount_minor, amount_derived) = resolve::amount(currency, input.amount, &lines)?;
    let deal = DealRow {
        id,
        title: input.title.clone(),
        pipeline_id: stage.pipeline_id.uuid(),
        stage_id: stage.stage_id.uuid(),
        currency_code: currency.code().to_owned(),
        amount_minor,
        amount_derived,
        expected_close_date: input.expected_close_date,
        probability_override: input.probability,
        stage_probability: stage.probability as i16,
        forecast_category: input.forecast_category_or_default().to_owned(),
        owner_id: input.owner_id.clone(),
        team_id: input.team_id.clone(),
        team_member_ids: input.team_member_ids.clone(),
        company_id: input.company_id.map(|id| id.uuid()),
        contact_ids: input.contacts.iter().map(|(id, _)| id.uuid()).collect(),
        contact_roles: input.contacts.iter().map(|(_, role)| (*role).to_owned()).collect(),
        lead_source: input.lead_source_or_default().to_owned(),
        source_campaign_id: input.source_campaign_id.clone(),
        next_step: input.next_step.clone(),
        status: "OPEN".to_owned(),
        lost_reason_id: None,
        lost_reason_detail: String::new(),
        close_time: None,
        reopen_stage_id: None,
        stage_enter_time: now,
        last_activity_time: now,
        order_id: None,
        create_time: now,
        update_time: now,
        delete_time: None,
        version: 1,
    };
    sqlx::query(
        "INSERT INTO deals (id, title, pipeline_id, stage_id, currency_code, status, forecast_category, \
           stage_enter_time, last_activity_time, create_time, update_time) \
         VALUES ($1, $2, $3, $4, $5, 'OPEN', $6, $7, $7, $7, $7)",
    )
    .bind(id)
    .bind(&deal.title)
    .bind(deal.pipeline_id)
    .bind(deal.stage_id)
    .bind(&deal.currency_code)
    .bind(&deal.forecast_category)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    write_row(&mut tx, &deal).await?;
    write_lines(&mut tx, id, &lines).await?;
    enter_stage(&mut tx, id, stage.stage_id.uuid(), now, write.actor).await?;
    let record = DealRecord { deal, lines };
    let created = log(&mut tx, &record, ChangeKind::Created, write.actor, Vec::new()).await?;
    write.record(&mut tx, &created.encode_to_vec()).await?;
    tx.commit().await?;
    Ok(created)
}

/// Applies the fields of `input` to a live deal if `etag` is current (or
/// empty). References were checked by the caller.
pub async fn update(
    pool: &PgPool,
    id: DealId,
    etag: &str,
    input: &DealInput,
    write: Write<'_>,
    recheck: &dyn references::Recheck,
) -> Result<Deal, Error> {
    let mut tx = pool.begin().await?;
    let paths: Vec<&str> = input.fields.iter().map(|field| field.path()).collect();
    let mut record = lock_live(&mut tx, id.uuid(), etag, |record| {
        write.may_change(&DEALS, owned(&record.deal), &paths).map_err(Error::from)
    })
    .await?;
    let now = now();
    let before = record.clone();
    resolve::apply(&mut tx, &mut record, input).await?;
    write.may_assign(&DEALS, Some(owned(&before.deal)), owned(&record.deal))?;
    if record.deal.team_member_ids != before.deal.team_member_ids {
        // Who else may change the deal is for its owner (or a manager) to
        // say, not for a member: no member adds a friend or drops another.
        let owner_only = Owned::new(&before.deal.owner_id, &before.deal.team_id);
        write.may_change(&DEALS, owner_only, &["team_member_ids"])?;
    }
    // The company and contacts this write adds.
    let company = record.deal.company_id.filter(|company| before.deal.company_id != Some(*company));
    let contacts: Vec<Uuid> =
        record.deal.contact_ids.iter().copied().filter(|id| !before.deal.contact_ids.contains(id)).collect();
    references::refuse_deleted(&mut tx, company, &contacts, recheck).await?;
    let stage_changed = record.deal.stage_id != before.deal.stage_id;
    if !stage_changed && record.lines == before.lines && same(&record.deal, &before.deal) {
        return Ok(deal_to_proto(&record)?);
    }
    record.deal.update_time = now;
    record.deal.last_activity_time = now;
    record.deal.version += 1;
    if stage_changed {
        record.deal.stage_enter_time = now;
        enter_stage(&mut tx, record.deal.id, record.deal.stage_id, now, write.actor).await?;
    }
    write_row(&mut tx, &record.deal).await?;
    if input.sets(DealField::LineItems) {
        write_lines(&mut tx, record.deal.id, &record.lines).await?;
    }
    let paths = input.fields.iter().map(|field| field.path().to_owned()).collect();
    let updated = log(&mut tx, &record, ChangeKind::Updated, write.actor, paths).await?;
    tx.commit().await?;
    Ok(updated)
}

/// A deal as the ownership rules see it: its owner, team and deal team.
pub(crate) fn owned(deal: &DealRow) -> Owned<'_> {
    Owned { owner_id: &deal.owner_id, team_id: &deal.team_id, members: &deal.team_member_ids }
}

/// True when nothing a client sees differs.
fn same(a: &DealRow, b: &DealRow) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// Soft-deletes (`deleted = true`) or restores a deal. Idempotent.
pub async fn set_deleted(
    pool: &PgPool,
    id: DealId,
    etag: &str,
    deleted: bool,
    write: Write<'_>,
    recheck: &dyn references::Recheck,
) -> Result<Deal, Error> {
    let mut tx = pool.begin().await?;
    let mut record = lock(&mut tx, id.uuid()).await?;
    write.may_change(&DEALS, owned(&record.deal), &[])?;
    check_etag(DEAL, &id.to_string(), etag, record.deal.version)?;
    if record.deal.delete_time.is_some() == deleted {
        return Ok(deal_to_proto(&record)?);
    }
    if !deleted && record.deal.status == "OPEN" {
        // A deleted pipeline has no live open deals (DeletePipeline checks
        // under its row lock): an open deal comes back only into a live one.
        crate::store::pipelines::lock_live_pipeline(&mut tx, record.deal.pipeline_id.into()).await?;
    }
    if !deleted {
        // The feed consumer drops deleted companies and contacts from live
        // deals only: one deleted meanwhile does not come back with it.
        let contact_ids = record.deal.contact_ids.clone();
        let gone = references::gone_among(&mut tx, record.deal.company_id, &contact_ids, recheck).await?;
        let deal = &mut record.deal;
        deal.company_id = deal.company_id.filter(|company| !gone.contains(company));
        let (ids, roles) = deal
            .contact_ids
            .iter()
            .zip(&deal.contact_roles)
            .filter(|(id, _)| !gone.contains(id))
            .map(|(id, role)| (*id, role.clone()))
            .unzip();
        (deal.contact_ids, deal.contact_roles) = (ids, roles);
    }
    let now = now();
    record.deal.delete_time = deleted.then_some(now);
    record.deal.update_time = now;
    record.deal.version += 1;
    write_row(&mut tx, &record.deal).await?;
    let kind = if deleted { ChangeKind::Deleted } else { ChangeKind::Undeleted };
    let deal = log(&mut tx, &record, kind, write.actor, Vec::new()).await?;
    tx.commit().await?;
    Ok(deal)
}

/// The deal an order, an invoice or a payment belongs to, as the read rules
/// see it (its owner, team and members); `None` when there is none.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DealOwners {
    /// The deal's owner.
    pub owner_id: String,
    /// The deal's team.
    pub team_id: String,
    /// The deal's team members.
    pub team_member_ids: Vec<String>,
}

impl DealOwners {
    /// As the rules see it.
    pub fn owned(&self) -> Owned<'_> {
        Owned { owner_id: &self.owner_id, team_id: &self.team_id, members: &self.team_member_ids }
    }
}

/// What an order, invoice or payment hangs from, to find its deal.
#[derive(Debug, Clone, Copy)]
pub enum Through {
    /// An order's id.
    Order(Uuid),
    /// An invoice's id.
    Invoice(Uuid),
    /// A payment's id.
    Payment(Uuid),
}

/// The owners of the deal `through` leads to.
pub async fn owners_through(
    db: impl sqlx::PgExecutor<'_>,
    through: Through,
) -> Result<Option<DealOwners>, Error> {
    const SELECT: &str =
        "SELECT d.owner_id, d.team_id, d.team_member_ids FROM deals d JOIN orders o ON o.deal_id = d.id";
    let (sql, id) = match through {
        Through::Order(id) => (format!("{SELECT} WHERE o.id = $1"), id),
        Through::Invoice(id) => {
            (format!("{SELECT} JOIN invoices i ON i.order_id = o.id WHERE i.id = $1"), id)
        }
        Through::Payment(id) => (
            format!(
                "{SELECT} JOIN invoices i ON i.order_id = o.id JOIN payments p ON p.invoice_id = i.id WHERE p.id = $1"
            ),
            id,
        ),
    };
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(db).await?)
}

/// The condition "the deal of this row may be read by `scope`" over
/// `orders` (`table` `orders`) or `invoices` (`table` `invoices`), its
/// placeholders from `$first`.
pub fn readable_through(scope: &ReadScope, table: &str, first: usize) -> rapport_kit::filter::SqlFilter {
    const COLUMNS: ScopeColumns =
        ScopeColumns { owner: "dv.owner_id", team: Some("dv.team_id"), members: Some("dv.team_member_ids") };
    let condition = scope.condition(COLUMNS, first);
    let join = match table {
        "invoices" => "orders ov JOIN deals dv ON dv.id = ov.deal_id WHERE ov.id = invoices.order_id",
        _ => "deals dv WHERE dv.id = orders.deal_id",
    };
    rapport_kit::filter::SqlFilter {
        sql: format!("EXISTS (SELECT 1 FROM {join} AND {})", condition.sql),
        params: condition.params,
    }
}
