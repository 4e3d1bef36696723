//! A span per call with the OpenTelemetry RPC attributes, continuing the
//! caller's W3C trace.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tracing::Instrument;

/// Wraps every call in an `rpc` span (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> tower::Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> TraceService<S> {
        TraceService { inner }
    }
}

/// The service made by [`TraceLayer`].
#[derive(Debug, Clone)]
pub struct TraceService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for TraceService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let (service, method) = crate::auth::split_path(&path).unwrap_or((path.trim_start_matches('/'), ""));
        let span = tracing::info_span!(
            "rpc",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        crate::telemetry::continue_trace(&span, request.headers());
        let started = Instant::now();
        let future = self.inner.call(request);
        let record = span.clone();
        Box::pin(
            async move {
                let result = future.await;
                match &result {
                    Ok(response) => {
                        // Unary errors are trailers-only responses: the status is
                        // in the headers. Otherwise the call succeeded so far.
                        let code = response
                            .headers()
                            .get("grpc-status")
                            .and_then(|value| value.to_str().ok())
                            .and_then(|value| value.parse::<i32>().ok())
                            .unwrap_or(0);
                        record.record("rpc.grpc.status_code", code);
                        if code != 0 {
                            record.record("otel.status_code", "ERROR");
                        }
                        tracing::debug!(code, elapsed_us = started.elapsed().as_micros() as u64, "call done");
                    }
                    Err(err) => {
                        record.record("otel.status_code", "ERROR");
                        tracing::warn!(error = %err, "call failed in transport");
                    }
                }
                result
            }
            .instrument(span),
        )
    }
}
