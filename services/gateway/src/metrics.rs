//! The gateway's own metrics, beside the per-call RPC metrics every kit
//! server records (requests, errors and latency per service, method and
//! code; calls in flight).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rapport_kit::metrics::Metrics;

use prometheus_client::metrics::gauge::Gauge;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EndpointLabels {
    pub(crate) backend: String,
    pub(crate) endpoint: String,
}

/// The gauge family reporting each endpoint's health (1 admitted, 0 ejected).
pub(crate) type HealthGauges = Family<EndpointLabels, Gauge>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Counters of what the gateway refused or could not deliver. Cheap to clone.
#[derive(Clone)]
pub struct GatewayMetrics {
    rejected: Family<ReasonLabels, Counter>,
    shed: Family<KindLabels, Counter>,
    forward_failures: Family<ReasonLabels, Counter>,
    pub(crate) backend_health: HealthGauges,
}

impl GatewayMetrics {
    /// Creates the families and registers them with `metrics`.
    pub fn register(metrics: &Metrics) -> GatewayMetrics {
        let gateway = GatewayMetrics {
            rejected: Family::default(),
            shed: Family::default(),
            forward_failures: Family::default(),
            backend_health: HealthGauges::default(),
        };
        metrics.register(
            "gateway_rejected_requests",
            "Requests refused before reaching a backend, by reason (content_type, unknown_service, \
             message_too_large, truncated_frame, malformed_frame, message_count)",
            gateway.rejected.clone(),
        );
        metrics.register(
            "gateway_shed_requests",
            "Calls shed at the concurrency limit (kind unary or stream)",
            gateway.shed.clone(),
        );
        metrics.register(
            "gateway_backend_failures",
            "Calls that could not be delivered to a backend, by reason (no_endpoint, unreachable, deadline)",
            gateway.forward_failures.clone(),
        );
        metrics.register(
            "gateway_backend_endpoint_healthy",
            "1 while a backend endpoint receives calls, 0 while it is ejected",
            gateway.backend_health.clone(),
        );
        gateway
    }

    /// Counts a request refused for `reason`.
    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts a call shed at the concurrency limit.
    pub fn shed(&self, unary: bool) {
        let kind = if unary { "unary" } else { "stream" };
        self.shed.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts a call that could not be delivered.
    pub fn forward_failed(&self, reason: &'static str) {
        self.forward_failures.get_or_create(&ReasonLabels { reason }).inc();
    }
}
