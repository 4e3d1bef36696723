//! Telemetry: the `tracing` subscriber (human logs locally, JSON with
//! `LOG_FORMAT=json`), OTLP trace export when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set, and W3C trace context (`traceparent`) taken from incoming calls
//! and put on outgoing ones.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{ConfigError, Env};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
    /// No log lines (spans are still exported when OTLP is configured).
    Off,
}

/// Telemetry settings.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `service.name` of exported spans.
    pub service_name: String,
    /// `LOG_FORMAT`: `human` (default), `json` or `off`.
    pub log_format: LogFormat,
    /// `RUST_LOG`-style filter; default `info`.
    pub log_filter: String,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://collector:4317` (gRPC).
    pub otlp_endpoint: Option<String>,
    /// `OTEL_TRACES_SAMPLER_ARG`: share of new traces sampled, 0.0–1.0.
    pub sampling_ratio: f64,
}

impl TelemetryConfig {
    /// Reads `LOG_FORMAT`, `RUST_LOG`, `OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// `OTEL_SERVICE_NAME` and `OTEL_TRACES_SAMPLER_ARG`.
    pub fn from_env(env: &Env, default_service_name: &str) -> Result<TelemetryConfig, ConfigError> {
        let log_format = match env.or_default("LOG_FORMAT", "human".to_owned())?.as_str() {
            "human" | "text" => LogFormat::Human,
            "json" => LogFormat::Json,
            "off" => LogFormat::Off,
            other => {
                return Err(ConfigError {
                    name: "LOG_FORMAT".into(),
                    problem: format!("{other:?} is not one of human, json, off"),
                });
            }
        };
        let sampling_ratio: f64 = env.or_default("OTEL_TRACES_SAMPLER_ARG", 1.0)?;
        if !(0.0..=1.0).contains(&sampling_ratio) {
            return Err(ConfigError {
                name: "OTEL_TRACES_SAMPLER_ARG".into(),
                problem: format!("{sampling_ratio} is not between 0 and 1"),
            });
        }
        Ok(TelemetryConfig {
            service_name: env.or_default("OTEL_SERVICE_NAME", default_service_name.to_owned())?,
            log_format,
            log_filter: env.or_default("RUST_LOG", "info,sqlx=warn".to_owned())?,
            otlp_endpoint: env.optional("OTEL_EXPORTER_OTLP_ENDPOINT")?,
            sampling_ratio,
        })
    }
}

/// Flushes and shuts down trace export when dropped; keep it in `main`.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports every ended span now (blocks: call it off the async workers).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(err) = provider.force_flush()
        {
            eprintln!("trace export flush failed: {err}");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("trace export shutdown failed: {err}");
        }
    }
}

/// Installs the global subscriber and propagator. Call once, in `main`.
pub fn init(config: &TelemetryConfig) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_new(&config.log_filter)
        .map_err(|err| anyhow::anyhow!("RUST_LOG {:?} is not a valid filter: {err}", config.log_filter))?;
    let fmt = match config.log_format {
        LogFormat::Human => Some(tracing_subscriber::fmt::layer().boxed()),
        LogFormat::Json => Some(tracing_subscriber::fmt::layer().json().flatten_event(true).boxed()),
        LogFormat::Off => None,
    };
    let provider = match &config.otlp_endpoint {
        Some(endpoint) => Some(otlp_provider(config, endpoint)?),
        None => None,
    };
    let otel = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("rapport")));
    tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init()?;
    Ok(TelemetryGuard { provider })
}

fn otlp_provider(config: &TelemetryConfig, endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter =
        opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint).build()?;
    let resource =
        opentelemetry_sdk::Resource::builder().with_service_name(config.service_name.clone()).build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampling_ratio))))
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(provider)
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Makes `span` a child of the W3C trace context in `headers`, if any.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
}

/// Puts the current span's trace context on an outgoing call's metadata.
pub fn inject_trace(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(metadata));
}

/// Puts the current span's trace context on an outgoing request's headers
/// (replacing any `traceparent` already there).
pub fn inject_trace_headers(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) =
            (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::try_from(value))
        {
            self.0.insert(key, value);
        }
    }
}

/// A client interceptor that adds `traceparent` to every outgoing call.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracePropagation;

impl tonic::service::Interceptor for TracePropagation {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        inject_trace(request.metadata_mut());
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_rejects_bad_values_by_name() {
        let env = Env::from_pairs([("LOG_FORMAT", "xml")]);
        let err = TelemetryConfig::from_env(&env, "contacts").unwrap_err();
        assert_eq!(err.name, "LOG_FORMAT");
        let env = Env::from_pairs([("OTEL_TRACES_SAMPLER_ARG", "2")]);
        assert_eq!(TelemetryConfig::from_env(&env, "x").unwrap_err().name, "OTEL_TRACES_SAMPLER_ARG");
        let env = Env::from_pairs([("LOG_FORMAT", "json")]);
        let config = TelemetryConfig::from_env(&env, "contacts").unwrap();
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.service_name, "contacts");
        assert_eq!(config.otlp_endpoint, None);
    }

    #[test]
    fn traceparent_is_extracted_and_injected() {
        // Without a tracer the span carries the remote context through.
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        let mut metadata = tonic::metadata::MetadataMap::new();
        TraceContextPropagator::new().inject_context(&parent, &mut MetadataInjector(&mut metadata));
        let injected = metadata.get("traceparent").unwrap().to_str().unwrap();
        assert!(injected.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{injected}");
    }
}
