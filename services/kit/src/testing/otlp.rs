//! An OTLP trace collector on loopback that keeps every span exported to
//! it, for tests of trace export.
//!
//! A process has one tracing subscriber, and a crate's tests share one
//! process, so tests use [`shared`]: one collector and one telemetry setup
//! for the whole process, each test finding its own spans by a trace id of
//! its own ([`Traced`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use crate::config::Env;
use crate::telemetry::{self, TelemetryConfig, TelemetryGuard};

/// A running OTLP/gRPC trace collector; stops when dropped.
#[derive(Debug)]
pub struct TraceCollector {
    addr: SocketAddr,
    received: Received,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TraceCollector {
    /// Serves the OTLP trace service on a free loopback port.
    pub async fn start() -> anyhow::Result<TraceCollector> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let received = Received::default();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(received.clone()))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        Ok(TraceCollector { addr, received, server })
    }

    /// Where to export to, as `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<Span> {
        self.received.spans.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for TraceCollector {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The process's collector with the process's telemetry exporting to it.
pub struct Shared {
    collector: TraceCollector,
    telemetry: TelemetryGuard,
}

static SHARED: std::sync::OnceLock<Result<Shared, String>> = std::sync::OnceLock::new();

/// The process's collector, started (with the telemetry: no log lines,
/// every span at `info` and above exported) the first time it is asked
/// for, on a runtime of its own that outlives every test's.
pub fn shared() -> anyhow::Result<&'static Shared> {
    SHARED
        .get_or_init(|| {
            let (sender, receiver) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = sender.send(Err(format!("runtime: {err}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let started = async {
                        let collector = TraceCollector::start().await?;
                        let env = Env::from_pairs([("RUST_LOG", "info"), ("LOG_FORMAT", "off")])
                            .with("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint());
                        let telemetry = telemetry::init(&TelemetryConfig::from_env(&env, "rapport-tests")?)?;
                        anyhow::Ok(Shared { collector, telemetry })
                    }
                    .await;
                    let _ = sender.send(started.map_err(|err| format!("{err:#}")));
                    // Serve (and export) for as long as the process runs.
                    std::future::pending::<()>().await;
                });
            });
            receiver.recv().unwrap_or_else(|_| Err("the collector thread died".to_owned()))
        })
        .as_ref()
        .map_err(|err| anyhow::anyhow!("shared trace collector: {err}"))
}

impl Shared {
    /// Exports every ended span, then returns those of `traced`'s trace
    /// received so far (blocks: call it off the async workers, e.g. in
    /// `spawn_blocking`).
    pub fn spans_of(&self, traced: &Traced) -> Vec<Span> {
        self.telemetry.flush();
        self.collector.spans().into_iter().filter(|span| span.trace_id == traced.trace_id).collect()
    }
}

/// A trace of one test's own: its calls carry a `traceparent` naming a
/// new trace id and a client span id that no span is exported for.
#[derive(Debug, Clone)]
pub struct Traced {
    /// The trace id.
    pub trace_id: Vec<u8>,
    /// The caller's span id, the parent of the first server span.
    pub parent_span_id: Vec<u8>,
}

impl Traced {
    /// A new random trace.
    pub fn new() -> Traced {
        Traced {
            trace_id: uuid::Uuid::new_v4().as_bytes().to_vec(),
            parent_span_id: uuid::Uuid::new_v4().as_bytes()[..8].to_vec(),
        }
    }

    /// The W3C `traceparent` header value (sampled).
    pub fn traceparent(&self) -> String {
        let hex = |bytes: &[u8]| bytes.iter().map(|byte| format!("{byte:02x}")).collect::<String>();
        format!("00-{}-{}-01", hex(&self.trace_id), hex(&self.parent_span_id))
    }

    /// Adds the `traceparent` to `metadata`.
    pub fn inject(&self, metadata: &mut tonic::metadata::MetadataMap) {
        if let Ok(value) = self.traceparent().parse() {
            metadata.insert("traceparent", value);
        }
    }
}

impl Default for Traced {
    fn default() -> Traced {
        Traced::new()
    }
}

/// The trace service: keeps the spans of every export.
#[derive(Clone, Debug, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}
