//! Connection ages: a connection is drained (GOAWAY) once it is
//! `GRPC_MAX_CONNECTION_AGE` old and closed `GRPC_MAX_CONNECTION_AGE_GRACE`
//! later, so clients spread over new replicas.
//!
//! tonic 0.14's own `max_connection_age_grace` skips the drain: with a grace
//! set it sleeps age + grace and then drops the connection with every call
//! in flight, never sending GOAWAY (`connection_timeout_future` in
//! tonic's `transport/server`). So tonic is given the age alone — it sends
//! GOAWAY then and lets the calls in flight finish — and the grace is
//! enforced here, below HTTP/2: a connection's socket ends (reads see end of
//! stream, writes fail) once it is age + grace old, which closes what a
//! long-lived stream still holds open.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::Connected;

pin_project! {
    /// A connection that ends at a deadline.
    pub struct Aged<T> {
        #[pin]
        inner: T,
        deadline: Pin<Box<Sleep>>,
        ended: bool,
    }
}

impl<T> Aged<T> {
    /// `inner`, ending `lifetime` from now.
    pub fn new(inner: T, lifetime: Duration) -> Aged<T> {
        let deadline = Instant::now().checked_add(lifetime).unwrap_or_else(far_future);
        Aged { inner, deadline: Box::pin(tokio::time::sleep_until(deadline)), ended: false }
    }
}

/// About thirty years from now: "never" for a timer.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

impl<T> Aged<T> {
    /// True once the deadline has passed (registering for the wake-up
    /// before it).
    fn ended(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        let this = self.project();
        if !*this.ended && this.deadline.as_mut().poll(cx).is_ready() {
            *this.ended = true;
        }
        *this.ended
    }
}

impl<T: AsyncRead> AsyncRead for Aged<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.as_mut().ended(cx) {
            // End of stream: the connection is over.
            return Poll::Ready(Ok(()));
        }
        self.project().inner.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for Aged<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.as_mut().ended(cx) {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "connection age exceeded")));
        }
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

impl<T: Connected> Connected for Aged<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn a_connection_ends_at_its_deadline() {
        let (client, server) = tokio::io::duplex(64);
        let start = Instant::now();
        let mut aged = Aged::new(server, Duration::from_millis(100));
        let mut client = client;
        client.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        aged.read_exact(&mut buf).await.unwrap();
        aged.write_all(b"ok").await.unwrap();
        // A read waiting past the deadline sees the end of the stream.
        let mut rest = Vec::new();
        let read = aged.read_to_end(&mut rest).await.unwrap();
        assert_eq!(read, 0);
        assert!(start.elapsed() >= Duration::from_millis(100), "ended early: {:?}", start.elapsed());
        let refused = aged.write_all(b"late").await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::BrokenPipe);
    }
}
