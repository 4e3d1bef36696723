//! A private `redis-server` for tests that stop and restart Redis, on a
//! port of its own so other tests keep the shared one.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use super::tls::TestCertificates;

/// How long a starting server may take to answer PING.
const STARTUP: Duration = Duration::from_secs(10);

/// A child `redis-server` (from `PATH`) without persistence on a free
/// loopback port; killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    /// Serving TLS only, requiring client certificates signed by the CA.
    tls: Option<Tls>,
}

#[derive(Debug, Clone)]
struct Tls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub async fn start() -> anyhow::Result<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut server = RedisServer { port, child: None, tls: None };
        server.restart().await?;
        Ok(server)
    }

    /// Like [`RedisServer::start`], serving TLS only (no plain port) with
    /// the server certificate of `certificates`, and requiring a client
    /// certificate signed by its CA.
    pub async fn start_with_tls(certificates: &TestCertificates) -> anyhow::Result<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let tls = Tls {
            ca: certificates.ca.clone(),
            cert: certificates.server_cert.clone(),
            key: certificates.server_key.clone(),
            client_cert: certificates.client_cert.clone(),
            client_key: certificates.client_key.clone(),
        };
        let mut server = RedisServer { port, child: None, tls: Some(tls) };
        server.restart().await?;
        Ok(server)
    }

    /// The URL to give the service as `REDIS_URL` (`rediss://` with TLS).
    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("rediss://127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Kills the server and waits for it to exit.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await.context("killing redis-server")?;
        }
        Ok(())
    }

    /// Starts the server (again) on the same port and waits until it
    /// answers PING.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "redis-server is already running");
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some(tls) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca)
                .args(["--tls-auth-clients", "yes"]),
        };
        let child = command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server (is it on PATH?)")?;
        self.child = Some(child);
        self.wait_until_ready().await
    }

    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Some(exit) = child.try_wait()?
            {
                anyhow::bail!("redis-server on port {} exited: {exit}", self.port);
            }
            if self.pong().await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!("redis-server on port {} did not answer PING", self.port)
    }

    async fn pong(&self) -> bool {
        if let Some(tls) = &self.tls {
            return self.pong_tls(tls).await.unwrap_or(false);
        }
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).await.is_ok() && &reply == b"+PONG\r\n"
    }

    async fn pong_tls(&self, tls: &Tls) -> anyhow::Result<bool> {
        let certificates = redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: std::fs::read(&tls.client_cert)?,
                client_key: std::fs::read(&tls.client_key)?,
            }),
            root_cert: Some(std::fs::read(&tls.ca)?),
        };
        let client = redis::Client::build_with_tls(self.url(), certificates)?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        let pong: String = redis::cmd("PING").query_async(&mut connection).await?;
        Ok(pong == "PONG")
    }
}
