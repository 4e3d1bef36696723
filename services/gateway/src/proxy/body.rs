//! The bodies the proxy puts around a call's request and response: framing
//! checked on the way in, a concurrency slot held and a clean end (a gRPC
//! status in the trailers) on the way out.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use rapport_kit::shutdown::Shutdown;
use tokio::sync::OwnedSemaphorePermit;
use tonic::body::Body;

use crate::backend::CallGuard;
use crate::frames::{FrameError, FrameTracker};

fn trailers(status: &tonic::Status) -> HeaderMap {
    let mut map = HeaderMap::new();
    if status.add_header(&mut map).is_err() {
        map.insert("grpc-status", HeaderValue::from(status.code() as i32));
    }
    map
}

type BoxedBody = Pin<Box<dyn HttpBody<Data = Bytes, Error = tonic::codegen::StdError> + Send>>;

/// The first framing violation a streaming request body saw, shared with
/// the response side, which reports it as the call's status.
#[derive(Clone, Default)]
pub(super) struct RequestError(Arc<Mutex<Option<FrameError>>>);

impl RequestError {
    /// The violation, if one was seen (and not taken yet).
    pub(super) fn take(&self) -> Option<FrameError> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn keep_first(&self, error: FrameError) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(error);
    }
}

/// A streaming request body whose framing is checked as it passes; the
/// first violation is kept for the status and ends the body with an error.
pub(super) struct CheckedRequestBody {
    inner: BoxedBody,
    tracker: FrameTracker,
    error: RequestError,
}

impl CheckedRequestBody {
    /// `body`, checked for messages of at most `max_message_bytes`; a
    /// violation lands in `error`.
    pub(super) fn new<B>(body: B, max_message_bytes: usize, error: RequestError) -> CheckedRequestBody
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<tonic::codegen::StdError>,
    {
        CheckedRequestBody {
            inner: Box::pin(body.map_err(Into::into)),
            tracker: FrameTracker::new(max_message_bytes),
            error,
        }
    }

    fn fail(&mut self, error: FrameError) -> Poll<Option<Result<Frame<Bytes>, tonic::codegen::StdError>>> {
        let message = error.to_string();
        self.error.keep_first(error);
        Poll::Ready(Some(Err(message.into())))
    }
}

impl HttpBody for CheckedRequestBody {
    type Data = Bytes;
    type Error = tonic::codegen::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && let Err(error) = self.tracker.feed(data)
                {
                    return self.fail(error);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => match self.tracker.finish() {
                Ok(()) => Poll::Ready(None),
                Err(error) => self.fail(error),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

struct StreamState {
    /// Where the response is in its framing (it may only end between messages).
    tracker: FrameTracker,
    /// Resolves when the gateway shuts down; `None` once it has.
    ending: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

/// A backend's response on its way to the client. It holds the call's
/// concurrency slot and endpoint accounting until it ends, turns a broken
/// backend stream into a proper gRPC status in the trailers, and ends open
/// streams cleanly (UNAVAILABLE, between messages) when the gateway shuts
/// down.
pub(super) struct ResponseBody {
    inner: Body,
    ended: bool,
    stream: Option<StreamState>,
    request_error: Option<RequestError>,
    _guard: CallGuard,
    _permit: OwnedSemaphorePermit,
}

impl ResponseBody {
    /// A unary call's response: passed through as it is.
    pub(super) fn unary(inner: Body, guard: CallGuard, permit: OwnedSemaphorePermit) -> ResponseBody {
        ResponseBody {
            inner,
            ended: false,
            stream: None,
            request_error: None,
            _guard: guard,
            _permit: permit,
        }
    }

    /// A streaming call's response: ended between messages when `shutdown`
    /// fires, and ended with the request's framing violation if it had one.
    pub(super) fn stream(
        inner: Body,
        guard: CallGuard,
        permit: OwnedSemaphorePermit,
        mut shutdown: Shutdown,
        request_error: RequestError,
    ) -> ResponseBody {
        let ending: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move { shutdown.wait().await });
        ResponseBody {
            inner,
            ended: false,
            stream: Some(StreamState { tracker: FrameTracker::new(usize::MAX), ending: Some(ending) }),
            request_error: Some(request_error),
            _guard: guard,
            _permit: permit,
        }
    }

    fn end_with(&mut self, status: &tonic::Status) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        self.ended = true;
        Poll::Ready(Some(Ok(Frame::trailers(trailers(status)))))
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Some(stream) = self.stream.as_mut()
            && stream.tracker.at_boundary()
            && let Some(ending) = stream.ending.as_mut()
            && ending.as_mut().poll(cx).is_ready()
        {
            stream.ending = None;
            let status = tonic::Status::unavailable("the gateway is shutting down; reconnect");
            return self.end_with(&status);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if frame.is_trailers() {
                    self.ended = true;
                } else if let (Some(stream), Some(data)) = (self.stream.as_mut(), frame.data_ref()) {
                    // The backend's framing was checked by its own server;
                    // a tracker that fails here just stops tracking.
                    if stream.tracker.feed(data).is_err() {
                        stream.ending = None;
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => {
                let status = match self.request_error.as_ref().and_then(RequestError::take) {
                    Some(error) => error.to_status(),
                    None => {
                        tracing::warn!(error = %err, "backend response broke off");
                        tonic::Status::unavailable("the backend connection broke off; retry")
                    }
                };
                self.end_with(&status)
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Ended, or the backend's body already is: a backend's trailers-only
    /// response (an error status in the headers) must leave the gateway as
    /// one HEADERS frame with END_STREAM too. Otherwise the headers go out
    /// open and an empty DATA frame ends the stream without trailers, which
    /// gRPC C-core clients (Python, C++, C#, Ruby, PHP) reject as
    /// "Data frame with END_STREAM flag received" (UNKNOWN) instead of
    /// reading the status.
    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }
}
