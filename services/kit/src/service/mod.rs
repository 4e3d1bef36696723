//! The service shell: everything a service does around its own code, once.
//!
//! A service's `lib.rs` declares its [`Spec`] and makes these calls, in
//! order:
//! 1. [`Settings::from_env`] — the common settings, read with the service's
//!    prefix (its own settings sit beside them in its `Config`);
//! 2. [`Shell::start`] — the pool (with the service's connection
//!    parameters), migrations when configured, the change-log feed and its
//!    pruner (a periodic job on [`crate::worker`]), the listeners bound so
//!    the real ports are known, the metrics registry;
//! 3. its own state, workers ([`Shell::workers`]) and feed consumers;
//! 4. [`Shell::routes`] + [`RouteSet::serve`] for each generated server
//!    (size limits applied once, names from `NamedService::NAME`);
//! 5. [`Shell::into_app`] with its role tables; the [`App`] serves until
//!    shutdown ([`App::run_until`]): authentication, health with real
//!    readiness, reflection, drain, then the ordered stop — the workers as
//!    shutdown begins (open `WatchChanges` streams end), the server once
//!    drained, the workers awaited, the pool closed last.
//!
//! [`migrate`] is `rapport migrate` for one service.

mod routes;
mod settings;
mod workers;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;

use crate::auth::{AuthLayer, Policy, Verifier};
use crate::changelog::Feed;
use crate::metrics::Metrics;
use crate::redis::Redis;
use crate::server::{self, Served};
use crate::shutdown::Shutdown;
use crate::worker::{self, Periodic};

pub use routes::RouteSet;
pub use settings::Settings;
pub use workers::Workers;

/// What the kit needs to know of a service.
#[derive(Debug)]
pub struct Spec {
    /// One word, used everywhere: the `serve` target, the schema, the
    /// settings prefix (in capitals), the chart's values key.
    pub name: &'static str,
    /// The service's own migrations (kit's are added).
    pub migrations: &'static Migrator,
    /// Run-time parameters of every connection of its pool.
    pub db_settings: &'static [(&'static str, &'static str)],
    /// Where it listens by default.
    pub ports: Ports,
}

/// Default local ports of a service.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// gRPC.
    pub grpc: u16,
    /// `/metrics` and `/healthz`.
    pub metrics: u16,
}

impl Spec {
    /// The settings prefix: the name in capitals.
    pub fn prefix(&self) -> String {
        self.name.to_ascii_uppercase()
    }
}

/// How often the change log, idempotency keys and consumed event ids are
/// pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// A started service: connected, migrated, listening, not yet serving.
pub struct Shell {
    spec: &'static Spec,
    settings: Settings,
    pool: PgPool,
    feed: Feed,
    metrics: Metrics,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    workers: Workers,
}

impl Shell {
    /// Starts `spec`'s service with `settings` (see the module's steps).
    pub async fn start(spec: &'static Spec, settings: Settings) -> anyhow::Result<Shell> {
        if settings.page_token_keys.is_empty() {
            tracing::warn!(
                "no PAGE_TOKEN_KEYS (and no HS256 secret to derive them from): page tokens are signed \
                 with a key of this process, so another replica refuses them; set PAGE_TOKEN_KEYS when \
                 running more than one"
            );
        }
        crate::paging::use_keys(settings.page_token_keys.clone());
        if settings.auto_migrate {
            migrate(spec, &settings).await?;
        }
        let pool = crate::db::pool_with_settings(&settings.db, spec.db_settings)?;
        let workers = Workers::new();
        let feed =
            Feed::start(pool.clone(), &settings.db.schema, settings.watch_heartbeat, workers.shutdown());
        let pruner = Pruner { retention: settings.change_log_retention };
        let every = Periodic { name: "change_log_pruner", every: PRUNE_EVERY };
        workers.keep(worker::spawn(pool.clone(), every, pruner, workers.shutdown()));
        let listener = server::bind(settings.listen).await?;
        let metrics_listener = match settings.metrics_listen {
            Some(addr) => Some(
                server::bind(addr)
                    .await
                    .with_context(|| format!("metrics endpoint ({}_METRICS_ADDR)", spec.prefix()))?,
            ),
            None => None,
        };
        Ok(Shell { spec, settings, pool, feed, metrics: Metrics::new(), listener, metrics_listener, workers })
    }

    /// The service's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The pool, on the service's schema.
    pub fn pool(&self) -> PgPool {
        self.pool.clone()
    }

    /// The service's change feed (announce after writes; serve `WatchChanges`).
    pub fn feed(&self) -> Feed {
        self.feed.clone()
    }

    /// The metrics registry (to register the service's own families).
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Where background work is kept, and what it stops on.
    pub fn workers(&self) -> &Workers {
        &self.workers
    }

    /// Redis (lazily connected), or `None` when `REDIS_URL` is `off`.
    pub fn redis(&self) -> anyhow::Result<Option<Redis>> {
        Redis::connect(&self.settings.redis)
    }

    /// Runs `job` every `periodic.every`, once across replicas (see
    /// [`crate::worker`]), until shutdown.
    pub fn periodic(&self, periodic: Periodic, job: impl worker::Job) {
        self.workers.keep(worker::spawn(self.pool(), periodic, job, self.workers.shutdown()));
    }

    /// An empty route set with the service's message size limits.
    pub fn routes(&self) -> RouteSet {
        RouteSet::new(self.settings.server.max_message_bytes)
    }

    /// The service, ready to serve `routes` under `policies` (one role table
    /// per gRPC service).
    pub fn into_app(self, routes: RouteSet, policies: Vec<Policy>) -> App {
        App { shell: self, routes, policies, extra: () }
    }
}

/// A built, bound, not yet serving service; `X` is what it exposes to its
/// tests and composer (e.g. Contacts' caches).
pub struct App<X = ()> {
    shell: Shell,
    routes: RouteSet,
    policies: Vec<Policy>,
    extra: X,
}

impl<X> App<X> {
    /// This app exposing `extra` instead.
    pub fn with<Y>(self, extra: Y) -> App<Y> {
        App { shell: self.shell, routes: self.routes, policies: self.policies, extra }
    }

    /// What the service exposes besides serving.
    pub fn extra(&self) -> &X {
        &self.extra
    }

    /// The service's name.
    pub fn name(&self) -> &'static str {
        self.shell.spec.name
    }

    /// The fully-qualified names of the gRPC services it serves.
    pub fn service_names(&self) -> &[&'static str] {
        self.routes.names()
    }

    /// The bound gRPC address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shell.listener.local_addr().unwrap_or(self.shell.settings.listen)
    }

    /// Where `/metrics` is served (the real port); `None` when turned off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.shell.metrics_listener.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// The metrics registry.
    pub fn metrics(&self) -> Metrics {
        self.shell.metrics()
    }

    /// Serves until `shutdown`, then stops in order (see the module).
    pub async fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let addr = self.local_addr();
        let Shell { spec, settings, pool, metrics, listener, metrics_listener, workers, .. } = self.shell;
        let verifier = Verifier::new(settings.auth.clone()).context("authentication settings")?;
        let (routes, service_names) = self.routes.into_parts();
        let served = Served {
            component: spec.name,
            routes,
            advertised: service_names.clone(),
            service_names,
            auth: AuthLayer::new(verifier, self.policies),
            readiness: crate::db::readiness(&pool, spec.migrations),
            metrics,
            admin_listener: metrics_listener,
            web: None,
        };
        let stopping = Stopping { workers, pool };
        tracing::info!(%addr, service = spec.name, "serving");
        stopping.serve(listener, &settings, served, shutdown).await
    }
}

/// What is stopped after the server, in this order: the workers, then the
/// pool.
struct Stopping {
    workers: Workers,
    pool: PgPool,
}

/// How long, after the server has drained, the workers may take to stop,
/// and then the pool to close: the chart's termination period allows 15 s
/// past the drain for both and for flushing spans.
const STOP_LIMIT: Duration = Duration::from_secs(5);

impl Stopping {
    async fn serve(
        self,
        listener: TcpListener,
        settings: &Settings,
        served: Served,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        // Background work stops as soon as shutdown begins, so open
        // WatchChanges streams end (UNAVAILABLE) instead of holding the
        // drain for its whole grace.
        let result = {
            let workers = &self.workers;
            let mut begun = shutdown.clone();
            let server = server::serve(listener, &settings.server, served, shutdown);
            tokio::pin!(server);
            tokio::select! {
                result = &mut server => result,
                () = begun.wait() => {
                    workers.fire();
                    server.await
                }
            }
        };
        self.workers.stop(STOP_LIMIT).await;
        if tokio::time::timeout(STOP_LIMIT, self.pool.close()).await.is_err() {
            tracing::warn!("database connections still in use at shutdown; leaving them");
        }
        result
    }
}

/// The job that prunes the change log (after its retention), idempotency
/// keys (after [`crate::changelog::IDEMPOTENCY_RETENTION`]) and the ids of events consumed
/// from other feeds (after [`crate::consumer::APPLIED_EVENTS_RETENTION`]);
/// every service runs it on [`crate::worker`] (here, above all three).
struct Pruner {
    /// How long change-log rows stay watchable.
    retention: Duration,
}

#[tonic::async_trait]
impl crate::worker::Job for Pruner {
    async fn run(&self, tx: &mut sqlx::PgConnection) -> anyhow::Result<u64> {
        // Each in a savepoint of its own: one failing does not undo the others.
        sqlx::query("SAVEPOINT prune").execute(&mut *tx).await?;
        let outcome = crate::changelog::prune(&mut *tx, self.retention).await;
        let pruned = settle(tx, "change log", outcome).await?;
        sqlx::query("SAVEPOINT prune").execute(&mut *tx).await?;
        let outcome = crate::idempotency::prune(&mut *tx, crate::changelog::IDEMPOTENCY_RETENTION).await;
        let keys = settle(tx, "idempotency keys", outcome).await?;
        sqlx::query("SAVEPOINT prune").execute(&mut *tx).await?;
        let outcome = crate::consumer::prune(&mut *tx, crate::consumer::APPLIED_EVENTS_RETENTION).await;
        let applied = settle(tx, "applied feed events", outcome).await?;
        Ok(pruned + keys + applied)
    }
}

/// Keeps a prune's work (releasing its savepoint) or undoes it alone,
/// logged.
async fn settle(
    tx: &mut sqlx::PgConnection,
    what: &str,
    outcome: Result<u64, sqlx::Error>,
) -> anyhow::Result<u64> {
    match outcome {
        Ok(count) => {
            sqlx::query("RELEASE SAVEPOINT prune").execute(&mut *tx).await?;
            Ok(count)
        }
        Err(err) => {
            tracing::warn!(error = %err, what, "pruning failed");
            sqlx::query("ROLLBACK TO SAVEPOINT prune").execute(&mut *tx).await?;
            Ok(0)
        }
    }
}

/// Applies `spec`'s migrations (kit's and its own) with `settings` (`rapport migrate`).
/// Its pool has no statement or lock timeouts: an index build may take
/// long, and replicas wait for each other's migrations.
pub async fn migrate(spec: &'static Spec, settings: &Settings) -> anyhow::Result<()> {
    let pool = crate::db::pool_with_settings(&settings.db.without_timeouts(), spec.db_settings)?;
    crate::db::migrate(&pool, &settings.db.schema, spec.migrations).await?;
    pool.close().await;
    Ok(())
}
