//! Bad input at the edge: each gets the right gRPC or HTTP error, is
//! counted, and leaves the gateway serving.

use crate::common;

use common::{Options, Stack, frame, raw_h1, raw_h2, sample};
use rapport_proto::bench::v1::EchoRequest;

const ECHO: &str = "/rapport.bench.v1.EchoService/Echo";

#[tokio::test]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    let stack = Stack::start_with(Options { contacts: false, ..Options::default() }).await;
    let addr = stack.gateway.addr;
    let good = frame(&EchoRequest { payload: b"ok".to_vec() });

    // Garbage bytes where a frame should be.
    let answer = raw_h2(addr, ECHO, "application/grpc", b"\xde\xad\xbe\xef garbage".to_vec()).await;
    assert_eq!(answer.grpc_status(), Some(tonic::Code::InvalidArgument as i32), "{answer:?}");

    // A frame cut short.
    let answer = raw_h2(addr, ECHO, "application/grpc", good[..good.len() - 1].to_vec()).await;
    assert_eq!(answer.grpc_status(), Some(tonic::Code::InvalidArgument as i32), "{answer:?}");

    // A frame whose content is not the message: the backend's decoder says so.
    let mut nonsense = vec![0, 0, 0, 0, 3];
    nonsense.extend_from_slice(&[0xff, 0xff, 0xff]);
    let answer = raw_h2(addr, ECHO, "application/grpc", nonsense).await;
    assert_eq!(answer.grpc_status(), Some(tonic::Code::Internal as i32), "{answer:?}");

    // Not gRPC at all.
    let answer = raw_h2(addr, ECHO, "text/plain", b"hello".to_vec()).await;
    assert_eq!(answer.http, 415, "{answer:?}");

    // A path with no service.
    for path in ["/", "/nothing", "/rapport.nothing.v1.Missing/Call"] {
        let answer = raw_h2(addr, path, "application/grpc", good.clone()).await;
        assert_eq!(answer.grpc_status(), Some(tonic::Code::Unimplemented as i32), "{path}: {answer:?}");
    }

    // HTTP/1.1 without gRPC-web.
    let request = http::Request::post(ECHO)
        .header("host", addr.to_string())
        .header("content-type", "application/grpc")
        .body(http_body_util::Full::new(bytes::Bytes::from(good.clone())))
        .unwrap();
    let answer = raw_h1(addr, request).await;
    assert_eq!(answer.http, 400, "{answer:?}");

    // An oversized frame header (announces 100 MB).
    let mut huge = vec![0];
    huge.extend_from_slice(&100_000_000u32.to_be_bytes());
    huge.extend_from_slice(b"short");
    let answer = raw_h2(addr, ECHO, "application/grpc", huge).await;
    assert_eq!(answer.grpc_status(), Some(tonic::Code::ResourceExhausted as i32), "{answer:?}");

    // Still serving.
    let answer = raw_h2(addr, ECHO, "application/grpc", good).await;
    assert_eq!(answer.grpc_status(), Some(0), "{answer:?}");

    let text = stack.metrics().await;
    for (reason, count) in [
        ("malformed_frame", 1.0),
        ("truncated_frame", 1.0),
        ("content_type", 1.0),
        ("unknown_service", 3.0),
        ("message_too_large", 1.0),
    ] {
        let seen = sample(&text, "gateway_rejected_requests_total", &[("reason", reason)]);
        assert_eq!(seen, count, "{reason}: {text}");
    }
    stack.stop().await;
}
