//! Email in: an inbound message threaded onto its case (or opening one),
//! applied once per Message-ID.

use rapport_proto::support::v1::{CaseChannel, CasePriority, IngestEmailResponse};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::cases::{self, Placement};
use super::comments::{self, NewComment};
use super::{Ctx, Write};
use crate::convert::{View, case_to_proto, comment_to_proto};
use crate::domain::case::{CaseField, CaseInput};
use crate::domain::comment::{Author, CommentInput};
use crate::domain::email::{Inbound, number_in_subject};
use crate::error::Error;
use crate::model::CommentRow;

/// An inbound message to apply.
pub struct Ingest<'a> {
    pub inbound: &'a Inbound,
    /// The sender's contact.
    pub requester: Uuid,
    /// The queue a new case goes to.
    pub team_id: &'a str,
    /// How long after resolution a reply reopens the case.
    pub reopen_window: chrono::Duration,
}

/// The case the message answers: by its thread's message ids (mail in and
/// out), else by a case number in its subject; a merged case leads to its
/// survivor.
async fn thread_case(
    tx: &mut PgConnection,
    inbound: &Inbound,
    prefix: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    let mut found: Option<Uuid> = if inbound.thread.is_empty() {
        None
    } else {
        sqlx::query_scalar(
            "SELECT case_id FROM ( \
               SELECT case_id, message_id FROM ingested_emails WHERE message_id = ANY($1) \
               UNION ALL SELECT case_id, message_id FROM case_comments WHERE message_id = ANY($1) \
               UNION ALL SELECT case_id, message_id FROM outbound_emails WHERE message_id = ANY($1)) known \
             ORDER BY array_position($1, message_id) LIMIT 1",
        )
        .bind(&inbound.thread)
        .fetch_optional(&mut *tx)
        .await?
    };
    if found.is_none()
        && let Some(number) = number_in_subject(prefix, &inbound.subject)
    {
        found = sqlx::query_scalar("SELECT id FROM cases WHERE number = $1")
            .bind(number)
            .fetch_optional(&mut *tx)
            .await?;
    }
    // Follow merges (a bounded walk: merges never loop, but stay safe).
    for _ in 0..5 {
        let Some(id) = found else { break };
        let merged_into: Option<Option<Uuid>> =
            sqlx::query_scalar("SELECT merged_into FROM cases WHERE id = $1 AND delete_time IS NULL")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        match merged_into {
            Some(Some(survivor)) => found = Some(survivor),
            Some(None) => break,
            // Deleted: open a new case instead.
            None => found = None,
        }
    }
    Ok(found)
}

/// Applies `ingest`, or answers the first result when its Message-ID was
/// applied before.
pub async fn ingest(
    pool: &PgPool,
    ingest: Ingest<'_>,
    write: Write<'_>,
    ctx: Ctx<'_>,
) -> Result<IngestEmailResponse, Error> {
    let inbound = ingest.inbound;
    let mut tx = pool.begin().await?;
    // The same message arriving twice at once waits for the first.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))")
        .bind(&inbound.message_id)
        .execute(&mut *tx)
        .await?;
    let applied: Option<(Uuid, Uuid)> =
        sqlx::query_as("SELECT case_id, comment_id FROM ingested_emails WHERE message_id = $1")
            .bind(&inbound.message_id)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((case_id, comment_id)) = applied {
        tx.rollback().await?;
        return replay(pool, case_id, comment_id, ctx).await;
    }
    let comment = CommentInput {
        internal: false,
        author: Author::Requester,
        body: if inbound.body.is_empty() { "(no text)".to_owned() } else { inbound.body.clone() },
        attachments: inbound.attachments.clone(),
    };
    let (case_id, case_created) = match thread_case(&mut tx, inbound, ctx.prefix).await? {
        Some(case_id) => (case_id, false),
        None => {
            let subject =
                if inbound.subject.is_empty() { "(no subject)".to_owned() } else { inbound.subject.clone() };
            let input = CaseInput {
                fields: CaseField::ALL.iter().map(|(field, _)| *field).collect(),
                subject,
                description: inbound.body.clone(),
                status: None,
                priority: CasePriority::Normal,
                channel: CaseChannel::Email,
                requester: Some(ingest.requester.into()),
                ..CaseInput::default()
            };
            let placement = Placement { assignee_id: "", team_id: ingest.team_id };
            let (case, _) =
                cases::create(&mut tx, &input, placement, Write { request: None, ..write }, ctx).await?;
            (Uuid::parse_str(&case.id).map_err(|err| Error::Internal(err.into()))?, true)
        }
    };
    let new = NewComment {
        case_id,
        input: &comment,
        author_id: ingest.requester.to_string(),
        message_id: &inbound.message_id,
        reopen_window: ingest.reopen_window,
        recipient: None,
    };
    let added = comments::add_in(&mut tx, new, Write { request: None, ..write }, ctx).await?;
    let comment_id = added.comment.as_ref().map(|comment| comment.id.as_str()).unwrap_or_default();
    let comment_id = Uuid::parse_str(comment_id).map_err(|err| Error::Internal(err.into()))?;
    let case_id = added.case.as_ref().map(|case| case.id.as_str()).unwrap_or_default();
    let case_id = Uuid::parse_str(case_id).map_err(|err| Error::Internal(err.into()))?;
    sqlx::query(
        "INSERT INTO ingested_emails (message_id, case_id, comment_id, create_time) VALUES ($1, $2, $3, $4)",
    )
    .bind(&inbound.message_id)
    .bind(case_id)
    .bind(comment_id)
    .bind(ctx.now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let case_created = case_created || !added.follow_up_case_id.is_empty();
    Ok(IngestEmailResponse {
        case: added.case,
        comment: added.comment,
        duplicate: false,
        case_created,
        contact_created: false,
    })
}

/// The result of a message applied before: its case and comment as they are now.
async fn replay(
    pool: &PgPool,
    case_id: Uuid,
    comment_id: Uuid,
    ctx: Ctx<'_>,
) -> Result<IngestEmailResponse, Error> {
    // Rare (a message sent twice): the SLA definitions read fresh.
    let (record, sla) = cases::get(pool, (Some(case_id), None), &super::sla::SlaCache::default()).await?;
    let case = case_to_proto(&record, View { prefix: ctx.prefix, now: ctx.now, calendars: sla.as_ref() })?;
    let row: Option<CommentRow> = sqlx::query_as(
        "SELECT id, case_id, internal, author_id, author_kind, body, attachments, message_id, create_time \
         FROM case_comments WHERE id = $1",
    )
    .bind(comment_id)
    .fetch_optional(pool)
    .await?;
    Ok(IngestEmailResponse {
        case: Some(case),
        comment: row.as_ref().map(comment_to_proto),
        duplicate: true,
        case_created: false,
        contact_created: false,
    })
}
