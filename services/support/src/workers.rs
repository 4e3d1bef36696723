//! Periodic jobs: the SLA sweeper, once per `SUPPORT_SWEEP_INTERVAL`
//! across replicas (the kit's periodic worker), announcing what it found.

use rapport_kit::changelog::Feed;
use rapport_kit::idempotency::Write;
use sqlx::PgConnection;

use crate::config::Now;
use crate::store::{Ctx, sweep};

/// The sweeper's name (its `worker_runs` row) and the actor of its changes.
pub const SWEEPER: &str = "support-sla-sweeper";

/// The SLA sweeper.
pub struct Sweeper {
    /// Woken after a sweep that announced something.
    pub feed: Feed,
    /// The time source.
    pub now: Now,
    /// The case number prefix.
    pub prefix: String,
}

#[tonic::async_trait]
impl rapport_kit::worker::Job for Sweeper {
    async fn run(&self, tx: &mut PgConnection) -> anyhow::Result<u64> {
        let ctx = Ctx {
            prefix: &self.prefix,
            now: self.now.now(),
            mail: None,
            survey_ttl: chrono::Duration::zero(),
        };
        Ok(sweep::sweep(tx, Write::service(SWEEPER), ctx).await?)
    }

    fn committed(&self, _changed: u64) {
        self.feed.announce();
    }
}

/// The mail worker's name (its `worker_runs` row).
pub const MAIL_SENDER: &str = "support-mail-sender";

/// Most mails one run sends.
const MAILS_PER_RUN: i64 = 50;

/// Sends the outbox's due mail (once per interval across replicas; each
/// mail under its row lock, marked sent only once the relay took it).
pub struct MailSender {
    pub mailer: crate::mail::Mailer,
    pub now: Now,
}

#[tonic::async_trait]
impl rapport_kit::worker::Job for MailSender {
    async fn run(&self, tx: &mut PgConnection) -> anyhow::Result<u64> {
        use crate::store::outbox;
        let now = self.now.now();
        let due = outbox::due(tx, now, MAILS_PER_RUN).await?;
        let mut sent = 0;
        for mail in &due {
            match self.mailer.send(mail).await {
                Ok(()) => {
                    outbox::sent(tx, mail.id, now).await?;
                    sent += 1;
                }
                Err(error) => {
                    tracing::warn!(mail_id = %mail.id, attempts = mail.attempts + 1, error, "mail not sent; retrying later");
                    outbox::failed(tx, mail, &error, now).await?;
                }
            }
        }
        Ok(sent)
    }
}
