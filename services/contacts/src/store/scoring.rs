//! Lead scoring: the rules and settings (each change bumps the rules
//! version, so every score is recomputed), a contact's explained score,
//! and the background recompute: contacts whose score is out of date (an
//! older rules version, or marked 0 when a profile field it reads
//! changed), queued (`score_queue`: an activity on it, a case it opened)
//! or ageing (`score_stale_at` passed) are taken in batches `FOR UPDATE
//! SKIP LOCKED`, scored with `domain::scoring`, written back in one statement,
//! and those reaching the MQL threshold moved forward (cause RULE).

use chrono::{DateTime, Utc};
use prost::Message as _;
use rapport_kit::changelog::{self, Change};
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::contacts::v1::{
    ActivityKind, LeadScore, LeadSource, LifecycleCause, LifecycleStage, ScoringRule, ScoringSettings,
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{check_etag, now};
use crate::domain::ContactId;
use crate::domain::contact::{source_from_name, stage_from_name};
use crate::domain::scoring::{self, Engaged, Profile, grade_name};
use crate::error::{Error, SCORING_RULE};

/// Contacts scored per batch.
const BATCH: i64 = 500;

fn decode(bytes: &[u8]) -> Result<ScoringRule, sqlx::Error> {
    ScoringRule::decode(bytes).map_err(|err| sqlx::Error::Decode(Box::new(err)))
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: Uuid,
    rule: Vec<u8>,
    version: i64,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
}

impl RuleRow {
    fn into_rule(self) -> Result<ScoringRule, sqlx::Error> {
        let mut rule = decode(&self.rule)?;
        rule.id = self.id.to_string();
        rule.create_time = Some(changelog::timestamp(self.create_time));
        rule.update_time = Some(changelog::timestamp(self.update_time));
        rule.etag = rapport_kit::db::etag(self.version);
        Ok(rule)
    }
}

/// Every rule, oldest first.
pub async fn rules(db: impl sqlx::PgExecutor<'_>) -> Result<Vec<ScoringRule>, sqlx::Error> {
    let rows: Vec<RuleRow> =
        sqlx::query_as("SELECT id, rule, version, create_time, update_time FROM scoring_rules ORDER BY id")
            .fetch_all(db)
            .await?;
    rows.into_iter().map(RuleRow::into_rule).collect()
}

/// The settings.
pub async fn settings(db: impl sqlx::PgExecutor<'_>) -> Result<ScoringSettings, sqlx::Error> {
    let (mql_threshold, rules_version): (i32, i64) =
        sqlx::query_as("SELECT mql_threshold, rules_version FROM scoring_settings").fetch_one(db).await?;
    Ok(ScoringSettings { mql_threshold, rules_version })
}

/// Every score is out of date now.
async fn bump(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE scoring_settings SET rules_version = rules_version + 1").execute(&mut *tx).await?;
    Ok(())
}

async fn logged(
    tx: &mut PgConnection,
    rule: &ScoringRule,
    kind: ChangeKind,
    actor: &str,
) -> Result<(), sqlx::Error> {
    changelog::append(tx, &[Change::of(SCORING_RULE, rule, rule.id.clone(), kind, actor, Vec::new())])
        .await?;
    Ok(())
}

/// Adds a validated rule.
pub async fn create(pool: &PgPool, rule: ScoringRule, actor: &str) -> Result<ScoringRule, Error> {
    let mut tx = pool.begin().await?;
    // One rule change at a time (the count below holds).
    sqlx::query("SELECT 1 FROM scoring_settings FOR UPDATE").execute(&mut *tx).await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM scoring_rules").fetch_one(&mut *tx).await?;
    if count >= scoring::MAX_RULES {
        return Err(rapport_kit::error::Problem::failed_precondition(
            "TOO_MANY_SCORING_RULES",
            format!("at most {} scoring rules exist; delete one first", scoring::MAX_RULES),
        )
        .into());
    }
    let id = Uuid::now_v7();
    let now = now();
    sqlx::query("INSERT INTO scoring_rules (id, rule, create_time, update_time) VALUES ($1, $2, $3, $3)")
        .bind(id)
        .bind(rule.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    bump(&mut tx).await?;
    let row = RuleRow { id, rule: rule.encode_to_vec(), version: 1, create_time: now, update_time: now };
    let created = row.into_rule()?;
    logged(&mut tx, &created, ChangeKind::Created, actor).await?;
    tx.commit().await?;
    Ok(created)
}

async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<RuleRow, Error> {
    let row: Option<RuleRow> = sqlx::query_as(
        "SELECT id, rule, version, create_time, update_time FROM scoring_rules WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    row.ok_or_else(|| Error::not_found("SCORING_RULE_NOT_FOUND", SCORING_RULE, id))
}

/// Replaces a rule's stored fields with `rule` (already merged with the
/// update mask and validated) if `etag` is current.
pub async fn update(
    pool: &PgPool,
    id: Uuid,
    etag: &str,
    merge: impl FnOnce(ScoringRule) -> Result<ScoringRule, Error>,
    actor: &str,
) -> Result<ScoringRule, Error> {
    let mut tx = pool.begin().await?;
    let row = lock(&mut tx, id).await?;
    check_etag(SCORING_RULE, &id.to_string(), etag, row.version)?;
    let stored = decode(&row.rule)?;
    let merged = merge(stored.clone())?;
    if merged == stored {
        return Ok(row.into_rule()?);
    }
    let now = now();
    sqlx::query("UPDATE scoring_rules SET rule = $2, version = version + 1, update_time = $3 WHERE id = $1")
        .bind(id)
        .bind(merged.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    bump(&mut tx).await?;
    let updated = RuleRow { rule: merged.encode_to_vec(), version: row.version + 1, update_time: now, ..row };
    let updated = updated.into_rule()?;
    logged(&mut tx, &updated, ChangeKind::Updated, actor).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Removes a rule for good.
pub async fn delete(pool: &PgPool, id: Uuid, etag: &str, actor: &str) -> Result<ScoringRule, Error> {
    let mut tx = pool.begin().await?;
    let row = lock(&mut tx, id).await?;
    check_etag(SCORING_RULE, &id.to_string(), etag, row.version)?;
    sqlx::query("DELETE FROM scoring_rules WHERE id = $1").bind(id).execute(&mut *tx).await?;
    bump(&mut tx).await?;
    let deleted = row.into_rule()?;
    logged(&mut tx, &deleted, ChangeKind::Deleted, actor).await?;
    tx.commit().await?;
    Ok(deleted)
}

/// Sets the MQL threshold (contacts are re-evaluated against it).
pub async fn set_threshold(pool: &PgPool, threshold: i32) -> Result<ScoringSettings, Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE scoring_settings SET mql_threshold = $1, rules_version = rules_version + 1")
        .bind(threshold)
        .execute(&mut *tx)
        .await?;
    let settings = settings(&mut *tx).await?;
    tx.commit().await?;
    Ok(settings)
}

/// A contact's explained score; `None` when the contact does not exist.
pub async fn lead_score(
    pool: &PgPool,
    id: ContactId,
    now: DateTime<Utc>,
) -> Result<Option<LeadScore>, Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        score_detail: Option<Vec<u8>>,
        score_version: i64,
        score_stale_at: Option<DateTime<Utc>>,
        rules_version: i64,
        score_time: Option<DateTime<Utc>>,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT c.score_detail, \
           CASE WHEN EXISTS (SELECT 1 FROM score_queue q WHERE q.contact_id = c.id) THEN 0 ELSE c.score_version END \
             AS score_version, \
           c.score_stale_at, s.rules_version, c.score_time \
         FROM contacts c, scoring_settings s WHERE c.id = $1",
    )
    .bind(id.uuid())
    .fetch_optional(pool)
    .await?;
    let Some(Row {
        score_detail: detail,
        score_version: version,
        score_stale_at: stale_at,
        rules_version: current,
        score_time,
    }) = row
    else {
        return Ok(None);
    };
    let mut score = match detail {
        Some(bytes) => {
            LeadScore::decode(bytes.as_slice()).map_err(|err| sqlx::Error::Decode(Box::new(err)))?
        }
        None => LeadScore::default(),
    };
    score.contact_id = id.to_string();
    score.compute_time = score_time.map(changelog::timestamp);
    score.pending = version < current || stale_at.is_some_and(|at| at <= now);
    Ok(Some(score))
}

#[derive(sqlx::FromRow)]
struct ProfileRow {
    id: Uuid,
    job_title: String,
    lead_source: String,
    lifecycle_stage: String,
    industry: Option<String>,
    employee_count: Option<i32>,
}

/// Recomputes out-of-date and ageing scores at `now`, at most `max`
/// contacts; returns the contacts whose score or stage changed.
pub async fn sweep(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    max: usize,
    actor: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let settings = settings(&mut *tx).await?;
    let rules = rules(&mut *tx).await?;
    let mut changed = Vec::new();
    let mut seen = 0;
    while seen < max {
        let mut ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM contacts WHERE delete_time IS NULL AND score_version < $1 \
             ORDER BY score_version LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(settings.rules_version)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            // Queued contacts whose rows are free right now (one an
            // activity is writing stays queued for the next batch; taking
            // the contact before the queue row never waits on a writer,
            // which holds the contact while it queues it).
            ids = sqlx::query_scalar(
                "WITH queued AS (SELECT contact_id FROM score_queue LIMIT $1 FOR UPDATE SKIP LOCKED), \
                 free AS (SELECT c.id FROM contacts c JOIN queued q ON q.contact_id = c.id \
                          FOR UPDATE OF c SKIP LOCKED) \
                 DELETE FROM score_queue WHERE contact_id IN (SELECT id FROM free) RETURNING contact_id",
            )
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
        }
        if ids.is_empty() {
            ids = sqlx::query_scalar(
                "SELECT id FROM contacts WHERE delete_time IS NULL AND score_stale_at <= $1 \
                 ORDER BY score_stale_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .bind(now)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
        }
        if ids.is_empty() {
            break;
        }
        seen += ids.len();
        changed.extend(score_batch(tx, &ids, &rules, &settings, now, actor).await?);
    }
    Ok(changed)
}

async fn score_batch(
    tx: &mut PgConnection,
    ids: &[Uuid],
    rules: &[ScoringRule],
    settings: &ScoringSettings,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let profiles: Vec<ProfileRow> = sqlx::query_as(
        "SELECT c.id, c.job_title, c.lead_source, c.lifecycle_stage, co.industry, co.employee_count \
         FROM contacts c LEFT JOIN companies co ON co.id = c.company_id AND co.delete_time IS NULL \
         WHERE c.id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    let engagement = engagement(tx, ids, rules, now).await?;
    let (mut scores, mut grades, mut stale) = (Vec::new(), Vec::new(), Vec::new());
    let mut details: Vec<Option<Vec<u8>>> = Vec::new();
    let mut qualifying = Vec::new();
    let mut changed = Vec::new();
    for row in &profiles {
        let profile = Profile {
            job_title: row.job_title.clone(),
            industry: row.industry.clone().unwrap_or_default(),
            employees: row.employee_count,
            lead_source: source_from_name(&row.lead_source).unwrap_or(LeadSource::Unspecified),
        };
        let events: Vec<Engaged> =
            engagement.iter().filter(|(id, _)| *id == row.id).map(|(_, event)| event.clone()).collect();
        let scored = scoring::score(rules, &profile, &events, now);
        let stage = stage_from_name(&row.lifecycle_stage)?;
        if settings.mql_threshold > 0
            && scored.score >= settings.mql_threshold
            && matches!(stage, LifecycleStage::Subscriber | LifecycleStage::Lead)
        {
            qualifying.push(ContactId::from(row.id));
        }
        let detail = LeadScore {
            contact_id: String::new(),
            score: scored.score,
            grade: scored.grade.into(),
            factors: scored.factors,
            compute_time: None,
            pending: false,
        };
        scores.push(scored.score);
        grades.push(grade_name(scored.grade));
        // Nothing to explain (no rule counted) is stored as NULL, as a
        // contact never scored: recomputing it writes nothing.
        let empty = detail.factors.is_empty() && detail.score == 0 && detail.grade == 0;
        details.push((!empty).then(|| detail.encode_to_vec()));
        stale.push(scored.stale_at);
    }
    let ids: Vec<Uuid> = profiles.iter().map(|row| row.id).collect();
    let moved: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE contacts c SET lead_score = s.score, lead_grade = s.grade, score_detail = s.detail, \
           score_version = $5, score_stale_at = s.stale, score_time = $7 \
         FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::bytea[], $6::timestamptz[]) \
           AS s(id, score, grade, detail, stale) \
         WHERE c.id = s.id AND (c.lead_score, c.lead_grade) IS DISTINCT FROM (s.score, s.grade) \
         RETURNING c.id",
    )
    .bind(&ids)
    .bind(&scores)
    .bind(&grades)
    .bind(&details)
    .bind(settings.rules_version)
    .bind(&stale)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    // The factors and version of unchanged scores move too (the statement
    // above skips them to report only real changes); a recompute that
    // finds everything as it was writes nothing (the row stays as is).
    sqlx::query(
        "UPDATE contacts c SET score_detail = s.detail, score_version = $3, score_stale_at = s.stale, \
           score_time = CASE WHEN c.score_detail IS DISTINCT FROM s.detail THEN $5 ELSE c.score_time END \
         FROM unnest($1::uuid[], $2::bytea[], $4::timestamptz[]) AS s(id, detail, stale) \
         WHERE c.id = s.id AND (c.score_version <> $3 OR c.score_detail IS DISTINCT FROM s.detail \
           OR c.score_stale_at IS DISTINCT FROM s.stale)",
    )
    .bind(&ids)
    .bind(&details)
    .bind(settings.rules_version)
    .bind(&stale)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    changed.extend(moved);
    let promoted = super::lifecycle::advance(
        tx,
        &qualifying,
        LifecycleStage::MarketingQualified,
        LifecycleCause::Rule,
        "mql_threshold",
        actor,
        now,
    )
    .await?;
    changed.extend(promoted);
    Ok(changed)
}

/// The engagement of `ids` the rules can see (the longest window): each
/// activity that happened, and each case opened.
async fn engagement(
    tx: &mut PgConnection,
    ids: &[Uuid],
    rules: &[ScoringRule],
    now: DateTime<Utc>,
) -> Result<Vec<(Uuid, Engaged)>, sqlx::Error> {
    use rapport_proto::contacts::v1::scoring_rule::Condition;
    let window = rules
        .iter()
        .filter(|rule| rule.enabled)
        .filter_map(|rule| match &rule.condition {
            Some(Condition::Engagement(condition)) => Some(condition.within_days),
            _ => None,
        })
        .max();
    let Some(window) = window else { return Ok(Vec::new()) };
    let since = now - chrono::Duration::days(i64::from(window));
    let activities: Vec<(Uuid, String, DateTime<Utc>, Uuid)> = sqlx::query_as(
        "SELECT who, a.kind, a.occur_time, a.id FROM activities a \
         CROSS JOIN LATERAL unnest(array_append(a.participant_ids, a.contact_id)) AS who \
         WHERE (a.contact_id = ANY($1) OR a.participant_ids && $1) AND who = ANY($1) \
           AND a.delete_time IS NULL AND a.kind <> 'TASK' AND a.occur_time >= $2 AND a.occur_time <= $3",
    )
    .bind(ids)
    .bind(since)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let cases: Vec<(Uuid, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT subject_id, occur_time, resource_id FROM timeline_entries \
         WHERE subject_type = 'contact' AND subject_id = ANY($1) AND kind = 'CASE_OPENED' \
           AND occur_time >= $2 AND occur_time <= $3",
    )
    .bind(ids)
    .bind(since)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let mut events = Vec::with_capacity(activities.len() + cases.len());
    for (who, kind, time, id) in activities {
        let kind = crate::domain::activity::kind_from_name(&kind).unwrap_or(ActivityKind::Note);
        events.push((who, Engaged { activity_kind: Some(kind), time, id: id.to_string() }));
    }
    for (who, time, id) in cases {
        events.push((who, Engaged { activity_kind: None, time, id }));
    }
    Ok(events)
}
