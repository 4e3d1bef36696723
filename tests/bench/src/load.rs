//! The load generator: a fixed number of tasks, each looping one call at a
//! time, over a few HTTP/2 connections shared round-robin. Latencies of
//! OK calls go into a histogram (µs); every other outcome is counted by
//! its status code, never dropped.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};

/// One call's future, as a scenario builds it.
pub type Call = Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>>;

/// How long and how hard to push.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Tasks, hence calls in flight.
    pub concurrency: usize,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
    /// Longest one call may take.
    pub call_timeout: Duration,
}

/// Where the calls go: `connections` HTTP/2 connections to one server and
/// the bearer header every call carries.
#[derive(Clone)]
pub struct Target {
    channels: Vec<Channel>,
    authorization: MetadataValue<Ascii>,
}

impl Target {
    /// Opens `connections` connections to `addr`, each its own `Channel`.
    pub async fn connect(addr: SocketAddr, connections: usize, token: &str) -> anyhow::Result<Target> {
        let mut channels = Vec::with_capacity(connections.max(1));
        for _ in 0..connections.max(1) {
            let channel = Endpoint::from_shared(format!("http://{addr}"))?
                .tcp_nodelay(true)
                .connect()
                .await
                .with_context(|| format!("connecting to {addr}"))?;
            channels.push(channel);
        }
        let authorization = format!("Bearer {token}").parse().context("token is not a valid header value")?;
        Ok(Target { channels, authorization })
    }

    /// The connection task `worker` uses.
    pub fn channel(&self, worker: usize) -> Channel {
        self.channels[worker % self.channels.len()].clone()
    }

    /// `message` as a request carrying the bearer token.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", self.authorization.clone());
        request
    }
}

/// What one scenario measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Latencies of OK calls completed in the measured window, µs.
    pub latencies: Histogram<u64>,
    /// Non-OK calls completed in the measured window, by code.
    pub errors: BTreeMap<String, u64>,
    /// One message per error code, to say what went wrong.
    pub error_samples: BTreeMap<String, String>,
    /// The measured window.
    pub window: Duration,
}

impl Outcome {
    fn empty(window: Duration) -> anyhow::Result<Outcome> {
        Ok(Outcome {
            latencies: Histogram::new_with_bounds(1, 120_000_000, 3).context("histogram bounds")?,
            errors: BTreeMap::new(),
            error_samples: BTreeMap::new(),
            window,
        })
    }

    /// OK calls completed in the window.
    pub fn ok(&self) -> u64 {
        self.latencies.len()
    }

    /// Non-OK calls completed in the window.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// OK calls per second.
    pub fn rps(&self) -> f64 {
        self.ok() as f64 / self.window.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The latency at `quantile` (0..=1) in milliseconds.
    pub fn ms_at(&self, quantile: f64) -> f64 {
        self.latencies.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// The largest latency in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.latencies.max() as f64 / 1000.0
    }

    fn merge(&mut self, other: Outcome) -> anyhow::Result<()> {
        self.latencies.add(&other.latencies).context("merging histograms")?;
        for (code, count) in other.errors {
            *self.errors.entry(code).or_default() += count;
        }
        for (code, message) in other.error_samples {
            self.error_samples.entry(code).or_insert(message);
        }
        Ok(())
    }

    fn record_error(&mut self, code: String, message: String) {
        *self.errors.entry(code.clone()).or_default() += 1;
        self.error_samples.entry(code).or_insert(message);
    }
}

/// Runs `call` from `load.concurrency` tasks for the warm-up and then the
/// measured window. `call(worker)` builds the next call of task `worker`.
/// A call counts when it completes inside the measured window.
pub async fn run<F>(load: Load, call: F) -> anyhow::Result<Outcome>
where
    F: Fn(usize) -> Call + Send + Sync + 'static,
{
    let call = Arc::new(call);
    let measure_from = Instant::now() + load.warmup;
    let end = measure_from + load.duration;
    let mut tasks = JoinSet::new();
    for worker in 0..load.concurrency.max(1) {
        let call = Arc::clone(&call);
        tasks.spawn(async move {
            let mut outcome = Outcome::empty(load.duration)?;
            while Instant::now() < end {
                let started = Instant::now();
                let result = tokio::time::timeout(load.call_timeout, call(worker)).await;
                let finished = Instant::now();
                if finished < measure_from || finished > end {
                    continue;
                }
                match result {
                    Ok(Ok(())) => {
                        let micros =
                            u64::try_from(finished.duration_since(started).as_micros()).unwrap_or(u64::MAX);
                        outcome.latencies.saturating_record(micros.max(1));
                    }
                    Ok(Err(status)) => {
                        outcome.record_error(format!("{:?}", status.code()), status.message().to_owned());
                    }
                    Err(_) => outcome.record_error(
                        "DeadlineExceeded".to_owned(),
                        format!("no answer within {:?} (client timeout)", load.call_timeout),
                    ),
                }
            }
            anyhow::Ok(outcome)
        });
    }
    let mut total = Outcome::empty(load.duration)?;
    while let Some(joined) = tasks.join_next().await {
        total.merge(joined.context("load task panicked")??)?;
    }
    Ok(total)
}
