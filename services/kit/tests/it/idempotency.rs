//! `idempotency::claim` and `record` in real transactions: replay, reuse,
//! concurrent retries, rollbacks, validation and pruning.

use crate::support;

use std::time::Duration;

use rapport_kit::idempotency::{self, Claim, Error, MAX_REQUEST_ID_LEN};
use sqlx::PgPool;
use tonic::Code;

use support::{database, eventually, within};

const CREATE: &str = "CreateThing";
/// The principal most keys here belong to.
const ALICE: &str = "alice";

/// Claims `request_id` in a transaction of its own; on `Fresh`, records
/// `response` and commits.
async fn check(pool: &PgPool, request_id: &str, request: &[u8], response: &[u8]) -> Claim {
    let mut tx = pool.begin().await.unwrap();
    let claim = idempotency::claim(&mut tx, CREATE, ALICE, request_id, request).await.unwrap();
    if claim == Claim::Fresh {
        idempotency::record(&mut tx, ALICE, request_id, response).await.unwrap();
        tx.commit().await.unwrap();
    }
    claim
}

async fn claim_error(pool: &PgPool, operation: &str, request_id: &str, request: &[u8]) -> Error {
    let mut tx = pool.begin().await.unwrap();
    idempotency::claim(&mut tx, operation, ALICE, request_id, request).await.unwrap_err()
}

#[tokio::test]
async fn the_first_response_is_replayed() {
    let database = database().await;
    let pool = &database.pool;
    assert_eq!(check(pool, "req-1", b"create a", b"created a").await, Claim::Fresh);
    assert_eq!(
        check(pool, "req-1", b"create a", b"created again").await,
        Claim::Replay(b"created a".to_vec())
    );
    // Another id is independent.
    assert_eq!(check(pool, "req-2", b"create a", b"created b").await, Claim::Fresh);
    assert_eq!(check(pool, "req-2", b"create a", b"").await, Claim::Replay(b"created b".to_vec()));
}

#[tokio::test]
async fn a_reused_id_with_another_request_or_operation_is_refused() {
    let database = database().await;
    let pool = &database.pool;
    assert_eq!(check(pool, "req-1", b"create a", b"created a").await, Claim::Fresh);

    let err = claim_error(pool, CREATE, "req-1", b"create b").await;
    assert!(matches!(err, Error::Reused), "{err:?}");
    let problem = err.problem().unwrap();
    assert_eq!((problem.code(), problem.reason()), (Code::InvalidArgument, "REQUEST_ID_REUSED"));
    let err = claim_error(pool, "CreateOtherThing", "req-1", b"create a").await;
    assert!(matches!(err, Error::Reused), "{err:?}");

    // The original still replays.
    assert_eq!(check(pool, "req-1", b"create a", b"").await, Claim::Replay(b"created a".to_vec()));
}

#[tokio::test]
async fn concurrent_retries_wait_for_the_first_and_replay_its_response() {
    let database = database().await;
    let pool = database.pool.clone();
    let mut first = pool.begin().await.unwrap();
    assert_eq!(
        idempotency::claim(&mut first, CREATE, ALICE, "req-1", b"create").await.unwrap(),
        Claim::Fresh
    );
    let retries: Vec<_> = (0..9)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { check(&pool, "req-1", b"create", b"second result").await })
        })
        .collect();
    // Every retry blocks on the first's uncommitted key.
    eventually("the retries to wait on the first claim", || {
        let pool = pool.clone();
        async move { support::waiting_locks(&pool, "transactionid").await == 9 }
    })
    .await;
    assert!(retries.iter().all(|retry| !retry.is_finished()));
    idempotency::record(&mut first, ALICE, "req-1", b"first result").await.unwrap();
    first.commit().await.unwrap();
    for retry in retries {
        assert_eq!(within("a retry", retry).await.unwrap(), Claim::Replay(b"first result".to_vec()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_ten_simultaneous_claims_exactly_one_runs() {
    let database = database().await;
    let pool = database.pool.clone();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(10));
    let claims: Vec<_> = (0..10u8)
        .map(|index| {
            let pool = pool.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let mut tx = pool.begin().await.unwrap();
                barrier.wait().await;
                let claim = idempotency::claim(&mut tx, CREATE, ALICE, "req-1", b"create").await.unwrap();
                if claim == Claim::Fresh {
                    // Hold the key until the nine others wait behind it.
                    let waiting = || async { support::waiting_locks(&pool, "transactionid").await >= 9 };
                    support::eventually("the nine other claims to wait", waiting).await;
                    idempotency::record(&mut tx, ALICE, "req-1", &[index]).await.unwrap();
                    tx.commit().await.unwrap();
                    return (Claim::Fresh, index);
                }
                (claim, index)
            })
        })
        .collect();
    let mut fresh = Vec::new();
    let mut replays = Vec::new();
    for claim in claims {
        match within("a claim", claim).await.unwrap() {
            (Claim::Fresh, index) => fresh.push(index),
            (Claim::Replay(response), _) => replays.push(response),
        }
    }
    assert_eq!(fresh.len(), 1, "more than one claim ran: {fresh:?}");
    assert_eq!(replays.len(), 9);
    assert!(replays.iter().all(|response| response == &[fresh[0]]));
}

#[tokio::test]
async fn a_rolled_back_claim_frees_the_id() {
    let database = database().await;
    let pool = database.pool.clone();

    // Rolled back before anyone else came.
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(idempotency::claim(&mut tx, CREATE, ALICE, "req-1", b"create").await.unwrap(), Claim::Fresh);
    tx.rollback().await.unwrap();
    assert_eq!(check(&pool, "req-1", b"create", b"done").await, Claim::Fresh);

    // Rolled back while a retry waited on it: the retry runs itself.
    let mut first = pool.begin().await.unwrap();
    assert_eq!(
        idempotency::claim(&mut first, CREATE, ALICE, "req-2", b"create").await.unwrap(),
        Claim::Fresh
    );
    let retry = tokio::spawn({
        let pool = pool.clone();
        async move { check(&pool, "req-2", b"create", b"retry result").await }
    });
    eventually("the retry to wait on the first claim", || {
        let pool = pool.clone();
        async move { support::waiting_locks(&pool, "transactionid").await == 1 }
    })
    .await;
    first.rollback().await.unwrap();
    assert_eq!(within("the retry", retry).await.unwrap(), Claim::Fresh);
    assert_eq!(check(&pool, "req-2", b"create", b"").await, Claim::Replay(b"retry result".to_vec()));
}

#[tokio::test]
async fn malformed_ids_are_refused_before_touching_the_database() {
    let database = database().await;
    let pool = &database.pool;
    let longest = "x".repeat(MAX_REQUEST_ID_LEN);
    let too_long = "x".repeat(MAX_REQUEST_ID_LEN + 1);
    for request_id in ["", too_long.as_str(), "has space", "tab\there", "new\nline", "ünïcode"] {
        let err = claim_error(pool, CREATE, request_id, b"create").await;
        assert!(matches!(err, Error::Invalid(_)), "{request_id:?}: {err:?}");
        let problem = err.problem().unwrap();
        assert_eq!((problem.code(), problem.reason()), (Code::InvalidArgument, "INVALID_REQUEST_ID"));
    }
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM idempotency_keys").fetch_one(pool).await.unwrap();
    assert_eq!(stored, 0);

    for request_id in [longest.as_str(), "0198c2a1-7b7e-7c3a-9f00-1234567890ab", "a~!@#$%^&*()"] {
        assert_eq!(check(pool, request_id, b"create", b"ok").await, Claim::Fresh);
    }
}

#[tokio::test]
async fn prune_forgets_only_keys_older_than_the_retention() {
    let database = database().await;
    let pool = &database.pool;
    assert_eq!(check(pool, "old", b"create", b"old result").await, Claim::Fresh);
    assert_eq!(check(pool, "new", b"create", b"new result").await, Claim::Fresh);
    sqlx::query(
        "UPDATE idempotency_keys SET create_time = now() - interval '2 days' WHERE request_id = 'old'",
    )
    .execute(pool)
    .await
    .unwrap();

    let day = Duration::from_secs(86_400);
    assert_eq!(idempotency::prune(pool, day).await.unwrap(), 1);
    assert_eq!(idempotency::prune(pool, day).await.unwrap(), 0);
    assert_eq!(check(pool, "new", b"create", b"").await, Claim::Replay(b"new result".to_vec()));
    // A forgotten id is new again.
    assert_eq!(check(pool, "old", b"create", b"second").await, Claim::Fresh);
    assert_eq!(idempotency::prune(pool, Duration::ZERO).await.unwrap(), 2);
}

#[tokio::test]
async fn keys_are_scoped_to_the_principal_that_sent_them() {
    let database = database().await;
    let pool = &database.pool;
    // Alice's key is held by her uncommitted transaction.
    let mut alice = pool.begin().await.unwrap();
    assert_eq!(idempotency::claim(&mut alice, CREATE, ALICE, "req-1", b"a").await.unwrap(), Claim::Fresh);
    // Bob's same key neither waits for hers nor replays it, nor is refused.
    let mut bob = pool.begin().await.unwrap();
    let claim = within("bob's claim", idempotency::claim(&mut bob, CREATE, "bob", "req-1", b"b")).await;
    assert_eq!(claim.unwrap(), Claim::Fresh);
    idempotency::record(&mut bob, "bob", "req-1", b"bob's").await.unwrap();
    bob.commit().await.unwrap();
    idempotency::record(&mut alice, ALICE, "req-1", b"alice's").await.unwrap();
    alice.commit().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let replay = idempotency::claim(&mut tx, CREATE, ALICE, "req-1", b"a").await.unwrap();
    assert_eq!(replay, Claim::Replay(b"alice's".to_vec()));
    let replay = idempotency::claim(&mut tx, CREATE, "bob", "req-1", b"b").await.unwrap();
    assert_eq!(replay, Claim::Replay(b"bob's".to_vec()));
}
