//! Graceful shutdown: one trigger, many listeners.
//!
//! `main` fires the trigger on SIGTERM or ctrl-c ([`signal`]); servers stop
//! accepting, let in-flight calls finish, and background tasks end.

use tokio::sync::watch;

/// Fires shutdown for every [`Shutdown`] cloned from its pair.
#[derive(Debug)]
pub struct Trigger {
    sender: watch::Sender<bool>,
}

/// Resolves once shutdown has been triggered. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// A connected trigger and listener.
pub fn channel() -> (Trigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (Trigger { sender }, Shutdown { receiver })
}

impl Trigger {
    /// Starts shutdown. Idempotent.
    pub fn fire(&self) {
        self.sender.send_replace(true);
    }
}

impl Shutdown {
    /// A listener that never fires (for tests and one-off tools).
    pub fn never() -> Shutdown {
        let (sender, receiver) = watch::channel(false);
        std::mem::forget(sender);
        Shutdown { receiver }
    }

    /// Waits until shutdown is triggered (or the trigger is dropped).
    pub async fn wait(&mut self) {
        // An error means the trigger was dropped: treat that as shutdown.
        let _ = self.receiver.wait_for(|fired| *fired).await;
    }

    /// True once shutdown has been triggered.
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }
}

/// Waits for SIGTERM or ctrl-c (SIGINT).
pub async fn signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_listener_sees_the_trigger() {
        let (trigger, shutdown) = channel();
        let mut first = shutdown.clone();
        let mut second = shutdown;
        assert!(!first.is_triggered());
        let waiter = tokio::spawn(async move { first.wait().await });
        trigger.fire();
        waiter.await.unwrap();
        second.wait().await;
        assert!(second.is_triggered());
    }
}
