//! Shared fixtures for the auth tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::{AuthConfig, KeySource, Verifier};

pub const ISSUER: &str = "https://auth.rapport.test";
pub const AUDIENCE: &str = "rapport-api";
pub const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-only";

pub const RSA1_PRIVATE: &[u8] = include_bytes!("testdata/rsa1_private.pem");
pub const RSA2_PRIVATE: &[u8] = include_bytes!("testdata/rsa2_private.pem");
pub const EC1_PRIVATE: &[u8] = include_bytes!("testdata/ec1_private.pem");

/// A file under `src/auth/testdata/` (same layout in the scratch and the real crate).
pub fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/auth/testdata").join(name)
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Valid claims for `sub = "user-1"` with the given role names; tweak with `Value` indexing.
pub fn claims(roles: &[&str]) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now(),
        "exp": now() + 600,
        "roles": roles,
    })
}

/// Signs `claims` with `alg`, an optional `kid` and the given key.
pub fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

pub fn sign_hs(claims: &Value) -> String {
    sign(Algorithm::HS256, None, &EncodingKey::from_secret(SECRET), claims)
}

pub fn sign_rs(private_pem: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(private_pem).unwrap();
    sign(Algorithm::RS256, kid, &key, claims)
}

pub fn sign_es(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(EC1_PRIVATE).unwrap();
    sign(Algorithm::ES256, kid, &key, claims)
}

/// An unsigned token with the given raw header JSON.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}.", b64.encode(header.to_string()), b64.encode(claims.to_string()))
}

pub fn hs_verifier() -> Verifier {
    Verifier::new(AuthConfig::new(ISSUER, AUDIENCE, KeySource::Secret(SECRET.to_vec()))).unwrap()
}

pub fn jwks_verifier(file: &str) -> Verifier {
    Verifier::new(AuthConfig::new(ISSUER, AUDIENCE, KeySource::JwksFile(testdata(file)))).unwrap()
}
