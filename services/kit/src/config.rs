//! Typed configuration values from the environment.
//!
//! Every service reads its `Config` once at start-up through an [`Env`]; a
//! bad value stops the process with the variable's name and what was wrong.
//! Tests build an [`Env`] from pairs instead of touching the process
//! environment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// A configuration variable that is missing or malformed.
#[derive(Debug, thiserror::Error)]
#[error("configuration variable {name}: {problem}")]
pub struct ConfigError {
    /// The environment variable's name.
    pub name: String,
    /// What was wrong with it.
    pub problem: String,
}

/// Where configuration values come from: the process environment, or a
/// fixed map (tests, and `serve all` overriding one service's port).
#[derive(Debug, Clone, Default)]
pub struct Env {
    overrides: HashMap<String, String>,
    use_process: bool,
    /// When set, `NAME` is read as `<PREFIX>_NAME` first (see [`Env::prefixed`]).
    prefix: Option<String>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Env {
        Env { overrides: HashMap::new(), use_process: true, prefix: None }
    }

    /// Only the given pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        let overrides = pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        Env { overrides, use_process: false, prefix: None }
    }

    /// This environment with `name` set to `value`, shadowing the process.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Env {
        self.overrides.insert(name.to_owned(), value.into());
        self
    }

    /// This environment where each variable `NAME` is read as
    /// `<PREFIX>_NAME` when that is set, else as `NAME`: one service of
    /// several in a process (`serve all`) can get its own pool size or
    /// database without changing the others'.
    pub fn prefixed(&self, prefix: &str) -> Env {
        Env { prefix: Some(prefix.to_ascii_uppercase()), ..self.clone() }
    }

    /// The names of the variables set (non-empty) that start with
    /// `prefix`, sorted: for settings keyed by name, such as one backend per
    /// gateway area.
    pub fn names_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> =
            self.overrides.keys().filter(|name| name.starts_with(prefix)).cloned().collect();
        if self.use_process {
            names.extend(
                std::env::vars_os()
                    .filter_map(|(name, _)| name.into_string().ok())
                    .filter(|name| name.starts_with(prefix) && !self.overrides.contains_key(name)),
            );
        }
        names.sort();
        names.dedup();
        names
    }

    /// The value of `name` and the variable it came from.
    fn raw(&self, name: &str) -> Result<Option<(String, String)>, ConfigError> {
        if let Some(prefix) = &self.prefix {
            let prefixed = format!("{prefix}_{name}");
            if let Some(value) = self.raw_exact(&prefixed)?.filter(|value| !value.trim().is_empty()) {
                return Ok(Some((prefixed, value)));
            }
        }
        Ok(self.raw_exact(name)?.map(|value| (name.to_owned(), value)))
    }

    fn raw_exact(&self, name: &str) -> Result<Option<String>, ConfigError> {
        if let Some(value) = self.overrides.get(name) {
            return Ok(Some(value.clone()));
        }
        if !self.use_process {
            return Ok(None);
        }
        match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(ConfigError { name: name.to_owned(), problem: "is not valid UTF-8".to_owned() })
            }
        }
    }

    /// The trimmed, non-empty value of `name` and the variable it came from.
    fn text(&self, name: &str) -> Result<Option<(String, String)>, ConfigError> {
        Ok(self.raw(name)?.and_then(|(name, raw)| {
            let trimmed = raw.trim();
            (!trimmed.is_empty()).then(|| (name, trimmed.to_owned()))
        }))
    }

    /// Reads `name` if it is set and non-empty.
    pub fn optional<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.text(name)? {
            Some((name, raw)) => raw
                .parse()
                .map(Some)
                .map_err(|err: T::Err| ConfigError { name, problem: format!("{raw:?} is not valid: {err}") }),
            None => Ok(None),
        }
    }

    /// Reads `name`, or returns `default` when it is unset or empty.
    pub fn or_default<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        Ok(self.optional(name)?.unwrap_or(default))
    }

    /// Reads a required variable.
    pub fn required<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.optional(name)?.ok_or_else(|| ConfigError {
            name: name.to_owned(),
            problem: "is required but not set".to_owned(),
        })
    }

    /// Reads a duration written as `250ms`, `30s`, `5m`, `2h` or `7d` (a bare
    /// number means seconds).
    pub fn duration_or(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.text(name)? {
            None => Ok(default),
            Some((name, raw)) => parse_duration(&raw).ok_or_else(|| ConfigError {
                name,
                problem: format!("{raw:?} is not a duration (examples: 250ms, 30s, 5m, 2h, 7d)"),
            }),
        }
    }

    /// Reads a listen address that can be turned off: `off` is `None`, unset
    /// or empty is `Some(default)`.
    pub fn address_or_off(&self, name: &str, default: SocketAddr) -> Result<Option<SocketAddr>, ConfigError> {
        match self.text(name)? {
            None => Ok(Some(default)),
            Some((_, raw)) if raw.eq_ignore_ascii_case("off") => Ok(None),
            Some((name, raw)) => raw.parse().map(Some).map_err(|err| ConfigError {
                name,
                problem: format!("{raw:?} is not an address such as 127.0.0.1:9151 or `off`: {err}"),
            }),
        }
    }

    /// Reads a boolean written as true/false, 1/0, yes/no or on/off.
    pub fn flag_or(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.text(name)? {
            None => Ok(default),
            Some((name, raw)) => match raw.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError { name, problem: format!("{raw:?} is not a boolean (true or false)") }),
            },
        }
    }
}

/// Parses `250ms`, `30s`, `5m`, `2h`, `7d` or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit.trim() {
        "" | "s" => Some(Duration::from_secs(number)),
        "ms" => Some(Duration::from_millis(number)),
        "m" => Some(Duration::from_secs(number.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(number.checked_mul(3600)?)),
        "d" => Some(Duration::from_secs(number.checked_mul(86_400)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("5 minutes"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let env = Env::from_pairs([("PORT", "eighty"), ("TIMEOUT", "soon"), ("FLAG", "maybe")]);
        let err = env.required::<u16>("PORT").unwrap_err();
        assert_eq!(err.name, "PORT");
        assert!(err.to_string().contains("\"eighty\" is not valid"), "{err}");

        let missing = env.required::<u16>("MISSING").unwrap_err();
        assert!(missing.to_string().contains("MISSING: is required"), "{missing}");
        assert_eq!(env.or_default("MISSING", 7u16).unwrap(), 7);

        let err = env.duration_or("TIMEOUT", Duration::ZERO).unwrap_err();
        assert!(err.to_string().starts_with("configuration variable TIMEOUT"), "{err}");
        assert!(env.flag_or("FLAG", false).is_err());
    }

    #[test]
    fn overrides_shadow_and_empty_means_unset() {
        let env = Env::from_pairs([("PORT", "  "), ("NAME", "x")]).with("NAME", "y");
        assert_eq!(env.optional::<u16>("PORT").unwrap(), None);
        assert_eq!(env.required::<String>("NAME").unwrap(), "y");
        assert!(env.flag_or("NONE", true).unwrap());
    }

    #[test]
    fn addresses_can_be_turned_off() {
        let default = SocketAddr::from(([127, 0, 0, 1], 9151));
        let env = Env::from_pairs([("A", "OFF"), ("B", "0.0.0.0:0"), ("C", "localhost")]);
        assert_eq!(env.address_or_off("A", default).unwrap(), None);
        assert_eq!(env.address_or_off("B", default).unwrap(), Some(SocketAddr::from(([0, 0, 0, 0], 0))));
        assert_eq!(env.address_or_off("UNSET", default).unwrap(), Some(default));
        assert_eq!(env.address_or_off("C", default).unwrap_err().name, "C");
    }

    #[test]
    fn a_prefixed_variable_wins_and_errors_name_it() {
        let env = Env::from_pairs([
            ("DATABASE_MAX_CONNECTIONS", "16"),
            ("PIPELINE_DATABASE_MAX_CONNECTIONS", "4"),
            ("CONTACTS_SHUTDOWN_GRACE", "soon"),
            ("CONTACTS_DATABASE_MAX_CONNECTIONS", " "),
        ]);
        assert_eq!(env.prefixed("pipeline").required::<u32>("DATABASE_MAX_CONNECTIONS").unwrap(), 4);
        // Empty means unset: the shared value applies.
        assert_eq!(env.prefixed("contacts").required::<u32>("DATABASE_MAX_CONNECTIONS").unwrap(), 16);
        assert_eq!(env.required::<u32>("DATABASE_MAX_CONNECTIONS").unwrap(), 16);
        let err = env.prefixed("contacts").duration_or("SHUTDOWN_GRACE", Duration::ZERO).unwrap_err();
        assert_eq!(err.name, "CONTACTS_SHUTDOWN_GRACE");
    }
}
