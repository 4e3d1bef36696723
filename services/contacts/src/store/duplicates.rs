//! Likely duplicate contacts: the candidates of one contact, candidate
//! groups across the whole book (keyset paged by stage and key), and the
//! background computation of the phone keys.

use std::collections::BTreeMap;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::duplicates::{self, FREEMAIL_DOMAINS, NAME_SIMILARITY, PhoneRegion, Reason};

/// The most contacts a group lists (`size` says how many share the key).
pub const MAX_GROUP_MEMBERS: i64 = 50;
/// Companies whose contacts one name-similarity pass compares.
const COMPANIES_PER_PASS: i64 = 50;
/// Passes one page makes at most (so a page's work is bounded even when
/// few companies hold similar names).
const PASSES_PER_PAGE: usize = 5;

/// The lower-cased, accent-folded full name of `contacts` row `alias`.
macro_rules! full_name {
    ($alias:literal) => {
        concat!("public.unaccent(lower(", $alias, ".given_name || ' ' || ", $alias, ".family_name))")
    };
}

/// A contact that may be the same person as another.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: Uuid,
    pub reasons: Vec<Reason>,
    pub score: f64,
}

/// The live contacts that may be the same person as contact `id`, best
/// first: same normalized email (when `by_email`), same phone (`phone` is
/// its E.164, computed fresh by the caller), similar name at its company or
/// under its email domain (unless a freemail one).
pub async fn of_contact(
    pool: &PgPool,
    id: Uuid,
    phone: Option<&str>,
    by_email: bool,
    limit: usize,
) -> Result<Vec<Candidate>, sqlx::Error> {
    let sql = concat!(
        "WITH me AS ( \
           SELECT id, email_key, email_domain, company_id, ",
        full_name!("c"),
        " AS name FROM contacts c WHERE id = $1 \
         ), found AS ( \
           SELECT c.id, 'email' AS reason, 0::float8 AS similarity FROM contacts c, me \
           WHERE $3 AND c.email_key = me.email_key AND c.id <> me.id AND c.delete_time IS NULL \
           UNION ALL \
           SELECT c.id, 'phone', 0 FROM contacts c \
           WHERE $2 <> '' AND c.phone_e164 = $2 AND c.id <> $1 AND c.delete_time IS NULL \
           UNION ALL \
           SELECT c.id, 'company', similarity(me.name, ",
        full_name!("c"),
        ") FROM contacts c, me \
           WHERE c.company_id = me.company_id AND c.id <> me.id AND c.delete_time IS NULL \
           UNION ALL \
           SELECT c.id, 'domain', similarity(me.name, ",
        full_name!("c"),
        ") FROM contacts c, me \
           WHERE me.email_domain <> ALL($4) AND c.email_domain = me.email_domain \
             AND c.id <> me.id AND c.delete_time IS NULL \
         ) \
         SELECT id, reason, similarity FROM found \
         WHERE reason IN ('email', 'phone') OR similarity >= $5"
    );
    let rows: Vec<(Uuid, String, f64)> = sqlx::query_as(sql)
        .bind(id)
        .bind(phone.unwrap_or(""))
        .bind(by_email)
        .bind(FREEMAIL_DOMAINS)
        .bind(NAME_SIMILARITY)
        .fetch_all(pool)
        .await?;
    let mut by_contact: BTreeMap<Uuid, BTreeMap<Reason, f64>> = BTreeMap::new();
    for (candidate, reason, similarity) in rows {
        let Some(reason) = Reason::from_name(&reason) else { continue };
        let best = by_contact.entry(candidate).or_default().entry(reason).or_insert(0.0);
        *best = best.max(similarity);
    }
    let mut candidates: Vec<Candidate> = by_contact
        .into_iter()
        .map(|(id, reasons)| Candidate {
            id,
            score: duplicates::combined(
                reasons.iter().map(|(reason, similarity)| duplicates::score(*reason, *similarity)),
            ),
            reasons: reasons.into_keys().collect(),
        })
        .collect();
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    candidates.truncate(limit);
    Ok(candidates)
}

/// Where the whole-book scan is: the stage, then the key within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Groups sharing a normalized email.
    Email,
    /// Groups sharing a phone number.
    Phone,
    /// Pairs of similar names, company by company.
    Company,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Email => "email",
            Stage::Phone => "phone",
            Stage::Company => "company",
        }
    }

    pub fn from_name(name: &str) -> Option<Stage> {
        [Stage::Email, Stage::Phone, Stage::Company].into_iter().find(|stage| stage.name() == name)
    }

    fn next(self) -> Option<Stage> {
        match self {
            Stage::Email => Some(Stage::Phone),
            Stage::Phone => Some(Stage::Company),
            Stage::Company => None,
        }
    }
}

/// A position of the whole-book scan: past `after` (a key) in `stage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub stage: Stage,
    pub after: String,
}

impl Position {
    /// The start of the scan.
    pub fn start() -> Position {
        Position { stage: Stage::Email, after: String::new() }
    }
}

/// A group of contacts that may be one person.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Its members (at most [`MAX_GROUP_MEMBERS`]), oldest first.
    pub ids: Vec<Uuid>,
    /// How many contacts share the key.
    pub size: i64,
    pub reason: Reason,
    /// The normalized email, the E.164 phone, or the company id.
    pub key: String,
    pub score: f64,
}

/// About `limit` groups from `from` on, and where the next page starts
/// (`None` at the end). A page may hold fewer (even none) while the scan
/// goes on: its work is bounded.
pub async fn book_page(
    pool: &PgPool,
    from: Position,
    limit: usize,
    by_email: bool,
) -> Result<(Vec<Group>, Option<Position>), sqlx::Error> {
    let mut groups = Vec::new();
    let mut position = from;
    let mut passes = 0;
    loop {
        let wanted = limit.saturating_sub(groups.len()).max(1);
        let (found, exhausted, last) = match position.stage {
            Stage::Email if !by_email => (Vec::new(), true, None),
            Stage::Email | Stage::Phone => shared_keys(pool, &position, wanted).await?,
            Stage::Company => similar_names(pool, &position).await?,
        };
        groups.extend(found);
        passes += 1;
        position = match (exhausted, position.stage.next()) {
            (true, Some(stage)) => Position { stage, after: String::new() },
            (true, None) => return Ok((groups, None)),
            (false, _) => Position { stage: position.stage, after: last.unwrap_or(position.after) },
        };
        if groups.len() >= limit || passes >= PASSES_PER_PAGE {
            return Ok((groups, Some(position)));
        }
    }
}

/// Groups sharing an email key or a phone, after `position.after`: the
/// groups, whether the stage is done, and the last key read.
async fn shared_keys(
    pool: &PgPool,
    position: &Position,
    limit: usize,
) -> Result<(Vec<Group>, bool, Option<String>), sqlx::Error> {
    let (reason, sql) = match position.stage {
        Stage::Email => (
            Reason::SameEmail,
            "SELECT email_key, (array_agg(id ORDER BY id))[1:$3], count(*) FROM contacts \
             WHERE delete_time IS NULL AND email_key > $1 \
             GROUP BY email_key HAVING count(*) > 1 ORDER BY email_key LIMIT $2",
        ),
        _ => (
            Reason::SamePhone,
            "SELECT phone_e164, (array_agg(id ORDER BY id))[1:$3], count(*) FROM contacts \
             WHERE delete_time IS NULL AND phone_e164 <> '' AND phone_e164 > $1 \
             GROUP BY phone_e164 HAVING count(*) > 1 ORDER BY phone_e164 LIMIT $2",
        ),
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows: Vec<(String, Vec<Uuid>, i64)> =
        sqlx::query_as(sql).bind(&position.after).bind(limit).bind(MAX_GROUP_MEMBERS).fetch_all(pool).await?;
    let exhausted = (rows.len() as i64) < limit;
    let last = rows.last().map(|(key, _, _)| key.clone());
    let groups = rows
        .into_iter()
        .map(|(key, ids, size)| Group { ids, size, reason, key, score: duplicates::score(reason, 0.0) })
        .collect();
    Ok((groups, exhausted, last))
}

/// Pairs of similar names among the contacts of the next companies after
/// `position.after` (a company id): the pairs, whether every company is
/// done, and the last company read.
async fn similar_names(
    pool: &PgPool,
    position: &Position,
) -> Result<(Vec<Group>, bool, Option<String>), sqlx::Error> {
    let after: Option<Uuid> = if position.after.is_empty() {
        None
    } else {
        Some(Uuid::parse_str(&position.after).map_err(|err| sqlx::Error::Decode(Box::new(err)))?)
    };
    let batch: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM companies WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(COMPANIES_PER_PASS)
            .fetch_all(pool)
            .await?;
    let sql = concat!(
        "WITH people AS ( \
           SELECT c.id, c.company_id, ",
        full_name!("c"),
        " AS name FROM contacts c \
           WHERE c.company_id = ANY($1) AND c.delete_time IS NULL \
         ) \
         SELECT a.company_id, a.id, b.id, similarity(a.name, b.name)::float8 \
         FROM people a JOIN people b ON b.company_id = a.company_id AND a.id < b.id \
         WHERE similarity(a.name, b.name) >= $2 \
         ORDER BY a.company_id, a.id, b.id"
    );
    let rows: Vec<(Uuid, Uuid, Uuid, f64)> =
        sqlx::query_as(sql).bind(&batch).bind(NAME_SIMILARITY).fetch_all(pool).await?;
    let reason = Reason::SimilarNameSameCompany;
    let groups = rows
        .into_iter()
        .map(|(company, a, b, similarity)| Group {
            ids: vec![a, b],
            size: 2,
            reason,
            key: company.to_string(),
            score: duplicates::score(reason, similarity),
        })
        .collect();
    let exhausted = (batch.len() as i64) < COMPANIES_PER_PASS;
    Ok((groups, exhausted, batch.last().map(Uuid::to_string)))
}

/// Computes the E.164 phone key of up to `batch` contacts that lack it
/// (new, imported or re-phoned ones; '' when there is no phone or it does
/// not parse). Returns how many it computed.
pub async fn fill_phone_keys(
    tx: &mut PgConnection,
    region: PhoneRegion,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let pending: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT id, phone FROM contacts WHERE phone_e164 IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let (ids, keys): (Vec<Uuid>, Vec<String>) =
        pending.into_iter().map(|(id, phone)| (id, region.e164(&phone).unwrap_or_default())).unzip();
    let done = sqlx::query(
        "UPDATE contacts c SET phone_e164 = u.key FROM unnest($1::uuid[], $2::text[]) AS u (id, key) \
         WHERE c.id = u.id",
    )
    .bind(&ids)
    .bind(&keys)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
}
