//! Unit tests of [`Verifier`], [`mint_hs256`] and [`Role`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

use super::test_support::*;
use super::*;

fn invalid(reason: &'static str) -> Result<Principal, AuthError> {
    Err(AuthError::Invalid(reason))
}

#[test]
fn role_names_round_trip() {
    for role in Role::ALL {
        assert_eq!(Role::parse(role.as_str()), Some(role));
        assert_eq!(role.to_string(), role.as_str());
    }
    assert_eq!(Role::parse("sales_manager"), Some(Role::SalesManager));
    assert_eq!(Role::parse("SalesManager"), None);
    assert_eq!(Role::parse("wizard"), None);
}

#[test]
fn has_any_requires_overlap() {
    let p = Principal::new("u", vec![Role::SalesRep]);
    assert!(p.has_any(&[Role::Admin, Role::SalesRep]));
    assert!(!p.has_any(&[Role::Admin]));
    assert!(!p.has_any(&[]));
}

#[test]
fn valid_hs256_minted_token() {
    let token = mint_hs256(
        SECRET,
        ISSUER,
        AUDIENCE,
        "alice",
        &[Role::SalesRep, Role::Viewer],
        Duration::from_secs(300),
    )
    .unwrap();
    let principal = hs_verifier().verify(&token).unwrap();
    assert_eq!(principal.subject, "alice");
    assert_eq!(principal.roles, vec![Role::SalesRep, Role::Viewer]);
}

#[test]
fn audience_array_containing_ours_is_accepted() {
    let mut c = claims(&["viewer"]);
    c["aud"] = json!(["other", AUDIENCE]);
    assert!(hs_verifier().verify(&sign_hs(&c)).is_ok());
}

#[test]
fn wrong_secret_is_rejected() {
    let token = mint_hs256(
        b"another-secret-another-secret-xx",
        ISSUER,
        AUDIENCE,
        "alice",
        &[Role::Admin],
        Duration::from_secs(300),
    )
    .unwrap();
    assert_eq!(hs_verifier().verify(&token), invalid("signature mismatch"));
}

#[test]
fn expired_token_is_rejected_after_leeway() {
    let mut c = claims(&["admin"]);
    c["exp"] = json!(now() - 3600);
    assert_eq!(hs_verifier().verify(&sign_hs(&c)), Err(AuthError::Expired));
    // Within the default 60 s leeway it is still accepted.
    c["exp"] = json!(now() - 5);
    assert!(hs_verifier().verify(&sign_hs(&c)).is_ok());
}

#[test]
fn a_remembered_token_still_expires() {
    let verifier = hs_verifier();
    let mut c = claims(&["admin"]);
    let exp = now() + 30;
    c["exp"] = json!(exp);
    let token = sign_hs(&c);
    assert_eq!(verifier.verify(&token).unwrap().subject, "user-1");
    // Remembered now: checked against a later clock it is expired once `exp` plus the
    // leeway has passed, and not before (a full check would use the real clock and pass).
    let leeway = DEFAULT_LEEWAY_SECONDS;
    assert_eq!(verifier.verify_at(&token, exp + leeway).unwrap().roles, vec![Role::Admin]);
    assert_eq!(verifier.clone().verify_at(&token, exp + leeway + 1), Err(AuthError::Expired));
}

#[test]
fn a_remembered_token_with_another_signature_is_checked_in_full() {
    let verifier = hs_verifier();
    let token = sign_hs(&claims(&["viewer"]));
    assert!(verifier.verify(&token).is_ok());
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{signed}.{flipped}{}", &signature[1..]);
    assert_eq!(verifier.verify(&tampered), invalid("signature mismatch"));
    // Other claims under the same signature are a different token too.
    let forged = format!("{}.{signature}", sign_hs(&claims(&["admin"])).rsplit_once('.').unwrap().0);
    assert_eq!(verifier.verify(&forged), invalid("signature mismatch"));
}

#[test]
fn wrong_issuer_and_audience_are_rejected() {
    let verifier = hs_verifier();
    let mut c = claims(&["admin"]);
    c["iss"] = json!("https://evil.example");
    assert_eq!(verifier.verify(&sign_hs(&c)), invalid("issuer not accepted"));
    let mut c = claims(&["admin"]);
    c["aud"] = json!("someone-else");
    assert_eq!(verifier.verify(&sign_hs(&c)), invalid("audience not accepted"));
}

#[test]
fn required_claims_are_enforced() {
    let verifier = hs_verifier();
    for (claim, reason) in [
        ("exp", "missing exp claim"),
        ("iss", "missing iss claim"),
        ("aud", "missing aud claim"),
        ("sub", "missing or empty sub claim"),
    ] {
        let mut c = claims(&["admin"]);
        c.as_object_mut().unwrap().remove(claim);
        assert_eq!(verifier.verify(&sign_hs(&c)), invalid(reason), "{claim}");
    }
    let mut c = claims(&["admin"]);
    c["sub"] = json!("");
    assert_eq!(verifier.verify(&sign_hs(&c)), invalid("missing or empty sub claim"));
}

#[test]
fn future_nbf_is_rejected() {
    let mut c = claims(&["admin"]);
    c["nbf"] = json!(now() + 3600);
    assert_eq!(hs_verifier().verify(&sign_hs(&c)), invalid("token not yet valid (nbf)"));
}

#[test]
fn alg_none_is_rejected() {
    let c = claims(&["admin"]);
    for header in [json!({"alg": "none", "typ": "JWT"}), json!({"alg": "none", "kid": "rsa-1"})] {
        let token = unsigned(&header, &c);
        assert!(matches!(hs_verifier().verify(&token), Err(AuthError::Invalid(_))));
        assert!(matches!(jwks_verifier("jwks.json").verify(&token), Err(AuthError::Invalid(_))));
    }
}

#[test]
fn garbage_is_rejected() {
    for token in ["", "abc", "a.b.c", "....", "e30.e30.e30"] {
        assert!(matches!(hs_verifier().verify(token), Err(AuthError::Invalid(_))));
    }
}

#[test]
fn rs256_and_es256_via_jwks() {
    let verifier = jwks_verifier("jwks.json");
    let c = claims(&["sales_manager"]);
    for token in [
        sign_rs(RSA1_PRIVATE, Some("rsa-1"), &c),
        sign_rs(RSA2_PRIVATE, Some("rsa-2"), &c),
        sign_es(Some("ec-1"), &c),
    ] {
        let principal = verifier.verify(&token).unwrap();
        assert_eq!(principal.subject, "user-1");
        assert_eq!(principal.roles, vec![Role::SalesManager]);
    }
}

#[test]
fn kid_selects_the_key() {
    let verifier = jwks_verifier("jwks.json");
    let c = claims(&["admin"]);
    // Signed by key 2 but claiming key 1.
    let token = sign_rs(RSA2_PRIVATE, Some("rsa-1"), &c);
    assert_eq!(verifier.verify(&token), invalid("signature mismatch"));
    let token = sign_rs(RSA1_PRIVATE, Some("nope"), &c);
    assert_eq!(verifier.verify(&token), invalid("unknown key id (kid)"));
    // Several keys and no kid: ambiguous.
    let token = sign_rs(RSA1_PRIVATE, None, &c);
    assert_eq!(verifier.verify(&token), invalid("token has no key id (kid)"));
    // A single-key set accepts a token without kid.
    assert!(jwks_verifier("jwks_single.json").verify(&token).is_ok());
    assert_eq!(
        jwks_verifier("jwks_single.json").verify(&sign_rs(RSA2_PRIVATE, None, &c)),
        invalid("signature mismatch")
    );
}

#[test]
fn algorithm_must_match_key_type() {
    let verifier = jwks_verifier("jwks.json");
    let c = claims(&["admin"]);
    // ES256 signature presented under an RSA kid, and the reverse.
    assert_eq!(verifier.verify(&sign_es(Some("rsa-1"), &c)), invalid("algorithm does not match the key"));
    assert_eq!(
        verifier.verify(&sign_rs(RSA1_PRIVATE, Some("ec-1"), &c)),
        invalid("algorithm does not match the key")
    );
    // HS256 "signed" with the public JWKS text (classic key-confusion attack).
    let public = std::fs::read(testdata("jwks_single.json")).unwrap();
    let token = sign(Algorithm::HS256, Some("rsa-1"), &EncodingKey::from_secret(&public), &c);
    assert_eq!(verifier.verify(&token), invalid("algorithm does not match the key"));
    // An RS256 token against an HS256 verifier.
    assert_eq!(
        hs_verifier().verify(&sign_rs(RSA1_PRIVATE, None, &c)),
        invalid("algorithm does not match the key")
    );
}

#[test]
fn unknown_roles_are_ignored_and_duplicates_dropped() {
    let mut c = claims(&[]);
    c["roles"] = json!(["sales_rep", "wizard", 7, "viewer", "sales_rep", "Admin"]);
    let principal = hs_verifier().verify(&sign_hs(&c)).unwrap();
    assert_eq!(principal.roles, vec![Role::SalesRep, Role::Viewer]);
    c.as_object_mut().unwrap().remove("roles");
    assert!(hs_verifier().verify(&sign_hs(&c)).unwrap().roles.is_empty());
    c["roles"] = json!("admin");
    assert_eq!(hs_verifier().verify(&sign_hs(&c)), invalid("roles claim is not an array"));
}

#[test]
fn custom_roles_claim() {
    let mut config = AuthConfig::new(ISSUER, AUDIENCE, KeySource::Secret(SECRET.to_vec()));
    config.roles_claim = "https://rapport.test/roles".into();
    let verifier = Verifier::new(config).unwrap();
    let mut c = claims(&["viewer"]);
    c["https://rapport.test/roles"] = json!(["admin"]);
    assert_eq!(verifier.verify(&sign_hs(&c)).unwrap().roles, vec![Role::Admin]);
}

#[test]
fn setup_errors_name_the_problem() {
    let missing = testdata("does-not-exist.json");
    let err = Verifier::new(AuthConfig::new(ISSUER, AUDIENCE, KeySource::JwksFile(missing))).unwrap_err();
    assert!(matches!(err, AuthSetupError::ReadJwks { .. }));
    assert!(err.to_string().contains("does-not-exist.json"), "{err}");

    let dir = std::env::temp_dir().join(format!("kit-auth-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text, expected) in [
        ("bad.json", "{not json", "not JSON"),
        ("nokeys.json", r#"{"foo": []}"#, "no \"keys\" array"),
        ("empty.json", r#"{"keys": []}"#, "no RS256 or ES256"),
        (
            "enc.json",
            r#"{"keys": [{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}]}"#,
            "no RS256 or ES256",
        ),
        ("badec.json", r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}]}"#, "32-byte"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let err = Verifier::new(AuthConfig::new(ISSUER, AUDIENCE, KeySource::JwksFile(path))).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(name) && text.contains(expected), "{text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let err = Verifier::new(AuthConfig::new(ISSUER, AUDIENCE, KeySource::Secret(vec![])));
    assert!(matches!(err, Err(AuthSetupError::EmptySecret)));
    let err = Verifier::new(AuthConfig::new("", AUDIENCE, KeySource::Secret(b"x".to_vec())));
    assert!(matches!(err, Err(AuthSetupError::InvalidConfig(_))));
    let mut config = AuthConfig::new(ISSUER, AUDIENCE, KeySource::Secret(b"x".to_vec()));
    config.leeway_seconds = MAX_LEEWAY_SECONDS + 1;
    assert!(matches!(Verifier::new(config), Err(AuthSetupError::InvalidConfig(_))));
    assert!(matches!(
        mint_hs256(b"", ISSUER, AUDIENCE, "a", &[], Duration::from_secs(1)),
        Err(AuthSetupError::EmptySecret)
    ));
}

#[test]
fn debug_output_hides_the_secret() {
    let config = AuthConfig::new(ISSUER, AUDIENCE, KeySource::Secret(SECRET.to_vec()));
    let text = format!("{config:?} {:?}", Verifier::new(config.clone()).unwrap());
    assert!(!text.contains("0123456789abcdef"), "{text}");
    assert!(!text.contains("48, 49, 50"), "{text}");
}
