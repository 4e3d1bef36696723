//! An OTLP trace collector on loopback that keeps every span exported to
//! it, for tests of trace export.

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

    /// Installs the process's telemetry as `service_name`, logging at
    /// `info` and exporting every span here. Dropping the guard (off the
    /// runtime: it blocks) flushes what is left to export.
    pub fn init_telemetry(&self, service_name: &str) -> anyhow::Result<TelemetryGuard> {
        let env =
            Env::from_pairs([("RUST_LOG", "info")]).with("OTEL_EXPORTER_OTLP_ENDPOINT", self.endpoint());
        telemetry::init(&TelemetryConfig::from_env(&env, service_name)?)
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
