//! Comments: public replies and internal notes, and what they do to their
//! case (SLA targets met or started, a pending case back to OPEN, a
//! resolved case reopened or followed up).

use prost::Message as _;
use rapport_kit::changelog::{self, Change};
use rapport_kit::idempotency::Claim;
use rapport_kit::paging::{self, Cursor};
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::support::v1::{AddCommentResponse, CaseStatus, Comment};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::cases::{self, Placement};
use super::sla::{self, Sla};
use super::{Ctx, Write};
use crate::convert::{comment_to_proto, enums_of};
use crate::domain::case::{CaseField, CaseInput};
use crate::domain::comment::{Author, CommentInput};
use crate::domain::sla::Event;
use crate::error::{Error, resource::COMMENT};
use crate::model::{CaseRecord, CommentRow};

/// A comment to add and who adds it.
pub struct NewComment<'a> {
    pub case_id: Uuid,
    pub input: &'a CommentInput,
    /// The author's id: the caller's subject, or the requester's contact id.
    pub author_id: String,
    /// The email Message-ID it came with, if any.
    pub message_id: &'a str,
    /// How long after resolution a requester's reply reopens the case.
    pub reopen_window: chrono::Duration,
    /// The requester, who gets an agent's public reply by mail (when mail
    /// is configured).
    pub recipient: Option<&'a super::outbox::Recipient>,
}

async fn insert(tx: &mut PgConnection, row: &CommentRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO case_comments (id, case_id, internal, author_id, author_kind, body, attachments, message_id, \
           create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(row.id)
    .bind(row.case_id)
    .bind(row.internal)
    .bind(&row.author_id)
    .bind(&row.author_kind)
    .bind(&row.body)
    .bind(&row.attachments)
    .bind(&row.message_id)
    .bind(row.create_time)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Adds a comment, or replays the first result of the same request id.
pub async fn add(
    pool: &PgPool,
    new: NewComment<'_>,
    write: Write<'_>,
    ctx: Ctx<'_>,
) -> Result<AddCommentResponse, Error> {
    let mut tx = pool.begin().await?;
    if let Claim::Replay(response) = write.claim(&mut tx, "AddComment").await? {
        return AddCommentResponse::decode(response.as_slice())
            .map_err(|err| Error::Internal(anyhow::Error::new(err).context("stored response")));
    }
    let response = add_in(&mut tx, new, write, ctx).await?;
    write.record(&mut tx, &response.encode_to_vec()).await?;
    tx.commit().await?;
    Ok(response)
}

/// Adds a comment in `tx` (no idempotency key of its own).
pub async fn add_in(
    tx: &mut PgConnection,
    new: NewComment<'_>,
    write: Write<'_>,
    ctx: Ctx<'_>,
) -> Result<AddCommentResponse, Error> {
    let mut record = cases::lock_live(&mut *tx, new.case_id, "", |_| Ok(())).await?;
    let sla = sla::load(&mut *tx).await?;
    let input = new.input;
    let (status, _, _) = enums_of(&record)?;
    let mut follow_up = None;
    let mut paths = Vec::new();
    match (input.author, input.internal) {
        (_, true) => {}
        (Author::Agent, false) => {
            if record.case.first_response_time.is_none() {
                record.case.first_response_time = Some(ctx.now);
                paths.push("first_response_time".to_owned());
            }
            if status == CaseStatus::New {
                cases::move_status(&mut record, CaseStatus::Open, ctx, &sla)?;
                paths.push("status".to_owned());
            }
            apply(&mut record, Event::AgentReply, ctx, &sla)?;
            paths.push("sla_targets".to_owned());
        }
        (Author::Requester, false) => {
            let window_over =
                record.case.resolve_time.is_none_or(|resolved| resolved + new.reopen_window < ctx.now);
            match status {
                CaseStatus::Closed => follow_up = Some(()),
                CaseStatus::Resolved if window_over => follow_up = Some(()),
                CaseStatus::Resolved | CaseStatus::PendingCustomer => {
                    cases::move_status(&mut record, CaseStatus::Open, ctx, &sla)?;
                    paths.push("status".to_owned());
                }
                _ => {}
            }
            if follow_up.is_none() {
                let (status, _, _) = enums_of(&record)?;
                apply(&mut record, Event::RequesterReply(status), ctx, &sla)?;
                // While the first response waits, a reply starts nothing.
                if record.clocks.clocks.iter().any(|entry| entry.dirty) {
                    paths.push("sla_targets".to_owned());
                }
            }
        }
    }
    let mut target = record;
    let mut follow_up_case_id = String::new();
    if follow_up.is_some() {
        let original = &target.case;
        let case_input = CaseInput {
            fields: CaseField::ALL.iter().map(|(field, _)| *field).collect(),
            subject: original.subject.clone(),
            description: input.body.clone(),
            status: None,
            priority: enums_of(&target)?.1,
            channel: enums_of(&target)?.2,
            category: original.category.clone(),
            product: original.product.clone(),
            tags: original.tags.clone(),
            deal_id: original.deal_id.map(Into::into),
            company_id: original.company_id.map(Into::into),
            requester: Some(original.requester_contact_id.into()),
        };
        let placement = Placement { assignee_id: "", team_id: &original.team_id };
        let original_id = original.id;
        let fresh = Write { request: None, ..write };
        let (_, created) = cases::create(&mut *tx, &case_input, placement, fresh, ctx).await?;
        let mut created =
            created.ok_or_else(|| Error::Internal(anyhow::anyhow!("a follow-up case replayed")))?;
        created.case.follow_up_of = Some(original_id);
        follow_up_case_id = created.case.id.to_string();
        paths = vec!["follow_up_of_case_id".to_owned()];
        target = created;
    }
    // An agent's public reply goes to the requester by mail, with the
    // message id the comment keeps (answers thread back by it).
    let mail_to = match (input.author, input.internal, ctx.mail, new.recipient) {
        (Author::Agent, false, Some(_), Some(recipient)) => Some(recipient),
        _ => None,
    };
    let message_id = match mail_to {
        Some(_) => ctx.message_id(),
        None => new.message_id.to_owned(),
    };
    let row = CommentRow {
        id: Uuid::now_v7(),
        case_id: target.case.id,
        internal: input.internal,
        author_id: new.author_id,
        author_kind: input.author.name().to_owned(),
        body: input.body.clone(),
        attachments: sqlx::types::Json(input.attachments.clone()),
        message_id,
        create_time: ctx.now,
    };
    insert(&mut *tx, &row).await?;
    if !row.internal {
        super::search::add_public_text(&mut *tx, row.case_id, &row.body).await?;
    }
    if let Some(to) = mail_to {
        let number = crate::domain::case::display_number(ctx.prefix, target.case.number);
        let mail = super::outbox::Mail {
            case_id: target.case.id,
            to,
            subject: crate::domain::email::reply_subject(&number, &target.case.subject),
            body: crate::domain::email::reply_body(&number, &row.body),
            message_id: row.message_id.clone(),
        };
        super::outbox::enqueue(&mut *tx, mail, ctx.now).await?;
    }
    let comment = comment_to_proto(&row);
    changelog::append(
        &mut *tx,
        &[Change::of(COMMENT, &comment, row.id.to_string(), ChangeKind::Created, write.actor, Vec::new())],
    )
    .await?;
    let case = if paths.is_empty() {
        crate::convert::case_to_proto(
            &target,
            crate::convert::View { prefix: ctx.prefix, now: ctx.now, calendars: &sla },
        )?
    } else {
        cases::save(&mut *tx, &mut target, (ChangeKind::Updated, paths), write.actor, ctx, &sla).await?
    };
    Ok(AddCommentResponse { comment: Some(comment), case: Some(case), follow_up_case_id })
}

fn apply(record: &mut CaseRecord, event: Event, ctx: Ctx<'_>, sla: &Sla) -> Result<(), Error> {
    let (_, priority, _) = enums_of(record)?;
    let policy = sla.policy(record.case.sla_policy_id);
    record.clocks.apply(event, ctx.now, policy, priority, sla);
    Ok(())
}

/// One page of a case's comments, oldest first.
pub async fn list(
    pool: &PgPool,
    case_id: Uuid,
    include_internal: bool,
    page_size: u32,
    page_token: &str,
) -> Result<(Vec<Comment>, String), Error> {
    let mut conn = pool.acquire().await?;
    let exists: Option<Uuid> = sqlx::query_scalar("SELECT id FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_none() {
        return Err(cases::not_found(case_id));
    }
    let fingerprint =
        paging::fingerprint(&[&case_id.to_string(), if include_internal { "all" } else { "public" }]);
    let cursor = paging::decode_token(page_token, &fingerprint)?;
    let (after_time, after_id) = match &cursor {
        Some(cursor) => (
            Some(
                chrono::DateTime::parse_from_rfc3339(&cursor.value)
                    .map_err(|_| {
                        Error::Problem(rapport_kit::error::Problem::invalid_field(
                            "INVALID_PAGE_TOKEN",
                            "page_token",
                            "the page token is corrupt",
                        ))
                    })?
                    .to_utc(),
            ),
            Some(cursor.id),
        ),
        None => (None, None),
    };
    let mut rows: Vec<CommentRow> = sqlx::query_as(
        "SELECT id, case_id, internal, author_id, author_kind, body, attachments, message_id, create_time \
         FROM case_comments WHERE case_id = $1 AND ($2 OR NOT internal) \
           AND ($3::timestamptz IS NULL OR (create_time, id) > ($3, $4)) \
         ORDER BY create_time, id LIMIT $5",
    )
    .bind(case_id)
    .bind(include_internal)
    .bind(after_time)
    .bind(after_id)
    .bind(i64::from(page_size) + 1)
    .fetch_all(&mut *conn)
    .await?;
    let more = rows.len() > page_size as usize;
    rows.truncate(page_size as usize);
    let next = match rows.last() {
        Some(last) if more => paging::encode_token(
            &fingerprint,
            Cursor { value: rapport_kit::listing::time_value(last.create_time), id: last.id },
        ),
        _ => String::new(),
    };
    Ok((rows.iter().map(comment_to_proto).collect(), next))
}
