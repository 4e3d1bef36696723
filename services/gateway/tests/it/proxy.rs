//! The transparent proxy: every call shape passes with its metadata,
//! trailers, error details and deadlines; unknown services are
//! UNIMPLEMENTED; reflection shows the whole API; credentials are checked.

use crate::common;

use std::time::{Duration, Instant};

use common::{Stack, bearer, contact, within};
use rapport_kit::auth::Role;
use rapport_proto::bench::v1::EchoRequest;
use rapport_proto::bench::v1::echo_service_client::EchoServiceClient;
use rapport_proto::contacts::v1::{
    CreateContactRequest, GetContactRequest, WatchChangesRequest, watch_changes_response::Event,
};
use tonic::Code;
use tonic_types::StatusExt;

fn echo_client(
    stack: &Stack,
) -> EchoServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, common::Bearer>,
> {
    EchoServiceClient::with_interceptor(stack.channel(), bearer("echo-user", &[Role::Viewer]))
}

fn echo(payload: &str) -> EchoRequest {
    EchoRequest { payload: payload.as_bytes().to_vec() }
}

#[tokio::test]
async fn unary_calls_pass_with_results_and_error_details() {
    let stack = Stack::start().await;
    let mut contacts = stack.contacts();
    let created = contacts
        .create_contact(CreateContactRequest { contact: Some(contact("Ada")), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    let read = contacts.get_contact(GetContactRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert_eq!(read, created);

    let mut invalid = contact("Bad");
    invalid.email = "not-an-email".into();
    let status = contacts
        .create_contact(CreateContactRequest { contact: Some(invalid), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> =
        status.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["contact.email"]);

    let missing = uuid::Uuid::now_v7().to_string();
    let status = contacts.get_contact(GetContactRequest { id: missing.clone() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.get_details_resource_info().unwrap().resource_name, missing);
    stack.stop().await;
}

#[tokio::test]
async fn metadata_trailers_and_deadlines_pass_through() {
    let stack = Stack::start().await;
    let mut client = echo_client(&stack);

    let mut request = tonic::Request::new(echo("hello"));
    request.metadata_mut().insert("x-test", "carried".parse().unwrap());
    let response = client.echo(request).await.unwrap();
    assert_eq!(response.metadata().get("x-seen-test").unwrap(), "carried");
    // No client deadline: the gateway's default (30s) is applied.
    let timeout = response.metadata().get("x-seen-grpc-timeout").unwrap().to_str().unwrap().to_owned();
    assert_eq!(timeout, "30000m");
    // The backend sees the gateway's span as the parent.
    assert!(response.metadata().get("x-seen-traceparent").is_some());
    assert_eq!(response.into_inner().payload, b"hello");

    // A client deadline passes unchanged; one over the cap is shortened.
    let mut request = tonic::Request::new(echo("short"));
    request.set_timeout(Duration::from_millis(1500));
    let response = client.echo(request).await.unwrap();
    assert_eq!(response.metadata().get("x-seen-grpc-timeout").unwrap(), "1500m");
    let mut request = tonic::Request::new(echo("long"));
    request.set_timeout(Duration::from_secs(3600));
    let response = client.echo(request).await.unwrap();
    assert_eq!(response.metadata().get("x-seen-grpc-timeout").unwrap(), "300000m");

    // Errors keep their details and custom trailers.
    let status = client.echo(echo("fail")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.metadata().get("x-echo-trailer").unwrap(), "yes");
    assert_eq!(status.get_details_bad_request().unwrap().field_violations[0].field, "payload");

    stack.stop().await;
}

#[tokio::test]
async fn a_slow_backend_is_cut_at_the_capped_deadline() {
    let stack = Stack::start_with(common::Options {
        contacts: false,
        gateway_env: vec![
            ("GATEWAY_DEFAULT_DEADLINE", "300ms".to_owned()),
            ("GATEWAY_MAX_DEADLINE", "400ms".to_owned()),
        ],
        ..common::Options::default()
    })
    .await;
    let mut client = echo_client(&stack);
    for client_deadline in [None, Some(Duration::from_secs(10))] {
        let mut request = tonic::Request::new(echo("sleep:5000"));
        if let Some(deadline) = client_deadline {
            request.set_timeout(deadline);
        }
        let started = Instant::now();
        let status = client.echo(request).await.unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }
    stack.stop().await;
}

#[tokio::test]
async fn streaming_calls_of_every_shape_pass() {
    let stack = Stack::start().await;
    let mut client = echo_client(&stack);

    // Client streaming.
    let parts = futures::stream::iter(["a", "bc", "def"].map(echo));
    let collected = client.collect(parts).await.unwrap().into_inner();
    assert_eq!(collected.payload, b"abcdef");

    // Bidirectional: each answer arrives before the next request is sent.
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let mut answers =
        client.chat(tokio_stream::wrappers::ReceiverStream::new(receiver)).await.unwrap().into_inner();
    for word in ["ping", "pong", "done"] {
        sender.send(echo(word)).await.unwrap();
        let answer = within("a chat answer", answers.message()).await.unwrap().unwrap();
        assert_eq!(answer.payload, word.as_bytes());
    }
    drop(sender);
    assert!(within("the chat to end", answers.message()).await.unwrap().is_none());

    // Server streaming: a change made after the watch opened arrives.
    let mut contacts = stack.contacts();
    let mut changes = contacts
        .watch_changes(WatchChangesRequest { after_sequence: 0, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let created = contacts
        .create_contact(CreateContactRequest {
            contact: Some(contact("Streamed")),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let event = within("the change event", async {
        loop {
            let message = changes.message().await.unwrap().unwrap();
            if let Some(Event::Change(event)) = message.event {
                return event;
            }
        }
    })
    .await;
    assert_eq!(event.resource_id, created.id);
    stack.stop().await;
}

#[tokio::test]
async fn unknown_services_are_unimplemented_and_credentials_are_required() {
    let stack = Stack::start().await;
    let channel = stack.channel();

    // A package no backend owns.
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(echo("x"));
    request.metadata_mut().insert("authorization", common::admin_authorization());
    let status = grpc
        .unary::<EchoRequest, rapport_proto::bench::v1::EchoResponse, _>(
            request,
            http::uri::PathAndQuery::from_static("/rapport.nothing.v1.NoService/Call"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");

    // No credentials: refused at the gateway, before any backend.
    let mut anonymous = EchoServiceClient::new(channel.clone());
    let status = anonymous.echo(echo("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut forged = EchoServiceClient::with_interceptor(
        channel.clone(),
        common::Bearer("Bearer not.a.token".parse().unwrap()),
    );
    assert_eq!(forged.echo(echo("x")).await.unwrap_err().code(), Code::Unauthenticated);
    // Per-RPC authorization stays with the owning service.
    let mut viewer = stack.contacts_as("viewer-1", &[Role::Viewer]);
    let status = viewer
        .create_contact(CreateContactRequest { contact: Some(contact("Nope")), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // Health needs no credentials.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(serving.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    stack.stop().await;
}

#[tokio::test]
async fn reflection_lists_every_backend_service() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let stack = Stack::start().await;
    let mut reflection = ServerReflectionClient::new(stack.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        reflection.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|service| service.name).collect();
    for expected in ["rapport.contacts.v1.ContactService", "rapport.gateway.v1.CustomerService"] {
        assert!(names.iter().any(|name| name == expected), "{expected} missing from {names:?}");
    }
    stack.stop().await;
}

/// A backend's error status (a trailers-only response: grpc-status in the
/// headers, END_STREAM on them) leaves the gateway in the same shape. An
/// empty DATA frame ending the stream instead is read by tonic but refused
/// by gRPC C-core clients (Python, C++…) as "Data frame with END_STREAM
/// flag received".
#[tokio::test]
async fn an_error_leaves_as_a_trailers_only_response() {
    use prost::Message;

    let stack = Stack::start().await;
    let tcp = tokio::net::TcpStream::connect(stack.gateway.addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let message = echo("fail").encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&message);
    let request =
        http::Request::post(format!("http://{}/rapport.bench.v1.EchoService/Echo", stack.gateway.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", bearer("echo-user", &[Role::Viewer]).0.to_str().unwrap())
            .body(())
            .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(frame.into(), true).unwrap();
    let response = within("the echo's error", response).await.unwrap();
    assert!(response.headers().contains_key("grpc-status"), "{:?}", response.headers());
    assert_ne!(response.headers()["grpc-status"], "0");
    assert!(response.body().is_end_stream(), "the headers must end the stream (trailers-only)");
    stack.stop().await;
}
