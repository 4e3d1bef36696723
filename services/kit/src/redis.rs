//! Redis as an optional accelerator: a reconnecting connection whose
//! failures callers treat as cache misses, and a reconnecting pub/sub
//! subscriber.
//!
//! After a failed command Redis is skipped for a short back-off instead of
//! making every request wait for a dead server; the first command after it
//! probes again.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::{ConfigError, Env};
use crate::shutdown::Shutdown;

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://` URL, or `rediss://` for TLS; `None` disables Redis (every
    /// lookup is a miss).
    pub url: Option<String>,
    /// PEM file of the CA certificates a `rediss://` server's certificate
    /// must chain to, instead of the system's (a managed Redis's or a
    /// private CA).
    pub ca_file: Option<PathBuf>,
    /// PEM files of a client certificate and its key, for servers that
    /// require one (`tls-auth-clients yes`).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Upper bound of one command, connect included.
    pub command_timeout: Duration,
    /// How long Redis is skipped after a failure.
    pub backoff: Duration,
}

/// The default local Redis, as `make run` provides it.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

impl RedisConfig {
    /// Reads `REDIS_URL` (`off` disables Redis; `rediss://` is TLS, the
    /// server's certificate checked against the system's CAs or those of
    /// `REDIS_CA_FILE`, with `REDIS_CLIENT_CERT_FILE` and
    /// `REDIS_CLIENT_KEY_FILE` for a client certificate),
    /// `REDIS_COMMAND_TIMEOUT` and `REDIS_BACKOFF`.
    pub fn from_env(env: &Env) -> Result<RedisConfig, ConfigError> {
        let url: String = env.or_default("REDIS_URL", DEFAULT_REDIS_URL.to_owned())?;
        let ca_file: Option<PathBuf> = env.optional("REDIS_CA_FILE")?;
        let cert: Option<PathBuf> = env.optional("REDIS_CLIENT_CERT_FILE")?;
        let key: Option<PathBuf> = env.optional("REDIS_CLIENT_KEY_FILE")?;
        let client_cert = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(ConfigError {
                    name: "REDIS_CLIENT_CERT_FILE".into(),
                    problem: "set both REDIS_CLIENT_CERT_FILE and REDIS_CLIENT_KEY_FILE, or neither".into(),
                });
            }
        };
        if (ca_file.is_some() || client_cert.is_some()) && !url.starts_with("rediss://") {
            return Err(ConfigError {
                name: "REDIS_URL".into(),
                problem: "REDIS_CA_FILE and client certificates need a rediss:// (TLS) URL".into(),
            });
        }
        Ok(RedisConfig {
            url: (url != "off").then_some(url),
            ca_file,
            client_cert,
            command_timeout: env.duration_or("REDIS_COMMAND_TIMEOUT", Duration::from_millis(250))?,
            backoff: env.duration_or("REDIS_BACKOFF", Duration::from_millis(500))?,
        })
    }
}

/// The client of `url`: TLS with the configured CA and client certificate
/// when they are set.
fn client(config: &RedisConfig, url: &str) -> anyhow::Result<redis::Client> {
    let invalid = |err: redis::RedisError| anyhow::anyhow!("REDIS_URL is not a valid redis:// URL: {err}");
    if config.ca_file.is_none() && config.client_cert.is_none() {
        return redis::Client::open(url).map_err(invalid);
    }
    let read = |name: &str, path: &PathBuf| {
        std::fs::read(path).map_err(|err| anyhow::anyhow!("{name} {}: {err}", path.display()))
    };
    let root_cert = match &config.ca_file {
        Some(path) => {
            let pem = read("REDIS_CA_FILE", path)?;
            crate::tls::root_store_of(&pem)
                .map_err(|err| anyhow::anyhow!("REDIS_CA_FILE {}: {err}", path.display()))?;
            Some(pem)
        }
        None => None,
    };
    let client_tls = match &config.client_cert {
        Some((cert, key)) => Some(redis::ClientTlsConfig {
            client_cert: read("REDIS_CLIENT_CERT_FILE", cert)?,
            client_key: read("REDIS_CLIENT_KEY_FILE", key)?,
        }),
        None => None,
    };
    redis::Client::build_with_tls(url, redis::TlsCertificates { client_tls, root_cert }).map_err(invalid)
}

/// Redis could not answer; treat it as a miss and go to the source of truth.
#[derive(Debug, thiserror::Error)]
#[error("redis unavailable")]
pub struct Unavailable;

/// A shared, reconnecting Redis handle. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    manager: ConnectionManager,
    command_timeout: Duration,
    backoff: Duration,
    started: Instant,
    /// Milliseconds since `started` until which Redis is skipped.
    skip_until_ms: AtomicU64,
}

impl Redis {
    /// Prepares a connection; connects lazily, so Redis may be down at start.
    /// Returns `None` when Redis is disabled.
    pub fn connect(config: &RedisConfig) -> anyhow::Result<Option<Redis>> {
        let Some(url) = &config.url else {
            return Ok(None);
        };
        let client = client(config, url)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.command_timeout))
            .set_response_timeout(Some(config.command_timeout))
            .set_number_of_retries(0)
            .set_max_delay(Duration::from_millis(200));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)?;
        Ok(Some(Redis {
            inner: Arc::new(Inner {
                client,
                manager,
                command_timeout: config.command_timeout,
                backoff: config.backoff,
                started: Instant::now(),
                skip_until_ms: AtomicU64::new(0),
            }),
        }))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// True while Redis is being skipped after a failure.
    pub fn in_backoff(&self) -> bool {
        self.now_ms() < self.inner.skip_until_ms.load(Ordering::Relaxed)
    }

    /// Runs one operation (a command, pipeline or script) on a clone of the
    /// shared connection. Any failure (down, timeout, error reply) is
    /// [`Unavailable`] and starts a back-off during which calls fail fast.
    pub async fn run<T, F, Fut>(&self, operation: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if self.in_backoff() {
            return Err(Unavailable);
        }
        self.run_now(operation).await
    }

    /// Like [`Redis::run`], but tried even during the back-off: for writes
    /// that must reach Redis as soon as it is back (invalidations), not for
    /// reads, which fall back to the database anyway.
    pub async fn run_now<T, F, Fut>(&self, operation: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let outcome =
            tokio::time::timeout(self.inner.command_timeout, operation(self.inner.manager.clone())).await;
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "redis command failed; skipping redis for a while");
                self.start_backoff();
                Err(Unavailable)
            }
            Err(_) => {
                tracing::warn!("redis command timed out; skipping redis for a while");
                self.start_backoff();
                Err(Unavailable)
            }
        }
    }

    fn start_backoff(&self) {
        let until =
            self.now_ms().saturating_add(u64::try_from(self.inner.backoff.as_millis()).unwrap_or(u64::MAX));
        self.inner.skip_until_ms.store(until, Ordering::Relaxed);
    }

    /// Follows `channel` until `shutdown`, calling `on_message` with each
    /// payload. Reconnects with back-off; `on_connected(true)` runs once
    /// subscribed and `on_connected(false)` whenever the subscription is lost
    /// (messages may have been missed meanwhile).
    pub fn subscribe(
        &self,
        channel: String,
        on_message: impl Fn(&[u8]) + Send + Sync + 'static,
        on_connected: impl Fn(bool) + Send + Sync + 'static,
        mut shutdown: Shutdown,
    ) -> tokio::task::JoinHandle<()> {
        let client = self.inner.client.clone();
        let connect_timeout = self.inner.command_timeout.max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(50);
            loop {
                let connected = async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    redis::RedisResult::Ok(pubsub)
                };
                match tokio::time::timeout(connect_timeout, connected).await {
                    Ok(Ok(pubsub)) => {
                        delay = Duration::from_millis(50);
                        on_connected(true);
                        tracing::debug!(channel, "subscribed");
                        let mut messages = pubsub.into_on_message();
                        loop {
                            tokio::select! {
                                message = messages.next() => match message {
                                    Some(message) => on_message(message.get_payload_bytes()),
                                    None => break,
                                },
                                () = shutdown.wait() => return,
                            }
                        }
                        on_connected(false);
                        tracing::warn!(channel, "redis subscription lost; reconnecting");
                    }
                    Ok(Err(err)) => {
                        tracing::debug!(channel, error = %err, "redis subscribe failed");
                    }
                    Err(_) => tracing::debug!(channel, "redis subscribe timed out"),
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.wait() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        })
    }
}
