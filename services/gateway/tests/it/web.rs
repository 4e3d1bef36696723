//! gRPC-web (binary and text) on the same address, and CORS for the
//! configured origins only.

use crate::common;

use base64::Engine;
use common::{Options, Stack, admin_authorization, frame, raw_h1};
use prost::Message;
use rapport_proto::bench::v1::{EchoRequest, EchoResponse};

const ECHO: &str = "/rapport.bench.v1.EchoService/Echo";
const ALLOWED: &str = "http://app.example.test";

fn web_stack() -> Options {
    Options {
        contacts: false,
        gateway_env: vec![("GATEWAY_CORS_ORIGINS", ALLOWED.to_owned())],
        ..Options::default()
    }
}

fn web_request(
    addr: std::net::SocketAddr,
    content_type: &str,
    body: Vec<u8>,
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::post(ECHO)
        .header("host", addr.to_string())
        .header("content-type", content_type)
        .header("accept", content_type)
        .header("x-grpc-web", "1")
        .header("origin", ALLOWED)
        .header("authorization", admin_authorization().to_str().unwrap())
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap()
}

/// Splits a gRPC-web response body into its messages and its trailer block.
fn split_web_body(mut body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let mut messages = Vec::new();
    let mut trailers = String::new();
    while body.len() >= 5 {
        let flags = body[0];
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let payload = body[5..5 + len].to_vec();
        body = &body[5 + len..];
        if flags & 0x80 != 0 {
            trailers = String::from_utf8(payload).unwrap();
        } else {
            messages.push(payload);
        }
    }
    (messages, trailers)
}

/// Decodes a grpc-web-text body: base64 chunks, each padded on its own.
fn decode_text(body: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::new();
    let mut start = 0;
    for index in 0..body.len() {
        let chunk_ends = body[index] == b'=' && body.get(index + 1).is_none_or(|next| *next != b'=');
        if chunk_ends || index + 1 == body.len() {
            let chunk = &body[start..=index];
            let decoded_chunk = base64::engine::general_purpose::STANDARD.decode(chunk);
            decoded.extend(
                decoded_chunk
                    .unwrap_or_else(|err| panic!("{err}: not base64: {:?}", String::from_utf8_lossy(body))),
            );
            start = index + 1;
        }
    }
    decoded
}

#[tokio::test]
async fn grpc_web_binary_and_text_reach_the_backend() {
    let stack = Stack::start_with(web_stack()).await;
    let addr = stack.gateway.addr;
    let message = frame(&EchoRequest { payload: b"from a browser".to_vec() });

    let answer = raw_h1(addr, web_request(addr, "application/grpc-web+proto", message.clone())).await;
    assert_eq!(answer.http, 200, "{answer:?}");
    assert_eq!(answer.headers.get("access-control-allow-origin").unwrap(), ALLOWED);
    let exposed = answer.headers.get("access-control-expose-headers").unwrap().to_str().unwrap().to_owned();
    for header in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(header), "{header} not exposed: {exposed}");
    }
    let (messages, trailers) = split_web_body(&answer.body);
    assert_eq!(messages.len(), 1, "{answer:?}");
    assert_eq!(EchoResponse::decode(messages[0].as_slice()).unwrap().payload, b"from a browser");
    assert!(trailers.contains("grpc-status:0"), "{trailers:?}");

    let encoded = base64::engine::general_purpose::STANDARD.encode(&message);
    let answer = raw_h1(addr, web_request(addr, "application/grpc-web-text", encoded.into_bytes())).await;
    assert_eq!(answer.http, 200, "{answer:?}");
    let decoded = decode_text(&answer.body);
    let (messages, trailers) = split_web_body(&decoded);
    assert_eq!(EchoResponse::decode(messages[0].as_slice()).unwrap().payload, b"from a browser");
    assert!(trailers.contains("grpc-status:0"), "{trailers:?}");

    // An error reaches the browser with its details.
    let failing = frame(&EchoRequest { payload: b"fail".to_vec() });
    let answer = raw_h1(addr, web_request(addr, "application/grpc-web+proto", failing)).await;
    let status = answer.grpc_status().or_else(|| {
        let (_, trailers) = split_web_body(&answer.body);
        trailers.lines().find_map(|line| line.strip_prefix("grpc-status:")?.trim().parse().ok())
    });
    assert_eq!(status, Some(tonic::Code::InvalidArgument as i32), "{answer:?}");
    let all_headers = format!("{:?}{}", answer.headers, String::from_utf8_lossy(&answer.body));
    assert!(all_headers.contains("grpc-status-details-bin"), "{all_headers}");
    stack.stop().await;
}

#[tokio::test]
async fn cors_preflight_allows_configured_origins_only() {
    let stack = Stack::start_with(web_stack()).await;
    let addr = stack.gateway.addr;
    let preflight = |origin: &str| {
        http::Request::options(ECHO)
            .header("host", addr.to_string())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,x-grpc-web,authorization,grpc-timeout")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let allowed = raw_h1(addr, preflight(ALLOWED)).await;
    assert!(allowed.http < 300, "{allowed:?}");
    assert_eq!(allowed.headers.get("access-control-allow-origin").unwrap(), ALLOWED);
    let headers =
        allowed.headers.get("access-control-allow-headers").unwrap().to_str().unwrap().to_lowercase();
    for header in ["content-type", "x-grpc-web", "authorization", "grpc-timeout"] {
        assert!(headers.contains(header), "{header} not allowed: {headers}");
    }

    let refused = raw_h1(addr, preflight("http://evil.example.test")).await;
    assert!(refused.headers.get("access-control-allow-origin").is_none(), "{refused:?}");
    stack.stop().await;
}

/// `make run`'s default: a frontend dev server on any local port may call.
#[tokio::test]
async fn local_origins_on_any_port_are_allowed_when_configured_so() {
    let options = Options {
        contacts: false,
        gateway_env: vec![("GATEWAY_CORS_ORIGINS", "http://localhost:*,http://127.0.0.1:*".to_owned())],
        ..Options::default()
    };
    let stack = Stack::start_with(options).await;
    let addr = stack.gateway.addr;
    let preflight = |origin: &str| {
        http::Request::options(ECHO)
            .header("host", addr.to_string())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,x-grpc-web")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    for origin in ["http://localhost:5173", "http://127.0.0.1:3000"] {
        let allowed = raw_h1(addr, preflight(origin)).await;
        assert_eq!(allowed.headers.get("access-control-allow-origin").unwrap(), origin, "{allowed:?}");
    }
    for origin in ["http://localhost.evil.test:5173", "https://example.test", "http://localhost"] {
        let refused = raw_h1(addr, preflight(origin)).await;
        assert!(refused.headers.get("access-control-allow-origin").is_none(), "{origin}: {refused:?}");
    }
    stack.stop().await;
}
