//! A real SMTP server on loopback (Python's aiosmtpd, from a virtualenv
//! `tests/smtp/ensure.sh` prepares) that keeps every message it accepts.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// The running sink; stopped when dropped.
pub struct SmtpSink {
    pub port: u16,
    dir: PathBuf,
    _child: Child,
}

impl SmtpSink {
    /// Starts a sink on a free loopback port and waits until it listens.
    pub async fn start() -> SmtpSink {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp");
        let ensure = Command::new("bash").arg(here.join("ensure.sh")).output().await.expect("ensure.sh runs");
        assert!(ensure.status.success(), "ensure.sh: {}", String::from_utf8_lossy(&ensure.stderr));
        let python = String::from_utf8(ensure.stdout).unwrap().trim().to_owned();
        let dir = std::env::temp_dir().join(format!("rapport-smtp-{}", uuid::Uuid::now_v7()));
        let mut child = Command::new(python)
            .arg(here.join("sink.py"))
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the sink starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = rapport_kit::testing::within("the SMTP sink", lines.next_line()).await.unwrap().unwrap();
        let port = line.strip_prefix("listening ").unwrap().parse().unwrap();
        SmtpSink { port, dir, _child: child }
    }

    /// The URL Support sends to.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, in order.
    pub fn received(&self) -> Vec<Vec<u8>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| entries.filter_map(Result::ok).map(|entry| entry.path()).collect())
            .unwrap_or_default();
        paths.retain(|path| path.extension().is_some_and(|ext| ext == "eml"));
        paths.sort();
        paths.iter().map(|path| std::fs::read(path).unwrap()).collect()
    }

    /// Waits until at least `count` messages arrived; returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<Vec<u8>> {
        rapport_kit::testing::eventually("mail in the SMTP sink", || async {
            self.received().len() >= count
        })
        .await;
        self.received()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
