//! Lifecycle stage moves: each one recorded (from, to, time, actor,
//! cause) with its timeline entry, in the transaction that moves the
//! contact; the explicit moves of the LifecycleService; and the history.

use chrono::{DateTime, Utc};
use rapport_kit::changelog::{self, Change};
use rapport_kit::paging::Cursor;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::contacts::v1::{
    Contact, LifecycleCause, LifecycleStage, Qualification, TimelineEntryKind, TimelineSource,
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::timeline::{self, Entry, Subject};
use super::{Write, check_etag, deleted};
use crate::domain::contact::{stage_from_name, stage_name};
use crate::domain::lifecycle::{self, cause_from_name, cause_name};
use crate::domain::{ContactId, fields::Violation};
use crate::error::{CONTACT, ContactsError, Error};
use crate::model::TransitionRecord;
use crate::policy::CONTACTS;

/// One stage move to record.
#[derive(Debug, Clone)]
pub struct Move<'a> {
    /// Before (UNSPECIFIED for a creation).
    pub from: LifecycleStage,
    /// After.
    pub to: LifecycleStage,
    /// Why.
    pub cause: LifecycleCause,
    /// Who.
    pub actor: &'a str,
    /// The reason given, if any.
    pub reason: &'a str,
    /// The deal or rule behind it.
    pub cause_id: &'a str,
    /// When.
    pub at: DateTime<Utc>,
}

/// Records `change` of `contact_id`, and (but for a creation) its
/// timeline entry.
pub async fn record(
    tx: &mut PgConnection,
    contact_id: ContactId,
    change: &Move<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO lifecycle_transitions \
           (id, contact_id, from_stage, to_stage, change_time, actor_id, cause, reason, cause_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(Uuid::now_v7())
    .bind(contact_id.uuid())
    .bind(stage_name(change.from))
    .bind(stage_name(change.to))
    .bind(change.at)
    .bind(change.actor)
    .bind(cause_name(change.cause))
    .bind(change.reason)
    .bind(change.cause_id)
    .execute(&mut *tx)
    .await?;
    if change.cause == LifecycleCause::Created {
        return Ok(());
    }
    let kind = match change.cause {
        LifecycleCause::Qualified => TimelineEntryKind::LeadQualified,
        LifecycleCause::Disqualified => TimelineEntryKind::LeadDisqualified,
        _ => TimelineEntryKind::LifecycleChanged,
    };
    let moved = format!("{} → {}", stage_name(change.from), stage_name(change.to));
    let detail = if change.reason.is_empty() { moved.clone() } else { format!("{moved}: {}", change.reason) };
    let entry = Entry {
        subject: Subject::Contact(contact_id.uuid()),
        occur_time: change.at,
        source: TimelineSource::Contacts,
        kind,
        title: format!("Lifecycle stage {moved}"),
        detail,
        actor_id: change.actor.to_owned(),
        resource_type: CONTACT.to_owned(),
        resource_id: contact_id.to_string(),
        activity_id: None,
        event_id: None,
    };
    timeline::insert(tx, &[entry]).await?;
    Ok(())
}

/// Moves the live contacts among `ids` for which `to` is forward (deal
/// events: first deal opened, first deal won), each with its Contact
/// change and recorded transition at `at` (when the deal event
/// happened); returns the ids moved.
pub async fn advance(
    tx: &mut PgConnection,
    ids: &[ContactId],
    to: LifecycleStage,
    cause: LifecycleCause,
    cause_id: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let now = at;
    let mut moved = Vec::new();
    for mut stored in super::contacts::lock_many_live(tx, ids).await? {
        let from = stored.state.lifecycle_stage;
        if !lifecycle::is_forward(from, to) {
            continue;
        }
        sqlx::query(
            "UPDATE contacts SET lifecycle_stage = $2, update_time = $3, version = version + 1 WHERE id = $1",
        )
        .bind(stored.id.uuid())
        .bind(stage_name(to))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        stored.state.lifecycle_stage = to;
        stored.update_time = now;
        stored.version += 1;
        let contact = crate::convert::contact_to_proto(&stored);
        let paths = vec!["lifecycle_stage".to_owned()];
        changelog::append(
            tx,
            &[Change::of(CONTACT, &contact, stored.id.to_string(), ChangeKind::Updated, actor, paths)],
        )
        .await?;
        record(tx, stored.id, &Move { from, to, cause, actor, reason: "", cause_id, at: now }).await?;
        moved.push(stored.id.uuid());
    }
    Ok(moved)
}

/// Refuses a move `from → to` that is not forward (UpdateContact).
pub fn check_forward(from: LifecycleStage, to: LifecycleStage) -> Result<(), Error> {
    if lifecycle::is_forward(from, to) {
        Ok(())
    } else {
        Err(Error::Own(ContactsError::LifecycleTransition {
            from: stage_name(from),
            to: stage_name(to),
            hint: "a manager moves a contact back with LifecycleService.SetLifecycleStage or ReopenLead",
        }))
    }
}

/// An explicit move of the LifecycleService.
#[derive(Debug, Clone)]
pub enum StageChange {
    /// SetLifecycleStage (a manager): any settable stage.
    Set {
        /// The new stage.
        stage: LifecycleStage,
        /// Why.
        reason: String,
    },
    /// ReopenLead (a manager): back to LEAD.
    Reopen {
        /// Why.
        reason: String,
    },
    /// QualifyLead: the answers, and SALES_QUALIFIED from before it.
    Qualify {
        /// The validated answers.
        answers: Box<Qualification>,
        /// The decision maker, when another contact (must be live).
        decision_maker: Option<ContactId>,
    },
    /// DisqualifyLead: DISQUALIFIED from before OPPORTUNITY.
    Disqualify {
        /// Why.
        reason: String,
    },
}

/// Applies `change` to a live contact (etag checked, ownership checked
/// as a change of `lifecycle_stage`), recording the move; returns the
/// contact, changed or not.
pub async fn change_stage(
    pool: &PgPool,
    id: ContactId,
    etag: &str,
    change: StageChange,
    write: Write<'_>,
) -> Result<Contact, Error> {
    let mut tx = pool.begin().await?;
    let mut record = super::contacts::lock(&mut tx, id).await?;
    check_etag(CONTACT, &id.to_string(), etag, record.version)?;
    if record.delete_time.is_some() {
        return Err(deleted(CONTACT, &id.to_string()));
    }
    let from = record.state.lifecycle_stage;
    let owned = rapport_kit::auth::Owned::new(&record.state.owner_id, &record.state.team_id);
    write.may_change(&CONTACTS, owned, &["lifecycle_stage"])?;
    let refuse = |to: LifecycleStage, hint: &'static str| {
        Error::Own(ContactsError::LifecycleTransition { from: stage_name(from), to: stage_name(to), hint })
    };
    let now = super::now();
    let (to, cause, reason) = match &change {
        StageChange::Set { stage, reason } => {
            if !lifecycle::is_settable(*stage) {
                return Err(Violation::new(
                    "stage",
                    "must be a stage other than UNSPECIFIED and DISQUALIFIED",
                )
                .into());
            }
            (*stage, LifecycleCause::Manual, reason.as_str())
        }
        StageChange::Reopen { reason } => {
            if !lifecycle::is_reopenable(from) {
                return Err(refuse(
                    LifecycleStage::Lead,
                    "only a disqualified lead or one before CUSTOMER reopens",
                ));
            }
            (LifecycleStage::Lead, LifecycleCause::Manual, reason.as_str())
        }
        StageChange::Qualify { answers, decision_maker } => {
            if let Some(maker) = decision_maker {
                super::contacts::lock_live(&mut tx, &[*maker], "qualification.decision_maker_contact_id")
                    .await?;
            }
            record.qualification = Some(answers.as_ref().clone());
            let to = if lifecycle::is_pre_opportunity(from) && from != LifecycleStage::SalesQualified {
                LifecycleStage::SalesQualified
            } else if from == LifecycleStage::Disqualified {
                return Err(refuse(
                    LifecycleStage::SalesQualified,
                    "a manager reopens a disqualified lead first",
                ));
            } else {
                from
            };
            (to, LifecycleCause::Qualified, "")
        }
        StageChange::Disqualify { reason } => {
            if !lifecycle::is_pre_opportunity(from) {
                return Err(refuse(
                    LifecycleStage::Disqualified,
                    "only a lead before OPPORTUNITY is disqualified",
                ));
            }
            let mut answers = record.qualification.clone().unwrap_or_default();
            answers.disqualify_reason.clone_from(reason);
            record.qualification = Some(answers);
            (LifecycleStage::Disqualified, LifecycleCause::Disqualified, reason.as_str())
        }
    };
    if to == from && !matches!(change, StageChange::Qualify { .. }) {
        return Ok(crate::convert::contact_to_proto(&record));
    }
    if matches!(change, StageChange::Reopen { .. })
        && let Some(answers) = &mut record.qualification
    {
        answers.disqualify_reason.clear();
    }
    record.state.lifecycle_stage = to;
    record.update_time = now;
    record.version += 1;
    sqlx::query(
        "UPDATE contacts SET lifecycle_stage = $2, qualification = $3, update_time = $4, version = version + 1 \
         WHERE id = $1",
    )
    .bind(id.uuid())
    .bind(stage_name(to))
    .bind(record.qualification.as_ref().map(prost::Message::encode_to_vec))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let contact = crate::convert::contact_to_proto(&record);
    let mut paths = Vec::new();
    if to != from {
        paths.push("lifecycle_stage".to_owned());
    }
    if matches!(
        change,
        StageChange::Qualify { .. } | StageChange::Disqualify { .. } | StageChange::Reopen { .. }
    ) {
        paths.push("qualification".to_owned());
    }
    changelog::append(
        &mut tx,
        &[Change::of(CONTACT, &contact, id.to_string(), ChangeKind::Updated, write.actor, paths)],
    )
    .await?;
    let change = Move { from, to, cause, actor: write.actor, reason, cause_id: "", at: now };
    record_or_note(&mut tx, id, &change).await?;
    tx.commit().await?;
    Ok(contact)
}

/// Records a move; a qualification that keeps the stage is noted on the
/// timeline only (no transition happened).
async fn record_or_note(tx: &mut PgConnection, id: ContactId, change: &Move<'_>) -> Result<(), sqlx::Error> {
    if change.from != change.to {
        return record(tx, id, change).await;
    }
    let entry = Entry {
        subject: Subject::Contact(id.uuid()),
        occur_time: change.at,
        source: TimelineSource::Contacts,
        kind: TimelineEntryKind::LeadQualified,
        title: "Qualification answers updated".to_owned(),
        detail: String::new(),
        actor_id: change.actor.to_owned(),
        resource_type: CONTACT.to_owned(),
        resource_id: id.to_string(),
        activity_id: None,
        event_id: None,
    };
    timeline::insert(tx, &[entry]).await.map(|_| ())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    from_stage: String,
    to_stage: String,
    change_time: DateTime<Utc>,
    actor_id: String,
    cause: String,
    reason: String,
    cause_id: String,
}

/// One page of a contact's moves, oldest first, and whether more follow.
pub async fn history(
    pool: &PgPool,
    contact_id: ContactId,
    limit: u32,
    after: Option<&Cursor>,
) -> Result<(Vec<TransitionRecord>, bool), sqlx::Error> {
    let after_time = super::cursor_time(after)?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, from_stage, to_stage, change_time, actor_id, cause, reason, cause_id \
         FROM lifecycle_transitions WHERE contact_id = $1 \
           AND ($2::timestamptz IS NULL OR (change_time, id) > ($2, $3)) \
         ORDER BY change_time, id LIMIT $4",
    )
    .bind(contact_id.uuid())
    .bind(after_time)
    .bind(after.map_or(Uuid::nil(), |cursor| cursor.id))
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    let more = rows.len() > limit as usize;
    let records = rows
        .into_iter()
        .take(limit as usize)
        .map(|row| {
            Ok(TransitionRecord {
                id: row.id,
                from_stage: stage_from_name(&row.from_stage)?,
                to_stage: stage_from_name(&row.to_stage)?,
                change_time: row.change_time,
                actor_id: row.actor_id,
                cause: cause_from_name(&row.cause)?,
                reason: row.reason,
                cause_id: row.cause_id,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((records, more))
}

/// Whether a contact exists at all (a history of a deleted contact reads).
pub async fn exists(pool: &PgPool, id: ContactId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM contacts WHERE id = $1)")
        .bind(id.uuid())
        .fetch_one(pool)
        .await
}
