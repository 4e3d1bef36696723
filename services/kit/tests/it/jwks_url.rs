//! Keys fetched from the identity provider (`AUTH_JWKS_URL`, OIDC
//! discovery): a rotation needs no restart, invented key ids cannot make
//! the service hammer the provider, and a provider that cannot be reached
//! is a retryable answer, not a refusal of a good token.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rapport_kit::config::Env;
use rapport_kit::testing::echo::{self, Echo};
use rapport_proto::bench::v1::EchoRequest;
use rapport_proto::bench::v1::echo_service_client::EchoServiceClient;
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt as _;

const RSA1_PRIVATE: &[u8] = include_bytes!("../../src/auth/testdata/rsa1_private.pem");
const RSA2_PRIVATE: &[u8] = include_bytes!("../../src/auth/testdata/rsa2_private.pem");
const JWKS: &str = include_str!("../../src/auth/testdata/jwks.json");
const AUDIENCE: &str = "rapport-api";

/// A fake identity provider on loopback: discovery document and key set,
/// the set replaceable, every fetch of it counted.
struct IdentityProvider {
    addr: SocketAddr,
    keys: Arc<Mutex<Option<String>>>,
    issuer_in_document: Arc<Mutex<String>>,
    key_fetches: Arc<AtomicUsize>,
    /// How long the key set takes to answer.
    delay: Arc<Mutex<std::time::Duration>>,
}

impl IdentityProvider {
    async fn start() -> IdentityProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let provider = IdentityProvider {
            addr,
            keys: Arc::new(Mutex::new(Some(key_set(&["rsa-1"])))),
            issuer_in_document: Arc::new(Mutex::new(format!("http://{addr}"))),
            key_fetches: Arc::new(AtomicUsize::new(0)),
            delay: Arc::new(Mutex::new(std::time::Duration::ZERO)),
        };
        let (keys, issuer, fetches, delay) = (
            provider.keys.clone(),
            provider.issuer_in_document.clone(),
            provider.key_fetches.clone(),
            provider.delay.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (keys, issuer, fetches, delay) =
                    (keys.clone(), issuer.clone(), fetches.clone(), delay.clone());
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let body = match request.uri().path() {
                        "/.well-known/openid-configuration" => Some(
                            json!({
                                "issuer": *issuer.lock().unwrap(),
                                "jwks_uri": format!("http://{addr}/keys"),
                            })
                            .to_string(),
                        ),
                        "/keys" => {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            keys.lock().unwrap().clone()
                        }
                        _ => None,
                    };
                    let pause = if request.uri().path() == "/keys" {
                        *delay.lock().unwrap()
                    } else {
                        Default::default()
                    };
                    let response = match body {
                        Some(body) => http::Response::new(Full::new(Bytes::from(body))),
                        None => {
                            let mut response = http::Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                            response
                        }
                    };
                    async move {
                        tokio::time::sleep(pause).await;
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        provider
    }

    fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn publish(&self, kids: &[&str]) {
        *self.keys.lock().unwrap() = Some(key_set(kids));
    }

    /// The key set answers 503 until published again.
    fn go_down(&self) {
        *self.keys.lock().unwrap() = None;
    }

    fn fetches(&self) -> usize {
        self.key_fetches.load(Ordering::SeqCst)
    }
}

/// The test key set with only the keys named.
fn key_set(kids: &[&str]) -> String {
    let all: Value = serde_json::from_str(JWKS).unwrap();
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|key| kids.contains(&key["kid"].as_str().unwrap_or_default()))
        .cloned()
        .collect();
    json!({ "keys": keys }).to_string()
}

fn token(issuer: &str, private: &[u8], kid: &str, subject: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({
        "iss": issuer, "aud": AUDIENCE, "sub": subject, "iat": now, "exp": now + 600, "roles": ["viewer"],
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(private).unwrap()).unwrap()
}

async fn serve(
    settings: &[(&str, &str)],
) -> (rapport_kit::testing::Running, EchoServiceClient<tonic::transport::Channel>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let env = Env::from_pairs(settings.iter().copied().chain([("AUTH_AUDIENCE", AUDIENCE)]));
    let running = echo::serve(listener, &env, Echo::default()).unwrap();
    let client = EchoServiceClient::new(running.channel());
    (running, client)
}

async fn echo(
    client: &mut EchoServiceClient<tonic::transport::Channel>,
    token: &str,
) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(EchoRequest { payload: b"hi".to_vec() });
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    client.echo(request).await.map(drop)
}

fn reason(status: &tonic::Status) -> String {
    status.get_error_details().error_info().map(|info| info.reason.clone()).unwrap_or_default()
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_a_token_names_it() {
    let idp = IdentityProvider::start().await;
    let issuer = idp.issuer();
    let url = format!("{issuer}/keys");
    let settings = [
        ("AUTH_ISSUER", issuer.as_str()),
        ("AUTH_JWKS_URL", url.as_str()),
        ("AUTH_JWKS_MIN_REFRESH_INTERVAL", "0s"),
    ];
    let (running, mut client) = serve(&settings).await;

    echo(&mut client, &token(&issuer, RSA1_PRIVATE, "rsa-1", "u1")).await.unwrap();
    assert_eq!(idp.fetches(), 1, "the keys are fetched once, at start");
    echo(&mut client, &token(&issuer, RSA1_PRIVATE, "rsa-1", "u2")).await.unwrap();
    assert_eq!(idp.fetches(), 1, "known keys are not fetched again");

    // The provider rotates: rsa-2 replaces rsa-1.
    idp.publish(&["rsa-2"]);
    echo(&mut client, &token(&issuer, RSA2_PRIVATE, "rsa-2", "u1")).await.unwrap();
    assert_eq!(idp.fetches(), 2, "the unknown key id made the service fetch the keys");
    let retired = echo(&mut client, &token(&issuer, RSA1_PRIVATE, "rsa-1", "u3")).await.unwrap_err();
    assert_eq!(retired.code(), Code::Unauthenticated, "{retired:?}");
    assert_eq!(reason(&retired), "UNAUTHENTICATED_INVALID_TOKEN");

    // A token signed with another key under a published key id.
    let forged = echo(&mut client, &token(&issuer, RSA1_PRIVATE, "rsa-2", "admin")).await.unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated, "{forged:?}");
    running.stop().await;
}

#[tokio::test]
async fn invented_key_ids_do_not_make_the_service_hammer_the_provider() {
    let idp = IdentityProvider::start().await;
    let issuer = idp.issuer();
    let settings = [
        ("AUTH_ISSUER", issuer.as_str()),
        ("AUTH_OIDC_DISCOVERY", "true"),
        ("AUTH_JWKS_MIN_REFRESH_INTERVAL", "1h"),
    ];
    let (running, client) = serve(&settings).await;
    echo(&mut client.clone(), &token(&issuer, RSA1_PRIVATE, "rsa-1", "u1")).await.unwrap();
    assert_eq!(idp.fetches(), 1, "discovery found the key set and fetched it once");

    let attacks = (0..50).map(|n| {
        let (mut client, forged) =
            (client.clone(), token(&issuer, RSA2_PRIVATE, &format!("invented-{n}"), "admin"));
        async move { echo(&mut client, &forged).await }
    });
    for outcome in futures::future::join_all(attacks).await {
        let status = outcome.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_eq!(reason(&status), "UNAUTHENTICATED_INVALID_TOKEN");
    }
    assert_eq!(idp.fetches(), 1, "within the cool-down no fetch is made for unknown key ids");
    running.stop().await;
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_retryable() {
    let idp = IdentityProvider::start().await;
    let issuer = idp.issuer();
    let settings = [
        ("AUTH_ISSUER", issuer.as_str()),
        ("AUTH_OIDC_DISCOVERY", "true"),
        ("AUTH_JWKS_MIN_REFRESH_INTERVAL", "0s"),
    ];
    idp.go_down();
    let (running, mut client) = serve(&settings).await;
    let down = echo(&mut client, &token(&issuer, RSA1_PRIVATE, "rsa-1", "u1")).await.unwrap_err();
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    assert_eq!(reason(&down), "IDENTITY_PROVIDER_UNAVAILABLE");
    assert!(down.get_error_details().retry_info().is_some(), "{down:?}");

    idp.publish(&["rsa-1"]);
    echo(&mut client, &token(&issuer, RSA1_PRIVATE, "rsa-1", "u1")).await.unwrap();

    // A discovery document naming another issuer is not followed.
    *idp.issuer_in_document.lock().unwrap() = "https://evil.example".to_owned();
    let (other, mut client) = serve(&[
        ("AUTH_ISSUER", issuer.as_str()),
        ("AUTH_OIDC_DISCOVERY", "true"),
        ("AUTH_JWKS_MIN_REFRESH_INTERVAL", "0s"),
    ])
    .await;
    let refused = echo(&mut client, &token(&issuer, RSA1_PRIVATE, "rsa-1", "u1")).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(reason(&refused), "IDENTITY_PROVIDER_UNAVAILABLE");
    assert!(!refused.message().contains("evil"), "the provider's details stay in the logs: {refused:?}");
    other.stop().await;
    running.stop().await;
}

#[tokio::test]
async fn aged_keys_are_refreshed_so_a_withdrawn_key_stops_working() {
    let idp = IdentityProvider::start().await;
    idp.publish(&["rsa-1", "rsa-2"]);
    let issuer = idp.issuer();
    let url = format!("{issuer}/keys");
    let settings = [
        ("AUTH_ISSUER", issuer.as_str()),
        ("AUTH_JWKS_URL", url.as_str()),
        ("AUTH_JWKS_REFRESH_INTERVAL", "20ms"),
        ("AUTH_JWKS_MIN_REFRESH_INTERVAL", "1h"),
    ];
    let (running, client) = serve(&settings).await;
    echo(&mut client.clone(), &token(&issuer, RSA1_PRIVATE, "rsa-1", "u0")).await.unwrap();
    // The provider withdraws rsa-1 (compromised); no token names an
    // unknown key, so only the refresh of aged keys can notice.
    idp.publish(&["rsa-2"]);
    let subject = AtomicUsize::new(1);
    rapport_kit::testing::eventually("a token signed with the withdrawn key is refused", || {
        let (mut client, n) = (client.clone(), subject.fetch_add(1, Ordering::SeqCst));
        let token = token(&issuer, RSA1_PRIVATE, "rsa-1", &format!("u{n}"));
        async move { echo(&mut client, &token).await.is_err_and(|status| status.code() == Code::Unauthenticated) }
    })
    .await;
    echo(&mut client.clone(), &token(&issuer, RSA2_PRIVATE, "rsa-2", "u-last")).await.unwrap();
    running.stop().await;
}

#[tokio::test]
async fn a_caller_that_goes_away_does_not_cut_the_fetch_short() {
    let idp = IdentityProvider::start().await;
    idp.publish(&["rsa-1"]);
    let issuer = idp.issuer();
    let url = format!("{issuer}/keys");
    let settings = [
        ("AUTH_ISSUER", issuer.as_str()),
        ("AUTH_JWKS_URL", url.as_str()),
        ("AUTH_JWKS_MIN_REFRESH_INTERVAL", "2s"),
    ];
    let (running, client) = serve(&settings).await;
    echo(&mut client.clone(), &token(&issuer, RSA1_PRIVATE, "rsa-1", "u1")).await.unwrap();

    // The provider rotates and answers slowly. Callers naming the new key
    // are refused until the start-up fetch's cool-down has passed; then one
    // starts a fetch and gives up (its deadline passes) before the answer.
    idp.publish(&["rsa-2"]);
    *idp.delay.lock().unwrap() = std::time::Duration::from_millis(500);
    let new_key = token(&issuer, RSA2_PRIVATE, "rsa-2", "u2");
    rapport_kit::testing::eventually("a caller naming the new key to give up while it is fetched", || {
        let (mut client, bearer) = (client.clone(), format!("Bearer {new_key}"));
        async move {
            let mut request = tonic::Request::new(EchoRequest { payload: b"hi".to_vec() });
            request.set_timeout(std::time::Duration::from_millis(100));
            request.metadata_mut().insert("authorization", bearer.parse().unwrap());
            // tonic's server answers an expired `grpc-timeout` CANCELLED.
            let gave_up = [Code::DeadlineExceeded, Code::Cancelled];
            client.echo(request).await.is_err_and(|status| gave_up.contains(&status.code()))
        }
    })
    .await;
    // The fetch went on without its caller: the next caller, within the
    // cool-down of that fetch, is let in with the new key.
    echo(&mut client.clone(), &token(&issuer, RSA2_PRIVATE, "rsa-2", "u3")).await.unwrap();
    assert_eq!(idp.fetches(), 2);
    running.stop().await;
}
