//! Contacts: reads, writes (each with its change-log row), listing and
//! search.

use chrono::{DateTime, Utc};
use prost::Message;
use rapport_kit::changelog::{self, Change};
use rapport_kit::idempotency::Claim;
use rapport_kit::paging::Cursor;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::contacts::v1::{Contact, LifecycleCause, LifecycleStage};
use sqlx::{PgConnection, PgPool};

use super::lifecycle::{self, Move};
use super::search::{self, SearchMode};
use super::{Write, check_etag, deleted, lock_live_company, now, violates};
use crate::convert;
use crate::domain::assignment::Target;
use crate::domain::contact::{source_from_name, source_name, stage_from_name, stage_name};
use crate::domain::fields::Email;
use crate::domain::search::SearchQuery;
use crate::domain::{ContactDraft, ContactId, ContactState};
use crate::error::{CONTACT, ContactsError, Error};
pub use crate::model::contacts::ContactRecord;
use crate::policy::CONTACTS;
use rapport_kit::auth::Owned;
use rapport_kit::listing::{self, ListQuery, time_value};

const COLUMNS: &str = "id, given_name, family_name, email, phone, job_title, company_id, owner_id, \
    lifecycle_stage, lead_source, lead_source_detail, source_campaign_id, tags, email_opt_in, \
    email_opt_in_time, create_time, update_time, delete_time, version, team_id, last_activity_time, \
    qualification, lead_score, lead_grade, country, region";

#[derive(sqlx::FromRow)]
struct Row {
    id: uuid::Uuid,
    given_name: String,
    family_name: String,
    email: String,
    phone: String,
    job_title: String,
    company_id: Option<uuid::Uuid>,
    owner_id: String,
    lifecycle_stage: String,
    lead_source: String,
    lead_source_detail: String,
    source_campaign_id: String,
    tags: Vec<String>,
    email_opt_in: bool,
    email_opt_in_time: Option<DateTime<Utc>>,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    delete_time: Option<DateTime<Utc>>,
    version: i64,
    team_id: String,
    last_activity_time: Option<DateTime<Utc>>,
    qualification: Option<Vec<u8>>,
    lead_score: i32,
    lead_grade: String,
    country: String,
    region: String,
}

impl TryFrom<Row> for ContactRecord {
    type Error = sqlx::Error;

    fn try_from(row: Row) -> Result<ContactRecord, sqlx::Error> {
        Ok(ContactRecord {
            id: row.id.into(),
            state: ContactState {
                given_name: row.given_name,
                family_name: row.family_name,
                email: Email::from_stored(row.email),
                phone: row.phone,
                job_title: row.job_title,
                company_id: row.company_id.map(Into::into),
                owner_id: row.owner_id,
                team_id: row.team_id,
                lifecycle_stage: stage_from_name(&row.lifecycle_stage)?,
                lead_source: source_from_name(&row.lead_source)?,
                lead_source_detail: row.lead_source_detail,
                source_campaign_id: row.source_campaign_id,
                tags: row.tags,
                email_opt_in: row.email_opt_in,
                email_opt_in_time: row.email_opt_in_time,
                country: row.country,
                region: row.region,
            },
            create_time: row.create_time,
            update_time: row.update_time,
            delete_time: row.delete_time,
            version: row.version,
            last_activity_time: row.last_activity_time,
            qualification: row
                .qualification
                .map(|bytes| rapport_proto::contacts::v1::Qualification::decode(bytes.as_slice()))
                .transpose()
                .map_err(|err| sqlx::Error::Decode(Box::new(err)))?,
            lead_score: row.lead_score,
            lead_grade: crate::domain::scoring::grade_from_name(&row.lead_grade)?,
        })
    }
}

/// A contact as the ownership rules see it.
pub(crate) fn owned(state: &ContactState) -> Owned<'_> {
    Owned::new(&state.owner_id, &state.team_id)
}

/// One contact, live or deleted.
pub async fn get(pool: &PgPool, id: ContactId) -> Result<Option<ContactRecord>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM contacts WHERE id = $1");
    let row: Option<Row> = sqlx::query_as(&sql).bind(id.uuid()).fetch_optional(pool).await?;
    row.map(ContactRecord::try_from).transpose()
}

/// The contacts with these ids that exist, in any order.
pub async fn get_many(pool: &PgPool, ids: &[uuid::Uuid]) -> Result<Vec<ContactRecord>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM contacts WHERE id = ANY($1)");
    let rows: Vec<Row> = sqlx::query_as(&sql).bind(ids).fetch_all(pool).await?;
    rows.into_iter().map(ContactRecord::try_from).collect()
}

/// Locks a contact for a change until commit.
pub(crate) async fn lock(tx: &mut PgConnection, id: ContactId) -> Result<ContactRecord, Error> {
    let sql = format!("SELECT {COLUMNS} FROM contacts WHERE id = $1 FOR UPDATE");
    let row: Option<Row> = sqlx::query_as(&sql).bind(id.uuid()).fetch_optional(&mut *tx).await?;
    row.map(ContactRecord::try_from).transpose()?.ok_or_else(|| crate::error::contact_not_found(id))
}

/// Locks the live ones of contacts `ids` for a change, in id order, and
/// returns them (missing and deleted ones are left out).
pub(crate) async fn lock_many_live(
    tx: &mut PgConnection,
    ids: &[ContactId],
) -> Result<Vec<ContactRecord>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.uuid()).collect();
    let sql = format!(
        "SELECT {COLUMNS} FROM contacts WHERE id = ANY($1) AND delete_time IS NULL ORDER BY id FOR UPDATE"
    );
    let rows: Vec<Row> = sqlx::query_as(&sql).bind(&ids).fetch_all(&mut *tx).await?;
    rows.into_iter().map(ContactRecord::try_from).collect()
}

/// Locks live contacts `ids` until commit, in id order (so writers
/// locking several never deadlock), against deletion and concurrent
/// activity writes; `FAILED_PRECONDITION` CONTACT_NOT_FOUND naming `field`
/// for the first one missing or deleted.
pub(crate) async fn lock_live(
    tx: &mut PgConnection,
    ids: &[ContactId],
    field: &'static str,
) -> Result<(), Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut wanted: Vec<uuid::Uuid> = ids.iter().map(|id| id.uuid()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let live: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM contacts WHERE id = ANY($1) AND delete_time IS NULL ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(&wanted)
    .fetch_all(&mut *tx)
    .await?;
    match ids.iter().find(|id| !live.contains(&id.uuid())) {
        None => Ok(()),
        Some(missing) => {
            Err(Error::Own(ContactsError::ContactMissing { field, contact_id: missing.to_string() }))
        }
    }
}

/// Creates a contact, or replays the first result of the same `request_id`.
pub async fn create(
    pool: &PgPool,
    mut state: ContactState,
    write: Write<'_>,
    assign: bool,
) -> Result<Contact, Error> {
    write.may_assign(&CONTACTS, None, Owned::new(&state.owner_id, &state.team_id))?;
    let mut tx = pool.begin().await?;
    if let Claim::Replay(response) = write.claim(&mut tx, "CreateContact").await? {
        return Contact::decode(response.as_slice())
            .map_err(|err| Error::Internal(anyhow::Error::new(err).context("stored response")));
    }
    let company_name = match state.company_id {
        Some(company_id) => lock_live_company(&mut tx, company_id, "contact.company_id").await?,
        None => String::new(),
    };
    let id = ContactId::generate();
    if assign {
        let (industry, employees) = match state.company_id {
            Some(company_id) => super::assignment::company_facts(&mut tx, company_id.uuid()).await?,
            None => (String::new(), 0),
        };
        let target = Target {
            country: state.country.clone(),
            region: state.region.clone(),
            industry,
            employees: (employees > 0).then_some(employees),
            lead_source: Some(state.lead_source),
        };
        if let Some(chosen) = super::assignment::choose(&mut tx, &target).await? {
            (state.owner_id, state.team_id) = (chosen.owner_id.clone(), chosen.team_id.clone());
            super::assignment::record(&mut tx, CONTACT, id.uuid(), &chosen).await?;
        }
    }
    let now = now();
    let record = ContactRecord {
        id,
        state,
        create_time: now,
        update_time: now,
        delete_time: None,
        version: 1,
        last_activity_time: None,
        qualification: None,
        lead_score: 0,
        lead_grade: rapport_proto::contacts::v1::LeadGrade::Unspecified,
    };
    let inserted = sqlx::query(
        "INSERT INTO contacts (id, given_name, family_name, email, phone, job_title, company_id, \
           company_name, owner_id, lifecycle_stage, lead_source, lead_source_detail, source_campaign_id, \
           tags, email_opt_in, email_opt_in_time, create_time, update_time, version, team_id, country, region, \
           score_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, 1, $18, $19, $20, \
           (SELECT CASE WHEN EXISTS (SELECT 1 FROM scoring_rules) THEN 0 ELSE rules_version END \
            FROM scoring_settings))",
    )
    .bind(record.id.uuid())
    .bind(&record.state.given_name)
    .bind(&record.state.family_name)
    .bind(record.state.email.as_str())
    .bind(&record.state.phone)
    .bind(&record.state.job_title)
    .bind(record.state.company_id.map(|id| id.uuid()))
    .bind(&company_name)
    .bind(&record.state.owner_id)
    .bind(stage_name(record.state.lifecycle_stage))
    .bind(source_name(record.state.lead_source))
    .bind(&record.state.lead_source_detail)
    .bind(&record.state.source_campaign_id)
    .bind(&record.state.tags)
    .bind(record.state.email_opt_in)
    .bind(record.state.email_opt_in_time)
    .bind(now)
    .bind(&record.state.team_id)
    .bind(&record.state.country)
    .bind(&record.state.region)
    .execute(&mut *tx)
    .await;
    if let Err(err) = inserted {
        drop(tx);
        return Err(email_taken_or(pool, record.state.email.as_str(), err).await);
    }
    let contact = convert::contact_to_proto(&record);
    changelog::append(
        &mut tx,
        &[Change::of(CONTACT, &contact, record.id.to_string(), ChangeKind::Created, write.actor, Vec::new())],
    )
    .await?;
    if record.state.email_opt_in {
        super::consent::mirror_opt_in(&mut tx, &record, write, now).await?;
    }
    let created = Move {
        from: LifecycleStage::Unspecified,
        to: record.state.lifecycle_stage,
        cause: LifecycleCause::Created,
        actor: write.actor,
        reason: "",
        cause_id: "",
        at: now,
    };
    lifecycle::record(&mut tx, record.id, &created).await?;
    write.record(&mut tx, &contact.encode_to_vec()).await?;
    tx.commit().await?;
    Ok(contact)
}

async fn email_taken_or(pool: &PgPool, email: &str, err: sqlx::Error) -> Error {
    if !violates(&err, "contacts_email_live") {
        return err.into();
    }
    let existing: Result<Option<uuid::Uuid>, _> =
        sqlx::query_scalar("SELECT id FROM contacts WHERE email = $1 AND delete_time IS NULL")
            .bind(email)
            .fetch_optional(pool)
            .await;
    Error::Own(ContactsError::EmailTaken {
        email: email.to_owned(),
        existing_id: existing.ok().flatten().map(|id| id.to_string()).unwrap_or_default(),
    })
}

/// Applies `draft` to a live contact if `etag` is current (or empty).
/// Unchanged fields make no new version and no change event.
pub async fn update(
    pool: &PgPool,
    id: ContactId,
    etag: &str,
    draft: &ContactDraft,
    write: Write<'_>,
) -> Result<Contact, Error> {
    let mut tx = pool.begin().await?;
    let mut record = lock(&mut tx, id).await?;
    check_etag(CONTACT, &id.to_string(), etag, record.version)?;
    if record.delete_time.is_some() {
        return Err(deleted(CONTACT, &id.to_string()));
    }
    let now = now();
    let before = record.state.clone();
    let changed = record.state.apply(draft, now);
    if changed.is_empty() {
        return Ok(convert::contact_to_proto(&record));
    }
    let paths: Vec<&str> = changed.iter().map(String::as_str).collect();
    write.may_change(&CONTACTS, owned(&before), &paths)?;
    let stage_moved = before.lifecycle_stage != record.state.lifecycle_stage;
    if stage_moved {
        lifecycle::check_forward(before.lifecycle_stage, record.state.lifecycle_stage)?;
    }
    write.may_assign(&CONTACTS, Some(owned(&before)), owned(&record.state))?;
    let company_name = match (changed.iter().any(|path| path == "company_id"), record.state.company_id) {
        (true, Some(company_id)) => Some(lock_live_company(&mut tx, company_id, "contact.company_id").await?),
        (true, None) => Some(String::new()),
        (false, _) => None,
    };
    let updated = sqlx::query(
        "UPDATE contacts SET given_name = $2, family_name = $3, email = $4, phone = $5, job_title = $6, \
           company_id = $7, company_name = coalesce($8, company_name), owner_id = $9, lifecycle_stage = $10, \
           lead_source = $11, lead_source_detail = $12, source_campaign_id = $13, tags = $14, \
           email_opt_in = $15, email_opt_in_time = $16, update_time = $17, version = version + 1, \
           team_id = $18, score_version = CASE WHEN $19 THEN 0 ELSE score_version END, country = $20, \
           region = $21 \
         WHERE id = $1",
    )
    .bind(id.uuid())
    .bind(&record.state.given_name)
    .bind(&record.state.family_name)
    .bind(record.state.email.as_str())
    .bind(&record.state.phone)
    .bind(&record.state.job_title)
    .bind(record.state.company_id.map(|id| id.uuid()))
    .bind(company_name)
    .bind(&record.state.owner_id)
    .bind(stage_name(record.state.lifecycle_stage))
    .bind(source_name(record.state.lead_source))
    .bind(&record.state.lead_source_detail)
    .bind(&record.state.source_campaign_id)
    .bind(&record.state.tags)
    .bind(record.state.email_opt_in)
    .bind(record.state.email_opt_in_time)
    .bind(now)
    .bind(&record.state.team_id)
    .bind(changed.iter().any(|path| matches!(path.as_str(), "job_title" | "lead_source" | "company_id")))
    .bind(&record.state.country)
    .bind(&record.state.region)
    .execute(&mut *tx)
    .await;
    if let Err(err) = updated {
        drop(tx);
        return Err(email_taken_or(pool, record.state.email.as_str(), err).await);
    }
    record.update_time = now;
    record.version += 1;
    let contact = convert::contact_to_proto(&record);
    changelog::append(
        &mut tx,
        &[Change::of(CONTACT, &contact, id.to_string(), ChangeKind::Updated, write.actor, changed.clone())],
    )
    .await?;
    if changed.iter().any(|path| path == "email_opt_in") {
        super::consent::mirror_opt_in(&mut tx, &record, write, now).await?;
    }
    if stage_moved {
        let moved = Move {
            from: before.lifecycle_stage,
            to: record.state.lifecycle_stage,
            cause: LifecycleCause::Manual,
            actor: write.actor,
            reason: "",
            cause_id: "",
            at: now,
        };
        lifecycle::record(&mut tx, id, &moved).await?;
    }
    tx.commit().await?;
    Ok(contact)
}

/// Soft-deletes (`deleted = true`) or restores a contact. Idempotent: a
/// contact already in the wanted state is returned unchanged.
pub async fn set_deleted(
    pool: &PgPool,
    id: ContactId,
    etag: &str,
    deleted: bool,
    write: Write<'_>,
) -> Result<Contact, Error> {
    let mut tx = pool.begin().await?;
    let mut record = lock(&mut tx, id).await?;
    check_etag(CONTACT, &id.to_string(), etag, record.version)?;
    write.may_change(&CONTACTS, owned(&record.state), &[])?;
    if record.delete_time.is_some() == deleted {
        return Ok(convert::contact_to_proto(&record));
    }
    let now = now();
    let delete_time = deleted.then_some(now);
    let result = sqlx::query(
        "UPDATE contacts SET delete_time = $2, update_time = $3, version = version + 1 WHERE id = $1",
    )
    .bind(id.uuid())
    .bind(delete_time)
    .bind(now)
    .execute(&mut *tx)
    .await;
    if let Err(err) = result {
        drop(tx);
        return Err(email_taken_or(pool, record.state.email.as_str(), err).await);
    }
    record.delete_time = delete_time;
    record.update_time = now;
    record.version += 1;
    let contact = convert::contact_to_proto(&record);
    let kind = if deleted { ChangeKind::Deleted } else { ChangeKind::Undeleted };
    changelog::append(
        &mut tx,
        &[Change::of(CONTACT, &contact, id.to_string(), kind, write.actor, Vec::new())],
    )
    .await?;
    tx.commit().await?;
    Ok(contact)
}

/// One page of contacts and the next page's token.
pub async fn list(pool: &PgPool, query: &ListQuery) -> Result<(Vec<ContactRecord>, String), Error> {
    let rows: Vec<Row> = listing::fetch(pool, query.sql(COLUMNS, "contacts")?).await?;
    let mut records: Vec<ContactRecord> =
        rows.into_iter().map(ContactRecord::try_from).collect::<Result<_, _>>()?;
    let field = query.order.key.field;
    let next_page_token = query
        .next_page(&mut records, |record| Cursor { value: sort_value(record, field), id: record.id.uuid() });
    Ok((records, next_page_token))
}

fn sort_value(record: &ContactRecord, field: &str) -> String {
    match field {
        "update_time" => time_value(record.update_time),
        "given_name" => record.state.given_name.clone(),
        "family_name" => record.state.family_name.clone(),
        "email" => record.state.email.as_str().to_owned(),
        "lead_score" => record.lead_score.to_string(),
        _ => time_value(record.create_time),
    }
}

/// Ranked free-text search over live contacts (see `store::search`).
pub async fn search(
    pool: &PgPool,
    query: &SearchQuery,
    window: (u32, u32),
    mode: Option<SearchMode>,
) -> Result<(Vec<(ContactRecord, f64)>, SearchMode), Error> {
    const TARGET: search::Target = search::Target {
        table: "contacts",
        columns: COLUMNS,
        exact_column: "email",
        similar_text: "concat_ws(' ', hits.given_name, hits.family_name, hits.job_title, hits.company_name)",
    };
    let (rows, mode) = search::search::<Row>(pool, &TARGET, query, window, mode).await?;
    let records = rows
        .into_iter()
        .map(|(row, score)| Ok((ContactRecord::try_from(row)?, score)))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((records, mode))
}
