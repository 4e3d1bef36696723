//! Backends: every replica of one service area, balanced client-side.
//!
//! HTTP/2 keeps one connection open for all calls, so a Kubernetes Service
//! alone would pin a gateway to one pod. Instead the gateway knows every
//! endpoint (a fixed list, or a DNS name — a headless Service — resolved
//! again every `GATEWAY_DNS_REFRESH`), keeps one connection to each, and
//! picks per call with power-of-two-choices on calls in flight.
//!
//! Each endpoint's `grpc.health.v1` service is asked every
//! `GATEWAY_HEALTH_INTERVAL`: an endpoint that is not SERVING (or does not
//! answer) is ejected, and re-admitted on its next SERVING answer. A call
//! that fails to connect ejects its endpoint at once, without waiting for
//! the next check. New endpoints are admitted until their first check says
//! otherwise, so a cold start does not refuse traffic.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use prometheus_client::metrics::gauge::Gauge;
use rand::Rng;
use rapport_kit::error::Problem;
use rapport_kit::shutdown::Shutdown;

use crate::conn::Conn;
use crate::metrics::{EndpointLabels, HealthGauges};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Where a backend's replicas are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Fixed `host:port` addresses.
    Static(Vec<String>),
    /// Every address a DNS name resolves to (a headless Service), on `port`.
    Dns {
        /// The name to resolve.
        host: String,
        /// The port every address listens on.
        port: u16,
    },
}

impl Target {
    /// Parses `host:port[,host:port…]` (an optional `http://` is ignored) or
    /// `dns:host:port` (also `dns:///host:port`).
    pub fn parse(raw: &str) -> Result<Target, String> {
        let raw = raw.trim();
        if let Some(rest) = raw.strip_prefix("dns:") {
            let rest = rest.trim_start_matches('/');
            let (host, port) =
                rest.rsplit_once(':').ok_or_else(|| format!("{raw:?}: expected dns:host:port"))?;
            let port = port.parse().map_err(|_| format!("{raw:?}: {port:?} is not a port"))?;
            if host.is_empty() {
                return Err(format!("{raw:?}: expected dns:host:port"));
            }
            return Ok(Target::Dns { host: host.to_owned(), port });
        }
        let mut addresses = Vec::new();
        for part in raw.split(',') {
            let part = part.trim();
            let address = part.strip_prefix("http://").unwrap_or(part).trim_end_matches('/');
            match address.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                    addresses.push(address.to_owned());
                }
                _ => return Err(format!("{part:?} is not host:port")),
            }
        }
        Ok(Target::Static(addresses))
    }
}

/// How endpoints are connected to and checked.
#[derive(Debug, Clone, Copy)]
pub struct BackendSettings {
    /// Upper bound of connecting to one endpoint.
    pub connect_timeout: Duration,
    /// How often each endpoint's health is checked.
    pub health_interval: Duration,
    /// How often a DNS target is resolved again.
    pub dns_refresh: Duration,
}

/// Upper bound of one health check (longer when the interval is longer).
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// One replica: a connection and its health.
pub struct Endpoint {
    address: String,
    conn: Conn,
    healthy: AtomicBool,
    in_flight: AtomicUsize,
    gauge: Gauge,
}

impl Endpoint {
    /// The `host:port` this endpoint is.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The endpoint's connection.
    pub fn conn(&self) -> &Conn {
        &self.conn
    }

    /// Whether calls are sent to this endpoint.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn set_healthy(&self, backend: &str, healthy: bool, why: &str) {
        if self.healthy.swap(healthy, Ordering::Relaxed) != healthy {
            if healthy {
                tracing::info!(backend, endpoint = %self.address, "backend endpoint re-admitted");
            } else {
                tracing::warn!(backend, endpoint = %self.address, why, "backend endpoint ejected");
            }
        }
        self.gauge.set(i64::from(healthy));
    }

    /// Counts a call as in flight until the guard drops.
    pub fn start_call(self: &Arc<Self>) -> CallGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        CallGuard { endpoint: Arc::clone(self) }
    }
}

/// Marks one call on an endpoint; dropping it ends the call.
pub struct CallGuard {
    endpoint: Arc<Endpoint>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every replica of one service area. Cheap to clone.
///
/// It is also a tower service, so a generated tonic client can call the
/// area through it (Customer 360 does): each call goes to a healthy
/// endpoint picked as above.
#[derive(Clone)]
pub struct Backend {
    inner: Arc<Inner>,
}

struct Inner {
    area: String,
    settings: BackendSettings,
    endpoints: RwLock<Arc<Vec<Arc<Endpoint>>>>,
    /// Health-check tasks, by endpoint address.
    checks: std::sync::Mutex<HashMap<String, tokio::task::AbortHandle>>,
    gauges: HealthGauges,
}

impl Backend {
    /// Starts connecting to `target` and checking its endpoints until
    /// `shutdown`. Connections are made lazily; nothing here fails on a
    /// backend that is down.
    pub(crate) fn start(
        area: &str,
        target: &Target,
        settings: BackendSettings,
        gauges: HealthGauges,
        shutdown: Shutdown,
    ) -> anyhow::Result<Backend> {
        let backend = Backend {
            inner: Arc::new(Inner {
                area: area.to_owned(),
                settings,
                endpoints: RwLock::new(Arc::new(Vec::new())),
                checks: std::sync::Mutex::new(HashMap::new()),
                gauges,
            }),
        };
        match target {
            Target::Static(addresses) => backend.set_endpoints(addresses.clone())?,
            Target::Dns { host, port } => {
                tokio::spawn(resolve_loop(backend.clone(), host.clone(), *port, shutdown.clone()));
            }
        }
        tokio::spawn({
            let backend = backend.clone();
            let mut shutdown = shutdown;
            async move {
                shutdown.wait().await;
                backend.stop_checks();
            }
        });
        Ok(backend)
    }

    /// The area this backend serves (`contacts`).
    pub fn area(&self) -> &str {
        &self.inner.area
    }

    /// The current endpoints.
    pub fn endpoints(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.inner.endpoints.read().map(|endpoints| Arc::clone(&endpoints)).unwrap_or_default()
    }

    /// A healthy endpoint for the next call (power of two choices on calls
    /// in flight), avoiding `except` when another is healthy; `None` when no
    /// endpoint is healthy.
    pub fn pick(&self, except: Option<&Endpoint>) -> Option<Arc<Endpoint>> {
        let endpoints = self.endpoints();
        let healthy: Vec<&Arc<Endpoint>> = endpoints
            .iter()
            .filter(|endpoint| endpoint.is_healthy())
            .filter(|endpoint| except.is_none_or(|except| !std::ptr::eq(endpoint.as_ref(), except)))
            .collect();
        match healthy.len() {
            0 => None,
            1 => Some(Arc::clone(healthy[0])),
            n => {
                let mut rng = rand::rng();
                let first = rng.random_range(0..n);
                let second = (first + rng.random_range(1..n)) % n;
                let (a, b) = (healthy[first], healthy[second]);
                let pick = if b.in_flight.load(Ordering::Relaxed) < a.in_flight.load(Ordering::Relaxed) {
                    b
                } else {
                    a
                };
                Some(Arc::clone(pick))
            }
        }
    }

    /// Ejects `endpoint` after a call could not reach it; its health check
    /// re-admits it.
    pub fn eject(&self, endpoint: &Endpoint, why: &str) {
        endpoint.set_healthy(&self.inner.area, false, why);
    }

    /// Replaces the endpoint set, keeping the connections of addresses that
    /// stay.
    fn set_endpoints(&self, addresses: Vec<String>) -> anyhow::Result<()> {
        let current = self.endpoints();
        let mut next = Vec::with_capacity(addresses.len());
        let mut added = Vec::new();
        for address in addresses {
            if next.iter().any(|endpoint: &Arc<Endpoint>| endpoint.address == address) {
                continue;
            }
            if let Some(existing) = current.iter().find(|endpoint| endpoint.address == address) {
                next.push(Arc::clone(existing));
                continue;
            }
            let conn = Conn::new(&address, self.inner.settings.connect_timeout)
                .map_err(|err| anyhow::anyhow!("backend {} endpoint {address}: {err}", self.inner.area))?;
            let gauge = self
                .inner
                .gauges
                .get_or_create(&EndpointLabels {
                    backend: self.inner.area.clone(),
                    endpoint: address.clone(),
                })
                .clone();
            gauge.set(1);
            let endpoint = Arc::new(Endpoint {
                address,
                conn,
                healthy: AtomicBool::new(true),
                in_flight: AtomicUsize::new(0),
                gauge,
            });
            added.push(Arc::clone(&endpoint));
            next.push(endpoint);
        }
        let removed: Vec<String> = current
            .iter()
            .filter(|old| !next.iter().any(|endpoint| endpoint.address == old.address))
            .map(|old| old.address.clone())
            .collect();
        if let Ok(mut endpoints) = self.inner.endpoints.write() {
            *endpoints = Arc::new(next);
        }
        if let Ok(mut checks) = self.inner.checks.lock() {
            for address in &removed {
                if let Some(task) = checks.remove(address) {
                    task.abort();
                }
                self.inner
                    .gauges
                    .remove(&EndpointLabels { backend: self.inner.area.clone(), endpoint: address.clone() });
                tracing::info!(backend = %self.inner.area, endpoint = %address, "backend endpoint removed");
            }
            for endpoint in added {
                tracing::info!(backend = %self.inner.area, endpoint = %endpoint.address, "backend endpoint added");
                let task = tokio::spawn(health_loop(self.clone(), Arc::clone(&endpoint)));
                checks.insert(endpoint.address.clone(), task.abort_handle());
            }
        }
        Ok(())
    }

    fn stop_checks(&self) {
        if let Ok(mut checks) = self.inner.checks.lock() {
            for (_, task) in checks.drain() {
                task.abort();
            }
        }
    }
}

/// Asks the endpoint's health service every interval. An explicit
/// NOT_SERVING ejects at once; a failed or timed-out check ejects only when
/// the one before failed too, so one slow answer (a busy replica, a cold
/// start) does not take an endpoint out of rotation.
async fn health_loop(backend: Backend, endpoint: Arc<Endpoint>) {
    let interval = backend.inner.settings.health_interval;
    let timeout = interval.max(HEALTH_CHECK_TIMEOUT);
    let mut client = HealthClient::new(endpoint.conn().clone());
    let mut failed_before = false;
    loop {
        let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
        request.set_timeout(timeout);
        let verdict = match tokio::time::timeout(timeout, client.check(request)).await {
            Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32 => Ok(()),
            Ok(Ok(_)) => Err(("not serving", true)),
            Ok(Err(_)) => Err(("health check failed", false)),
            Err(_) => Err(("health check timed out", false)),
        };
        match verdict {
            Ok(()) => {
                failed_before = false;
                endpoint.set_healthy(&backend.inner.area, true, "");
            }
            Err((why, definite)) => {
                if definite || failed_before {
                    endpoint.set_healthy(&backend.inner.area, false, why);
                }
                failed_before = true;
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// Resolves a DNS target now and every refresh interval.
async fn resolve_loop(backend: Backend, host: String, port: u16, mut shutdown: Shutdown) {
    let refresh = backend.inner.settings.dns_refresh;
    let mut last: Vec<String> = Vec::new();
    loop {
        match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(found) => {
                let mut addresses: Vec<String> = found.map(|addr: SocketAddr| addr.to_string()).collect();
                addresses.sort();
                addresses.dedup();
                if addresses != last {
                    tracing::info!(backend = %backend.inner.area, %host, endpoints = addresses.len(), "backend resolved");
                    if let Err(err) = backend.set_endpoints(addresses.clone()) {
                        tracing::warn!(backend = %backend.inner.area, error = %err, "cannot use resolved endpoints");
                    }
                    last = addresses;
                }
            }
            // Keep the last known endpoints: a DNS hiccup must not empty the backend.
            Err(err) => {
                tracing::warn!(backend = %backend.inner.area, %host, error = %err, "cannot resolve backend")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(refresh) => {}
            () = shutdown.wait() => return,
        }
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Backend {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::codegen::StdError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let backend = self.clone();
        Box::pin(async move {
            // A status in the error chain is what the tonic client reports.
            let Some(endpoint) = backend.pick(None) else {
                return Err(unavailable(backend.area(), "no healthy endpoint").into_status().into());
            };
            let _guard = endpoint.start_call();
            match endpoint.conn().send(request).await {
                Ok(response) => Ok(response.map(tonic::body::Body::new)),
                Err(err) if crate::conn::is_connect_error(err.as_ref()) => {
                    backend.eject(&endpoint, "connect failed");
                    Err(unavailable(backend.area(), "could not be reached").into_status().into())
                }
                Err(err) => Err(err),
            }
        })
    }
}

/// UNAVAILABLE `BACKEND_UNAVAILABLE` for `area`, saying `what` happened
/// ("no healthy endpoint", "could not be reached"), with the backend named
/// in the details and a hint to retry in a second.
pub fn unavailable(area: &str, what: &str) -> Problem {
    Problem::new(tonic::Code::Unavailable, "BACKEND_UNAVAILABLE", format!("{area}: {what}; retry shortly"))
        .meta("backend", area)
        .retry_after(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_lists_and_dns_names() {
        assert_eq!(
            Target::parse("127.0.0.1:50051, http://10.0.0.2:50051/").unwrap(),
            Target::Static(vec!["127.0.0.1:50051".to_owned(), "10.0.0.2:50051".to_owned()])
        );
        assert_eq!(
            Target::parse("dns:///contacts.rapport.svc:50051").unwrap(),
            Target::Dns { host: "contacts.rapport.svc".to_owned(), port: 50051 }
        );
        for bad in ["", "localhost", "dns:host", "dns::80", "a:b", "1.2.3.4:99999"] {
            assert!(Target::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
