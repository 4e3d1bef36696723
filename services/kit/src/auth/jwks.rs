//! JSON Web Key Sets: the usable signing keys of a file (`AUTH_JWKS_FILE`,
//! checked strictly at start) or of a set fetched from the identity
//! provider (lenient: a malformed entry is skipped).

use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::jwt::AuthSetupError;

/// A usable signing key of a key set: its id, algorithm and key.
pub(super) type ParsedKey = (Option<String>, Algorithm, DecodingKey);

/// Reads a JWKS file into `(kid, algorithm, key)` triples of the usable signing keys.
pub(super) fn load_jwks(path: &Path) -> Result<Vec<ParsedKey>, AuthSetupError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| AuthSetupError::ReadJwks { path: path.to_owned(), source })?;
    parse_jwks(&text, &path.display().to_string(), false)
        .map_err(|message| AuthSetupError::InvalidJwks { path: path.to_owned(), message })
}

/// The usable signing keys of the key set `text` (`source` names it in
/// logs). A file is checked strictly (any malformed entry refuses the set,
/// at start); a fetched set is `lenient`: a malformed entry is logged and
/// skipped, so one bad key the provider publishes does not stop the
/// refresh (and keep a withdrawn key trusted).
pub(super) fn parse_jwks(text: &str, source: &str, lenient: bool) -> Result<Vec<ParsedKey>, String> {
    let document: Value = serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    let Some(Value::Array(entries)) = document.get("keys") else {
        return Err("no \"keys\" array".to_owned());
    };
    let mut keys: Vec<ParsedKey> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        match parse_key(index, entry, &keys) {
            Ok(Some(key)) => keys.push(key),
            Ok(None) => {}
            Err(problem) if lenient => {
                tracing::warn!(
                    source,
                    problem,
                    "skipping a malformed key of the identity provider's key set"
                );
            }
            Err(problem) => return Err(problem),
        }
    }
    if keys.is_empty() {
        return Err("contains no RS256 or ES256 signing key".to_owned());
    }
    Ok(keys)
}

/// Entry `index` of a key set as a usable signing key; `None` for a key of
/// another use or algorithm; an error for a malformed one or a repeated kid.
fn parse_key(index: usize, entry: &Value, parsed: &[ParsedKey]) -> Result<Option<ParsedKey>, String> {
    let jwk: Jwk = serde_json::from_value(entry.clone())
        .map_err(|error| format!("key #{index} is not a valid JWK: {error}"))?;
    let kid = jwk.common.key_id.clone();
    let label = match &kid {
        Some(kid) => format!("key #{index} (kid {kid:?})"),
        None => format!("key #{index}"),
    };
    let Some(alg) = usable_algorithm(&jwk) else {
        tracing::info!(key = %label, "skipping JWKS key: not an RS256/ES256 signing key");
        return Ok(None);
    };
    if let AlgorithmParameters::EllipticCurve(ec) = &jwk.algorithm {
        check_p256_coordinates(&ec.x, &ec.y).map_err(|what| format!("{label}: {what}"))?;
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|error| format!("{label} is unusable: {error}"))?;
    if kid.is_some() && parsed.iter().any(|(other, _, _)| *other == kid) {
        return Err(format!("{label}: duplicate kid"));
    }
    Ok(Some((kid, alg, key)))
}

/// The algorithm a JWK verifies, if it is an RS256 or ES256 signing key.
fn usable_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(alg),
        Some(KeyAlgorithm::RS256) if alg == Algorithm::RS256 => Some(alg),
        Some(KeyAlgorithm::ES256) if alg == Algorithm::ES256 => Some(alg),
        Some(_) => None,
    }
}

fn check_p256_coordinates(x: &str, y: &str) -> Result<(), &'static str> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for coordinate in [x, y] {
        match engine.decode(coordinate) {
            Ok(bytes) if bytes.len() == 32 => {}
            _ => return Err("EC coordinates must be 32-byte base64url values"),
        }
    }
    Ok(())
}
