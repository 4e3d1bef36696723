//! Connection recycling loses no call: a backend that recycles its
//! connections every second (`GRPC_MAX_CONNECTION_AGE`) under a steady mix
//! of reads and writes through the gateway answers every unary call, writes
//! exactly once, and leaves no pooled connection inside a transaction.
//!
//! `make test` runs it for 8 s with connections a second old (eight
//! recycles); `make soak` runs the same test as the long soak it stands
//! for — `SOAK_SECONDS` (default 300) with `SOAK_CONNECTION_AGE` (default
//! 60s) — and prints what it did.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rapport_kit::auth::Role;
use rapport_kit::testing::{self, TestDatabase};
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use rapport_proto::contacts::v1::*;

use crate::common::start_gateway;

#[tokio::test]
async fn recycled_backend_connections_fail_no_call() {
    // `SOAK_LOG=rapport_gateway=debug,h2=debug` shows the GOAWAYs.
    // (Only then: the process's one subscriber belongs to the trace tests.)
    if let Ok(log) = std::env::var("SOAK_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(log).try_init();
    }
    let age = std::env::var("SOAK_CONNECTION_AGE").unwrap_or_else(|_| "1s".into());
    let database = TestDatabase::migrated(&[("contacts", &rapport_contacts::MIGRATIONS)]).await.unwrap();
    // Keepalive pings as often as the age: a busy connection is never
    // pinged, an idle one is; both must drain cleanly.
    let env = testing::service_env(&rapport_contacts::SPEC, &database.url)
        .with("GRPC_MAX_CONNECTION_AGE", age.clone())
        .with("GRPC_MAX_CONNECTION_AGE_GRACE", age.clone())
        .with("GRPC_KEEPALIVE_INTERVAL", age)
        .with("RATE_LIMIT_PER_SECOND", "0")
        .with("CONTACTS_PIPELINE_ADDR", "off")
        .with("CONTACTS_SUPPORT_ADDR", "off");
    let config = rapport_contacts::Config::from_env(&env).unwrap();
    let (contacts, _) = testing::serve(rapport_contacts::build(config).await.unwrap());
    // The gateway reaches Contacts through a counting TCP relay: the test
    // proves connections were recycled, not only that calls succeeded.
    let (relay, connections) = counting_relay(contacts.addr).await;
    let (gateway, _) =
        start_gateway(&[("contacts", relay.to_string())], &[("RATE_LIMIT_PER_SECOND", "0".into())]).await;
    let client =
        ContactServiceClient::with_interceptor(gateway.channel(), testing::bearer("soak", &[Role::Admin]));

    let (calls, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(std::sync::Mutex::new(Vec::new())));
    let seconds = std::env::var("SOAK_SECONDS").ok().and_then(|raw| raw.parse().ok()).unwrap_or(8);
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (mut client, calls, failures) = (client.clone(), calls.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < until {
                n += 1;
                let email = format!("soak-{worker}-{n}@example.com");
                let contact = Contact { given_name: "Soak".into(), email, ..Default::default() };
                let request_id = format!("soak-{worker}-{n}");
                let created =
                    client.create_contact(CreateContactRequest { contact: Some(contact), request_id }).await;
                calls.fetch_add(1, Ordering::Relaxed);
                let created = match created {
                    Ok(created) => created.into_inner(),
                    Err(status) => {
                        failures.lock().unwrap().push(format!(
                            "create: {:?} {}",
                            status.code(),
                            status.message()
                        ));
                        continue;
                    }
                };
                let update = UpdateContactRequest {
                    contact: Some(Contact {
                        id: created.id.clone(),
                        job_title: format!("T{n}"),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask { paths: vec!["job_title".into()] }),
                };
                let outcomes = [
                    client.get_contact(GetContactRequest { id: created.id.clone() }).await.map(drop),
                    client.update_contact(update).await.map(drop),
                    client
                        .list_contacts(ListContactsRequest { page_size: 5, ..Default::default() })
                        .await
                        .map(drop),
                ];
                for outcome in outcomes {
                    calls.fetch_add(1, Ordering::Relaxed);
                    if let Err(status) = outcome {
                        failures.lock().unwrap().push(format!("{:?} {}", status.code(), status.message()));
                    }
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    let calls = calls.load(Ordering::Relaxed);
    let connections = connections.load(Ordering::Relaxed);
    println!(
        "soak: {calls} unary calls in {seconds} s through the gateway over {connections} backend connections, {} failed",
        failures.len()
    );
    assert!(calls > 200, "only {calls} calls");
    assert!(connections >= 3, "the backend's connections were not recycled ({connections} opened)");
    let shown: Vec<&String> = failures.iter().take(20).collect();
    assert!(failures.is_empty(), "{} of {calls} calls failed, e.g.:\n{shown:#?}", failures.len());

    // Every create happened exactly once, and no connection was left in a transaction.
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let duplicates: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT email FROM contacts.contacts GROUP BY email HAVING count(*) > 1) d",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(duplicates, 0);
    // A background job's transaction is idle in transaction between its
    // statements for a moment; a connection left inside one stays so.
    rapport_kit::testing::eventually("no pooled connection left inside a transaction", || async {
        let stuck: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        stuck == 0
    })
    .await;
    pool.close().await;
    gateway.stop().await;
    contacts.stop().await;
}

/// A TCP relay to `target` on a free loopback port, counting the
/// connections it accepts.
async fn counting_relay(target: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, accepted)
}

/// A backend that reads each call in full and then resets the connection
/// (as a crash mid-call does), counting the calls that reached it; health
/// checks are answered SERVING.
async fn resetting_backend() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let arrivals = Arc::new(AtomicUsize::new(0));
    let counted = arrivals.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let arrivals = counted.clone();
            tokio::spawn(async move {
                // Closing with linger 0 sends RST: the peer sees a reset.
                socket.set_zero_linger().unwrap();
                let Ok(mut connection) = h2::server::handshake(socket).await else { return };
                while let Some(Ok((request, mut respond))) = connection.accept().await {
                    if request.uri().path().starts_with("/grpc.health.v1.Health/") {
                        let head = http::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(())
                            .unwrap();
                        let mut send = respond.send_response(head, false).unwrap();
                        // HealthCheckResponse { status: SERVING }
                        send.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 2, 0x08, 0x01]), false)
                            .unwrap();
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                        send.send_trailers(trailers).unwrap();
                        continue;
                    }
                    let mut body = request.into_body();
                    while let Some(chunk) = body.data().await {
                        if chunk.is_err() {
                            break;
                        }
                    }
                    arrivals.fetch_add(1, Ordering::SeqCst);
                    // Drop the connection (and the socket) mid-call.
                    return;
                }
            });
        }
    });
    (addr, arrivals)
}

#[tokio::test]
async fn after_a_reset_only_reads_and_keyed_writes_are_sent_again() {
    for (name, keyed, read, sent) in [
        ("an unkeyed create", false, false, 1),
        ("a keyed create", true, false, 2),
        ("a read", false, true, 2),
    ] {
        let (backend, arrivals) = resetting_backend().await;
        let (gateway, _) = start_gateway(&[("contacts", backend.to_string())], &[]).await;
        let mut client = ContactServiceClient::with_interceptor(
            gateway.channel(),
            testing::bearer("reset", &[Role::Admin]),
        );
        let status = if read {
            client.get_contact(GetContactRequest { id: uuid::Uuid::now_v7().to_string() }).await.unwrap_err()
        } else {
            let contact =
                Contact { given_name: "Ada".into(), email: "ada@example.com".into(), ..Default::default() };
            let request_id = if keyed { "create-1".to_owned() } else { String::new() };
            client
                .create_contact(CreateContactRequest { contact: Some(contact), request_id })
                .await
                .unwrap_err()
        };
        assert_eq!(status.code(), tonic::Code::Unavailable, "{name}: {status:?}");
        assert_eq!(arrivals.load(Ordering::SeqCst), sent, "{name} reached the backend this many times");
        gateway.stop().await;
    }
}
