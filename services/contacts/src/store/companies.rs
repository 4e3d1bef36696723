//! Companies: reads, writes (each with its change-log row), listing and
//! search.

use chrono::{DateTime, Utc};
use prost::Message;
use rapport_kit::changelog::{self, Change};
use rapport_kit::idempotency::Claim;
use rapport_kit::paging::Cursor;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::contacts::v1::Company;
use sqlx::{PgConnection, PgPool};

use super::search::{self, SearchMode};
use super::{Write, check_etag, deleted, lock_live_company, now, violates};
use crate::convert;
use crate::domain::assignment::Target;
use crate::domain::fields::Money;
use crate::domain::search::SearchQuery;
use crate::domain::{CompanyDraft, CompanyId, CompanyState};
use crate::error::{COMPANY, ContactsError, Error};
pub use crate::model::companies::CompanyRecord;
use crate::policy::COMPANIES;
use rapport_kit::auth::Owned;
use rapport_kit::listing::{self, ListQuery, time_value};

const COLUMNS: &str = "id, name, domain, industry, employee_count, annual_revenue_currency, \
    annual_revenue_minor, owner_id, parent_company_id, create_time, update_time, delete_time, version, team_id, last_activity_time, country, region";

#[derive(sqlx::FromRow)]
struct Row {
    id: uuid::Uuid,
    name: String,
    domain: Option<String>,
    industry: String,
    employee_count: i32,
    annual_revenue_currency: Option<String>,
    annual_revenue_minor: Option<i64>,
    owner_id: String,
    parent_company_id: Option<uuid::Uuid>,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    delete_time: Option<DateTime<Utc>>,
    version: i64,
    team_id: String,
    last_activity_time: Option<DateTime<Utc>>,
    country: String,
    region: String,
}

impl From<Row> for CompanyRecord {
    fn from(row: Row) -> CompanyRecord {
        let annual_revenue = match (row.annual_revenue_currency, row.annual_revenue_minor) {
            (Some(currency_code), Some(minor_units)) => Some(Money { currency_code, minor_units }),
            _ => None,
        };
        CompanyRecord {
            id: row.id.into(),
            state: CompanyState {
                name: row.name,
                domain: row.domain,
                industry: row.industry,
                employee_count: row.employee_count,
                annual_revenue,
                owner_id: row.owner_id,
                team_id: row.team_id,
                parent_company_id: row.parent_company_id.map(Into::into),
                country: row.country,
                region: row.region,
            },
            create_time: row.create_time,
            update_time: row.update_time,
            delete_time: row.delete_time,
            version: row.version,
            last_activity_time: row.last_activity_time,
        }
    }
}

/// A company as the ownership rules see it.
fn owned(state: &CompanyState) -> Owned<'_> {
    Owned::new(&state.owner_id, &state.team_id)
}

/// One company, live or deleted.
pub async fn get(pool: &PgPool, id: CompanyId) -> Result<Option<CompanyRecord>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM companies WHERE id = $1");
    let row: Option<Row> = sqlx::query_as(&sql).bind(id.uuid()).fetch_optional(pool).await?;
    Ok(row.map(Into::into))
}

async fn lock(tx: &mut PgConnection, id: CompanyId) -> Result<CompanyRecord, Error> {
    let sql = format!("SELECT {COLUMNS} FROM companies WHERE id = $1 FOR UPDATE");
    let row: Option<Row> = sqlx::query_as(&sql).bind(id.uuid()).fetch_optional(&mut *tx).await?;
    row.map(Into::into).ok_or_else(|| crate::error::company_not_found(id))
}

/// Checks a new parent: live, and not the company itself or a descendant.
async fn check_parent(tx: &mut PgConnection, id: CompanyId, parent: CompanyId) -> Result<(), Error> {
    lock_live_company(tx, parent, "company.parent_company_id").await?;
    let cycle: bool = sqlx::query_scalar(
        "WITH RECURSIVE ancestors(id) AS ( \
           SELECT $2::uuid UNION \
           SELECT c.parent_company_id FROM companies c JOIN ancestors a ON c.id = a.id \
           WHERE c.parent_company_id IS NOT NULL) \
         SELECT EXISTS (SELECT 1 FROM ancestors WHERE id = $1)",
    )
    .bind(id.uuid())
    .bind(parent.uuid())
    .fetch_one(&mut *tx)
    .await?;
    if cycle { Err(ContactsError::CompanyCycle(id.to_string()).into()) } else { Ok(()) }
}

/// Creates a company, or replays the first result of the same `request_id`.
pub async fn create(
    pool: &PgPool,
    mut state: CompanyState,
    write: Write<'_>,
    assign: bool,
) -> Result<Company, Error> {
    write.may_assign(&COMPANIES, None, Owned::new(&state.owner_id, &state.team_id))?;
    let mut tx = pool.begin().await?;
    if let Claim::Replay(response) = write.claim(&mut tx, "CreateCompany").await? {
        return Company::decode(response.as_slice())
            .map_err(|err| Error::Internal(anyhow::Error::new(err).context("stored response")));
    }
    let id = CompanyId::generate();
    let chosen = if assign {
        let target = Target {
            country: state.country.clone(),
            region: state.region.clone(),
            industry: state.industry.clone(),
            employees: (state.employee_count > 0).then_some(state.employee_count),
            lead_source: None,
        };
        super::assignment::choose(&mut tx, &target).await?
    } else {
        None
    };
    if let Some(chosen) = &chosen {
        (state.owner_id, state.team_id) = (chosen.owner_id.clone(), chosen.team_id.clone());
        super::assignment::record(&mut tx, COMPANY, id.uuid(), chosen).await?;
    }
    if let Some(parent) = state.parent_company_id {
        check_parent(&mut tx, id, parent).await?;
    }
    let now = now();
    let record = CompanyRecord {
        id,
        state,
        create_time: now,
        update_time: now,
        delete_time: None,
        version: 1,
        last_activity_time: None,
    };
    let result = write_row(&mut tx, &record, true).await;
    if let Err(err) = result {
        drop(tx);
        return Err(domain_taken_or(pool, record.state.domain.as_deref(), err).await);
    }
    let company = convert::company_to_proto(&record);
    changelog::append(
        &mut tx,
        &[Change::of(COMPANY, &company, id.to_string(), ChangeKind::Created, write.actor, Vec::new())],
    )
    .await?;
    write.record(&mut tx, &company.encode_to_vec()).await?;
    tx.commit().await?;
    Ok(company)
}

async fn write_row(tx: &mut PgConnection, record: &CompanyRecord, insert: bool) -> Result<(), sqlx::Error> {
    let sql = if insert {
        "INSERT INTO companies (id, name, domain, industry, employee_count, annual_revenue_currency, \
           annual_revenue_minor, owner_id, parent_company_id, create_time, update_time, delete_time, version, \
           team_id, country, region) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    } else {
        "UPDATE companies SET name = $2, domain = $3, industry = $4, employee_count = $5, \
           annual_revenue_currency = $6, annual_revenue_minor = $7, owner_id = $8, parent_company_id = $9, \
           create_time = $10, update_time = $11, delete_time = $12, version = $13, team_id = $14, \
           country = $15, region = $16 \
         WHERE id = $1"
    };
    let state = &record.state;
    sqlx::query(sql)
        .bind(record.id.uuid())
        .bind(&state.name)
        .bind(&state.domain)
        .bind(&state.industry)
        .bind(state.employee_count)
        .bind(state.annual_revenue.as_ref().map(|money| money.currency_code.clone()))
        .bind(state.annual_revenue.as_ref().map(|money| money.minor_units))
        .bind(&state.owner_id)
        .bind(state.parent_company_id.map(|id| id.uuid()))
        .bind(record.create_time)
        .bind(record.update_time)
        .bind(record.delete_time)
        .bind(record.version)
        .bind(&state.team_id)
        .bind(&state.country)
        .bind(&state.region)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn domain_taken_or(pool: &PgPool, domain: Option<&str>, err: sqlx::Error) -> Error {
    let Some(domain) = domain.filter(|_| violates(&err, "companies_domain_live")) else {
        return err.into();
    };
    let existing: Result<Option<uuid::Uuid>, _> =
        sqlx::query_scalar("SELECT id FROM companies WHERE domain = $1 AND delete_time IS NULL")
            .bind(domain)
            .fetch_optional(pool)
            .await;
    Error::Own(ContactsError::DomainTaken {
        domain: domain.to_owned(),
        existing_id: existing.ok().flatten().map(|id| id.to_string()).unwrap_or_default(),
    })
}

/// Applies `draft` to a live company if `etag` is current (or empty). A
/// rename is carried to its contacts' search text.
pub async fn update(
    pool: &PgPool,
    id: CompanyId,
    etag: &str,
    draft: &CompanyDraft,
    write: Write<'_>,
) -> Result<Company, Error> {
    let mut tx = pool.begin().await?;
    let mut record = lock(&mut tx, id).await?;
    check_etag(COMPANY, &id.to_string(), etag, record.version)?;
    if record.delete_time.is_some() {
        return Err(deleted(COMPANY, &id.to_string()));
    }
    let before = record.state.clone();
    let changed = record.state.apply(draft);
    if changed.is_empty() {
        return Ok(convert::company_to_proto(&record));
    }
    let paths: Vec<&str> = changed.iter().map(String::as_str).collect();
    write.may_change(&COMPANIES, owned(&before), &paths)?;
    write.may_assign(&COMPANIES, Some(owned(&before)), owned(&record.state))?;
    if changed.iter().any(|path| path == "parent_company_id")
        && let Some(parent) = record.state.parent_company_id
    {
        check_parent(&mut tx, id, parent).await?;
    }
    record.update_time = now();
    record.version += 1;
    if let Err(err) = write_row(&mut tx, &record, false).await {
        drop(tx);
        return Err(domain_taken_or(pool, record.state.domain.as_deref(), err).await);
    }
    if changed.iter().any(|path| path == "name") {
        sqlx::query("UPDATE contacts SET company_name = $2 WHERE company_id = $1")
            .bind(id.uuid())
            .bind(&record.state.name)
            .execute(&mut *tx)
            .await?;
    }
    if changed.iter().any(|path| path == "industry" || path == "employee_count") {
        // Its contacts' profile-fit scores read these: recompute them.
        sqlx::query("UPDATE contacts SET score_version = 0 WHERE company_id = $1 AND delete_time IS NULL")
            .bind(id.uuid())
            .execute(&mut *tx)
            .await?;
    }
    let company = convert::company_to_proto(&record);
    changelog::append(
        &mut tx,
        &[Change::of(COMPANY, &company, id.to_string(), ChangeKind::Updated, write.actor, changed)],
    )
    .await?;
    tx.commit().await?;
    Ok(company)
}

/// Soft-deletes or restores a company; idempotent like contacts.
pub async fn set_deleted(
    pool: &PgPool,
    id: CompanyId,
    etag: &str,
    deleted: bool,
    write: Write<'_>,
) -> Result<Company, Error> {
    let mut tx = pool.begin().await?;
    let mut record = lock(&mut tx, id).await?;
    check_etag(COMPANY, &id.to_string(), etag, record.version)?;
    write.may_change(&COMPANIES, owned(&record.state), &[])?;
    if record.delete_time.is_some() == deleted {
        return Ok(convert::company_to_proto(&record));
    }
    let now = now();
    record.delete_time = deleted.then_some(now);
    record.update_time = now;
    record.version += 1;
    if let Err(err) = write_row(&mut tx, &record, false).await {
        drop(tx);
        return Err(domain_taken_or(pool, record.state.domain.as_deref(), err).await);
    }
    let company = convert::company_to_proto(&record);
    let kind = if deleted { ChangeKind::Deleted } else { ChangeKind::Undeleted };
    changelog::append(
        &mut tx,
        &[Change::of(COMPANY, &company, id.to_string(), kind, write.actor, Vec::new())],
    )
    .await?;
    tx.commit().await?;
    Ok(company)
}

/// One page of companies and the next page's token.
pub async fn list(pool: &PgPool, query: &ListQuery) -> Result<(Vec<CompanyRecord>, String), Error> {
    let rows: Vec<Row> = listing::fetch(pool, query.sql(COLUMNS, "companies")?).await?;
    let mut records: Vec<CompanyRecord> = rows.into_iter().map(Into::into).collect();
    let field = query.order.key.field;
    let next_page_token = query
        .next_page(&mut records, |record| Cursor { value: sort_value(record, field), id: record.id.uuid() });
    Ok((records, next_page_token))
}

/// Ranked free-text search over live companies (see `store::search`); an
/// exact domain ranks first.
pub async fn search(
    pool: &PgPool,
    query: &SearchQuery,
    window: (u32, u32),
    mode: Option<SearchMode>,
) -> Result<(Vec<(CompanyRecord, f64)>, SearchMode), Error> {
    const TARGET: search::Target = search::Target {
        table: "companies",
        columns: COLUMNS,
        exact_column: "domain",
        similar_text: "concat_ws(' ', hits.name, hits.industry)",
    };
    let (rows, mode) = search::search::<Row>(pool, &TARGET, query, window, mode).await?;
    Ok((rows.into_iter().map(|(row, score)| (row.into(), score)).collect(), mode))
}

fn sort_value(record: &CompanyRecord, field: &str) -> String {
    match field {
        "update_time" => time_value(record.update_time),
        "name" => record.state.name.clone(),
        "domain" => record.state.domain.clone().unwrap_or_default(),
        "employee_count" => record.state.employee_count.to_string(),
        _ => time_value(record.create_time),
    }
}
