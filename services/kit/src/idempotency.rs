//! Idempotent writes: the first result of each `request_id` is stored in
//! the same transaction as the write, so a retry (even a concurrent one)
//! returns it instead of writing twice. Keys are scoped to the principal
//! that sent them: another caller's key neither replays nor blocks.
//!
//! ```text
//! let mut tx = pool.begin().await?;
//! match write.claim(&mut tx, "CreateContact").await? {
//!     Claim::Replay(response) => return decode(response),   // tx is rolled back on drop
//!     Claim::Fresh => {}
//! }
//! ... insert ...
//! write.record(&mut tx, &response_bytes).await?;
//! tx.commit().await?;
//! ```
//! A concurrent retry blocks on the first call's uncommitted key until it
//! commits (then replays its result) or rolls back (then runs itself).

use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use std::time::Duration;

use crate::auth::{Owned, Ownership, Principal};
use crate::problem::Problem;

/// Who makes a change, and the idempotency key of a create.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    /// The principal's subject (or the service's own name), as the change
    /// log records it.
    pub actor: &'a str,
    /// `request_id` and the encoded request, for creates.
    pub request: Option<(&'a str, &'a [u8])>,
    /// The caller whose ownership rules apply; `None` when the service acts
    /// on its own (feed consumers, workers), bound by no caller's rules.
    pub principal: Option<&'a Principal>,
}

impl<'a> Write<'a> {
    /// A write by `principal`, without a request id.
    pub fn by(principal: &'a Principal) -> Write<'a> {
        Write { actor: &principal.subject, request: None, principal: Some(principal) }
    }

    /// A write the service makes on its own, recorded as `actor` (e.g.
    /// `contacts-feed`).
    pub fn service(actor: &'a str) -> Write<'a> {
        Write { actor, request: None, principal: None }
    }

    /// Claims this write's `request_id` (if any) for `operation`, scoped to
    /// its actor: [`Claim::Fresh`] without one.
    pub async fn claim(&self, tx: &mut PgConnection, operation: &str) -> Result<Claim, Error> {
        match self.request {
            Some((request_id, request)) => claim(tx, operation, self.actor, request_id, request).await,
            None => Ok(Claim::Fresh),
        }
    }

    /// Records `response` as the answer to this write's `request_id` (if any).
    pub async fn record(&self, tx: &mut PgConnection, response: &[u8]) -> Result<(), Error> {
        match self.request {
            Some((request_id, _)) => record(tx, self.actor, request_id, response).await,
            None => Ok(()),
        }
    }

    /// May this write change the fields `changed` of `record` under
    /// `rules`? Always for the service acting on its own.
    pub fn may_change(&self, rules: &Ownership, record: Owned<'_>, changed: &[&str]) -> Result<(), Problem> {
        self.principal.map_or(Ok(()), |principal| rules.change(principal, record, changed))
    }

    /// May this write give a record the owner and team of `to` (from
    /// `from`; `None` on a create)? Always for the service on its own.
    pub fn may_assign(
        &self,
        rules: &Ownership,
        from: Option<Owned<'_>>,
        to: Owned<'_>,
    ) -> Result<(), Problem> {
        self.principal.map_or(Ok(()), |principal| rules.reassign(principal, from, to))
    }
}

/// A create's `request_id` and the fingerprint of the request it came with
/// (the request encoded without its key, so a retry matches the first call).
#[derive(Debug, Clone)]
pub struct RequestKey {
    request_id: String,
    fingerprint: Vec<u8>,
}

impl RequestKey {
    /// The key taken out of `request` (`std::mem::take(&mut request.request_id)`)
    /// and the rest of `request`, encoded.
    pub fn new(request_id: String, request: &impl prost::Message) -> RequestKey {
        RequestKey { request_id, fingerprint: request.encode_to_vec() }
    }

    /// The write of `principal` with this key (none when the client sent none).
    pub fn write<'a>(&'a self, principal: &'a Principal) -> Write<'a> {
        let request =
            (!self.request_id.is_empty()).then_some((self.request_id.as_str(), self.fingerprint.as_slice()));
        Write { request, ..Write::by(principal) }
    }
}

/// The longest `request_id` accepted.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// What to do with a request carrying a `request_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time: run it and [`record`] the response.
    Fresh,
    /// Seen before: answer with the stored response (encoded protobuf).
    Replay(Vec<u8>),
}

/// Why a `request_id` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed id.
    #[error("request_id {0}")]
    Invalid(&'static str),
    /// The id was used before with a different request or operation.
    #[error("request_id was already used for a different request")]
    Reused,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Error {
    /// The client-facing problem, or the database error to log.
    pub fn problem(self) -> Result<Problem, anyhow::Error> {
        match self {
            Error::Invalid(what) => Ok(Problem::invalid_field("INVALID_REQUEST_ID", "request_id", what)),
            Error::Reused => Ok(Problem::invalid_field(
                "REQUEST_ID_REUSED",
                "request_id",
                "was already used for a different request; use a new request_id for a new request",
            )),
            Error::Database(err) => match crate::problem::database_problem(&err) {
                Some(problem) => Ok(problem),
                None => Err(anyhow::Error::new(err).context("idempotency key")),
            },
        }
    }
}

fn validate(request_id: &str) -> Result<(), Error> {
    // An empty key would be shared by every request that carries none.
    if request_id.is_empty() {
        return Err(Error::Invalid("must not be empty"));
    }
    if request_id.len() > MAX_REQUEST_ID_LEN {
        return Err(Error::Invalid("must be at most 128 characters"));
    }
    if !request_id.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::Invalid("must be printable ASCII without spaces (a UUID is ideal)"));
    }
    Ok(())
}

/// Claims `principal`'s `request_id` for `operation` with the request's
/// encoded bytes (the `request_id` field itself cleared) inside the
/// caller's transaction.
pub async fn claim(
    tx: &mut PgConnection,
    operation: &str,
    principal: &str,
    request_id: &str,
    request: &[u8],
) -> Result<Claim, Error> {
    validate(request_id)?;
    let hash = Sha256::digest(request).to_vec();
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (principal, request_id, operation, request_hash) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (principal, request_id) DO NOTHING",
    )
    .bind(principal)
    .bind(request_id)
    .bind(operation)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::Fresh);
    }
    let (stored_operation, stored_hash, response): (String, Vec<u8>, Option<Vec<u8>>) = sqlx::query_as(
        "SELECT operation, request_hash, response FROM idempotency_keys WHERE principal = $1 AND request_id = $2",
    )
    .bind(principal)
    .bind(request_id)
    .fetch_one(&mut *tx)
    .await?;
    match response {
        Some(response) if stored_operation == operation && stored_hash == hash => Ok(Claim::Replay(response)),
        _ => Err(Error::Reused),
    }
}

/// Stores the response of a [`Claim::Fresh`] request, in the same
/// transaction as its effect.
pub async fn record(
    tx: &mut PgConnection,
    principal: &str,
    request_id: &str,
    response: &[u8],
) -> Result<(), Error> {
    sqlx::query("UPDATE idempotency_keys SET response = $3 WHERE principal = $1 AND request_id = $2")
        .bind(principal)
        .bind(request_id)
        .bind(response)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Forgets keys older than `retention`. Returns how many were removed.
pub async fn prune(db: impl sqlx::PgExecutor<'_>, retention: Duration) -> Result<u64, sqlx::Error> {
    let seconds = retention.as_secs_f64();
    let result =
        sqlx::query("DELETE FROM idempotency_keys WHERE create_time < now() - make_interval(secs => $1)")
            .bind(seconds)
            .execute(db)
            .await?;
    Ok(result.rows_affected())
}
