//! PostgreSQL crashing under concurrent idempotent writes: every failure a
//! client sees is retryable (never INTERNAL), every acknowledged write is
//! there afterwards, retries with the same request_id make exactly one
//! record, and the service serves again without a restart.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Options, TestApp, contact};
use rapport_kit::testing::eventually;
use rapport_kit::testing::postgres_server::PostgresServer;
use rapport_proto::contacts::v1::{CreateContactRequest, GetContactRequest};
use tonic::Code;

const WORKERS: usize = 6;
const PER_WORKER: usize = 25;
/// Writes each worker makes before the crash; the rest wait for it, so
/// some are always sent while the database is down.
const BEFORE_CRASH: usize = 5;

#[tokio::test]
async fn a_database_crash_loses_no_acknowledged_write_and_answers_only_retryable_codes() {
    let mut database = PostgresServer::start().await.unwrap();
    let app = TestApp::spawn_with(Options { database_url: Some(database.url()), ..Default::default() }).await;
    let client = app.client().await;
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let (crashed, crash_seen) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let (mut client, acknowledged, refused) = (client.clone(), acknowledged.clone(), refused.clone());
        let mut crash_seen = crash_seen.clone();
        workers.push(tokio::spawn(async move {
            for n in 0..PER_WORKER {
                if n == BEFORE_CRASH {
                    crash_seen.wait_for(|crashed| *crashed).await.unwrap();
                }
                let request_id = format!("crash-{worker}-{n}");
                let email = format!("{request_id}@example.com");
                let deadline = Instant::now() + Duration::from_secs(60);
                // A client retrying the same request (same request_id) until
                // it is acknowledged, waiting as long as the error's RetryInfo
                // asks.
                loop {
                    let request = CreateContactRequest {
                        contact: Some(contact("Crash", &email)),
                        request_id: request_id.clone(),
                    };
                    match client.create_contact(request).await {
                        Ok(created) => {
                            acknowledged.lock().unwrap().push((request_id.clone(), created.into_inner().id));
                            break;
                        }
                        Err(status) => {
                            refused.lock().unwrap().push((status.code(), status.message().to_owned()));
                            assert!(Instant::now() < deadline, "{request_id} never succeeded: {status:?}");
                            let wait = retry_delay(&status).unwrap_or(Duration::from_millis(50));
                            tokio::time::sleep(wait.min(Duration::from_millis(500))).await;
                        }
                    }
                }
            }
        }));
    }
    // Crash the database once the writers are busy, let them write to it
    // while it is down until one is refused, then bring it back.
    let progress = acknowledged.clone();
    eventually("some writes to be acknowledged", || {
        let progress = progress.clone();
        async move { progress.lock().unwrap().len() >= WORKERS * BEFORE_CRASH }
    })
    .await;
    database.crash().await.unwrap();
    crashed.send(true).unwrap();
    let seen = refused.clone();
    eventually("a call refused while the database is down", || {
        let seen = seen.clone();
        async move { !seen.lock().unwrap().is_empty() }
    })
    .await;
    database.restart().await.unwrap();
    for worker in workers {
        worker.await.unwrap();
    }

    let refused = refused.lock().unwrap().clone();
    let retryable = [Code::Unavailable, Code::Aborted, Code::DeadlineExceeded];
    let wrong: Vec<_> = refused.iter().filter(|(code, _)| !retryable.contains(code)).collect();
    assert!(wrong.is_empty(), "not retryable: {wrong:?}");
    assert!(!refused.is_empty(), "the crash refused no call: it did not test anything");

    // Every acknowledged write is there, once.
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert_eq!(acknowledged.len(), WORKERS * PER_WORKER);
    let pool = sqlx::PgPool::connect(&database.url()).await.unwrap();
    let (rows, emails): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT email) FROM contacts.contacts")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((rows, emails), ((WORKERS * PER_WORKER) as i64, (WORKERS * PER_WORKER) as i64));
    let mut reader = client.clone();
    for (request_id, id) in &acknowledged {
        let found = reader.get_contact(GetContactRequest { id: id.clone() }).await;
        assert!(found.is_ok(), "{request_id}: acknowledged contact {id} is gone: {found:?}");
    }
    pool.close().await;
    app.stop().await;
}

/// The delay a status's `RetryInfo` asks for.
fn retry_delay(status: &tonic::Status) -> Option<Duration> {
    use tonic_types::StatusExt as _;
    status.get_details_retry_info().and_then(|info| info.retry_delay)
}
