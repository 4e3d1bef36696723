//! Prometheus metrics: one registry per server, the RPC metrics kit's server
//! records for every call, and the admin endpoint serving `/metrics`.
//!
//! Every call through [`crate::server::TraceLayer`] updates
//! - `rpc_server_requests_total{service, method, code}`: finished calls by
//!   their real gRPC status (`OK`, `INVALID_ARGUMENT`, …; a code outside the
//!   standard ones is its number; a call dropped before its status was sent
//!   is `CANCELLED`);
//! - `rpc_server_duration_seconds{service, method}`: from the request
//!   headers to the end of the response (its trailers);
//! - `rpc_server_in_flight{service, method}`: calls started, not yet ended.
//!
//! Labels come from the request path. To bound the number of series a
//! client can create with made-up paths, at most [`MAX_METHODS`] distinct
//! paths get labels of their own; later ones (and paths that are not
//! `/<service>/<method>`) share `service="_other", method="_other"`.
//!
//! The auth layer adds `rapport_auth_failures_total{reason}` when it is
//! given the metrics (`AuthLayer::with_metrics`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry, Unit};
use tokio::net::TcpListener;

use crate::shutdown::Shutdown;

/// Distinct request paths that get labels of their own (see the module docs).
pub const MAX_METHODS: usize = 1000;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the RPC duration buckets, in seconds: 0.1 ms to 10 s.
const DURATION_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The label of paths past [`MAX_METHODS`] or not shaped `/<service>/<method>`.
const OTHER: &str = "_other";

/// gRPC code names by number, as the gRPC spec spells them.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: String,
    method: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    service: String,
    method: String,
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabels {
    reason: &'static str,
}

/// The `rapport_auth_failures_total` family.
pub(crate) type AuthFailures = Family<ReasonLabels, Counter>;

/// Counts one failure of `reason` in `failures`.
pub(crate) fn count_auth_failure(failures: &AuthFailures, reason: &'static str) {
    failures.get_or_create(&ReasonLabels { reason }).inc();
}

type DurationFamily = Family<MethodLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// A process's metrics: a registry and the RPC metric families. Cheap to
/// clone (shared).
#[derive(Clone)]
pub struct Metrics {
    shared: Arc<Shared>,
}

struct Shared {
    registry: Mutex<Registry>,
    requests: Family<CodeLabels, Counter>,
    durations: DurationFamily,
    in_flight: Family<MethodLabels, Gauge>,
    /// Handles per request path, so a call allocates nothing to find them.
    methods: RwLock<HashMap<Box<str>, Arc<MethodMetrics>>>,
    other: OnceLock<Arc<MethodMetrics>>,
    auth_failures: OnceLock<AuthFailures>,
    /// Families registered once per registry by the modules above this one
    /// (e.g. the feed consumers'), by type.
    families: Mutex<HashMap<std::any::TypeId, Box<dyn std::any::Any + Send + Sync>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let methods = self.shared.methods.read().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("Metrics").field("methods", &methods).finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry holding the RPC metric families.
    pub fn new() -> Metrics {
        let requests = Family::<CodeLabels, Counter>::default();
        let durations = DurationFamily::new_with_constructor(duration_histogram);
        let in_flight = Family::<MethodLabels, Gauge>::default();
        let mut registry = Registry::default();
        registry.register(
            "rpc_server_requests",
            "Finished gRPC calls by final status code",
            requests.clone(),
        );
        registry.register_with_unit(
            "rpc_server_duration",
            "Duration of gRPC calls from request headers to the end of the response",
            Unit::Seconds,
            durations.clone(),
        );
        registry.register("rpc_server_in_flight", "gRPC calls started and not yet ended", in_flight.clone());
        Metrics {
            shared: Arc::new(Shared {
                registry: Mutex::new(registry),
                requests,
                durations,
                in_flight,
                methods: RwLock::new(HashMap::new()),
                other: OnceLock::new(),
                auth_failures: OnceLock::new(),
                families: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Registers an extra metric family (counter/gauge/histogram/Family
    /// handles are clonable Arcs: keep one, register a clone). `name` has no
    /// `_total` suffix for counters; the encoder adds it.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.shared.registry.lock().unwrap_or_else(PoisonError::into_inner).register(name, help, metric);
    }

    /// The OpenMetrics text exposition of everything registered (served with
    /// [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let registry = self.shared.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let mut text = String::with_capacity(8 * 1024);
        if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &registry) {
            // Writing to a String does not fail; a metric's encoder might.
            tracing::error!(error = %err, "cannot encode metrics");
        }
        text
    }

    /// The handles of the method at `path` (`/<service>/<method>`).
    pub(crate) fn rpc(&self, path: &str) -> Arc<MethodMetrics> {
        let shared = &self.shared;
        if let Some(found) = shared.methods.read().unwrap_or_else(PoisonError::into_inner).get(path) {
            return Arc::clone(found);
        }
        let Some((service, method)) = crate::rpc::split_path(path) else {
            return self.other();
        };
        let mut methods = shared.methods.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = methods.get(path) {
            return Arc::clone(found);
        }
        if methods.len() >= MAX_METHODS {
            drop(methods);
            return self.other();
        }
        let handles = Arc::new(self.method_metrics(service, method));
        methods.insert(path.into(), Arc::clone(&handles));
        handles
    }

    fn other(&self) -> Arc<MethodMetrics> {
        Arc::clone(self.shared.other.get_or_init(|| Arc::new(self.method_metrics(OTHER, OTHER))))
    }

    fn method_metrics(&self, service: &str, method: &str) -> MethodMetrics {
        let labels = MethodLabels { service: service.to_owned(), method: method.to_owned() };
        MethodMetrics {
            in_flight: self.shared.in_flight.get_or_create_owned(&labels),
            duration: self.shared.durations.get_or_create_owned(&labels),
            codes: std::array::from_fn(|_| OnceLock::new()),
            requests: self.shared.requests.clone(),
            labels,
        }
    }

    /// The `rapport_auth_failures_total{reason}` family, registered on first use.
    pub(crate) fn auth_failures(&self) -> AuthFailures {
        self.shared
            .auth_failures
            .get_or_init(|| {
                let failures = AuthFailures::default();
                self.register(
                    "rapport_auth_failures",
                    "Requests rejected by authentication or authorization, by ErrorInfo reason",
                    failures.clone(),
                );
                failures
            })
            .clone()
    }

    /// The families of type `F`, registered with `register` on first use
    /// and shared by every later caller (a module's families exist once per
    /// registry however many of its tasks run).
    pub fn families<F: Clone + Send + Sync + 'static>(&self, register: impl FnOnce(&Metrics) -> F) -> F {
        let key = std::any::TypeId::of::<F>();
        // Held while registering (which takes the registry's lock, never
        // this one), so two first callers cannot register twice.
        let mut all = self.shared.families.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(families) = all.get(&key).and_then(|found| found.downcast_ref::<F>()) {
            return families.clone();
        }
        let families = register(self);
        all.insert(key, Box::new(families.clone()));
        families
    }
}

/// The RPC metric handles of one method.
pub(crate) struct MethodMetrics {
    labels: MethodLabels,
    in_flight: Gauge,
    duration: Histogram,
    /// `rpc_server_requests` by standard code, created on first use.
    codes: [OnceLock<Counter>; 17],
    requests: Family<CodeLabels, Counter>,
}

impl MethodMetrics {
    /// A call started.
    pub(crate) fn start(&self) {
        self.in_flight.inc();
    }

    /// A call started with [`MethodMetrics::start`] ended with `code` after
    /// `seconds`.
    pub(crate) fn end(&self, code: i32, seconds: f64) {
        self.in_flight.dec();
        self.duration.observe(seconds);
        let standard =
            usize::try_from(code).ok().and_then(|index| self.codes.get(index).map(|cell| (index, cell)));
        match standard {
            Some((index, cell)) => {
                cell.get_or_init(|| {
                    self.requests.get_or_create_owned(&self.code_labels(CODE_NAMES[index].to_owned()))
                })
                .inc();
            }
            None => {
                self.requests.get_or_create(&self.code_labels(code.to_string())).inc();
            }
        }
    }

    fn code_labels(&self, code: String) -> CodeLabels {
        CodeLabels { service: self.labels.service.clone(), method: self.labels.method.clone(), code }
    }
}

/// Serves `GET /metrics` (the exposition) and `GET /healthz` (`ok`) over
/// HTTP/1.1 on `listener` until `shutdown`; other paths are 404, other
/// methods 405. Open connections are closed at shutdown.
pub async fn serve_admin(listener: TcpListener, metrics: Metrics, shutdown: Shutdown) -> anyhow::Result<()> {
    let mut stop = shutdown;
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Per-connection failures (e.g. out of file descriptors)
                    // must not end the endpoint.
                    tracing::warn!(error = %err, "admin endpoint cannot accept a connection");
                    continue;
                }
            },
            () = stop.wait() => break,
        };
        let metrics = metrics.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = admin_response(&metrics, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(err) = served {
                tracing::debug!(error = %err, %peer, "admin connection ended with an error");
            }
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
    Ok(())
}

fn admin_response<B>(metrics: &Metrics, request: &http::Request<B>) -> http::Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&http::Method::GET, "/metrics") => {
            (http::StatusCode::OK, CONTENT_TYPE, Bytes::from(metrics.encode()))
        }
        (&http::Method::GET, "/healthz") => {
            (http::StatusCode::OK, "text/plain; charset=utf-8", Bytes::from_static(b"ok\n"))
        }
        (_, "/metrics" | "/healthz") => (
            http::StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"GET only\n"),
        ),
        _ => (http::StatusCode::NOT_FOUND, "text/plain; charset=utf-8", Bytes::from_static(b"not found\n")),
    };
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn calls_are_counted_by_code_name_or_number() {
        let metrics = Metrics::new();
        let echo = metrics.rpc("/rapport.bench.v1.EchoService/Echo");
        assert!(Arc::ptr_eq(&echo, &metrics.rpc("/rapport.bench.v1.EchoService/Echo")));
        echo.start();
        echo.start();
        echo.start();
        echo.end(0, 0.001);
        echo.end(3, 0.002);
        echo.end(42, 0.003);
        let text = metrics.encode();
        for line in [
            r#"rpc_server_requests_total{service="rapport.bench.v1.EchoService",method="Echo",code="OK"} 1"#,
            r#"rpc_server_requests_total{service="rapport.bench.v1.EchoService",method="Echo",code="INVALID_ARGUMENT"} 1"#,
            r#"rpc_server_requests_total{service="rapport.bench.v1.EchoService",method="Echo",code="42"} 1"#,
            r#"rpc_server_in_flight{service="rapport.bench.v1.EchoService",method="Echo"} 0"#,
            r#"rpc_server_duration_seconds_count{service="rapport.bench.v1.EchoService",method="Echo"} 3"#,
            "# UNIT rpc_server_duration_seconds seconds",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn made_up_paths_share_one_label_past_the_limit() {
        let metrics = Metrics::new();
        for index in 0..MAX_METHODS {
            metrics.rpc(&format!("/s/m{index}"));
        }
        let past = metrics.rpc("/s/one-too-many");
        assert!(Arc::ptr_eq(&past, &metrics.rpc("/not-a-grpc-path")));
        past.start();
        past.end(12, 0.0);
        assert!(metrics.encode().contains(r#"{service="_other",method="_other",code="UNIMPLEMENTED"} 1"#));
    }

    #[test]
    fn extra_families_are_exposed() {
        let metrics = Metrics::new();
        let hits = Counter::<u64>::default();
        metrics.register("cache_hits", "Cache hits", hits.clone());
        hits.inc_by(7);
        assert!(metrics.encode().contains("cache_hits_total 7"));
        count_auth_failure(&metrics.auth_failures(), "UNAUTHENTICATED_MISSING_TOKEN");
        count_auth_failure(&metrics.auth_failures(), "UNAUTHENTICATED_MISSING_TOKEN");
        let text = metrics.encode();
        assert!(
            text.contains(r#"rapport_auth_failures_total{reason="UNAUTHENTICATED_MISSING_TOKEN"} 2"#),
            "{text}"
        );
        assert_eq!(text.matches("# TYPE rapport_auth_failures counter").count(), 1);
    }
}
