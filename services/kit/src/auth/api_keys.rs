//! API keys for machine callers: `x-api-key: rk_…` instead of a bearer
//! token. Only SHA-256 digests of the keys are stored (the keys are 256-bit
//! random strings, so a plain hash is the standard, sufficient protection).
//!
//! The keys file (`API_KEYS_FILE`):
//!
//! ```json
//! {"keys": [{"sha256": "<64 hex digits>", "subject": "erp-sync", "roles": ["integration"]}]}
//! ```
//!
//! `rapport api-key --subject erp-sync --role integration` prints a new key
//! and the entry to add.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AuthError, AuthSetupError, Principal, Role};

/// The prefix of every generated key, so leaked keys are recognisable.
pub const API_KEY_PREFIX: &str = "rk_";

/// Random bytes in a generated key.
const KEY_BYTES: usize = 32;

/// One entry of the keys file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyEntry {
    /// [`hash_key`] of the key: 64 lowercase hex digits.
    pub sha256: String,
    /// The caller's name; becomes [`Principal::subject`].
    pub subject: String,
    /// Role names (`snake_case`, see [`Role::as_str`]).
    pub roles: Vec<String>,
    /// Team ids; the caller's [`Principal::teams`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
}

impl ApiKeyEntry {
    /// The entry for `key` (hashed here; the key itself is not kept).
    pub fn new(key: &str, subject: &str, roles: &[Role]) -> ApiKeyEntry {
        ApiKeyEntry {
            sha256: hash_key(key),
            subject: subject.to_owned(),
            roles: roles.iter().map(|role| role.as_str().to_owned()).collect(),
            teams: Vec::new(),
        }
    }

    /// This entry for a caller in `teams` too.
    pub fn with_teams(mut self, teams: &[String]) -> ApiKeyEntry {
        self.teams = teams.to_vec();
        self
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    keys: Vec<ApiKeyEntry>,
}

/// The accepted API keys, by digest. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct ApiKeys {
    by_digest: Arc<HashMap<[u8; 32], Principal>>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys").field("count", &self.by_digest.len()).finish()
    }
}

impl ApiKeys {
    /// No keys: every `x-api-key` is rejected.
    pub fn none() -> ApiKeys {
        ApiKeys::default()
    }

    /// Reads the keys file (see the module docs). Every entry needs a valid
    /// digest, a non-empty subject and at least one role, all known; digests
    /// are unique. Errors name the entry.
    pub fn from_file(path: &Path) -> Result<ApiKeys, AuthSetupError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| AuthSetupError::ReadApiKeys { path: path.to_owned(), source })?;
        let invalid = |message: String| AuthSetupError::InvalidApiKeys { path: path.to_owned(), message };
        let file: KeysFile = serde_json::from_str(&text).map_err(|error| invalid(error.to_string()))?;
        ApiKeys::from_entries(file.keys).map_err(invalid)
    }

    /// Keys from parsed entries; the error says which entry is wrong and why.
    pub fn from_entries(entries: Vec<ApiKeyEntry>) -> Result<ApiKeys, String> {
        let mut by_digest = HashMap::with_capacity(entries.len());
        for (index, entry) in entries.into_iter().enumerate() {
            let label = format!("entry #{index} (subject {:?})", entry.subject);
            let digest = parse_digest(&entry.sha256)
                .ok_or_else(|| format!("{label}: sha256 must be 64 hex digits (the SHA-256 of the key)"))?;
            if entry.subject.trim().is_empty() {
                return Err(format!("entry #{index}: subject is empty"));
            }
            if entry.roles.is_empty() {
                return Err(format!("{label}: roles is empty"));
            }
            let mut roles = Vec::with_capacity(entry.roles.len());
            for name in &entry.roles {
                let role = Role::parse(name).ok_or_else(|| {
                    let known: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
                    format!("{label}: unknown role {name:?}; known: {}", known.join(", "))
                })?;
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
            if entry.teams.len() > super::MAX_TEAMS || !entry.teams.iter().all(|team| super::is_team_id(team))
            {
                return Err(format!(
                    "{label}: teams must be at most {} non-blank team ids",
                    super::MAX_TEAMS
                ));
            }
            let teams: Vec<&str> = entry.teams.iter().map(String::as_str).collect();
            let principal = Principal::new(entry.subject, roles).with_teams(&teams);
            if by_digest.insert(digest, principal).is_some() {
                return Err(format!("{label}: the same key digest appears twice"));
            }
        }
        Ok(ApiKeys { by_digest: Arc::new(by_digest) })
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// True if there are no keys.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The principal of `key`, or [`AuthError::InvalidApiKey`].
    pub fn verify(&self, key: &str) -> Result<Principal, AuthError> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.by_digest.get(&digest).cloned().ok_or(AuthError::InvalidApiKey)
    }
}

/// The SHA-256 of `key` as 64 lowercase hex digits (what the keys file stores).
pub fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

/// A new random key: `rk_` and 32 random bytes in URL-safe base64 (46
/// characters in all).
pub fn generate_key() -> String {
    let mut bytes = [0u8; KEY_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let mut key = String::with_capacity(API_KEY_PREFIX.len() + 43);
    key.push_str(API_KEY_PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(bytes, &mut key);
    key
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(digest)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(sha256: &str, roles: &[&str]) -> ApiKeyEntry {
        ApiKeyEntry {
            sha256: sha256.to_owned(),
            subject: "erp-sync".to_owned(),
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
            teams: Vec::new(),
        }
    }

    #[test]
    fn generated_keys_are_random_url_safe_and_verify_by_hash() {
        let key = generate_key();
        assert!(key.starts_with("rk_"));
        assert_eq!(key.len(), 3 + 43);
        assert!(key[3..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{key}");
        assert_ne!(key, generate_key());

        let keys =
            ApiKeys::from_entries(vec![ApiKeyEntry::new(&key, "erp-sync", &[Role::Integration])]).unwrap();
        let principal = keys.verify(&key).unwrap();
        assert_eq!(principal.subject, "erp-sync");
        assert_eq!(principal.roles, [Role::Integration]);
        assert_eq!(keys.verify("rk_other"), Err(AuthError::InvalidApiKey));
        assert_eq!(ApiKeys::none().verify(&key), Err(AuthError::InvalidApiKey));
    }

    #[test]
    fn hash_is_lowercase_hex_sha256() {
        // printf abc | sha256sum
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let upper = hash_key("abc").to_uppercase();
        assert!(ApiKeys::from_entries(vec![entry(&upper, &["viewer"])]).unwrap().verify("abc").is_ok());
    }

    #[test]
    fn bad_entries_are_named() {
        let good = hash_key("k");
        let cases = [
            (
                vec![entry("abc", &["viewer"])],
                "entry #0 (subject \"erp-sync\"): sha256 must be 64 hex digits",
            ),
            (vec![entry(&"g".repeat(64), &["viewer"])], "sha256 must be 64 hex digits"),
            (vec![entry(&good, &["wizard"])], "entry #0 (subject \"erp-sync\"): unknown role \"wizard\""),
            (vec![entry(&good, &[])], "roles is empty"),
            (
                vec![entry(&good, &["viewer"]), entry(&good, &["admin"])],
                "entry #1 (subject \"erp-sync\"): the same key",
            ),
        ];
        for (entries, expected) in cases {
            let error = ApiKeys::from_entries(entries).unwrap_err();
            assert!(error.contains(expected), "{error:?} should contain {expected:?}");
        }
        let mut nameless = entry(&good, &["viewer"]);
        nameless.subject = " ".into();
        assert_eq!(ApiKeys::from_entries(vec![nameless]).unwrap_err(), "entry #0: subject is empty");
    }
}
