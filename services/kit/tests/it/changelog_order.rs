//! Commit order of change-log appends: a consumer that polls the table and
//! only ever moves its cursor forward must see every committed sequence,
//! however the writers' transactions interleave.

use crate::support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rapport_kit::changelog;
use sqlx::{PgConnection, PgPool};
use support::{change, database, eventually, waiting_locks, within};

const WRITERS: u64 = 8;
const TRANSACTIONS_PER_WRITER: u64 = 200;

/// A naive outbox reader: reads everything after its cursor, then moves the
/// cursor to the largest sequence it saw.
#[derive(Debug, Default)]
struct Consumer {
    cursor: i64,
    seen: Vec<i64>,
}

impl Consumer {
    async fn poll(&mut self, pool: &PgPool) -> usize {
        let sequences: Vec<i64> =
            sqlx::query_scalar("SELECT sequence FROM change_log WHERE sequence > $1 ORDER BY sequence")
                .bind(self.cursor)
                .fetch_all(pool)
                .await
                .unwrap();
        if let Some(last) = sequences.last() {
            self.cursor = *last;
        }
        self.seen.extend(&sequences);
        sequences.len()
    }

    /// How what the consumer saw differs from `committed`.
    fn verdict(&self, committed: &BTreeSet<i64>) -> Verdict {
        let seen: BTreeSet<i64> = self.seen.iter().copied().collect();
        Verdict {
            missed: committed.difference(&seen).copied().collect(),
            phantom: seen.difference(committed).copied().collect(),
            seen_twice: self.seen.len() - seen.len(),
        }
    }
}

/// A consumer's errors; the default is a perfect run.
#[derive(Debug, Default, PartialEq, Eq)]
struct Verdict {
    /// Committed, never seen: the cursor passed them before they were visible.
    missed: Vec<i64>,
    /// Seen, never committed.
    phantom: Vec<i64>,
    seen_twice: usize,
}

/// A small deterministic pseudo-random source (xorshift64*).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % sides
    }
}

/// Some work inside a transaction: a client-side sleep, a server-side
/// sleep, or just a yield.
async fn work(tx: &mut PgConnection, dice: &mut Dice) {
    match dice.roll(3) {
        0 => tokio::time::sleep(Duration::from_micros(100 + dice.roll(1500))).await,
        1 => {
            sqlx::query("SELECT pg_sleep($1)")
                .bind(dice.roll(1000) as f64 / 1_000_000.0)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        _ => tokio::task::yield_now().await,
    }
}

/// One writer: transactions that insert a scratch row, work, append last,
/// and commit; every tenth rolls back after appending. Returns the
/// committed sequences.
async fn writer(pool: PgPool, writer: u64) -> Vec<i64> {
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (writer + 1));
    let mut committed = Vec::new();
    for n in 0..TRANSACTIONS_PER_WRITER {
        let key = format!("w{writer}-{n}");
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO scratch (key) VALUES ($1)").bind(&key).execute(&mut *tx).await.unwrap();
        work(&mut tx, &mut dice).await;
        // Some transactions append two changes at once.
        let changes = if n % 7 == 0 { vec![change(&key), change(&key)] } else { vec![change(&key)] };
        let events = changelog::append(&mut tx, &changes).await.unwrap();
        assert_eq!(events.len(), changes.len());
        // Work between append and commit must not matter.
        if dice.roll(4) == 0 {
            work(&mut tx, &mut dice).await;
        }
        if dice.roll(10) == 0 {
            tx.rollback().await.unwrap();
            assert!(changelog::sequences(&pool, &events).await.unwrap().is_empty());
        } else {
            tx.commit().await.unwrap();
            let sequences = changelog::sequences(&pool, &events).await.unwrap();
            assert_eq!(sequences.len(), changes.len());
            committed.extend(sequences);
        }
    }
    committed
}

async fn create_scratch(pool: &PgPool) {
    sqlx::query("CREATE TABLE scratch (key text PRIMARY KEY)").execute(pool).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forward_only_consumer_sees_every_commit_under_concurrent_writers() {
    let database = database().await;
    let pool = database.pool.clone();
    create_scratch(&pool).await;

    let done = Arc::new(AtomicBool::new(false));
    let consumer = tokio::spawn({
        let pool = pool.clone();
        let done = done.clone();
        async move {
            let mut consumer = Consumer::default();
            let mut polls = 0u64;
            while !done.load(Ordering::SeqCst) {
                consumer.poll(&pool).await;
                polls += 1;
                tokio::task::yield_now().await;
            }
            // Everything has committed: one last read.
            consumer.poll(&pool).await;
            (consumer, polls)
        }
    });
    let writers: Vec<_> = (0..WRITERS).map(|index| tokio::spawn(writer(pool.clone(), index))).collect();
    let mut committed = BTreeSet::new();
    for handle in writers {
        committed.extend(handle.await.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    let (consumer, polls) = consumer.await.unwrap();

    assert!(polls > 10, "the consumer polled only {polls} times, racing nothing");
    assert!(committed.len() as u64 > WRITERS * TRANSACTIONS_PER_WRITER * 3 / 4);
    assert_eq!(consumer.verdict(&committed), Verdict::default());

    // The writers' view agrees with the table, and the log holds a change
    // for exactly the transactions whose effect committed.
    let stored: BTreeSet<i64> = sqlx::query_scalar("SELECT sequence FROM change_log")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(stored, committed);
    let logged: BTreeSet<String> = sqlx::query_scalar("SELECT resource_id FROM change_log")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let effects: BTreeSet<String> =
        sqlx::query_scalar("SELECT key FROM scratch").fetch_all(&pool).await.unwrap().into_iter().collect();
    assert_eq!(logged, effects);
}

/// The pitfall `append` designs out, written here on purpose: the sequence
/// is drawn when the transaction starts, without the lock.
async fn broken_draw(tx: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT nextval('change_log_sequence')").fetch_one(&mut *tx).await.unwrap()
}

async fn broken_insert(tx: &mut PgConnection, sequence: i64, id: &str) {
    sqlx::query(
        "INSERT INTO change_log (sequence, event_id, resource_type, resource_id, change_kind, actor, resource) \
         VALUES ($1, $2, 'test', $3, 1, 'tester', '')",
    )
    .bind(sequence)
    .bind(uuid::Uuid::now_v7())
    .bind(id)
    .execute(&mut *tx)
    .await
    .unwrap();
}

#[tokio::test]
async fn the_detector_catches_a_sequence_drawn_at_transaction_start() {
    let database = database().await;
    let pool = &database.pool;
    let mut consumer = Consumer::default();
    // This test's broken writer draws its own sequences.
    sqlx::query("ALTER TABLE change_log DISABLE TRIGGER change_log_sequence_at_commit")
        .execute(pool)
        .await
        .unwrap();

    let mut first = pool.begin().await.unwrap();
    let first_sequence = broken_draw(&mut first).await;
    let mut second = pool.begin().await.unwrap();
    let second_sequence = broken_draw(&mut second).await;
    assert!(second_sequence > first_sequence);
    broken_insert(&mut second, second_sequence, "second").await;
    second.commit().await.unwrap();

    assert_eq!(consumer.poll(pool).await, 1);
    assert_eq!(consumer.cursor, second_sequence);

    broken_insert(&mut first, first_sequence, "first").await;
    first.commit().await.unwrap();
    assert_eq!(consumer.poll(pool).await, 0, "the cursor is already past it");

    // Both committed, yet the consumer never saw the first: the gap the
    // concurrent test above looks for.
    let committed = BTreeSet::from([first_sequence, second_sequence]);
    assert_eq!(consumer.verdict(&committed), Verdict { missed: vec![first_sequence], ..Verdict::default() });
}

#[tokio::test]
async fn sequences_follow_commit_order_not_append_order() {
    let database = database().await;
    let pool = database.pool.clone();
    create_scratch(&pool).await;
    let mut consumer = Consumer::default();

    // The first appends first but commits last.
    let mut first = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO scratch (key) VALUES ('first')").execute(&mut *first).await.unwrap();
    let first_event = changelog::append(&mut first, &[change("first")]).await.unwrap();

    let mut second = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO scratch (key) VALUES ('second')").execute(&mut *second).await.unwrap();
    let second_event = changelog::append(&mut second, &[change("second")]).await.unwrap();
    // Appending takes no lock: the second commits while the first is open.
    within("the second commit", second.commit()).await.unwrap();
    let second_sequence = changelog::sequences(&pool, &second_event).await.unwrap()[0];
    assert_eq!(consumer.poll(&pool).await, 1);
    assert_eq!(consumer.cursor, second_sequence);

    first.commit().await.unwrap();
    let first_sequence = changelog::sequences(&pool, &first_event).await.unwrap()[0];
    assert!(first_sequence > second_sequence, "drawn at commit, after the second's");
    consumer.poll(&pool).await;
    assert_eq!(consumer.seen, vec![second_sequence, first_sequence]);
    let committed = BTreeSet::from([first_sequence, second_sequence]);
    assert_eq!(consumer.verdict(&committed), Verdict::default());
}

#[tokio::test]
async fn a_commit_waits_while_another_holds_the_sequence_lock() {
    let database = database().await;
    let pool = database.pool.clone();
    let mut consumer = Consumer::default();

    // A transaction that holds the lock the commit trigger takes, as a
    // committing writer would.
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
        .bind(changelog::APPEND_LOCK_CLASS)
        .execute(&mut *holder)
        .await
        .unwrap();

    let mut committing = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            let events = changelog::append(&mut tx, &[change("waits")]).await.unwrap();
            tx.commit().await.unwrap();
            changelog::sequences(&pool, &events).await.unwrap()
        }
    });
    eventually("the commit to wait on the lock", || {
        let pool = pool.clone();
        async move { waiting_locks(&pool, "advisory").await == 1 }
    })
    .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut committing).await.is_err(),
        "the commit finished while the lock was held"
    );
    assert_eq!(consumer.poll(&pool).await, 0, "nothing is visible before the commit");

    holder.rollback().await.unwrap();
    let sequences = within("the commit", committing).await.unwrap();
    consumer.poll(&pool).await;
    assert_eq!(consumer.seen, sequences);
}

#[tokio::test]
async fn a_rolled_back_append_leaves_no_row_and_blocks_nobody() {
    let database = database().await;
    let pool = database.pool.clone();
    let mut consumer = Consumer::default();

    let mut first = pool.begin().await.unwrap();
    let rolled_back = changelog::append(&mut first, &[change("gone")]).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let kept_event = changelog::append(&mut tx, &[change("kept")]).await.unwrap();
    within("a commit beside an open append", tx.commit()).await.unwrap();
    first.rollback().await.unwrap();

    assert!(changelog::sequences(&pool, &rolled_back).await.unwrap().is_empty());
    let kept = changelog::sequences(&pool, &kept_event).await.unwrap();
    consumer.poll(&pool).await;
    assert_eq!(consumer.seen, kept);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM change_log").fetch_one(&pool).await.unwrap();
    assert_eq!(rows, 1);
}
