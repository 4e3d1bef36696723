//! Rate limiting over a real Redis: burst then refusal, refill, one bucket
//! shared by two replicas, the local fallback while Redis is down and the
//! way back, and the tower layer in front of a real tonic server.

use crate::support;

use std::time::Duration;

use rapport_kit::auth::{AuthLayer, Policy, Role, Verifier, config_from_env};
use rapport_kit::config::Env;
use rapport_kit::ratelimit::{
    Decision, KEY_PREFIX, REASON_RATE_LIMITED, RateLimitLayer, RateLimitSettings, RateLimiter, Source,
    SourceLabel,
};
use rapport_kit::redis::{Redis, RedisConfig};
use rapport_kit::testing::echo::{self, Echo};
use rapport_kit::testing::redis_server::RedisServer;
use rapport_kit::testing::{self, redis_url};
use rapport_proto::bench::v1::echo_service_client::EchoServiceClient;
use rapport_proto::bench::v1::echo_service_server::EchoServiceServer;
use rapport_proto::bench::v1::{EchoRequest, EchoResponse};
use support::{eventually, within};
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

/// A rate slow enough that no token comes back during a test: 100 s each.
const GLACIAL: f64 = 0.01;

fn redis(url: &str) -> Redis {
    let config = RedisConfig {
        url: Some(url.to_owned()),
        ca_file: None,
        client_cert: None,
        command_timeout: Duration::from_millis(250),
        backoff: Duration::from_millis(20),
    };
    Redis::connect(&config).unwrap().unwrap()
}

fn limiter(url: &str, per_second: f64, burst: u32) -> RateLimiter {
    RateLimiter::new(redis(url), RateLimitSettings { per_second, burst })
}

/// A principal no other test (or earlier run) uses.
fn unique_key(test: &str) -> String {
    format!("test-{test}-{}", uuid::Uuid::now_v7().simple())
}

/// Checks `key` `calls` times; returns how many were allowed and the
/// decisions in order.
async fn check(limiter: &RateLimiter, key: &str, calls: usize) -> (usize, Vec<Decision>) {
    let mut decisions = Vec::with_capacity(calls);
    for _ in 0..calls {
        decisions.push(limiter.check(key).await);
    }
    (decisions.iter().filter(|decision| **decision == Decision::Allowed).count(), decisions)
}

fn retry_after(decision: Decision) -> Duration {
    match decision {
        Decision::Limited { retry_after } => retry_after,
        Decision::Allowed => panic!("expected the call to be limited"),
    }
}

fn limited(limiter: &RateLimiter, source: Source) -> u64 {
    limiter.metrics().limited.get_or_create(&SourceLabel { source }).get()
}

fn degraded(limiter: &RateLimiter) -> i64 {
    limiter.metrics().degraded.get()
}

/// Runs `command` on the test Redis.
async fn redis_command(command: &redis::Cmd) -> i64 {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    command.query_async(&mut connection).await.unwrap()
}

/// The remaining time to live of `key`'s bucket in Redis, in ms (-2: absent).
async fn bucket_pttl(key: &str) -> i64 {
    redis_command(redis::cmd("PTTL").arg(format!("{KEY_PREFIX}{key}"))).await
}

#[tokio::test]
async fn the_burst_is_allowed_then_calls_are_limited_until_the_next_token() {
    let limiter = limiter(&redis_url(), 1.0, 5);
    let key = unique_key("burst");

    let (allowed, decisions) = check(&limiter, &key, 7).await;
    assert_eq!(allowed, 5, "{decisions:?}");
    assert!(decisions[..5].iter().all(|decision| *decision == Decision::Allowed));
    // One token per second: the next one is due in just under a second.
    let wait = retry_after(decisions[5]);
    assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1), "{wait:?}");
    assert!(retry_after(decisions[6]) <= wait);
    // The key lives until the bucket would be full again: 5 tokens, 5 s.
    let ttl = bucket_pttl(&key).await;
    assert!(ttl > 4000 && ttl <= 5000, "{ttl} ms");

    assert_eq!(limited(&limiter, Source::Redis), 2);
    assert_eq!(limited(&limiter, Source::Local), 0);
    assert_eq!(degraded(&limiter), 0);

    // Other principals have buckets of their own.
    assert_eq!(limiter.check(&unique_key("burst-other")).await, Decision::Allowed);
}

#[tokio::test]
async fn tokens_come_back_at_the_rate_and_idle_buckets_expire() {
    // 20 per second: a token every 50 ms, a full bucket of 2 in 100 ms.
    let limiter = limiter(&redis_url(), 20.0, 2);
    let key = unique_key("refill");

    let (allowed, decisions) = check(&limiter, &key, 3).await;
    assert_eq!(allowed, 2, "{decisions:?}");
    let wait = retry_after(decisions[2]);
    assert!(wait > Duration::ZERO && wait <= Duration::from_millis(50), "{wait:?}");

    // Waiting as long as told is enough for the next call.
    tokio::time::sleep(wait).await;
    assert_eq!(limiter.check(&key).await, Decision::Allowed);

    // Left alone, the bucket refills and its key disappears.
    eventually("the idle bucket to expire", || async { bucket_pttl(&key).await == -2 }).await;
    let (allowed, _) = check(&limiter, &key, 3).await;
    assert_eq!(allowed, 2, "an expired bucket is a full one");
}

#[tokio::test]
async fn two_replicas_share_one_bucket() {
    let replica_a = limiter(&redis_url(), GLACIAL, 4);
    let replica_b = limiter(&redis_url(), GLACIAL, 4);
    let key = unique_key("shared");

    for _ in 0..2 {
        assert_eq!(replica_a.check(&key).await, Decision::Allowed);
        assert_eq!(replica_b.check(&key).await, Decision::Allowed);
    }
    for replica in [&replica_a, &replica_b] {
        let wait = retry_after(replica.check(&key).await);
        assert!(wait > Duration::from_secs(90) && wait <= Duration::from_secs(100), "{wait:?}");
        assert_eq!(limited(replica, Source::Redis), 1);
    }
}

#[tokio::test]
async fn with_redis_unreachable_the_local_fallback_still_limits() {
    let limiter = limiter("redis://127.0.0.1:1", GLACIAL, 3);
    let mut registry = prometheus_client::registry::Registry::default();
    limiter.register_metrics(&mut registry);
    let key = unique_key("unreachable");

    let (allowed, decisions) = check(&limiter, &key, 5).await;
    assert_eq!(allowed, 3, "{decisions:?}");
    let wait = retry_after(decisions[3]);
    assert!(wait > Duration::from_secs(90) && wait <= Duration::from_secs(100), "{wait:?}");
    assert_eq!(degraded(&limiter), 1);
    assert_eq!((limited(&limiter, Source::Local), limited(&limiter, Source::Redis)), (2, 0));

    let mut exposition = String::new();
    prometheus_client::encoding::text::encode(&mut exposition, &registry).unwrap();
    assert!(exposition.contains("rapport_rate_limited_total{source=\"local\"} 2"), "{exposition}");
    assert!(exposition.contains("rapport_rate_limited_total{source=\"redis\"} 0"), "{exposition}");
    assert!(exposition.contains("rapport_rate_limiter_degraded 1"), "{exposition}");
}

#[tokio::test]
async fn when_redis_stops_limits_go_local_and_come_back_shared_when_it_returns() {
    let mut server = RedisServer::start().await.unwrap();
    let limiter = limiter(&server.url(), GLACIAL, 2);
    let key = unique_key("outage");

    assert_eq!(limiter.check(&key).await, Decision::Allowed);
    assert_eq!(degraded(&limiter), 0);

    server.stop().await.unwrap();
    // The local bucket starts full and enforces the same settings.
    let (allowed, decisions) = check(&limiter, &key, 3).await;
    assert_eq!(allowed, 2, "{decisions:?}");
    assert_eq!(degraded(&limiter), 1);
    assert_eq!(limited(&limiter, Source::Local), 1);

    server.restart().await.unwrap();
    eventually("the limiter to use redis again", || async {
        limiter.check(&key).await;
        degraded(&limiter) == 0
    })
    .await;
    // The restarted server lost the bucket; the call that found Redis took
    // one of its 2 tokens. The shared bucket decides again.
    let (allowed, decisions) = check(&limiter, &key, 2).await;
    assert_eq!(allowed, 1, "{decisions:?}");
    assert_eq!(limited(&limiter, Source::Redis), 1);
}

#[tokio::test]
async fn very_slow_rates_wait_and_keep_buckets_at_most_a_day() {
    let limiter = limiter(&redis_url(), 1e-12, 1);
    let key = unique_key("slow");
    let (allowed, decisions) = check(&limiter, &key, 2).await;
    assert_eq!(allowed, 1, "{decisions:?}");
    assert_eq!(retry_after(decisions[1]), Duration::from_secs(86_400));
    let ttl = bucket_pttl(&key).await;
    assert!(ttl > 86_000_000 && ttl <= 86_400_000, "{ttl} ms");
    redis_command(redis::cmd("DEL").arg(format!("{KEY_PREFIX}{key}"))).await;
}

#[tokio::test]
async fn a_disabled_limiter_allows_everything_without_touching_redis() {
    let limiter = limiter(&redis_url(), 0.0, 1);
    let key = unique_key("disabled");
    let (allowed, _) = check(&limiter, &key, 50).await;
    assert_eq!(allowed, 50);
    assert_eq!(bucket_pttl(&key).await, -2);
}

#[tokio::test]
async fn a_local_only_limiter_limits_without_being_degraded() {
    let limiter = RateLimiter::local(RateLimitSettings { per_second: GLACIAL, burst: 2 });
    let key = unique_key("local");
    let (allowed, _) = check(&limiter, &key, 4).await;
    assert_eq!(allowed, 2);
    assert_eq!(limited(&limiter, Source::Local), 2);
    assert_eq!(degraded(&limiter), 0);
}

const RULES: &[(&str, &[Role])] = &[("Echo", &[Role::Admin])];

async fn echo_as(channel: &Channel, subject: &str) -> Result<Response<EchoResponse>, Status> {
    let mut request = Request::new(EchoRequest { payload: b"hi".to_vec() });
    let header = format!("Bearer {}", testing::token(subject, &[Role::Admin]));
    request.metadata_mut().insert("authorization", header.parse().unwrap());
    EchoServiceClient::new(channel.clone()).echo(request).await
}

#[tokio::test]
async fn the_layer_refuses_with_retry_info_and_lets_unauthenticated_paths_pass() {
    let verifier =
        Verifier::new(config_from_env(&Env::from_pairs([(rapport_kit::auth::DEV_MODE, "true")])).unwrap())
            .unwrap();
    let auth = AuthLayer::new(verifier, vec![Policy::new(echo::SERVICE, RULES)]);
    let limiter = limiter(&redis_url(), GLACIAL, 2);
    let (_reporter, health) = tonic_health::server::health_reporter();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::builder()
            .layer(auth)
            .layer(RateLimitLayer::new(limiter))
            .add_service(health)
            .add_service(EchoServiceServer::new(Echo::default()))
            .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), async {
                let _ = stopped.await;
            }),
    );
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect_lazy();

    let subject = unique_key("layer");
    for _ in 0..2 {
        let echoed = within("an echo", echo_as(&channel, &subject)).await.unwrap();
        assert_eq!(echoed.into_inner().payload, b"hi");
    }
    let refused = within("a refused echo", echo_as(&channel, &subject)).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let delay = refused.get_details_retry_info().unwrap().retry_delay.unwrap();
    assert!(delay > Duration::from_secs(90) && delay <= Duration::from_secs(100), "{delay:?}");
    let info = refused.get_details_error_info().unwrap();
    assert_eq!((info.reason.as_str(), info.domain.as_str()), (REASON_RATE_LIMITED, "rapport"));
    assert_eq!(info.metadata["limit_per_second"], "0.01");

    // Another principal is not affected.
    within("another echo", echo_as(&channel, &unique_key("layer-other"))).await.unwrap();

    // Health carries no principal: never limited.
    let mut health = HealthClient::new(channel.clone());
    for _ in 0..5 {
        let check = within("a health check", health.check(HealthCheckRequest { service: String::new() }));
        assert_eq!(check.await.unwrap().into_inner().status(), ServingStatus::Serving);
    }

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
