//! A service's background work — change-feed notifications, periodic
//! jobs, feed consumers — stopped together: [`Workers::fire`] as shutdown
//! begins, [`Workers::stop`] to wait for them before the pool closes.

use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::consumer::ConsumerHandle;
use crate::shutdown::{self, Shutdown, Trigger};

/// The background work of one service. Dropping it stops the work too
/// (without waiting).
pub struct Workers {
    trigger: Trigger,
    shutdown: Shutdown,
    running: Mutex<Vec<BoxFuture<'static, ()>>>,
    /// Tasks to abort when they do not stop in time.
    aborts: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Workers {
    pub(super) fn new() -> Workers {
        let (trigger, shutdown) = shutdown::channel();
        Workers { trigger, shutdown, running: Mutex::new(Vec::new()), aborts: Mutex::new(Vec::new()) }
    }

    /// What a background task waits on to stop.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Keeps `task` (started with [`Workers::shutdown`]) to wait for at stop.
    pub fn keep(&self, task: JoinHandle<()>) {
        match self.aborts.lock() {
            Ok(mut aborts) => aborts.push(task.abort_handle()),
            Err(poisoned) => poisoned.into_inner().push(task.abort_handle()),
        }
        self.push(Box::pin(async move {
            if let Err(err) = task.await
                && err.is_panic()
            {
                tracing::error!(error = %err, "a background task panicked");
            }
        }));
    }

    /// Keeps a feed consumer: at stop it lets its lease go before the pool
    /// closes, so a replica (or this service restarted) takes over at once.
    pub fn keep_consumer(&self, consumer: ConsumerHandle) {
        self.push(Box::pin(consumer.stopped()));
    }

    fn push(&self, running: BoxFuture<'static, ()>) {
        match self.running.lock() {
            Ok(mut all) => all.push(running),
            Err(poisoned) => poisoned.into_inner().push(running),
        }
    }

    /// Tells every task to stop (idempotent).
    pub fn fire(&self) {
        self.trigger.fire();
    }

    /// Tells every task to stop and waits for them, at most `limit`; those
    /// still running then are aborted.
    pub async fn stop(self, limit: Duration) {
        self.fire();
        let running = match self.running.into_inner() {
            Ok(running) => running,
            Err(poisoned) => poisoned.into_inner(),
        };
        if tokio::time::timeout(limit, futures::future::join_all(running)).await.is_err() {
            tracing::warn!(?limit, "background tasks did not stop in time; aborting them");
            let aborts = match self.aborts.into_inner() {
                Ok(aborts) => aborts,
                Err(poisoned) => poisoned.into_inner(),
            };
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
    }
}
