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

fn layer() -> AuthLayer {
    AuthLayer::new(hs_verifier(), vec![Policy::new("rapport.contacts.v1.ContactService", CONTACTS)])
}

/// Sends one request through the layer to an inner service answering 200 with an
/// `x-subject` header naming the principal it saw. Returns the response and whether the
/// inner service ran.
async fn send(path: &str, authorization: Option<&str>) -> (http::Response<Body>, bool) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let inner = service_fn(move |request: http::Request<Body>| {
        seen.fetch_add(1, Ordering::SeqCst);
        // Handlers see the principal through tonic's request extensions.
        let request = tonic::Request::from_http(request);
        let subject = principal(&request).map(|p| p.subject.clone());
        async move {
            let mut response = http::Response::new(Body::default());
            if let Ok(subject) = subject {
                response.headers_mut().insert("x-subject", subject.parse().unwrap());
            }
            Ok::<_, Infallible>(response)
        }
    });
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let request = request.body(Body::default()).unwrap();
    let response = layer().layer(inner).oneshot(request).await.unwrap();
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
