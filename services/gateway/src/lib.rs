//! The gateway: Rapport's one public endpoint. Apps call it with gRPC,
//! browsers with gRPC-web, ERP systems with generated clients; it
//! authenticates, limits and traces every call and forwards it, undecoded,
//! to the service that owns it.
//!
//! - [`config`]: typed configuration from the environment.
//! - [`backend`]: each service area's endpoints, health-checked and
//!   balanced client-side.
//! - [`proxy`]: the transparent proxy (routing, deadlines, framing checks,
//!   load shedding, clean stream endings at shutdown).
//! - [`frames`]: gRPC length-prefixed framing checks.
//! - [`customer`]: `GetCustomer360`, the gateway's own API.
//! - [`metrics`]: the gateway's counters beside kit's per-call metrics.
//!
//! The request path: CORS → gRPC-web translation → trace span and RPC
//! metrics → authentication (JWT or API key) → per-principal rate limit →
//! the gateway's own services (health, reflection, Customer 360) or the
//! proxy. [`App::build`] binds the listeners (so tests can use port 0);
//! [`App::run_until`] serves until shutdown.

pub mod backend;
pub mod config;
pub mod conn;
pub mod customer;
pub mod frames;
pub mod metrics;
pub mod proxy;

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::Context;
use rapport_kit::auth::{AuthLayer, Verifier};
use rapport_kit::ratelimit::{RateLimitLayer, RateLimiter};
use rapport_kit::redis::Redis;
use rapport_kit::server::{self, Served, WebConfig};
use rapport_kit::shutdown::{self, Shutdown, Trigger};
use rapport_proto::gateway::v1::customer_service_server::CustomerServiceServer;
use tokio::net::TcpListener;

pub use config::Config;

use crate::backend::{Backend, BackendSettings};
use crate::metrics::GatewayMetrics;
use crate::proxy::{Proxy, ProxySettings};

/// A built, bound, not yet serving gateway.
pub struct App {
    listener: TcpListener,
    admin_listener: Option<TcpListener>,
    config: Config,
    metrics: rapport_kit::metrics::Metrics,
    gateway_metrics: GatewayMetrics,
    backends: HashMap<String, Backend>,
    limiter: RateLimiter,
    background: Trigger,
}

impl App {
    /// Starts watching the backends and binds the listeners. Backends may
    /// be down: calls to them fail with UNAVAILABLE until they are up.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let metrics = rapport_kit::metrics::Metrics::new();
        let gateway_metrics = GatewayMetrics::register(&metrics);
        let (background, background_shutdown) = shutdown::channel();
        let settings = BackendSettings {
            connect_timeout: config.connect_timeout,
            health_interval: config.health_interval,
            dns_refresh: config.dns_refresh,
        };
        let mut backends = HashMap::new();
        for (area, target) in config.routed() {
            let started = Backend::start(
                area,
                target,
                settings,
                gateway_metrics.backend_health.clone(),
                background_shutdown.clone(),
            )?;
            backends.insert(area.to_owned(), started);
        }
        let limiter = match Redis::connect(&config.redis)? {
            Some(redis) => RateLimiter::new(redis, config.rate_limit),
            None => RateLimiter::local(config.rate_limit),
        };
        let limiter_metrics = limiter.metrics();
        metrics.register(
            "rapport_rate_limited",
            "Calls refused by the per-principal rate limit, by the bucket that refused them",
            limiter_metrics.limited.clone(),
        );
        metrics.register(
            "rapport_rate_limiter_degraded",
            "1 while Redis is unavailable and rate limits fall back to per-replica buckets",
            limiter_metrics.degraded.clone(),
        );
        let listener = server::bind(config.listen).await?;
        let admin_listener = match config.metrics_listen {
            Some(addr) => Some(server::bind(addr).await?),
            None => None,
        };
        Ok(App { listener, admin_listener, config, metrics, gateway_metrics, backends, limiter, background })
    }

    /// The bound gRPC / gRPC-web address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// The bound `/metrics` address, if served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.admin_listener.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// Serves until `shutdown`: stops accepting, ends open streams cleanly,
    /// and lets in-flight unary calls finish within the shutdown grace.
    pub async fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let verifier = Verifier::new(self.config.auth.clone()).context("authentication settings")?;
        let auth = AuthLayer::new(verifier, vec![customer::policy()])
            .authenticate_unlisted()
            .public_paths(self.config.public_paths.clone())
            .with_metrics(&self.metrics);
        let proxy = Proxy::new(
            self.backends.clone(),
            (
                proxy::method_kinds(rapport_proto::FILE_DESCRIPTOR_SET)?,
                proxy::resend::rules(rapport_proto::FILE_DESCRIPTOR_SET)?,
            ),
            ProxySettings {
                default_deadline: self.config.default_deadline,
                max_deadline: self.config.max_deadline,
                max_message_bytes: self.config.server.max_message_bytes,
                max_concurrency: self.config.max_concurrency,
                max_streams: self.config.max_streams,
            },
            self.gateway_metrics.clone(),
            shutdown.clone(),
        );
        let max = self.config.server.max_message_bytes;
        let backends = customer::Backends {
            contacts: self.backends.get("contacts").cloned(),
            pipeline: self.backends.get("pipeline").cloned(),
            support: self.backends.get("support").cloned(),
        };
        let customer =
            CustomerServiceServer::new(customer::Customer::new(backends, self.config.default_deadline))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max);
        let router = tonic::service::Routes::new(customer)
            .into_axum_router()
            .fallback_service(proxy)
            .layer(RateLimitLayer::new(self.limiter.clone()));
        let readiness: server::ReadinessCheck = Box::new(|| Box::pin(async { true }));
        let served = Served {
            component: "gateway",
            routes: tonic::service::Routes::from(router),
            service_names: vec![customer::SERVICE_NAME],
            // Every public service answers here (the bench's echo does not).
            advertised: rapport_proto::SERVICES
                .iter()
                .map(|(name, _)| *name)
                .filter(|name| !name.starts_with("rapport.bench."))
                .collect(),
            auth,
            readiness,
            metrics: self.metrics.clone(),
            admin_listener: self.admin_listener,
            web: Some(WebConfig { allowed_origins: self.config.cors_origins.clone() }),
        };
        let addr = self.listener.local_addr().unwrap_or(self.config.listen);
        let areas: Vec<&str> = self.backends.keys().map(String::as_str).collect();
        tracing::info!(%addr, backends = ?areas, "gateway serving");
        let result = server::serve(self.listener, &self.config.server, served, shutdown).await;
        self.background.fire();
        result
    }
}
