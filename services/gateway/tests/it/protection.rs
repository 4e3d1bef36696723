//! Protection: per-principal rate limits with RetryInfo, load shedding at
//! the concurrency limit, the message size limit, and API keys for machine
//! clients.

use crate::common;

use std::time::{Duration, Instant};

use common::{Options, Stack, bearer, sample};
use rapport_kit::auth::Role;
use rapport_proto::bench::v1::EchoRequest;
use rapport_proto::bench::v1::echo_service_client::EchoServiceClient;
use tonic::Code;
use tonic_types::StatusExt;

fn echo(payload: &str) -> EchoRequest {
    EchoRequest { payload: payload.as_bytes().to_vec() }
}

fn stack_env(pairs: &[(&'static str, &str)]) -> Options {
    Options {
        contacts: false,
        gateway_env: pairs.iter().map(|(name, value)| (*name, (*value).to_owned())).collect(),
        ..Options::default()
    }
}

#[tokio::test]
async fn each_principal_is_limited_with_a_retry_hint() {
    let stack =
        Stack::start_with(stack_env(&[("RATE_LIMIT_PER_SECOND", "1"), ("RATE_LIMIT_BURST", "3")])).await;
    let subject = format!("limited-{}", uuid::Uuid::now_v7().simple());
    let mut limited = EchoServiceClient::with_interceptor(stack.channel(), bearer(&subject, &[Role::Viewer]));
    for _ in 0..3 {
        limited.echo(echo("ok")).await.unwrap();
    }
    let status = limited.echo(echo("over")).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let retry = status.get_details_retry_info().expect("RetryInfo");
    let delay = retry.retry_delay.unwrap();
    assert!(delay > Duration::ZERO && delay <= Duration::from_secs(1), "{delay:?}");

    // Another principal has its own bucket.
    let other = format!("other-{}", uuid::Uuid::now_v7().simple());
    let mut other = EchoServiceClient::with_interceptor(stack.channel(), bearer(&other, &[Role::Viewer]));
    other.echo(echo("ok")).await.unwrap();

    let text = stack.metrics().await;
    assert!(sample(&text, "rapport_rate_limited_total", &[]) >= 1.0, "{text}");
    stack.stop().await;
}

#[tokio::test]
async fn overload_is_shed_at_once_instead_of_queued() {
    let stack = Stack::start_with(stack_env(&[("GATEWAY_MAX_CONCURRENCY", "2")])).await;
    let client = EchoServiceClient::with_interceptor(stack.channel(), bearer("shed-user", &[Role::Viewer]));
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move { client.echo(echo("sleep:1500")).await })
        })
        .collect();
    // Wait until both slow calls hold their slots.
    common::eventually("two calls in flight", || async {
        let text = stack.metrics().await;
        sample(&text, "rpc_server_in_flight", &[("method", "Echo")]) >= 2.0
    })
    .await;
    let started = Instant::now();
    let status = client.clone().echo(echo("extra")).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.get_details_retry_info().is_some());
    assert!(started.elapsed() < Duration::from_millis(500), "shedding took {:?}", started.elapsed());
    for call in slow {
        call.await.unwrap().unwrap();
    }
    // The slots are free again.
    client.clone().echo(echo("after")).await.unwrap();
    let text = stack.metrics().await;
    assert_eq!(sample(&text, "gateway_shed_requests_total", &[("kind", "unary")]), 1.0, "{text}");
    stack.stop().await;
}

#[tokio::test]
async fn oversized_messages_are_refused_at_the_edge() {
    let stack = Stack::start_with(stack_env(&[("GRPC_MAX_MESSAGE_BYTES", "1024")])).await;
    let mut client =
        EchoServiceClient::with_interceptor(stack.channel(), bearer("big-user", &[Role::Viewer]))
            .max_encoding_message_size(1 << 20);
    let status = client.echo(EchoRequest { payload: vec![7; 4096] }).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    client.echo(EchoRequest { payload: vec![7; 512] }).await.unwrap();
    let text = stack.metrics().await;
    assert_eq!(sample(&text, "gateway_rejected_requests_total", &[("reason", "message_too_large")]), 1.0);
    stack.stop().await;
}

#[tokio::test]
async fn api_keys_authenticate_machine_clients() {
    let key = rapport_kit::auth::generate_key();
    let file = std::env::temp_dir().join(format!("rapport-keys-{}.json", uuid::Uuid::now_v7().simple()));
    let entry = serde_json::json!({
        "keys": [{"sha256": rapport_kit::auth::hash_key(&key), "subject": "erp-sync", "roles": ["integration"]}]
    });
    std::fs::write(&file, entry.to_string()).unwrap();
    let stack = Stack::start_with(Options {
        contacts: false,
        shared_env: vec![("API_KEYS_FILE", file.display().to_string())],
        ..Options::default()
    })
    .await;
    let with_key = |value: &str| {
        let mut request = tonic::Request::new(echo("machine"));
        request.metadata_mut().insert("x-api-key", value.parse().unwrap());
        request
    };
    let mut client = EchoServiceClient::new(stack.channel());
    let response = client.echo(with_key(&key)).await.unwrap();
    assert_eq!(response.into_inner().payload, b"machine");
    let status = client.echo(with_key("rk_wrong")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.get_details_error_info().unwrap().reason, "UNAUTHENTICATED_INVALID_API_KEY");
    let text = stack.metrics().await;
    assert!(
        sample(&text, "rapport_auth_failures_total", &[("reason", "UNAUTHENTICATED_INVALID_API_KEY")]) >= 1.0,
        "{text}"
    );
    std::fs::remove_file(file).unwrap();
    stack.stop().await;
}
