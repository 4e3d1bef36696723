//! The peer client's tests: credentials, deadlines, retries.

#![allow(clippy::unwrap_used)]

use super::inbound::parse_grpc_timeout;
use super::*;
use crate::auth::Role;
use crate::config::Env;
use tonic::metadata::MetadataMap;

#[test]
fn grpc_timeouts_parse_in_every_unit() {
    assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
    assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
    assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
    assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
    assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
    assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
    assert_eq!(parse_grpc_timeout("5"), None);
    assert_eq!(parse_grpc_timeout("S"), None);
    assert_eq!(parse_grpc_timeout(""), None);
    assert_eq!(parse_grpc_timeout("99999999999999999999H"), None);
}

#[test]
fn jitter_stays_within_a_quarter() {
    for _ in 0..100 {
        let delay = jittered(Duration::from_millis(100));
        assert!(delay >= Duration::from_millis(75) && delay <= Duration::from_millis(125), "{delay:?}");
    }
}

#[test]
fn settings_are_read_with_the_callers_prefix() {
    let env = Env::from_pairs([("PIPELINE_CONTACTS_API_KEY", "rk_x"), ("PIPELINE_CONTACTS_TIMEOUT", "2s")]);
    let settings = PeerSettings::from_env(&env, "pipeline", "contacts", "http://127.0.0.1:50051").unwrap();
    assert_eq!(settings.addr, "http://127.0.0.1:50051");
    assert_eq!(settings.api_key.as_deref(), Some("rk_x"));
    assert_eq!(settings.timeout, Duration::from_secs(2));
    assert!(!format!("{settings:?}").contains("rk_x"));
    let env = Env::from_pairs([("PIPELINE_CONTACTS_TIMEOUT", "0s")]);
    let err = PeerSettings::from_env(&env, "pipeline", "contacts", "http://x").unwrap_err();
    assert_eq!(err.name, "PIPELINE_CONTACTS_TIMEOUT");
}

fn metadata_of(peer: &Peer<()>, on: &OnBehalf) -> MetadataMap {
    peer.stream_request(on, ()).unwrap().metadata().clone()
}

#[tokio::test]
async fn calls_carry_the_callers_credentials_or_the_services_own() {
    let settings = PeerSettings {
        addr: "http://127.0.0.1:1".into(),
        api_key: None,
        timeout: Duration::from_secs(5),
        later: None,
    };
    let auth = crate::auth::config_from_env(&Env::from_pairs([(
        "AUTH_JWT_SECRET",
        "s3cret-of-at-least-thirty-two-bytes",
    )]))
    .unwrap();
    let identity = Identity::of(&settings, &auth, "pipeline", &[Role::Integration]).unwrap();
    let peer = Peer::new("contacts", "test.v1.Contacts", &settings, identity, |_| ()).unwrap();
    let mut inbound = tonic::Request::new(());
    inbound.metadata_mut().insert("authorization", "Bearer caller".parse().unwrap());
    inbound.metadata_mut().insert("grpc-timeout", "100m".parse().unwrap());
    let as_caller = metadata_of(&peer, &OnBehalf::caller(&inbound));
    assert_eq!(as_caller.get("authorization").unwrap(), "Bearer caller");
    let as_service = metadata_of(&peer, &OnBehalf::Service);
    let token = as_service.get("authorization").unwrap().to_str().unwrap().to_owned();
    let verifier = crate::auth::Verifier::new(auth).unwrap();
    let principal = verifier.verify(token.trim_start_matches("Bearer ")).unwrap();
    assert_eq!(
        (principal.subject.as_str(), principal.roles.as_slice()),
        ("pipeline", &[Role::Integration][..])
    );
    // The same token until it is half-way to expiring.
    assert_eq!(metadata_of(&peer, &OnBehalf::Service).get("authorization").unwrap(), token.as_str());
    // The inbound deadline is forwarded, capped at the timeout.
    let left = Peer::<()>::remaining(peer.deadline(&OnBehalf::caller(&inbound))).unwrap();
    assert!(left <= Duration::from_millis(100), "{left:?}");
    let own = Peer::<()>::remaining(peer.deadline(&OnBehalf::Service)).unwrap();
    assert!(own <= Duration::from_secs(5) && own > Duration::from_secs(4), "{own:?}");
    assert!(!format!("{:?}", OnBehalf::caller(&inbound)).contains("caller"), "no credential in Debug");

    let jwks = crate::auth::config_from_env(&Env::from_pairs([("AUTH_JWKS_FILE", "/jwks.json")])).unwrap();
    assert!(Identity::of(&settings, &jwks, "pipeline", &[Role::Integration]).unwrap().is_none());
    let keyed = PeerSettings { api_key: Some("rk_key".into()), ..settings };
    let identity = Identity::of(&keyed, &jwks, "pipeline", &[Role::Integration]).unwrap();
    let peer = Peer::new("contacts", "test.v1.Contacts", &keyed, identity, |_| ()).unwrap();
    assert_eq!(metadata_of(&peer, &OnBehalf::Service).get("x-api-key").unwrap(), "rk_key");
    let without = Peer::new("contacts", "test.v1.Contacts", &keyed, None, |_| ()).unwrap();
    assert_eq!(without.stream_request(&OnBehalf::Service, ()).unwrap_err().code(), Code::FailedPrecondition);
}

fn unavailable_then_ok(
    failures: usize,
    attempts: &std::sync::atomic::AtomicUsize,
) -> Result<tonic::Response<u8>, Status> {
    let attempt = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if attempt < failures { Err(Status::unavailable("not yet")) } else { Ok(tonic::Response::new(7)) }
}

fn test_peer(timeout: Duration) -> Peer<()> {
    let settings = PeerSettings {
        addr: "http://127.0.0.1:1".into(),
        api_key: Some("rk_k".into()),
        timeout,
        later: None,
    };
    let auth = crate::auth::config_from_env(&Env::from_pairs([(crate::auth::DEV_MODE, "true")])).unwrap();
    let identity = Identity::of(&settings, &auth, "test", &[Role::Integration]).unwrap();
    Peer::new("test", "test.v1.Test", &settings, identity, |_| ()).unwrap()
}

#[tokio::test]
async fn reads_are_retried_while_the_callee_is_unavailable_and_writes_are_not() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let peer = test_peer(Duration::from_secs(5));
    let attempts = AtomicUsize::new(0);
    let read = peer.read(&OnBehalf::Service, "Get", (), |_, _| async { unavailable_then_ok(2, &attempts) });
    assert_eq!(read.await.unwrap(), 7);
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "two retries, then the answer");

    let attempts = AtomicUsize::new(0);
    let read = peer.read(&OnBehalf::Service, "Get", (), |_, _| async { unavailable_then_ok(5, &attempts) });
    assert_eq!(read.await.unwrap_err().code(), Code::Unavailable);
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "at most three attempts");

    let attempts = AtomicUsize::new(0);
    let write =
        peer.call(&OnBehalf::Service, "Create", (), |_, _| async { unavailable_then_ok(1, &attempts) });
    assert_eq!(write.await.unwrap_err().code(), Code::Unavailable);
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "a write is never retried here");

    // No retry once the deadline leaves no room for the back-off.
    let short = test_peer(Duration::from_millis(30));
    let attempts = AtomicUsize::new(0);
    let read = short.read(&OnBehalf::Service, "Get", (), |_, _| async { unavailable_then_ok(1, &attempts) });
    assert_eq!(read.await.unwrap_err().code(), Code::Unavailable);
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn each_attempt_carries_the_remaining_deadline() {
    let peer = test_peer(Duration::from_secs(5));
    let mut inbound = tonic::Request::new(());
    inbound.metadata_mut().insert("grpc-timeout", "2S".parse().unwrap());
    let seen = std::sync::Mutex::new(None);
    let on = OnBehalf::caller(&inbound);
    let call = peer.call(&on, "Get", (), |_, request: tonic::Request<()>| {
        *seen.lock().unwrap() = request.metadata().get("grpc-timeout").cloned();
        async { Ok(tonic::Response::new(1u8)) }
    });
    call.await.unwrap();
    let timeout = seen.lock().unwrap().clone().unwrap();
    let timeout = parse_grpc_timeout(timeout.to_str().unwrap()).unwrap();
    assert!(timeout <= Duration::from_secs(2) && timeout > Duration::from_secs(1), "{timeout:?}");
}

#[tokio::test]
async fn a_callee_slower_than_the_deadline_is_deadline_exceeded_and_retries_share_one_budget() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let peer = test_peer(Duration::from_millis(200));
    let started = Instant::now();
    let slow = peer.call(&OnBehalf::Service, "Get", (), |_, _| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(tonic::Response::new(1u8))
    });
    assert_eq!(slow.await.unwrap_err().code(), Code::DeadlineExceeded);
    // Attempts that each take most of the budget: no second fresh one.
    let attempts = AtomicUsize::new(0);
    let read = peer.read(&OnBehalf::Service, "Get", (), |_, _| async {
        attempts.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(150)).await;
        Err::<tonic::Response<u8>, _>(Status::unavailable("down"))
    });
    assert!(read.await.is_err());
    assert!(attempts.load(Ordering::SeqCst) <= 2, "the budget is the call's, not each attempt's");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}
