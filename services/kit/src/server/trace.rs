//! A span per call with the OpenTelemetry RPC attributes, continuing the
//! caller's W3C trace, and the RPC metrics of [`crate::metrics`].
//!
//! A call ends with its real gRPC status: in the response headers for a
//! trailers-only response (unary errors), otherwise in the trailers at the
//! end of the response body. The response body is wrapped ([`TraceBody`])
//! to see those trailers, so a call's code, duration and span end when its
//! body ends — or when it is dropped first (the client went away), which
//! counts as `CANCELLED`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::metrics::{MethodMetrics, Metrics};

const OK: i32 = 0;
const CANCELLED: i32 = 1;
const UNKNOWN: i32 = 2;

/// Wraps every call in an `rpc` span and records its metrics (see the module docs).
#[derive(Debug, Clone)]
pub struct TraceLayer {
    metrics: Metrics,
    component: &'static str,
}

impl TraceLayer {
    /// A layer recording calls into `metrics`; its spans say they were made
    /// by `component` (`rapport.component`: several services can share one
    /// process and its trace exporter).
    pub fn new(metrics: Metrics, component: &'static str) -> TraceLayer {
        TraceLayer { metrics, component }
    }
}

impl<S> tower::Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> TraceService<S> {
        TraceService { inner, metrics: self.metrics.clone(), component: self.component }
    }
}

/// The service made by [`TraceLayer`].
#[derive(Debug, Clone)]
pub struct TraceService<S> {
    inner: S,
    metrics: Metrics,
    component: &'static str,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for TraceService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: std::fmt::Display,
    ResBody: Body,
{
    type Response = http::Response<TraceBody<ResBody>>;
    type Error = S::Error;
    type Future = TraceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        let (service, method) = crate::rpc::split_path(path).unwrap_or((path.trim_start_matches('/'), ""));
        let span = tracing::info_span!(
            "rpc",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rapport.component = self.component,
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        crate::telemetry::continue_trace(&span, request.headers());
        let handles = self.metrics.rpc(path);
        handles.start();
        let call = Call { method: handles, span, started: Instant::now(), ended: false };
        let future = {
            let _entered = call.span.enter();
            self.inner.call(request)
        };
        TraceFuture { inner: future, call: Some(call) }
    }
}

/// One call between its request and its end: ends exactly once.
struct Call {
    method: Arc<MethodMetrics>,
    span: tracing::Span,
    started: Instant,
    ended: bool,
}

impl Call {
    fn end(&mut self, code: i32) {
        if self.ended {
            return;
        }
        self.ended = true;
        let elapsed = self.started.elapsed();
        self.method.end(code, elapsed.as_secs_f64());
        self.span.record("rpc.grpc.status_code", code);
        if code != OK {
            self.span.record("otel.status_code", "ERROR");
        }
        tracing::debug!(parent: &self.span, code, elapsed_us = elapsed.as_micros() as u64, "call done");
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // Dropped before its status was sent: the client went away (or the
        // server is closing the connection).
        self.end(CANCELLED);
    }
}

pin_project! {
    /// The response future of [`TraceService`].
    pub struct TraceFuture<F> {
        #[pin]
        inner: F,
        call: Option<Call>,
    }
}

impl<F, B, E> Future for TraceFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    E: std::fmt::Display,
{
    type Output = Result<http::Response<TraceBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.call.as_ref().map(|call| call.span.enter());
            ready!(this.inner.poll(cx))
        };
        let Some(mut call) = this.call.take() else {
            // Polled again after completion: nothing left to record.
            return Poll::Ready(result.map(|response| response.map(TraceBody::untraced)));
        };
        match result {
            Ok(response) => match status_in_headers(&response) {
                // The response is complete already (trailers-only, or not gRPC).
                Some(code) => {
                    call.end(code);
                    Poll::Ready(Ok(response.map(TraceBody::untraced)))
                }
                None => Poll::Ready(Ok(response.map(|inner| TraceBody { inner, call: Some(call) }))),
            },
            Err(err) => {
                tracing::warn!(parent: &call.span, error = %err, "call failed in transport");
                call.end(UNKNOWN);
                Poll::Ready(Err(err))
            }
        }
    }
}

/// The code of a response that is complete with its headers: the
/// `grpc-status` of a trailers-only response, or the code the gRPC spec
/// derives from an HTTP error status. `None` when the status will come in
/// the trailers.
fn status_in_headers<B>(response: &http::Response<B>) -> Option<i32> {
    if let Some(code) = grpc_status(response.headers()) {
        return Some(code);
    }
    let status = response.status();
    if status == http::StatusCode::OK {
        return None;
    }
    Some(match status.as_u16() {
        400 => 13,             // INTERNAL
        401 => 16,             // UNAUTHENTICATED
        403 => 7,              // PERMISSION_DENIED
        404 => 12,             // UNIMPLEMENTED
        429 | 502..=504 => 14, // UNAVAILABLE
        _ => UNKNOWN,
    })
}

fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

pin_project! {
    /// A response body that ends its call (code, duration, span) when it
    /// yields the trailers, ends, fails, or is dropped.
    pub struct TraceBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

impl<B> TraceBody<B> {
    fn untraced(inner: B) -> TraceBody<B> {
        TraceBody { inner, call: None }
    }
}

impl<B: Default> Default for TraceBody<B> {
    fn default() -> Self {
        TraceBody::untraced(B::default())
    }
}

impl<B: Body> Body for TraceBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        if let Some(call) = this.call.as_mut() {
            let code = match &frame {
                Some(Ok(frame)) => match frame.trailers_ref() {
                    Some(trailers) => Some(grpc_status(trailers).unwrap_or(UNKNOWN)),
                    // Data that ends the body without trailers: no status will come.
                    None if this.inner.is_end_stream() => Some(UNKNOWN),
                    None => None,
                },
                // The body failed: the stream is reset, the client sees no status.
                Some(Err(_)) => Some(UNKNOWN),
                // Ended without trailers: no status was sent.
                None => Some(UNKNOWN),
            };
            if let Some(code) = code {
                call.end(code);
                *this.call = None;
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> std::fmt::Debug for TraceBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceBody").field("traced", &self.call.is_some()).finish_non_exhaustive()
    }
}
