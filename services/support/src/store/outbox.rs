//! Mail to requesters as an outbox: written in the transaction of the
//! reply or resolution it tells of, sent by the mail worker, retried with a
//! back-off until the relay takes it.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// Most attempts before a mail is given up (status FAILED).
pub const MAX_ATTEMPTS: i32 = 10;

/// Who a mail goes to.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub address: String,
    pub name: String,
}

/// A mail to write.
#[derive(Debug, Clone)]
pub struct Mail<'a> {
    pub case_id: Uuid,
    pub to: &'a Recipient,
    pub subject: String,
    pub body: String,
    /// The id it goes out with, without angle brackets.
    pub message_id: String,
}

/// A pending mail as the worker sends it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub id: Uuid,
    pub to_address: String,
    pub to_name: String,
    pub subject: String,
    pub body: String,
    pub message_id: String,
    pub in_reply_to: String,
    pub references: Vec<String>,
    pub attempts: i32,
}

/// The message ids of a case's mail, in and out, oldest first (at most 20,
/// the newest).
async fn thread_of(tx: &mut PgConnection, case_id: Uuid) -> Result<(String, Vec<String>), sqlx::Error> {
    let mut ids: Vec<(String, DateTime<Utc>, bool)> = sqlx::query_as(
        "SELECT message_id, create_time, author_kind = 'REQUESTER' FROM case_comments \
         WHERE case_id = $1 AND message_id <> '' \
         UNION ALL SELECT message_id, create_time, false FROM outbound_emails WHERE case_id = $1 \
         ORDER BY 2 DESC LIMIT 20",
    )
    .bind(case_id)
    .fetch_all(&mut *tx)
    .await?;
    ids.dedup_by(|a, b| a.0 == b.0);
    let in_reply_to = ids
        .iter()
        .find(|(_, _, inbound)| *inbound)
        .or(ids.first())
        .map(|(id, _, _)| id.clone())
        .unwrap_or_default();
    let references = ids.into_iter().rev().map(|(id, _, _)| id).collect();
    Ok((in_reply_to, references))
}

/// Writes `mail` (threaded onto the case's earlier mail) in `tx`.
pub async fn enqueue(tx: &mut PgConnection, mail: Mail<'_>, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let (in_reply_to, references) = thread_of(tx, mail.case_id).await?;
    sqlx::query(
        "INSERT INTO outbound_emails (id, case_id, to_address, to_name, subject, body, message_id, in_reply_to, \
           \"references\", next_attempt_at, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
    )
    .bind(Uuid::now_v7())
    .bind(mail.case_id)
    .bind(&mail.to.address)
    .bind(&mail.to.name)
    .bind(&mail.subject)
    .bind(&mail.body)
    .bind(&mail.message_id)
    .bind(in_reply_to)
    .bind(references)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Locks up to `limit` mails due at `now` (others' locked ones skipped).
pub async fn due(tx: &mut PgConnection, now: DateTime<Utc>, limit: i64) -> Result<Vec<Pending>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, to_address, to_name, subject, body, message_id, in_reply_to, \"references\", attempts \
         FROM outbound_emails WHERE status = 'PENDING' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
}

/// Marks a mail sent.
pub async fn sent(tx: &mut PgConnection, id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbound_emails SET status = 'SENT', sent_time = $2, attempts = attempts + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records a failed attempt: retried after a back-off (10 s doubling, at
/// most an hour), given up after [`MAX_ATTEMPTS`].
pub async fn failed(
    tx: &mut PgConnection,
    mail: &Pending,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let attempts = mail.attempts + 1;
    let backoff = Duration::seconds((10_i64 << attempts.min(9)).min(3600));
    let status = if attempts >= MAX_ATTEMPTS { "FAILED" } else { "PENDING" };
    sqlx::query(
        "UPDATE outbound_emails SET attempts = $2, status = $3, next_attempt_at = $4, last_error = $5 WHERE id = $1",
    )
    .bind(mail.id)
    .bind(attempts)
    .bind(status)
    .bind(now + backoff)
    .bind(error.chars().take(500).collect::<String>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}
