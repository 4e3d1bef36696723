//! The load generator: a fixed number of tasks, each looping one call at a
//! time, over a few HTTP/2 connections shared round-robin (closed loop),
//! or calls started on a fixed schedule whatever the answers (open loop,
//! [`Load::rate`]). Latencies of OK calls go into a histogram (µs); every
//! other outcome is counted by its status code, never dropped. Calls go
//! over gRPC ([`Target`]) or binary gRPC-web over HTTP/1.1 ([`WebTarget`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::{Buf, Bytes};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use tokio::task::JoinSet;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use crate::cpu::{self, CpuUse};

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
    /// Calls started per second, on a fixed schedule (open loop), as many
    /// in flight as that takes; `None`: `concurrency` tasks, each one call
    /// at a time (closed loop).
    pub rate: Option<f64>,
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
    /// Open loop only: the most calls in flight at once.
    pub peak_in_flight: Option<usize>,
    /// CPU the servers and the load generator used in the measured window.
    pub cpu: Option<CpuUse>,
}

impl Outcome {
    fn empty(window: Duration) -> anyhow::Result<Outcome> {
        Ok(Outcome {
            latencies: Histogram::new_with_bounds(1, 120_000_000, 3).context("histogram bounds")?,
            errors: BTreeMap::new(),
            error_samples: BTreeMap::new(),
            window,
            peak_in_flight: None,
            cpu: None,
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

    /// Server CPU per call (OK or not) completed in the window, µs.
    pub fn server_cpu_us_per_call(&self) -> Option<f64> {
        self.cpu_us_per_call(|cpu| cpu.server)
    }

    /// Load-generator CPU per call completed in the window, µs.
    pub fn client_cpu_us_per_call(&self) -> Option<f64> {
        self.cpu_us_per_call(|cpu| cpu.client)
    }

    fn cpu_us_per_call(&self, side: impl Fn(&CpuUse) -> Duration) -> Option<f64> {
        let calls = self.ok() + self.error_count();
        self.cpu.as_ref().filter(|_| calls > 0).map(|cpu| side(cpu).as_secs_f64() * 1e6 / calls as f64)
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

    /// Counts one call's `result` (`Err`: it timed out) that took `latency`.
    fn record(
        &mut self,
        result: Result<Result<(), tonic::Status>, tokio::time::error::Elapsed>,
        latency: Duration,
        call_timeout: Duration,
    ) {
        match result {
            Ok(Ok(())) => {
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latencies.saturating_record(micros.max(1));
            }
            Ok(Err(status)) => {
                self.record_error(format!("{:?}", status.code()), status.message().to_owned());
            }
            Err(_) => self.record_error(
                "DeadlineExceeded".to_owned(),
                format!("no answer within {call_timeout:?} (client timeout)"),
            ),
        }
    }
}

/// Runs `call` from `load.concurrency` tasks for the warm-up and then the
/// measured window. `call(worker)` builds the next call of task `worker`.
/// A call counts when it completes inside the measured window. With
/// [`Load::rate`], runs [`run_paced`] instead.
pub async fn run<F>(load: Load, call: F) -> anyhow::Result<Outcome>
where
    F: Fn(usize) -> Call + Send + Sync + 'static,
{
    if let Some(rate) = load.rate {
        return run_paced(load, rate, call).await;
    }
    let call = Arc::new(call);
    let measure_from = Instant::now() + load.warmup;
    let end = measure_from + load.duration;
    let cpu = cpu::during(measure_from, end);
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
                outcome.record(result, finished.duration_since(started), load.call_timeout);
            }
            anyhow::Ok(outcome)
        });
    }
    let mut total = Outcome::empty(load.duration)?;
    while let Some(joined) = tasks.join_next().await {
        total.merge(joined.context("load task panicked")??)?;
    }
    total.cpu = join_cpu(cpu).await?;
    Ok(total)
}

/// Open loop: starts call `n` at `n / rate` seconds (a dedicated thread
/// keeps the schedule, so the tokio timer's millisecond granularity does
/// not bunch the calls), each on a task of its own on the current runtime,
/// whatever the calls before it are doing. A call counts when it was
/// scheduled inside the measured window; its latency runs from its
/// scheduled start, so a late start (the client or server falling behind)
/// counts against it instead of vanishing (no coordinated omission).
/// `call(n)` builds call `n`.
pub async fn run_paced<F>(load: Load, rate: f64, call: F) -> anyhow::Result<Outcome>
where
    F: Fn(usize) -> Call + Send + Sync + 'static,
{
    anyhow::ensure!(rate.is_finite() && rate > 0.0, "the paced rate must be positive, not {rate}");
    struct Shared {
        outcome: Mutex<Outcome>,
        in_flight: AtomicUsize,
        peak: AtomicUsize,
    }
    let shared = Arc::new(Shared {
        outcome: Mutex::new(Outcome::empty(load.duration)?),
        in_flight: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    });
    let call = Arc::new(call);
    let runtime = tokio::runtime::Handle::current();
    let start = Instant::now();
    let measure_from = start + load.warmup;
    let end = measure_from + load.duration;
    let cpu = cpu::during(measure_from, end);
    let pacer = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new().name("bench-pacer".to_owned()).spawn(move || {
            for n in 0usize.. {
                let scheduled = start + Duration::from_secs_f64(n as f64 / rate);
                if scheduled >= end {
                    break;
                }
                let now = Instant::now();
                if scheduled > now {
                    std::thread::sleep(scheduled - now);
                }
                let in_flight = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                if scheduled >= measure_from {
                    shared.peak.fetch_max(in_flight, Ordering::Relaxed);
                }
                let call = Arc::clone(&call);
                let shared = Arc::clone(&shared);
                runtime.spawn(async move {
                    let result = tokio::time::timeout(load.call_timeout, call(n)).await;
                    let latency = Instant::now().saturating_duration_since(scheduled);
                    if scheduled >= measure_from {
                        shared.outcome.lock().unwrap_or_else(PoisonError::into_inner).record(
                            result,
                            latency,
                            load.call_timeout,
                        );
                    }
                    shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                });
            }
        })?
    };
    tokio::task::spawn_blocking(move || pacer.join())
        .await
        .context("waiting for the pacer")?
        .map_err(|_| anyhow::anyhow!("the pacer thread panicked"))?;
    // Every call ends within its timeout; wait for the last ones.
    while shared.in_flight.load(Ordering::Relaxed) > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut outcome = std::mem::replace(
        &mut *shared.outcome.lock().unwrap_or_else(PoisonError::into_inner),
        Outcome::empty(load.duration)?,
    );
    outcome.peak_in_flight = Some(shared.peak.load(Ordering::Relaxed));
    outcome.cpu = join_cpu(cpu).await?;
    Ok(outcome)
}

async fn join_cpu(sampler: std::thread::JoinHandle<Option<CpuUse>>) -> anyhow::Result<Option<CpuUse>> {
    tokio::task::spawn_blocking(move || sampler.join())
        .await
        .context("waiting for the CPU sampler")?
        .map_err(|_| anyhow::anyhow!("the CPU sampler panicked"))
}

/// Binary gRPC-web (`application/grpc-web+proto`) over HTTP/1.1: one
/// keep-alive connection per task, each carrying one call at a time, as
/// a browser's fetch would.
pub struct WebTarget {
    addr: SocketAddr,
    connections: Vec<tokio::sync::Mutex<SendRequest<Full<Bytes>>>>,
    authorization: http::HeaderValue,
}

impl WebTarget {
    /// Opens `connections` HTTP/1.1 connections to `addr` (their tasks run
    /// on the current runtime).
    pub async fn connect(addr: SocketAddr, connections: usize, token: &str) -> anyhow::Result<WebTarget> {
        let mut senders = Vec::with_capacity(connections.max(1));
        for _ in 0..connections.max(1) {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .with_context(|| format!("connecting to {addr}"))?;
            stream.set_nodelay(true)?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            senders.push(tokio::sync::Mutex::new(sender));
        }
        let authorization = format!("Bearer {token}").parse().context("token is not a valid header value")?;
        Ok(WebTarget { addr, connections: senders, authorization })
    }

    /// Calls the unary method at `path` (`/package.Service/Method`) with
    /// `message` over the connection of task `worker`, and decodes the
    /// answer: a status from the trailer frame (or the headers), a message
    /// from the data frame.
    pub async fn unary<M: prost::Message, R: prost::Message + Default>(
        &self,
        worker: usize,
        path: &str,
        message: &M,
    ) -> Result<R, tonic::Status> {
        let payload = message.encode_to_vec();
        let mut body = Vec::with_capacity(5 + payload.len());
        body.push(0);
        body.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_be_bytes());
        body.extend_from_slice(&payload);
        let request = http::Request::post(path)
            .header(http::header::HOST, self.addr.to_string())
            .header(http::header::CONTENT_TYPE, "application/grpc-web+proto")
            .header(http::header::ACCEPT, "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .header(http::header::AUTHORIZATION, self.authorization.clone())
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| tonic::Status::internal(format!("building the request: {err}")))?;
        let unavailable = |err: hyper::Error| tonic::Status::unavailable(format!("HTTP/1.1: {err}"));
        let (parts, body) = {
            let mut sender = self.connections[worker % self.connections.len()].lock().await;
            sender.ready().await.map_err(unavailable)?;
            let response = sender.send_request(request).await.map_err(unavailable)?;
            let (parts, body) = response.into_parts();
            (parts, body.collect().await.map_err(unavailable)?.to_bytes())
        };
        if parts.status != http::StatusCode::OK {
            return Err(tonic::Status::unknown(format!("HTTP status {}", parts.status)));
        }
        let header =
            |name: &str| parts.headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
        let (mut status, mut status_message) = (header("grpc-status"), header("grpc-message"));
        let mut reply = None;
        let mut rest = body;
        while rest.len() >= 5 {
            let flags = rest[0];
            let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            rest.advance(5);
            if rest.len() < len {
                return Err(tonic::Status::internal("truncated gRPC-web frame"));
            }
            let frame = rest.split_to(len);
            if flags & 0x80 == 0 {
                reply.get_or_insert(frame);
                continue;
            }
            for line in String::from_utf8_lossy(&frame).split("\r\n") {
                if let Some((name, value)) = line.split_once(':') {
                    match name.trim().to_ascii_lowercase().as_str() {
                        "grpc-status" => status = Some(value.trim().to_owned()),
                        "grpc-message" => status_message = Some(value.trim().to_owned()),
                        _ => {}
                    }
                }
            }
        }
        let code = status
            .ok_or_else(|| tonic::Status::internal("no grpc-status in the headers or the trailer frame"))?
            .parse::<i32>()
            .map_err(|_| tonic::Status::internal("grpc-status is not a number"))?;
        if code != 0 {
            return Err(tonic::Status::new(tonic::Code::from_i32(code), status_message.unwrap_or_default()));
        }
        let reply = reply.ok_or_else(|| tonic::Status::internal("OK without a message"))?;
        R::decode(reply).map_err(|err| tonic::Status::internal(format!("decoding the reply: {err}")))
    }
}
