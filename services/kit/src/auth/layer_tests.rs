//! Tests of [`AuthLayer`] through a plain tower service, plus one real tonic server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tonic::Code;
use tonic::body::Body;
use tonic_types::StatusExt;
use tower::{Layer, ServiceExt, service_fn};

use super::test_support::*;
use super::*;

const CONTACTS: &[(&str, &[Role])] = &[
    ("GetContact", &[Role::Admin, Role::SalesRep, Role::Viewer]),
    ("DeleteContact", &[Role::SalesManager]),
    ("Nobody", &[]),
];

/// The key of the `erp-sync` integration in [`api_keys`].
const ERP_KEY: &str = "rk_test-erp-sync-key-0123456789abcdefghijklmnopqrstuv";

fn api_keys() -> ApiKeys {
    ApiKeys::from_entries(vec![ApiKeyEntry::new(ERP_KEY, "erp-sync", &[Role::Integration, Role::Viewer])])
        .unwrap()
}

fn layer() -> AuthLayer {
    AuthLayer::new(
        hs_verifier().with_api_keys(api_keys()),
        vec![Policy::new("rapport.contacts.v1.ContactService", CONTACTS)],
    )
}

/// Sends one request through the layer to an inner service answering 200 with an
/// `x-subject` header naming the principal it saw. Returns the response and whether the
/// inner service ran.
async fn send(path: &str, authorization: Option<&str>) -> (http::Response<Body>, bool) {
    let headers: Vec<(&str, &str)> =
        authorization.map(|value| ("authorization", value)).into_iter().collect();
    send_through(layer(), path, &headers).await
}

/// [`send`] through `layer` with the request `headers`; the inner service also answers
/// `x-roles` (the principal's roles, comma separated).
async fn send_through(
    layer: AuthLayer,
    path: &str,
    headers: &[(&str, &str)],
) -> (http::Response<Body>, bool) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let inner = service_fn(move |request: http::Request<Body>| {
        seen.fetch_add(1, Ordering::SeqCst);
        // Handlers see the principal through tonic's request extensions.
        let request = tonic::Request::from_http(request);
        let principal = principal(&request).cloned();
        async move {
            let mut response = http::Response::new(Body::default());
            if let Ok(principal) = principal {
                let roles = principal.roles.iter().map(|role| role.as_str()).collect::<Vec<_>>().join(",");
                response.headers_mut().insert("x-subject", principal.subject.parse().unwrap());
                response.headers_mut().insert("x-roles", roles.parse().unwrap());
            }
            Ok::<_, Infallible>(response)
        }
    });
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::default()).unwrap();
    let response = layer.layer(inner).oneshot(request).await.unwrap();
    (response, calls.load(Ordering::SeqCst) == 1)
}

fn bearer(roles: &[Role]) -> String {
    let token = mint_hs256(SECRET, ISSUER, AUDIENCE, "user-1", roles, Duration::from_secs(60)).unwrap();
    format!("Bearer {token}")
}

/// Decodes the trailers-only rejection and checks code and ErrorInfo reason.
fn assert_rejected(response: &http::Response<Body>, code: Code, reason: &str) -> tonic::Status {
    assert_eq!(response.status(), http::StatusCode::OK);
    let status = tonic::Status::from_header_map(response.headers()).expect("grpc-status header");
    assert_eq!(status.code(), code, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo detail");
    assert_eq!(info.domain, ERROR_DOMAIN);
    assert_eq!(info.reason, reason);
    status
}

const GET: &str = "/rapport.contacts.v1.ContactService/GetContact";

#[tokio::test]
async fn health_and_reflection_pass_without_token() {
    for path in [
        "/grpc.health.v1.Health/Check",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ] {
        let (response, called) = send(path, None).await;
        assert!(called, "{path}");
        assert!(response.headers().get("grpc-status").is_none());
    }
}

#[tokio::test]
async fn missing_token_is_unauthenticated() {
    let (response, called) = send(GET, None).await;
    assert!(!called);
    assert_rejected(&response, Code::Unauthenticated, REASON_MISSING_TOKEN);
}

#[tokio::test]
async fn malformed_header_is_unauthenticated() {
    for value in ["Basic dXNlcjpwdw==", "Bearer", "Bearer   ", "token-without-scheme"] {
        let (response, called) = send(GET, Some(value)).await;
        assert!(!called, "{value}");
        assert_rejected(&response, Code::Unauthenticated, REASON_INVALID_TOKEN);
    }
}

#[tokio::test]
async fn invalid_token_is_unauthenticated_and_not_echoed() {
    let token = sign_hs(&{
        let mut c = claims(&["admin"]);
        c["aud"] = json!("other");
        c
    });
    let (response, called) = send(GET, Some(&format!("Bearer {token}"))).await;
    assert!(!called);
    let status = assert_rejected(&response, Code::Unauthenticated, REASON_INVALID_TOKEN);
    assert_eq!(status.message(), "invalid bearer token: audience not accepted");
    let headers = format!("{:?}", response.headers());
    assert!(!headers.contains(&token[..20]), "{headers}");
}

#[tokio::test]
async fn expired_token_has_its_own_reason() {
    let mut c = claims(&["admin"]);
    c["exp"] = json!(now() - 3600);
    let (response, _) = send(GET, Some(&format!("Bearer {}", sign_hs(&c)))).await;
    assert_rejected(&response, Code::Unauthenticated, REASON_TOKEN_EXPIRED);
}

#[tokio::test]
async fn allowed_role_reaches_handler_with_principal() {
    for roles in [&[Role::Viewer][..], &[Role::Marketing, Role::SalesRep]] {
        let (response, called) = send(GET, Some(&bearer(roles))).await;
        assert!(called);
        assert!(response.headers().get("grpc-status").is_none());
        assert_eq!(response.headers()["x-subject"], "user-1");
    }
    // The scheme is case-insensitive.
    let lower = bearer(&[Role::Viewer]).replacen("Bearer", "bearer", 1);
    assert!(send(GET, Some(&lower)).await.1);
}

#[tokio::test]
async fn wrong_role_is_permission_denied() {
    let path = "/rapport.contacts.v1.ContactService/DeleteContact";
    // Admin is not implied: DeleteContact lists only sales_manager.
    let (response, called) = send(path, Some(&bearer(&[Role::Admin, Role::Viewer]))).await;
    assert!(!called);
    let status = assert_rejected(&response, Code::PermissionDenied, REASON_PERMISSION_DENIED_ROLE);
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.metadata["method"], path);
    assert_eq!(info.metadata["required_roles"], "sales_manager");
    // No roles at all.
    let (response, _) = send(GET, Some(&bearer(&[]))).await;
    let status = assert_rejected(&response, Code::PermissionDenied, REASON_PERMISSION_DENIED_ROLE);
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.metadata["required_roles"], "admin,sales_rep,viewer");
}

#[tokio::test]
async fn unknown_method_or_service_is_permission_denied() {
    for path in [
        "/rapport.contacts.v1.ContactService/Unlisted",
        "/rapport.contacts.v1.ContactService/Nobody",
        "/rapport.deals.v1.DealService/GetDeal",
        "/rapport.contacts.v1.ContactService/GetContact/extra",
        "/",
    ] {
        let (response, called) = send(path, Some(&bearer(&Role::ALL))).await;
        assert!(!called, "{path}");
        let status = assert_rejected(&response, Code::PermissionDenied, REASON_PERMISSION_DENIED_ROLE);
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.metadata["method"], path);
        assert_eq!(info.metadata["required_roles"], "");
    }
}

#[test]
fn principal_helper_without_layer_is_unauthenticated() {
    let request = tonic::Request::new(());
    let status = principal(&request).unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.get_details_error_info().unwrap().reason, REASON_MISSING_TOKEN);
}

#[test]
fn policy_lookup() {
    let policy = Policy::new("rapport.contacts.v1.ContactService", CONTACTS);
    assert_eq!(policy.service(), "rapport.contacts.v1.ContactService");
    assert_eq!(policy.allowed("DeleteContact"), Some(&[Role::SalesManager][..]));
    assert_eq!(policy.allowed("Nobody"), Some(&[][..]));
    assert_eq!(policy.allowed("Missing"), None);
    assert_eq!(policy.methods().count(), 3);
}

#[tokio::test]
async fn api_key_principal_reaches_the_handler() {
    let (response, called) = send_through(layer(), GET, &[("x-api-key", ERP_KEY)]).await;
    assert!(called);
    assert!(response.headers().get("grpc-status").is_none());
    assert_eq!(response.headers()["x-subject"], "erp-sync");
    assert_eq!(response.headers()["x-roles"], "integration,viewer");
    // Surrounding whitespace is not part of the key.
    let (_, called) = send_through(layer(), GET, &[("x-api-key", &format!(" {ERP_KEY} "))]).await;
    assert!(called);
    // The key's roles are checked like a token's: DeleteContact needs sales_manager.
    let path = "/rapport.contacts.v1.ContactService/DeleteContact";
    let (response, called) = send_through(layer(), path, &[("x-api-key", ERP_KEY)]).await;
    assert!(!called);
    assert_rejected(&response, Code::PermissionDenied, REASON_PERMISSION_DENIED_ROLE);
}

#[tokio::test]
async fn unknown_api_key_is_unauthenticated_and_not_echoed() {
    for headers in [
        &[("x-api-key", "rk_not-a-known-key")][..],
        &[("x-api-key", "")],
        &[("x-api-key", ERP_KEY), ("x-api-key", ERP_KEY)],
    ] {
        let (response, called) = send_through(layer(), GET, headers).await;
        assert!(!called, "{headers:?}");
        let status = assert_rejected(&response, Code::Unauthenticated, REASON_INVALID_API_KEY);
        assert_eq!(status.message(), "invalid API key");
        assert!(!format!("{:?}", response.headers()).contains("rk_"));
    }
    // A verifier without keys refuses every key.
    let layer =
        AuthLayer::new(hs_verifier(), vec![Policy::new("rapport.contacts.v1.ContactService", CONTACTS)]);
    let (response, _) = send_through(layer, GET, &[("x-api-key", ERP_KEY)]).await;
    assert_rejected(&response, Code::Unauthenticated, REASON_INVALID_API_KEY);
}

#[tokio::test]
async fn a_bearer_token_wins_over_an_api_key() {
    let token = bearer(&[Role::Viewer]);
    let headers = [("authorization", token.as_str()), ("x-api-key", ERP_KEY)];
    let (response, called) = send_through(layer(), GET, &headers).await;
    assert!(called);
    assert_eq!(response.headers()["x-subject"], "user-1");
    // Even when the token is bad: no fallback to the key.
    let headers = [("authorization", "Bearer nonsense"), ("x-api-key", ERP_KEY)];
    let (response, called) = send_through(layer(), GET, &headers).await;
    assert!(!called);
    assert_rejected(&response, Code::Unauthenticated, REASON_INVALID_TOKEN);
}

#[tokio::test]
async fn authenticate_unlisted_passes_authenticated_calls_of_unlisted_services() {
    let gateway = layer().authenticate_unlisted();
    let unlisted = "/rapport.deals.v1.DealService/GetDeal";
    let token = bearer(&[Role::SalesRep]);
    let (response, called) = send_through(gateway.clone(), unlisted, &[("authorization", &token)]).await;
    assert!(called);
    assert_eq!(response.headers()["x-subject"], "user-1");
    let (response, called) = send_through(gateway.clone(), unlisted, &[("x-api-key", ERP_KEY)]).await;
    assert!(called);
    assert_eq!(response.headers()["x-subject"], "erp-sync");

    // Still authenticated: no credentials, no call.
    let (response, called) = send_through(gateway.clone(), unlisted, &[]).await;
    assert!(!called);
    assert_rejected(&response, Code::Unauthenticated, REASON_MISSING_TOKEN);
    // A principal without any known role is refused.
    let (response, called) =
        send_through(gateway.clone(), unlisted, &[("authorization", &bearer(&[]))]).await;
    assert!(!called);
    let status = assert_rejected(&response, Code::PermissionDenied, REASON_PERMISSION_DENIED_ROLE);
    assert_eq!(
        status.get_details_error_info().unwrap().metadata["required_roles"].split(',').count(),
        Role::ALL.len()
    );
    // Listed services keep their policy, unlisted methods of theirs included.
    let unlisted_method = "/rapport.contacts.v1.ContactService/Unlisted";
    let (_, called) = send_through(gateway.clone(), unlisted_method, &[("authorization", &token)]).await;
    assert!(!called);
    let delete = "/rapport.contacts.v1.ContactService/DeleteContact";
    let (_, called) = send_through(gateway, delete, &[("authorization", &token)]).await;
    assert!(!called);
    // Without the option, the unlisted service is denied.
    let (response, called) = send_through(layer(), unlisted, &[("authorization", &token)]).await;
    assert!(!called);
    assert_rejected(&response, Code::PermissionDenied, REASON_PERMISSION_DENIED_ROLE);
}

#[tokio::test]
async fn rejections_are_counted_by_reason() {
    let metrics = crate::metrics::Metrics::new();
    let counted = layer().with_metrics(&metrics);
    let series = |reason: &str| format!("rapport_auth_failures_total{{reason=\"{reason}\"}}");
    send_through(counted.clone(), GET, &[]).await;
    send_through(counted.clone(), GET, &[]).await;
    send_through(counted.clone(), GET, &[("x-api-key", "rk_unknown")]).await;
    send_through(counted.clone(), GET, &[("authorization", "Bearer nonsense")]).await;
    let path = "/rapport.contacts.v1.ContactService/DeleteContact";
    send_through(counted.clone(), path, &[("authorization", &bearer(&[Role::Viewer]))]).await;
    // Accepted calls are not failures.
    send_through(counted, GET, &[("x-api-key", ERP_KEY)]).await;
    let text = metrics.encode();
    for (reason, expected) in [
        (REASON_MISSING_TOKEN, 2.0),
        (REASON_INVALID_API_KEY, 1.0),
        (REASON_INVALID_TOKEN, 1.0),
        (REASON_PERMISSION_DENIED_ROLE, 1.0),
    ] {
        assert_eq!(crate::testing::sample(&text, &series(reason)), Some(expected), "{reason} in\n{text}");
    }
    assert_eq!(crate::testing::sample(&text, &series(REASON_TOKEN_EXPIRED)), None);
}

/// Writes `contents` to a fresh file under the temp directory; removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(contents: &str) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("rapport-api-keys-{}.json", uuid::Uuid::now_v7().simple()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn api_keys_files_are_read_and_bad_ones_rejected_with_a_message() {
    let good = TempFile::new(&format!(
        r#"{{"keys":[{{"sha256":"{}","subject":"erp-sync","roles":["integration"]}}]}}"#,
        hash_key(ERP_KEY)
    ));
    let mut config = AuthConfig::new(ISSUER, AUDIENCE, KeySource::Secret(SECRET.to_vec()));
    config.api_keys_file = Some(good.0.clone());
    let verifier = Verifier::new(config.clone()).unwrap();
    assert_eq!(verifier.verify_api_key(ERP_KEY).unwrap().roles, [Role::Integration]);
    assert_eq!(ApiKeys::from_file(&good.0).unwrap().len(), 1);

    let digest = hash_key("k");
    for (contents, expected) in [
        ("not json".to_owned(), "invalid API keys file"),
        (
            r#"{"keys":[{"sha256":"abc","subject":"a","roles":["viewer"]}]}"#.to_owned(),
            "entry #0 (subject \"a\"): sha256 must be 64 hex digits",
        ),
        (
            format!(r#"{{"keys":[{{"sha256":"{digest}","subject":"a","roles":["root"]}}]}}"#),
            "unknown role \"root\"",
        ),
        (
            format!(r#"{{"keys":[{{"sha256":"{digest}","subject":"a","role":["viewer"]}}]}}"#),
            "unknown field `role`",
        ),
    ] {
        let file = TempFile::new(&contents);
        config.api_keys_file = Some(file.0.clone());
        let error = Verifier::new(config.clone()).unwrap_err().to_string();
        assert!(error.contains(expected), "{error:?} should contain {expected:?}");
        assert!(error.contains(&file.0.display().to_string()), "{error}");
    }
    config.api_keys_file = Some(std::env::temp_dir().join("rapport-no-such-keys-file.json"));
    let error = Verifier::new(config).unwrap_err().to_string();
    assert!(error.starts_with("cannot read API keys file"), "{error}");
}

#[tokio::test]
async fn public_methods_pass_without_credentials_and_nothing_else_does() {
    const SURVEYS: &[(&str, &[Role])] = &[("Submit", &Role::ALL), ("List", &[Role::Admin])];
    let service = AuthLayer::new(
        hs_verifier(),
        vec![Policy::new("rapport.support.v1.SatisfactionService", SURVEYS).with_public(&["Submit"])],
    );
    let (response, called) =
        send_through(service.clone(), "/rapport.support.v1.SatisfactionService/Submit", &[]).await;
    assert!(called);
    assert!(response.headers().get("x-subject").is_none(), "no principal");
    let (response, called) = send_through(service, "/rapport.support.v1.SatisfactionService/List", &[]).await;
    assert!(!called);
    assert_rejected(&response, Code::Unauthenticated, REASON_MISSING_TOKEN);
    // A gateway without the policy lets the declared paths through.
    let gateway = layer()
        .authenticate_unlisted()
        .public_paths(vec!["/rapport.support.v1.SatisfactionService/Submit".into()]);
    let (_, called) =
        send_through(gateway.clone(), "/rapport.support.v1.SatisfactionService/Submit", &[]).await;
    assert!(called);
    let (response, called) = send_through(gateway, "/rapport.support.v1.SatisfactionService/List", &[]).await;
    assert!(!called);
    assert_rejected(&response, Code::Unauthenticated, REASON_MISSING_TOKEN);
}
