//! The Support service's typed configuration, read once from the
//! environment, and the clock it reads the time from.

use std::net::SocketAddr;
use std::time::Duration;

use rapport_kit::config::{ConfigError, Env};
use rapport_kit::peer::PeerSettings;
use rapport_kit::service::Settings;

/// The default address of the Contacts service (requester checks).
pub const DEFAULT_CONTACTS_ADDR: &str = "http://127.0.0.1:50051";

/// Everything the Support service needs to start.
#[derive(Clone)]
pub struct Config {
    /// The common settings, with the `SUPPORT` prefix (`SUPPORT_ADDR`,
    /// `SUPPORT_METRICS_ADDR`, …; see `rapport_kit::service::Settings`).
    pub service: Settings,
    /// How Support reaches Contacts to check requesters and companies:
    /// `SUPPORT_CONTACTS_ADDR` (default http://127.0.0.1:50051),
    /// `SUPPORT_CONTACTS_TIMEOUT` (default 5s), `SUPPORT_CONTACTS_API_KEY`
    /// (optional): the API key this service uses as itself to follow
    /// Contacts' change feed (a role allowed `WatchChanges` and
    /// `GetContact`, e.g. `integration`); unset, it mints its own tokens
    /// with the HS256 secret, and with the identity provider's keys it does
    /// not follow the feed (an error is logged at start).
    pub contacts: PeerSettings,
    /// `SUPPORT_CASE_NUMBER_PREFIX` (default `CASE-`): what case numbers
    /// start with (1-20 characters, no digits at the end).
    pub case_number_prefix: String,
    /// `SUPPORT_REOPEN_WINDOW` (default 7d): how long after its resolution
    /// a requester's reply reopens a case; later replies open a follow-up.
    pub reopen_window: Duration,
    /// Mail to requesters: `SUPPORT_SMTP_URL` (unset: no mail is written or
    /// sent), `SUPPORT_MAIL_FROM`, `SUPPORT_SURVEY_URL`.
    pub mail: Option<MailSettings>,
    /// `SUPPORT_MAIL_INTERVAL` (default 5s, at least 1s): how often the mail
    /// worker sends what the outbox holds.
    pub mail_interval: Duration,
    /// `SUPPORT_SURVEY_TTL` (default 14d): how long a satisfaction survey
    /// can be answered.
    pub survey_ttl: Duration,
    /// `SUPPORT_SURVEY_RATE_PER_SECOND` (default 5) and
    /// `SUPPORT_SURVEY_RATE_BURST` (default 20): SubmitSatisfaction calls
    /// allowed per client address.
    pub survey_rate: rapport_kit::ratelimit::RateLimitSettings,
    /// `SUPPORT_SWEEP_INTERVAL` (default 30s, at least 1s): how often the
    /// SLA sweeper looks for warnings and breaches (once across replicas).
    pub sweep_interval: Duration,
    /// Where the service reads the time: the system clock, or a test's.
    pub now: Now,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("service", &self.service)
            .field("contacts", &self.contacts)
            .field("case_number_prefix", &self.case_number_prefix)
            .field("reopen_window", &self.reopen_window)
            .field("mail", &self.mail)
            .finish_non_exhaustive()
    }
}

/// The time source: SLA clocks, case times and the sweeper read it, so
/// tests can walk a case across a weekend, a holiday and a DST change.
pub use rapport_kit::clock::Now;

/// How mail reaches requesters.
#[derive(Clone)]
pub struct MailSettings {
    /// `SUPPORT_SMTP_URL`: the SMTP relay, as lettre reads it:
    /// `smtp://host:25` (plain), `smtp://host:587?tls=required` (STARTTLS),
    /// `smtps://user:password@host:465` (TLS).
    pub smtp_url: String,
    /// `SUPPORT_MAIL_FROM` (default `Support <support@localhost>`): the
    /// sender; its domain names outgoing Message-IDs.
    pub from: String,
    /// `SUPPORT_SURVEY_URL` (optional): the satisfaction survey link, the
    /// token appended (e.g. `https://help.example.com/survey?token=`).
    pub survey_url: String,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("MailSettings")
            .field("from", &self.from)
            .field("survey_url", &self.survey_url)
            .finish_non_exhaustive()
    }
}

impl MailSettings {
    fn from_env(env: &Env) -> Result<Option<MailSettings>, ConfigError> {
        let Some(smtp_url) = env.optional::<String>("SUPPORT_SMTP_URL")?.filter(|url| !url.trim().is_empty())
        else {
            return Ok(None);
        };
        if !(smtp_url.starts_with("smtp://") || smtp_url.starts_with("smtps://")) {
            return Err(ConfigError {
                name: "SUPPORT_SMTP_URL".to_owned(),
                problem: "must start with smtp:// or smtps://".to_owned(),
            });
        }
        let from: String = env.or_default("SUPPORT_MAIL_FROM", "Support <support@localhost>".to_owned())?;
        if from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError {
                name: "SUPPORT_MAIL_FROM".to_owned(),
                problem: "must be a mailbox, e.g. \"Support <support@example.com>\"".to_owned(),
            });
        }
        let survey_url: String = env.or_default("SUPPORT_SURVEY_URL", String::new())?;
        Ok(Some(MailSettings { smtp_url, from, survey_url }))
    }

    /// The domain of the sender's address (for Message-IDs).
    pub fn domain(&self) -> String {
        self.from
            .parse::<lettre::message::Mailbox>()
            .map(|mailbox| mailbox.email.domain().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned())
    }
}

/// A duration of at least a second (a shorter period would spin).
fn at_least_a_second(env: &Env, name: &str, default: Duration) -> Result<Duration, ConfigError> {
    let value = env.duration_or(name, default)?;
    if value < Duration::from_secs(1) {
        Err(ConfigError { name: name.to_owned(), problem: "must be at least 1s".to_owned() })
    } else {
        Ok(value)
    }
}

impl Config {
    /// Reads the configuration; errors name the variable.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let prefix: String = env.or_default("SUPPORT_CASE_NUMBER_PREFIX", "CASE-".to_owned())?;
        let prefix_ok = !prefix.is_empty()
            && prefix.chars().count() <= 20
            && !prefix.ends_with(|c: char| c.is_ascii_digit())
            && !prefix.chars().any(|c| c.is_control() || c.is_whitespace());
        if !prefix_ok {
            return Err(ConfigError {
                name: "SUPPORT_CASE_NUMBER_PREFIX".to_owned(),
                problem: "must be 1-20 characters without spaces, not ending in a digit".to_owned(),
            });
        }
        Ok(Config {
            service: Settings::from_env(env, &crate::SPEC)?,
            contacts: PeerSettings::from_env(env, "support", "contacts", DEFAULT_CONTACTS_ADDR)?,
            case_number_prefix: prefix,
            reopen_window: env.duration_or("SUPPORT_REOPEN_WINDOW", Duration::from_secs(7 * 86_400))?,
            sweep_interval: at_least_a_second(env, "SUPPORT_SWEEP_INTERVAL", Duration::from_secs(30))?,
            mail: MailSettings::from_env(env)?,
            mail_interval: at_least_a_second(env, "SUPPORT_MAIL_INTERVAL", Duration::from_secs(5))?,
            survey_ttl: env.duration_or("SUPPORT_SURVEY_TTL", Duration::from_secs(14 * 86_400))?,
            survey_rate: rapport_kit::ratelimit::RateLimitSettings {
                per_second: env.or_default("SUPPORT_SURVEY_RATE_PER_SECOND", 5.0)?,
                burst: env.or_default("SUPPORT_SURVEY_RATE_BURST", 20)?,
            },
            now: Now::system(),
        })
    }

    /// This configuration with the Contacts service at `addr`.
    pub fn with_contacts(mut self, addr: SocketAddr) -> Config {
        self.contacts = self.contacts.at(addr);
        self
    }

    /// This configuration reading the time from `now`.
    pub fn with_now(mut self, now: Now) -> Config {
        self.now = now;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_number_prefix_ending_in_a_digit_is_refused_by_name() {
        let read = |value: &str| {
            let env = Env::from_pairs([
                (rapport_kit::auth::DEV_MODE, "true"),
                ("SUPPORT_CASE_NUMBER_PREFIX", value),
            ]);
            Config::from_env(&env).map(|config| config.case_number_prefix).map_err(|err| err.name)
        };
        assert_eq!(read("TKT-"), Ok("TKT-".to_owned()));
        assert_eq!(read("V2"), Err("SUPPORT_CASE_NUMBER_PREFIX".to_owned()));
        assert_eq!(read("A B-"), Err("SUPPORT_CASE_NUMBER_PREFIX".to_owned()));
    }
}
