//! Every call's handler runs to completion in a task of its own.
//!
//! Without it, a client that goes away (a cancelled call, a connection
//! reset or recycled) drops the handler's future wherever it is waiting —
//! for instance after `BEGIN` was sent and before its answer was read,
//! which sqlx cannot roll back: the pooled connection went back to the
//! pool inside a transaction, and the next call that took it logged "there
//! is already a transaction in progress" and committed into it. Detached,
//! a write either finishes (committed or rolled back, its connection
//! clean) or fails on its own; a statement is bounded by the pool's
//! `statement_timeout`, not by the client's patience. A handler that
//! panics answers `INTERNAL` instead of resetting the connection. The
//! task knows its caller, so page tokens are bound to it
//! ([`crate::paging::scoped`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tracing::Instrument as _;

/// Runs each call in a task of its own (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct DetachLayer;

impl<S> tower::Layer<S> for DetachLayer {
    type Service = Detach<S>;

    fn layer(&self, inner: S) -> Detach<S> {
        Detach { inner }
    }
}

/// The service made by [`DetachLayer`].
#[derive(Debug, Clone)]
pub struct Detach<S> {
    inner: S,
}

impl<S, ReqBody> tower::Service<http::Request<ReqBody>> for Detach<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let caller = request
            .extensions()
            .get::<crate::auth::Principal>()
            .map(|principal| principal.subject.clone())
            .unwrap_or_default();
        let call = crate::paging::scoped(caller, self.inner.call(request));
        let handler = tokio::spawn(call.instrument(tracing::Span::current()));
        Box::pin(async move {
            match handler.await {
                Ok(result) => result,
                Err(err) => {
                    if err.is_panic() {
                        tracing::error!(error = %err, "a call's handler panicked");
                    } else {
                        tracing::warn!(error = %err, "a call's handler was cancelled (the runtime is stopping)");
                    }
                    let status = crate::error::Problem::new(
                        tonic::Code::Internal,
                        "INTERNAL",
                        "internal error; it has been logged",
                    )
                    .into_status();
                    Ok(status.into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::sync::Notify;
    use tower::{Layer as _, Service as _, ServiceExt as _};

    use super::*;

    #[tokio::test]
    async fn a_handler_finishes_after_its_caller_went_away() {
        let (started, release, finished) =
            (Arc::new(Notify::new()), Arc::new(Notify::new()), Arc::new(AtomicBool::new(false)));
        let handler = {
            let (started, release, finished) = (started.clone(), release.clone(), finished.clone());
            tower::service_fn(move |_: http::Request<()>| {
                let (started, release, finished) = (started.clone(), release.clone(), finished.clone());
                async move {
                    started.notify_one();
                    release.notified().await;
                    finished.store(true, Ordering::SeqCst);
                    Ok::<_, Infallible>(http::Response::new(tonic::body::Body::empty()))
                }
            })
        };
        let mut service = DetachLayer.layer(handler);
        let call = service.ready().await.unwrap().call(http::Request::new(()));
        let caller = tokio::spawn(call);
        started.notified().await;
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        release.notify_one();
        crate::testing::eventually("the handler finishes", || async { finished.load(Ordering::SeqCst) })
            .await;
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_internal() {
        let handler = tower::service_fn(|_: http::Request<()>| async {
            if true {
                panic!("boom");
            }
            Ok::<_, Infallible>(http::Response::new(tonic::body::Body::empty()))
        });
        let response = DetachLayer.layer(handler).oneshot(http::Request::new(())).await.unwrap();
        let status = tonic::Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), tonic::Code::Internal);
    }
}
