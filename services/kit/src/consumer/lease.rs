//! The lease: a session advisory lock on a connection of its own, held
//! while this replica consumes a feed. The lock goes with the session, so a
//! replica that dies (or loses its connection) frees the feed for another.

use std::time::Duration;

use sqlx::{Connection as _, PgConnection, PgPool};

/// Advisory lock class of consumer leases (the second key is the hash of
/// `<schema>:<feed>`), apart from the change log's append lock.
pub const LEASE_LOCK_CLASS: i32 = 0x7263_6f6e; // "rcon"

/// The longest any statement on the lease connection may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The key's second half; `current_schema()` is where the feed's cursor
/// lives, so consumers of the same feed name in other schemas do not meet.
const KEY: &str = "hashtext(current_schema() || ':' || $2)";

/// A held lease. Dropping it closes its connection, which frees the lock.
pub(super) struct Lease {
    connection: PgConnection,
    feed: String,
}

impl Lease {
    /// Waits until this replica holds the lease of `feed`, trying every
    /// `retry`.
    pub(super) async fn acquire(pool: &PgPool, feed: &str, retry: Duration) -> Lease {
        let mut idle: Option<PgConnection> = None;
        let mut waiting = false;
        loop {
            let connection = match idle.take() {
                Some(connection) => Some(connection),
                None => match within(PgConnection::connect_with(&pool.connect_options())).await {
                    Ok(connection) => Some(connection),
                    Err(err) => {
                        tracing::debug!(error = %err, "cannot connect for the change feed lease");
                        None
                    }
                },
            };
            if let Some(mut connection) = connection {
                let locked = within(
                    sqlx::query_scalar(&format!("SELECT pg_try_advisory_lock($1, {KEY})"))
                        .bind(LEASE_LOCK_CLASS)
                        .bind(feed)
                        .fetch_one(&mut connection),
                )
                .await;
                match locked {
                    Ok(true) => return Lease { connection, feed: feed.to_owned() },
                    Ok(false) => {
                        if !waiting {
                            tracing::info!("another replica consumes the change feed; standing by");
                            waiting = true;
                        }
                        idle = Some(connection);
                    }
                    Err(err) => tracing::warn!(error = %err, "cannot take the change feed lease"),
                }
            }
            tokio::time::sleep(retry).await;
        }
    }

    /// True while the lease connection answers (and so still holds the lock).
    pub(super) async fn is_held(&mut self) -> bool {
        match within(sqlx::query("SELECT 1").execute(&mut self.connection)).await {
            Ok(_) => true,
            Err(err) => {
                tracing::warn!(error = %err, "the change feed lease connection failed");
                false
            }
        }
    }

    /// Lets the lease go at once (rather than when the server notices the
    /// connection is gone).
    pub(super) async fn release(mut self) {
        let unlocked = within(
            sqlx::query(&format!("SELECT pg_advisory_unlock($1, {KEY})"))
                .bind(LEASE_LOCK_CLASS)
                .bind(&self.feed)
                .execute(&mut self.connection),
        )
        .await;
        if let Err(err) = unlocked {
            tracing::debug!(error = %err, "cannot release the change feed lease; closing its connection");
        }
        if let Err(err) = within(self.connection.close()).await {
            tracing::debug!(error = %err, "cannot close the change feed lease connection");
        }
    }
}

/// `operation` with [`TIMEOUT`].
async fn within<T>(operation: impl Future<Output = Result<T, sqlx::Error>>) -> Result<T, sqlx::Error> {
    tokio::time::timeout(TIMEOUT, operation).await.unwrap_or_else(|_| {
        let timed_out = std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time");
        Err(sqlx::Error::Io(timed_out))
    })
}
