//! The Pipeline service's typed configuration, read once from the
//! environment.

use std::net::SocketAddr;
use std::time::Duration;

use rapport_kit::config::{ConfigError, Env};
use rapport_kit::peer::PeerSettings;
use rapport_kit::service::Settings;

/// The default address of the Contacts service (references and its feed).
pub const DEFAULT_CONTACTS_ADDR: &str = "http://127.0.0.1:50051";

/// Everything the Pipeline service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// The common settings, with the `PIPELINE` prefix (`PIPELINE_ADDR`,
    /// `PIPELINE_METRICS_ADDR`, …; see `rapport_kit::service::Settings`).
    pub service: Settings,
    /// How Pipeline reaches Contacts, asked to check references and
    /// followed for deleted contacts and companies (see
    /// `rapport_kit::peer::PeerSettings`): `PIPELINE_CONTACTS_ADDR` (default
    /// http://127.0.0.1:50051), `PIPELINE_CONTACTS_TIMEOUT` (default 5s),
    /// and `PIPELINE_CONTACTS_API_KEY` (optional secret): the API key (sent
    /// as `x-api-key`) this service uses as itself with Contacts, to follow
    /// its change feed (see [`crate::contacts_feed`]); it needs a role
    /// allowed `WatchChanges`, `GetCompany` and `BatchGetContacts` (e.g.
    /// `integration`). Unset: with an HS256 secret (`AUTH_JWT_SECRET`, or
    /// the local development key) the service mints its own short-lived
    /// token (subject `pipeline`, role `integration`); with the identity
    /// provider's keys (`AUTH_JWKS_FILE`, `AUTH_JWKS_URL`, discovery) it cannot, so the feed is not followed (an error is logged at start;
    /// readiness is unaffected) and deals keep references to deleted
    /// companies and contacts.
    pub contacts: PeerSettings,
    /// `PIPELINE_REPORTING_CURRENCY` (default EUR): the currency forecasts
    /// are reported in when the caller names none.
    pub reporting_currency: String,
    /// `PIPELINE_CREDIT_HOLD_DAYS` (default 30): an invoice overdue by more
    /// days puts its company on credit hold.
    pub credit_hold_days: u32,
    /// `PIPELINE_OVERDUE_INTERVAL` (default 1m): how often the worker marks
    /// invoices past their due date OVERDUE.
    pub overdue_interval: Duration,
    /// `PIPELINE_TEAM_VISIBLE` (default empty): the record kinds read only
    /// by their owners, members and teams (and admins and the roles that
    /// change any of them), a comma-separated list of `deals` and
    /// `quotas`; every other kind is read by every role its read RPCs
    /// allow.
    pub team_visible: TeamVisible,
}

/// Which record kinds are team-visible ([`Config::team_visible`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TeamVisible {
    /// Deals (and what is read from them: forecasts, summaries, stale
    /// deals, history, their change events).
    pub deals: bool,
    /// Quotas (and the quotas of forecasts, and their change events): a
    /// quota has an owner and no team, so a bound reader sees their own.
    pub quotas: bool,
}

impl TeamVisible {
    fn from_env(env: &Env) -> Result<TeamVisible, ConfigError> {
        let raw: String = env.or_default("PIPELINE_TEAM_VISIBLE", String::new())?;
        let mut visible = TeamVisible::default();
        for kind in raw.split(',').map(str::trim).filter(|kind| !kind.is_empty()) {
            match kind {
                "deals" => visible.deals = true,
                "quotas" => visible.quotas = true,
                other => {
                    return Err(ConfigError {
                        name: "PIPELINE_TEAM_VISIBLE".to_owned(),
                        problem: format!(
                            "{other:?} is not a record kind that can be team-visible (deals, quotas)"
                        ),
                    });
                }
            }
        }
        Ok(visible)
    }
}

impl Config {
    /// Reads the configuration; errors name the variable.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            service: Settings::from_env(env, &crate::SPEC)?,
            contacts: PeerSettings::from_env(env, "pipeline", "contacts", DEFAULT_CONTACTS_ADDR)?,
            reporting_currency: env.or_default("PIPELINE_REPORTING_CURRENCY", "EUR".to_owned())?,
            credit_hold_days: env.or_default("PIPELINE_CREDIT_HOLD_DAYS", 30)?,
            overdue_interval: positive(env, "PIPELINE_OVERDUE_INTERVAL", Duration::from_secs(60))?,
            team_visible: TeamVisible::from_env(env)?,
        })
    }

    /// This configuration with the Contacts service at `addr` (used by
    /// `rapport serve` to point at the Contacts of the same process, and by
    /// tests).
    pub fn with_contacts(mut self, addr: SocketAddr) -> Config {
        self.contacts = self.contacts.at(addr);
        self
    }
}

/// A duration that must not be zero (a zero period would spin).
fn positive(env: &Env, name: &str, default: Duration) -> Result<Duration, ConfigError> {
    let value = env.duration_or(name, default)?;
    if value.is_zero() {
        Err(ConfigError { name: name.to_owned(), problem: "must be longer than 0s".to_owned() })
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_overdue_interval_is_refused_by_name() {
        let env =
            Env::from_pairs([(rapport_kit::auth::DEV_MODE, "true"), ("PIPELINE_OVERDUE_INTERVAL", "0s")]);
        assert_eq!(
            Config::from_env(&env).map(|_| ()).map_err(|err| err.name),
            Err("PIPELINE_OVERDUE_INTERVAL".into())
        );
        let env =
            Env::from_pairs([(rapport_kit::auth::DEV_MODE, "true"), ("PIPELINE_OVERDUE_INTERVAL", "5s")]);
        assert_eq!(
            Config::from_env(&env).map(|config| config.overdue_interval).ok(),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn team_visible_kinds_are_read_by_name() {
        let read = |value: &str| {
            let env =
                Env::from_pairs([(rapport_kit::auth::DEV_MODE, "true"), ("PIPELINE_TEAM_VISIBLE", value)]);
            Config::from_env(&env).map(|config| config.team_visible).map_err(|err| err.name)
        };
        assert_eq!(read(""), Ok(TeamVisible::default()));
        assert_eq!(read("deals"), Ok(TeamVisible { deals: true, quotas: false }));
        assert_eq!(read(" deals , quotas"), Ok(TeamVisible { deals: true, quotas: true }));
        assert_eq!(read("contacts"), Err("PIPELINE_TEAM_VISIBLE".into()));
    }
}
