//! Mail out over SMTP (lettre): the outbox's pending mail, with the case
//! number in the subject and threading headers.

use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use crate::config::MailSettings;
use crate::store::outbox::Pending;

/// The SMTP relay and the sender.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// A mailer for `settings` (connects on first use).
    pub fn new(settings: &MailSettings) -> anyhow::Result<Mailer> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.smtp_url)
            .map_err(|err| anyhow::anyhow!("SUPPORT_SMTP_URL: {err}"))?
            .timeout(Some(Duration::from_secs(15)))
            .build();
        let from = settings.from.parse().map_err(|err| anyhow::anyhow!("SUPPORT_MAIL_FROM: {err}"))?;
        Ok(Mailer { transport, from })
    }

    /// Sends one mail; the relay's refusal or the connection's failure as text.
    pub async fn send(&self, mail: &Pending) -> Result<(), String> {
        let address =
            mail.to_address.parse().map_err(|err| format!("recipient {:?}: {err}", mail.to_address))?;
        let name = (!mail.to_name.is_empty()).then(|| mail.to_name.clone());
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(name, address))
            .subject(mail.subject.clone())
            .message_id(Some(format!("<{}>", mail.message_id)));
        if !mail.in_reply_to.is_empty() {
            builder = builder.in_reply_to(format!("<{}>", mail.in_reply_to));
        }
        if !mail.references.is_empty() {
            let references: Vec<String> = mail.references.iter().map(|id| format!("<{id}>")).collect();
            builder = builder.references(references.join(" "));
        }
        let message =
            builder.header(ContentType::TEXT_PLAIN).body(mail.body.clone()).map_err(|err| err.to_string())?;
        self.transport.send(message).await.map(drop).map_err(|err| err.to_string())
    }
}
