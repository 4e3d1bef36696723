//! gRPC-web and CORS as browsers use them: HTTP/1.1 requests with
//! 5-byte-framed messages (binary and base64 text), preflights from allowed
//! and other origins, and plain gRPC still served alongside.

use crate::support;

use base64::Engine as _;
use bytes::Bytes;
use prost::Message as _;
use rapport_kit::auth::Role;
use rapport_kit::server::WebConfig;
use rapport_kit::testing::{http1, sample};
use rapport_proto::bench::v1::{EchoRequest, EchoResponse};
use support::echo::{ECHO, bearer, client, echo, start};

const ORIGIN: &str = "http://localhost:8080";
const ECHO_PATH: &str = "/rapport.bench.v1.EchoService/Echo";

fn web() -> Option<WebConfig> {
    Some(WebConfig { allowed_origins: vec![ORIGIN.to_owned(), "https://app.example.com".to_owned()] })
}

/// A message in gRPC's 5-byte framing (flag 0: data).
fn frame(message: &impl prost::Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut framed = vec![0];
    framed.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(&body);
    framed
}

/// The data messages and the trailers (lowercase `name:value` lines) of a
/// gRPC-web response body.
fn unframe(mut body: &[u8]) -> (Vec<Vec<u8>>, Vec<String>) {
    let (mut messages, mut trailers) = (Vec::new(), Vec::new());
    while !body.is_empty() {
        let flag = body[0];
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        let payload = &body[5..5 + len];
        if flag & 0x80 == 0 {
            messages.push(payload.to_vec());
        } else {
            let text = String::from_utf8(payload.to_vec()).unwrap();
            trailers.extend(text.split("\r\n").filter(|line| !line.is_empty()).map(str::to_ascii_lowercase));
        }
        body = &body[5 + len..];
    }
    (messages, trailers)
}

/// Decodes grpc-web-text: base64 chunks, each possibly padded.
fn decode_text(text: &[u8]) -> Vec<u8> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut decoded = Vec::new();
    let mut start = 0;
    for end in 1..=text.len() {
        let chunk_ends = end == text.len() || (text[end - 1] == b'=' && text[end] != b'=');
        if chunk_ends {
            decoded.extend(engine.decode(&text[start..end]).unwrap());
            start = end;
        }
    }
    decoded
}

fn grpc_web_request(content_type: &str, body: Vec<u8>, origin: Option<&str>) -> http::Request<Bytes> {
    let mut request = http::Request::post(ECHO_PATH)
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .header("authorization", bearer(&[Role::Admin]));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.body(Bytes::from(body)).unwrap()
}

#[tokio::test]
async fn grpc_web_binary_and_text_calls_work_over_http1() {
    let running = start(web()).await;

    let request = grpc_web_request("application/grpc-web+proto", frame(&echo(b"binary")), Some(ORIGIN));
    let response = http1(running.addr, request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_11);
    assert_eq!(response.headers()["content-type"], "application/grpc-web+proto");
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    let exposed = response.headers()["access-control-expose-headers"].to_str().unwrap().to_owned();
    for header in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(header), "{header} not in {exposed}");
    }
    let (messages, trailers) = unframe(response.body());
    assert_eq!(EchoResponse::decode(messages[0].as_slice()).unwrap().payload, b"binary");
    assert!(trailers.contains(&"grpc-status:0".to_owned()), "{trailers:?}");

    let body = base64::engine::general_purpose::STANDARD.encode(frame(&echo(b"text")));
    let mut request = grpc_web_request("application/grpc-web-text", body.into_bytes(), None);
    // As grpc-web's JavaScript client: the answer's encoding follows `accept`.
    request.headers_mut().insert("accept", http::HeaderValue::from_static("application/grpc-web-text"));
    let response = http1(running.addr, request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/grpc-web-text"));
    let (messages, trailers) = unframe(&decode_text(response.body()));
    assert_eq!(EchoResponse::decode(messages[0].as_slice()).unwrap().payload, b"text");
    assert!(trailers.contains(&"grpc-status:0".to_owned()), "{trailers:?}");

    // A refused call: the status reaches the browser in a readable header.
    let request = grpc_web_request("application/grpc-web+proto", frame(&echo(b"fail")), Some(ORIGIN));
    let response = http1(running.addr, request).await.unwrap();
    assert_eq!(response.headers()["grpc-status"], "3");

    // Plain gRPC over HTTP/2 is still served, and every call was recorded.
    let mut admin = client(running.addr, &[Role::Admin]);
    assert_eq!(admin.echo(echo(b"h2")).await.unwrap().into_inner().payload, b"h2");
    let text = running.scrape().await;
    let ok = format!(r#"rpc_server_requests_total{{service="{ECHO}",method="Echo",code="OK"}}"#);
    let invalid =
        format!(r#"rpc_server_requests_total{{service="{ECHO}",method="Echo",code="INVALID_ARGUMENT"}}"#);
    assert_eq!(sample(&text, &ok), Some(3.0), "{text}");
    assert_eq!(sample(&text, &invalid), Some(1.0), "{text}");
    running.stop().await;
}

fn preflight(origin: &str) -> http::Request<Bytes> {
    http::Request::options(ECHO_PATH)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,authorization,x-api-key,traceparent",
        )
        .body(Bytes::new())
        .unwrap()
}

#[tokio::test]
async fn cors_preflight_answers_allowed_origins_only() {
    let running = start(web()).await;

    let response = http1(running.addr, preflight(ORIGIN)).await.unwrap();
    assert!(response.status().is_success(), "{response:?}");
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    for header in ["content-type", "x-grpc-web", "authorization", "x-api-key", "traceparent", "grpc-timeout"]
    {
        assert!(allowed.contains(header), "{header} not in {allowed}");
    }
    assert!(headers.contains_key("access-control-max-age"));

    let response = http1(running.addr, preflight("http://evil.example")).await.unwrap();
    assert!(
        !response.headers().contains_key("access-control-allow-origin"),
        "a disallowed origin was allowed: {response:?}"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_wildcard_allows_any_origin_and_plain_servers_refuse_http1() {
    let running = start(Some(WebConfig { allowed_origins: vec!["*".to_owned()] })).await;
    let response = http1(running.addr, preflight("http://anywhere.example")).await.unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    running.stop().await;

    // Without `web`, the server speaks HTTP/2 only.
    let running = start(None).await;
    let request = grpc_web_request("application/grpc-web+proto", frame(&echo(b"x")), None);
    assert!(http1(running.addr, request).await.is_err());
    running.stop().await;
}

#[test]
fn framing_round_trips() {
    let framed = frame(&EchoRequest { payload: b"abc".to_vec() });
    let (messages, trailers) = unframe(&framed);
    assert_eq!(EchoRequest::decode(messages[0].as_slice()).unwrap().payload, b"abc");
    assert!(trailers.is_empty());
}
