//! Satisfaction surveys: issued when a case is resolved (the token's
//! SHA-256 stored), answered once before they expire, credited to the
//! resolving agent, announced on the change feed.

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore as _;
use rapport_kit::changelog::{self, Change, timestamp};
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::support::v1::Satisfaction;
use sha2::{Digest as _, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::{Error, resource::SATISFACTION};

/// Issues a survey for `case_id` resolved by `agent_id`; returns its token.
pub async fn issue(
    tx: &mut PgConnection,
    case_id: Uuid,
    agent_id: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<String, sqlx::Error> {
    let mut secret = [0_u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    sqlx::query(
        "INSERT INTO satisfaction_surveys (token_sha256, id, case_id, agent_id, issue_time, expire_time) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Sha256::digest(token.as_bytes()).to_vec())
    .bind(Uuid::now_v7())
    .bind(case_id)
    .bind(agent_id)
    .bind(now)
    .bind(now + ttl)
    .execute(&mut *tx)
    .await?;
    Ok(token)
}

#[derive(sqlx::FromRow)]
struct Survey {
    id: Uuid,
    case_id: Uuid,
    agent_id: String,
    issue_time: DateTime<Utc>,
    expire_time: DateTime<Utc>,
    answer_time: Option<DateTime<Utc>>,
}

/// Records the answer to the survey of `token`.
pub async fn answer(
    pool: &PgPool,
    token: &str,
    rating: i32,
    comment: &str,
    now: DateTime<Utc>,
) -> Result<Satisfaction, Error> {
    let mut tx = pool.begin().await?;
    let survey: Option<Survey> = sqlx::query_as(
        "SELECT id, case_id, agent_id, issue_time, expire_time, answer_time FROM satisfaction_surveys \
         WHERE token_sha256 = $1 FOR UPDATE",
    )
    .bind(Sha256::digest(token.as_bytes()).to_vec())
    .fetch_optional(&mut *tx)
    .await?;
    // The token itself never goes into an error or a log.
    let survey = survey.ok_or_else(|| Error::not_found("SURVEY_NOT_FOUND", SATISFACTION, "(token)"))?;
    let id = survey.id.to_string();
    if survey.answer_time.is_some() {
        return Err(Error::precondition(
            "SURVEY_ANSWERED",
            "this survey was already answered",
            "SURVEY_OPEN",
            &id,
        ));
    }
    if survey.expire_time <= now {
        return Err(Error::precondition("SURVEY_EXPIRED", "this survey has expired", "SURVEY_OPEN", &id));
    }
    sqlx::query("UPDATE satisfaction_surveys SET answer_time = $2, rating = $3, comment = $4 WHERE id = $1")
        .bind(survey.id)
        .bind(now)
        .bind(i16::try_from(rating).unwrap_or_default())
        .bind(comment)
        .execute(&mut *tx)
        .await?;
    let answered = Satisfaction {
        id: id.clone(),
        case_id: survey.case_id.to_string(),
        agent_id: survey.agent_id,
        rating,
        comment: comment.to_owned(),
        issue_time: Some(timestamp(survey.issue_time)),
        answer_time: Some(timestamp(now)),
    };
    let change = Change::of(SATISFACTION, &answered, id, ChangeKind::Created, "requester", Vec::new());
    changelog::append(&mut tx, &[change]).await?;
    tx.commit().await?;
    Ok(answered)
}
