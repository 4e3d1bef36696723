//! Consent: recording changes (history, current state, the mirrored
//! `email_opt_in`), the do-not-contact flag, and reading both. Every
//! change locks the contact first, so one contact's changes serialize, and
//! appends the contact's consent as it then stands to the change log
//! (resource type `ContactConsent`), which Marketing follows.

use chrono::{DateTime, Utc};
use prost::Message;
use rapport_kit::auth::Role;
use rapport_kit::changelog::{self, Change};
use rapport_kit::idempotency::Claim;
use rapport_kit::paging::Cursor;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::contacts::v1::{ConsentEvent, ConsentSource};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::contacts::{lock, owned};
use super::{Write, deleted, now};
use crate::convert;
use crate::domain::ContactId;
use crate::domain::consent::{ConsentDraft, MARKETING, channel_name, source_name};
use crate::error::{CONTACT, CONTACT_CONSENT, Error};
use crate::model::{ConsentEventRecord, ConsentRecord, ContactConsentRecord, ContactRecord};
use crate::policy::CONTACTS;

/// What a consent write did.
pub struct Recorded<T> {
    /// The answer.
    pub response: T,
    /// Whether the contact's `email_opt_in` changed with it (its cached
    /// copies must go).
    pub contact_changed: bool,
}

/// Records a consent change of contact `id`. An opt-in needs the right to
/// change the contact; an opt-out does not.
pub async fn record(
    pool: &PgPool,
    id: ContactId,
    draft: ConsentDraft,
    write: Write<'_>,
) -> Result<Recorded<ConsentEvent>, Error> {
    let mut tx = pool.begin().await?;
    if let Claim::Replay(response) = write.claim(&mut tx, "RecordConsent").await? {
        let event = ConsentEvent::decode(response.as_slice())
            .map_err(|err| Error::Internal(anyhow::Error::new(err).context("stored response")))?;
        return Ok(Recorded { response: event, contact_changed: false });
    }
    let mut contact = lock(&mut tx, id).await?;
    if contact.delete_time.is_some() {
        return Err(deleted(CONTACT, &id.to_string()));
    }
    if draft.granted {
        write.may_change(&CONTACTS, owned(&contact.state), &["consent"])?;
    }
    let now = now();
    let (event, contact_changed) = insert_consent(&mut tx, &mut contact, &draft, write, now).await?;
    publish(&mut tx, id, write.actor).await?;
    let response = convert::consent_event_to_proto(&event);
    write.record(&mut tx, &response.encode_to_vec()).await?;
    tx.commit().await?;
    Ok(Recorded { response, contact_changed })
}

/// The history event of `email_opt_in` set to `granted` through the
/// contact itself (a create or an update), in the writer's transaction.
/// Its source is the API for an integration, an agent for anyone else.
pub(crate) async fn mirror_opt_in(
    tx: &mut PgConnection,
    contact: &ContactRecord,
    write: Write<'_>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let integration = write.principal.is_some_and(|principal| principal.has(Role::Integration));
    let source = if integration { ConsentSource::Api } else { ConsentSource::Agent };
    let draft = ConsentDraft {
        channel: rapport_proto::contacts::v1::ConsentChannel::Email,
        purpose: MARKETING.to_owned(),
        granted: contact.state.email_opt_in,
        source,
        evidence: String::new(),
        occur_time: now,
    };
    let event = new_event(contact.id.uuid(), "CONSENT", &draft, write.actor, now);
    insert_event(tx, &event).await?;
    set_current(tx, &event).await?;
    if contact.version == 1 {
        // Created in this transaction (every change bumps the version): this
        // is its only consent, so its state needs no read.
        let state = ContactConsentRecord {
            contact_id: contact.id.uuid(),
            consents: vec![ConsentRecord {
                channel: event.channel.clone(),
                purpose: event.purpose.clone(),
                granted: event.granted,
                source: event.source.clone(),
                occur_time: event.occur_time,
                event_id: event.id,
            }],
            do_not_contact: false,
            do_not_contact_reason: String::new(),
            do_not_contact_time: None,
        };
        return append_state(tx, &state, write.actor).await;
    }
    publish(tx, contact.id, write.actor).await
}

/// Inserts the event, moves the current state when the event is not older
/// than it, and mirrors an email-marketing change onto the contact
/// (returning whether it did).
async fn insert_consent(
    tx: &mut PgConnection,
    contact: &mut ContactRecord,
    draft: &ConsentDraft,
    write: Write<'_>,
    now: DateTime<Utc>,
) -> Result<(ConsentEventRecord, bool), Error> {
    let event = new_event(contact.id.uuid(), "CONSENT", draft, write.actor, now);
    insert_event(tx, &event).await?;
    let current = set_current(tx, &event).await?;
    let mirrored = current && draft.is_email_marketing() && contact.state.email_opt_in != draft.granted;
    if mirrored {
        contact.state.email_opt_in = draft.granted;
        contact.state.email_opt_in_time = Some(now);
        contact.update_time = now;
        contact.version += 1;
        sqlx::query(
            "UPDATE contacts SET email_opt_in = $2, email_opt_in_time = $3, update_time = $3, \
               version = version + 1 WHERE id = $1",
        )
        .bind(contact.id.uuid())
        .bind(draft.granted)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let proto = convert::contact_to_proto(contact);
        let change = Change::of(
            CONTACT,
            &proto,
            contact.id.to_string(),
            ChangeKind::Updated,
            write.actor,
            vec!["email_opt_in".to_owned()],
        );
        changelog::append(tx, &[change]).await?;
    }
    Ok((event, mirrored))
}

fn new_event(
    contact_id: Uuid,
    kind: &str,
    draft: &ConsentDraft,
    actor: &str,
    now: DateTime<Utc>,
) -> ConsentEventRecord {
    ConsentEventRecord {
        id: Uuid::now_v7(),
        contact_id,
        kind: kind.to_owned(),
        channel: channel_name(draft.channel).to_owned(),
        purpose: draft.purpose.clone(),
        granted: draft.granted,
        source: source_name(draft.source).to_owned(),
        evidence: draft.evidence.clone(),
        occur_time: draft.occur_time,
        record_time: now,
        actor: actor.to_owned(),
    }
}

async fn insert_event(tx: &mut PgConnection, event: &ConsentEventRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consent_events (id, contact_id, kind, channel, purpose, granted, source, evidence, \
           occur_time, record_time, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(event.id)
    .bind(event.contact_id)
    .bind(&event.kind)
    .bind(&event.channel)
    .bind(&event.purpose)
    .bind(event.granted)
    .bind(&event.source)
    .bind(&event.evidence)
    .bind(event.occur_time)
    .bind(event.record_time)
    .bind(&event.actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Makes `event` the current state of its channel and purpose unless a
/// later one (by occur_time) already is; returns whether it did.
async fn set_current(tx: &mut PgConnection, event: &ConsentEventRecord) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "INSERT INTO consents (contact_id, channel, purpose, granted, source, occur_time, event_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (contact_id, channel, purpose) DO UPDATE \
           SET granted = EXCLUDED.granted, source = EXCLUDED.source, occur_time = EXCLUDED.occur_time, \
               event_id = EXCLUDED.event_id \
           WHERE consents.occur_time <= EXCLUDED.occur_time",
    )
    .bind(event.contact_id)
    .bind(&event.channel)
    .bind(&event.purpose)
    .bind(event.granted)
    .bind(&event.source)
    .bind(event.occur_time)
    .bind(event.id)
    .execute(&mut *tx)
    .await?;
    Ok(moved.rows_affected() == 1)
}

/// Sets or clears contact `id`'s do-not-contact flag. Setting is open to
/// every writer; clearing needs the right to change the contact.
pub async fn set_do_not_contact(
    pool: &PgPool,
    id: ContactId,
    set: bool,
    reason: String,
    write: Write<'_>,
) -> Result<ContactConsentRecord, Error> {
    let mut tx = pool.begin().await?;
    let contact = lock(&mut tx, id).await?;
    if contact.delete_time.is_some() {
        return Err(deleted(CONTACT, &id.to_string()));
    }
    if !set {
        write.may_change(&CONTACTS, owned(&contact.state), &["consent"])?;
    }
    let (current,): (bool,) = sqlx::query_as("SELECT do_not_contact FROM contacts WHERE id = $1")
        .bind(id.uuid())
        .fetch_one(&mut *tx)
        .await?;
    if current != set {
        let now = now();
        sqlx::query(
            "UPDATE contacts SET do_not_contact = $2, do_not_contact_reason = $3, do_not_contact_time = $4 \
             WHERE id = $1",
        )
        .bind(id.uuid())
        .bind(set)
        .bind(&reason)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let draft = ConsentDraft {
            channel: rapport_proto::contacts::v1::ConsentChannel::Unspecified,
            purpose: String::new(),
            granted: set,
            source: ConsentSource::Unspecified,
            evidence: reason,
            occur_time: now,
        };
        insert_event(&mut tx, &new_event(id.uuid(), "DO_NOT_CONTACT", &draft, write.actor, now)).await?;
        publish(&mut tx, id, write.actor).await?;
    }
    let state = read(&mut tx, id).await?;
    tx.commit().await?;
    Ok(state)
}

/// Appends the contact's consent as it now stands to the change log.
async fn publish(tx: &mut PgConnection, id: ContactId, actor: &str) -> Result<(), Error> {
    let state = read(tx, id).await?;
    append_state(tx, &state, actor).await
}

/// Appends `state` to the change log as the contact's consent.
async fn append_state(tx: &mut PgConnection, state: &ContactConsentRecord, actor: &str) -> Result<(), Error> {
    let proto = convert::contact_consent_to_proto(state);
    let change = Change::of(
        CONTACT_CONSENT,
        &proto,
        state.contact_id.to_string(),
        ChangeKind::Updated,
        actor,
        Vec::new(),
    );
    changelog::append(tx, &[change]).await?;
    Ok(())
}

/// Contact `id`'s consent as it stands; NOT_FOUND when there is no such
/// contact.
pub async fn get(pool: &PgPool, id: ContactId) -> Result<ContactConsentRecord, Error> {
    let mut conn = pool.acquire().await?;
    read(&mut conn, id).await
}

async fn read(conn: &mut PgConnection, id: ContactId) -> Result<ContactConsentRecord, Error> {
    let flag: Option<(bool, String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT do_not_contact, do_not_contact_reason, do_not_contact_time FROM contacts WHERE id = $1",
    )
    .bind(id.uuid())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((do_not_contact, do_not_contact_reason, do_not_contact_time)) = flag else {
        return Err(crate::error::contact_not_found(id));
    };
    let consents: Vec<ConsentRecord> = sqlx::query_as(
        "SELECT channel, purpose, granted, source, occur_time, event_id FROM consents \
         WHERE contact_id = $1 ORDER BY channel, purpose",
    )
    .bind(id.uuid())
    .fetch_all(&mut *conn)
    .await?;
    Ok(ContactConsentRecord {
        contact_id: id.uuid(),
        consents,
        do_not_contact,
        do_not_contact_reason,
        do_not_contact_time,
    })
}

/// A page of contact `id`'s history, newest recorded first, and whether
/// more follow; NOT_FOUND when there is no such contact.
pub async fn history(
    pool: &PgPool,
    id: ContactId,
    limit: u32,
    after: Option<&Cursor>,
) -> Result<(Vec<ConsentEventRecord>, bool), Error> {
    let exists: Option<(Uuid,)> =
        sqlx::query_as("SELECT id FROM contacts WHERE id = $1").bind(id.uuid()).fetch_optional(pool).await?;
    if exists.is_none() {
        return Err(crate::error::contact_not_found(id));
    }
    let after_time = super::cursor_time(after)?;
    let after_id = after.map_or(Uuid::max(), |cursor| cursor.id);
    let mut rows: Vec<ConsentEventRecord> = sqlx::query_as(
        "SELECT id, contact_id, kind, channel, purpose, granted, source, evidence, occur_time, record_time, actor \
         FROM consent_events WHERE contact_id = $1 \
           AND ($2::timestamptz IS NULL OR (record_time, id) < ($2, $3)) \
         ORDER BY record_time DESC, id DESC LIMIT $4",
    )
    .bind(id.uuid())
    .bind(after_time)
    .bind(after_id)
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((rows, more))
}
