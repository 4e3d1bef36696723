//! A private PostgreSQL cluster for tests that crash and restart the
//! database, on a port and in a directory of its own so other tests keep
//! the shared server.
//!
//! It uses the newest `/usr/lib/postgresql/*/bin` (Debian's packages), or
//! `initdb` from `PATH`. PostgreSQL refuses to run as root: as root it runs
//! as the `postgres` user (or `rapport-pg`, which `make test`'s
//! `scripts/ensure-services.sh` creates when a machine has neither).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::process::{Child, Command};

use super::tls::TestCertificates;

/// How long a starting cluster may take to accept connections.
const STARTUP: Duration = Duration::from_secs(30);

/// A child `postgres` over a fresh cluster in a temporary directory, with
/// trust authentication for `postgres` on loopback; killed when dropped and
/// its directory removed.
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    bin: PathBuf,
    dir: PathBuf,
    user: Option<String>,
    child: Option<Child>,
}

impl PostgresServer {
    /// Creates a cluster and starts it on a free port.
    pub async fn start() -> anyhow::Result<PostgresServer> {
        PostgresServer::start_with(None).await
    }

    /// Like [`PostgresServer::start`], serving TLS with the server
    /// certificate of `certificates` and refusing connections without TLS
    /// (`hostssl` only).
    pub async fn start_with_tls(certificates: &TestCertificates) -> anyhow::Result<PostgresServer> {
        PostgresServer::start_with(Some(certificates)).await
    }

    async fn start_with(tls: Option<&TestCertificates>) -> anyhow::Result<PostgresServer> {
        let bin = bin_dir().context("no PostgreSQL server binaries (initdb, postgres)")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("rapport-pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir)?;
        // Running as root? (`id -u`, without unsafe code.)
        let root = std::process::Command::new("id").arg("-u").output().map(|out| out.stdout == b"0\n")?;
        let user = if root { Some(os_user()?) } else { None };
        if let Some(user) = &user {
            let status = std::process::Command::new("chown").arg(user).arg(&dir).status()?;
            anyhow::ensure!(status.success(), "chown {user} {}", dir.display());
        }
        let mut server = PostgresServer { port, bin, dir, user, child: None };
        let data = server.data();
        let initdb = server
            .command("initdb")
            .args(["-D", &data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .context("running initdb")?;
        anyhow::ensure!(initdb.success(), "initdb failed in {data}");
        if let Some(certificates) = tls {
            server.serve_tls(certificates)?;
        }
        server.restart().await?;
        Ok(server)
    }

    /// Copies the server certificate into the cluster (its key readable by
    /// the server's user only, as PostgreSQL demands), turns TLS on and
    /// lets only TLS connections in over TCP.
    fn serve_tls(&self, certificates: &TestCertificates) -> anyhow::Result<()> {
        let data = self.dir.join("data");
        for (from, to) in
            [(&certificates.server_cert, "server.crt"), (&certificates.server_key, "server.key")]
        {
            std::fs::copy(from, data.join(to))?;
            if let Some(user) = &self.user {
                let status = std::process::Command::new("chown").arg(user).arg(data.join(to)).status()?;
                anyhow::ensure!(status.success(), "chown {user} {to}");
            }
        }
        let status = std::process::Command::new("chmod").arg("600").arg(data.join("server.key")).status()?;
        anyhow::ensure!(status.success(), "chmod 600 server.key");
        let mut conf = std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf"))?;
        std::io::Write::write_all(
            &mut conf,
            b"\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
        )?;
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )?;
        Ok(())
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The postmaster's pid (not `runuser`'s in front of it): the first
    /// line of its pid file.
    fn postmaster_pid(&self) -> Option<String> {
        let pid_file = std::fs::read_to_string(self.dir.join("data").join("postmaster.pid")).ok()?;
        pid_file.lines().next().map(|pid| pid.trim().to_owned())
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = match &self.user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&path);
                command
            }
            None => Command::new(&path),
        };
        command.current_dir("/");
        command
    }

    /// Crashes the server: `SIGQUIT` to the postmaster, PostgreSQL's
    /// immediate shutdown (no checkpoint; the next start recovers from the
    /// WAL), and waits for it to exit.
    pub async fn crash(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            let pid = self.postmaster_pid().context("reading postmaster.pid")?;
            let status = std::process::Command::new("kill").args(["-QUIT", &pid]).status()?;
            anyhow::ensure!(status.success(), "kill -QUIT {pid}");
            child.wait().await.context("waiting for postgres to exit")?;
        }
        Ok(())
    }

    /// Starts the server (again) on the same port and waits until it
    /// accepts connections.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "postgres is already running");
        let data = self.data();
        let child = self
            .command("postgres")
            .args(["-D", &data, "-p", &self.port.to_string(), "-k", &self.dir.display().to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=50"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting postgres")?;
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Some(exit) = child.try_wait()?
            {
                anyhow::bail!("postgres on port {} exited: {exit}", self.port);
            }
            if sqlx::PgPool::connect(&self.url()).await.is_ok_and(|pool| {
                drop(pool);
                true
            }) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("postgres on port {} did not accept connections", self.port)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // Killing `runuser` would leave the postmaster running: stop the
        // postmaster itself, immediately.
        if self.child.is_some()
            && let Some(pid) = self.postmaster_pid()
        {
            let _ = std::process::Command::new("kill").args(["-QUIT", &pid]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest `/usr/lib/postgresql/*/bin` with `initdb` and `postgres`,
/// else the directory of `initdb` on `PATH`.
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|dir| dir.join("initdb").exists() && dir.join("postgres").exists())
        .collect();
    dirs.sort_by_key(|dir| {
        dir.parent()
            .and_then(Path::file_name)
            .and_then(|name| name.to_str())
            .and_then(|version| version.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().or_else(|| {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(PathBuf::from)
            .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists())
    })
}

/// The OS user to run PostgreSQL as, when the tests run as root.
fn os_user() -> anyhow::Result<String> {
    for user in ["postgres", "rapport-pg"] {
        if std::process::Command::new("id").arg("-u").arg(user).output()?.status.success() {
            return Ok(user.to_owned());
        }
    }
    anyhow::bail!("running as root without a `postgres` or `rapport-pg` user to run PostgreSQL as")
}
