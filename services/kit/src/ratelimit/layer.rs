//! The tower layer applying a [`RateLimiter`] to every call with a [`Principal`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::Either;
use tonic::Code;
use tower::{Layer, Service};

use super::{Decision, REASON_RATE_LIMITED, RateLimitSettings, RateLimiter};
use crate::auth::Principal;
use crate::error::Problem;

/// Tower layer limiting each principal's calls with a [`RateLimiter`]; see
/// [`RateLimitService`]. Install it after (inside) [`crate::auth::AuthLayer`].
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: RateLimiter,
}

impl RateLimitLayer {
    /// A layer enforcing `limiter`.
    pub fn new(limiter: RateLimiter) -> RateLimitLayer {
        RateLimitLayer { limiter }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> RateLimitService<S> {
        RateLimitService { inner, limiter: self.limiter.clone() }
    }
}

/// The service produced by [`RateLimitLayer`].
///
/// * Requests without a [`Principal`] in their extensions (health,
///   reflection) pass untouched, as do all requests when limiting is
///   disabled.
/// * Otherwise the principal's `subject` takes a token; over the limit the
///   call never reaches the inner service and is answered with a
///   trailers-only `RESOURCE_EXHAUSTED` carrying `RetryInfo` (the time
///   until the next token) and `ErrorInfo` (reason [`REASON_RATE_LIMITED`],
///   domain `rapport`, metadata `limit_per_second` and `burst`).
#[derive(Clone)]
pub struct RateLimitService<S> {
    inner: S,
    limiter: RateLimiter,
}

type Checked<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RateLimitService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Either<S::Future, Checked<http::Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        if !self.limiter.settings().enabled() || request.extensions().get::<Principal>().is_none() {
            return Either::Left(self.inner.call(request));
        }
        // The clone is not ready; keep the ready service for this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limiter = self.limiter.clone();
        Either::Right(Box::pin(async move {
            let subject = request.extensions().get::<Principal>().map_or("", |principal| &principal.subject);
            match limiter.check(subject).await {
                Decision::Allowed => inner.call(request).await,
                Decision::Limited { retry_after } => {
                    tracing::debug!(subject, retry_after_ms = retry_after.as_millis(), "rate limited");
                    Ok(limited_status(&limiter.settings(), retry_after).into_http())
                }
            }
        }))
    }
}

/// The `RESOURCE_EXHAUSTED` status of a refused call.
fn limited_status(settings: &RateLimitSettings, retry_after: Duration) -> tonic::Status {
    let message = format!(
        "rate limit exceeded: {} calls per second (burst {}); retry in {} ms",
        settings.per_second,
        settings.burst,
        retry_after.as_millis()
    );
    Problem::new(Code::ResourceExhausted, REASON_RATE_LIMITED, message)
        .meta("limit_per_second", settings.per_second.to_string())
        .meta("burst", settings.burst.to_string())
        .retry_after(retry_after)
        .into_status()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_second: f64, burst: u32) -> RateLimitSettings {
        RateLimitSettings { per_second, burst }
    }

    #[test]
    fn the_refusal_carries_retry_info_and_error_info() {
        use tonic_types::StatusExt;
        let status = limited_status(&settings(2.5, 5), Duration::from_millis(400));
        assert_eq!(status.code(), Code::ResourceExhausted);
        let details = status.get_error_details();
        let retry_delay = details.retry_info().unwrap().retry_delay.unwrap();
        assert_eq!(retry_delay, Duration::from_millis(400));
        let info = details.error_info().unwrap();
        assert_eq!((info.reason.as_str(), info.domain.as_str()), (REASON_RATE_LIMITED, "rapport"));
        assert_eq!(info.metadata["limit_per_second"], "2.5");
        assert_eq!(info.metadata["burst"], "5");
    }
}
