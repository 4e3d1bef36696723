//! `Feed::watch`: replay, live delivery through LISTEN/NOTIFY, cursors,
//! filters, heartbeats, expired and invalid cursors, shutdown; and
//! `changelog::history`.

use crate::support;

use std::time::Duration;

use prost::Message;
use rapport_kit::changelog::{self, Change, Feed, FeedItem};
use rapport_kit::shutdown::{self, Shutdown};
use rapport_proto::common::v1::{ChangeEvent, ChangeKind, Money};
use sqlx::PgPool;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use support::{MONEY, SCHEMA, change, change_of, database, eventually, within};

const HEARTBEAT: Duration = Duration::from_millis(100);
const OTHER: &str = "rapport.test.v1.Other";

type Changes = ReceiverStream<Result<FeedItem, Status>>;

/// Appends `changes` in a transaction of their own; returns the sequences.
async fn append(pool: &PgPool, changes: &[Change]) -> Vec<i64> {
    let mut tx = pool.begin().await.unwrap();
    let events = changelog::append(&mut tx, changes).await.unwrap();
    tx.commit().await.unwrap();
    let sequences = changelog::sequences(pool, &events).await.unwrap();
    assert_eq!(sequences.len(), changes.len());
    sequences
}

async fn next(stream: &mut Changes) -> Option<Result<FeedItem, Status>> {
    within("the next stream item", stream.next()).await
}

/// The next change, skipping heartbeats.
async fn next_change(stream: &mut Changes) -> ChangeEvent {
    loop {
        match next(stream).await {
            Some(Ok(FeedItem::Change(event))) => return event,
            Some(Ok(FeedItem::Heartbeat(_))) => {}
            other => panic!("expected a change, got {other:?}"),
        }
    }
}

/// The next item, which must be a heartbeat; returns its latest sequence.
async fn next_heartbeat(stream: &mut Changes) -> i64 {
    match next(stream).await {
        Some(Ok(FeedItem::Heartbeat(heartbeat))) => {
            assert!(heartbeat.time.is_some());
            heartbeat.latest_sequence
        }
        other => panic!("expected a heartbeat, got {other:?}"),
    }
}

/// The stream's next item is an error, and then it ends.
async fn next_error(stream: &mut Changes) -> Status {
    let status = match next(stream).await {
        Some(Err(status)) => status,
        other => panic!("expected an error, got {other:?}"),
    };
    assert!(next(stream).await.is_none(), "the stream goes on after an error");
    status
}

fn feed(pool: &PgPool, heartbeat: Duration) -> Feed {
    Feed::start(pool.clone(), SCHEMA, heartbeat, Shutdown::never())
}

#[tokio::test]
async fn replays_from_zero_then_follows_live_appends() {
    let database = database().await;
    let pool = &database.pool;
    let mut before = Vec::new();
    for id in ["a", "b", "c"] {
        before.extend(append(pool, &[change(id)]).await);
    }
    let feed = feed(pool, HEARTBEAT);
    let mut stream = feed.watch(0, Vec::new()).unwrap();

    for (expected, id) in before.iter().zip(["a", "b", "c"]) {
        let event = next_change(&mut stream).await;
        assert_eq!(event.sequence, *expected);
        assert_eq!(event.resource_id, id);
        assert_eq!(event.resource_type, MONEY);
        assert_eq!(event.kind, ChangeKind::Created as i32);
        assert_eq!(event.actor, "tester");
        assert!(uuid::Uuid::parse_str(&event.event_id).is_ok());
        assert!(event.change_time.is_some());
        let resource = event.resource.unwrap();
        assert_eq!(resource.type_url, format!("type.googleapis.com/{MONEY}"));
        let money = Money::decode(resource.value.as_slice()).unwrap();
        assert_eq!(money.minor_units, 1234);
    }

    // Appended after the stream caught up: delivered live.
    let live = append(pool, &[change("d"), change("e")]).await;
    assert_eq!(next_change(&mut stream).await.sequence, live[0]);
    assert_eq!(next_change(&mut stream).await.sequence, live[1]);
}

#[tokio::test]
async fn live_appends_are_pushed_by_notify_not_found_by_heartbeat_polling() {
    let database = database().await;
    let pool = &database.pool;
    let first = append(pool, &[change("first")]).await[0];
    // No heartbeat within the test: only a notification can wake the stream.
    let feed = feed(pool, Duration::from_secs(3600));
    let mut stream = feed.watch(0, Vec::new()).unwrap();
    assert_eq!(next_change(&mut stream).await.sequence, first);
    eventually("the feed to LISTEN", || async {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN %rapport_changes_kit_test%'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        listening == 1
    })
    .await;
    // Another replica writes and announces; its NOTIFY is the only thing
    // that can wake this stream. (The first may race the listener's
    // start-up wakeup; the later ones cannot.)
    let (_stop_writer, writer_shutdown) = shutdown::channel();
    let writer = Feed::start(pool.clone(), SCHEMA, Duration::from_secs(3600), writer_shutdown);
    for id in ["one", "two", "three"] {
        let sequence = append(pool, &[change(id)]).await[0];
        writer.announce();
        assert_eq!(next_change(&mut stream).await.sequence, sequence);
    }
    // A rolled-back append sends nothing.
    let mut tx = pool.begin().await.unwrap();
    changelog::append(&mut tx, &[change("rolled back")]).await.unwrap();
    tx.rollback().await.unwrap();
    writer.announce();
    let last = append(pool, &[change("last")]).await[0];
    writer.announce();
    let event = next_change(&mut stream).await;
    assert_eq!((event.sequence, event.resource_id.as_str()), (last, "last"));
}

#[tokio::test]
async fn resumes_after_a_cursor_and_heartbeats_while_idle() {
    let database = database().await;
    let pool = &database.pool;
    let feed = feed(pool, HEARTBEAT);

    // An empty log: heartbeats report sequence zero.
    let mut empty = feed.watch(0, Vec::new()).unwrap();
    assert_eq!(next_heartbeat(&mut empty).await, 0);

    let sequences = append(pool, &[change("1"), change("2"), change("3"), change("4")]).await;
    let mut resumed = feed.watch(sequences[1], Vec::new()).unwrap();
    assert_eq!(next_change(&mut resumed).await.sequence, sequences[2]);
    assert_eq!(next_change(&mut resumed).await.sequence, sequences[3]);
    // Nothing more: idle heartbeats carry the last sequence sent.
    assert_eq!(next_heartbeat(&mut resumed).await, sequences[3]);
    assert_eq!(next_heartbeat(&mut resumed).await, sequences[3]);

    // A cursor at the end sends nothing but heartbeats.
    let mut at_end = feed.watch(sequences[3], Vec::new()).unwrap();
    assert_eq!(next_heartbeat(&mut at_end).await, sequences[3]);
    // The stream that saw the empty log catches up too.
    for sequence in &sequences {
        assert_eq!(next_change(&mut empty).await.sequence, *sequence);
    }
}

#[tokio::test]
async fn a_type_filter_sends_only_those_types_and_heartbeats_report_scanned_progress() {
    let database = database().await;
    let pool = &database.pool;
    let feed = feed(pool, HEARTBEAT);
    let sequences = append(
        pool,
        &[
            change_of(MONEY, "m1", ChangeKind::Created),
            change_of(OTHER, "o1", ChangeKind::Created),
            change_of(MONEY, "m1", ChangeKind::Updated),
            change_of(OTHER, "o2", ChangeKind::Deleted),
        ],
    )
    .await;
    let mut money = feed.watch(0, vec![MONEY.to_owned()]).unwrap();
    let first = next_change(&mut money).await;
    let second = next_change(&mut money).await;
    assert_eq!(
        [(first.sequence, first.kind), (second.sequence, second.kind)],
        [(sequences[0], ChangeKind::Created as i32), (sequences[2], ChangeKind::Updated as i32)]
    );
    // The filtered-out last row still moved the cursor.
    assert_eq!(next_heartbeat(&mut money).await, sequences[3]);

    let mut both = feed.watch(0, vec![MONEY.to_owned(), OTHER.to_owned()]).unwrap();
    for sequence in &sequences {
        assert_eq!(next_change(&mut both).await.sequence, *sequence);
    }
    let mut none = feed.watch(0, vec!["rapport.test.v1.Nothing".into()]).unwrap();
    assert_eq!(next_heartbeat(&mut none).await, sequences[3]);
}

#[tokio::test]
async fn a_cursor_older_than_the_pruned_horizon_is_expired() {
    let database = database().await;
    let pool = &database.pool;
    let old = append(pool, &[change("1"), change("2"), change("3")]).await;
    assert_eq!(changelog::prune(pool, Duration::ZERO).await.unwrap(), 3);
    assert_eq!(changelog::prune(pool, Duration::ZERO).await.unwrap(), 0);
    let feed = feed(pool, HEARTBEAT);

    for cursor in [0, old[0], old[1]] {
        let status = next_error(&mut feed.watch(cursor, Vec::new()).unwrap()).await;
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "CHANGE_CURSOR_EXPIRED");
        assert_eq!(info.domain, "rapport");
        assert_eq!(info.metadata["resume_after"], old[2].to_string());
        assert_eq!(info.metadata["pruned_through"], old[2].to_string());
        assert_eq!(changelog::resync_point(&status), Some(old[2]));
        let violations = status.get_details_precondition_failure().unwrap().violations;
        assert_eq!(violations[0].subject, cursor.to_string());
    }

    // Resuming from the horizon is fine and sees what came after.
    let mut resumed = feed.watch(old[2], Vec::new()).unwrap();
    assert_eq!(next_heartbeat(&mut resumed).await, old[2]);
    let new = append(pool, &[change("4")]).await[0];
    assert_eq!(next_change(&mut resumed).await.sequence, new);

    // A long retention prunes nothing newer.
    assert_eq!(changelog::prune(pool, Duration::from_secs(3600)).await.unwrap(), 0);
    let mut kept = feed.watch(old[2], Vec::new()).unwrap();
    assert_eq!(next_change(&mut kept).await.sequence, new);
}

#[tokio::test]
async fn a_negative_cursor_is_an_invalid_argument() {
    let database = database().await;
    let feed = feed(&database.pool, HEARTBEAT);
    let status = feed.watch(-1, Vec::new()).unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.get_details_error_info().unwrap().reason, "INVALID_CURSOR");
    let violations = status.get_details_bad_request().unwrap().field_violations;
    assert_eq!(violations[0].field, "after_sequence");
    assert_eq!(changelog::resync_point(&status), None);
    assert_eq!(changelog::resync_point(&Status::failed_precondition("no details")), None);
}

#[tokio::test]
async fn shutdown_ends_every_stream() {
    let database = database().await;
    let pool = &database.pool;
    let (trigger, shutdown) = shutdown::channel();
    let feed = Feed::start(pool.clone(), SCHEMA, HEARTBEAT, shutdown);
    let sequence = append(pool, &[change("1")]).await[0];
    let mut streams = vec![feed.watch(0, Vec::new()).unwrap(), feed.watch(sequence, Vec::new()).unwrap()];
    assert_eq!(next_change(&mut streams[0]).await.sequence, sequence);
    assert_eq!(next_heartbeat(&mut streams[1]).await, sequence);

    trigger.fire();
    for stream in &mut streams {
        loop {
            match next(stream).await {
                Some(Ok(FeedItem::Heartbeat(_))) => {}
                Some(Err(status)) => {
                    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                    assert!(next(stream).await.is_none());
                    break;
                }
                other => panic!("expected the stream to end, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn history_lists_one_resource_oldest_first() {
    let database = database().await;
    let pool = &database.pool;
    let mut updated = change_of(MONEY, "m1", ChangeKind::Updated);
    updated.field_paths = vec!["minor_units".into()];
    updated.actor = "editor".into();
    let first = append(pool, &[change_of(MONEY, "m1", ChangeKind::Created)]).await[0];
    append(pool, &[change_of(MONEY, "m2", ChangeKind::Created)]).await;
    append(pool, &[change_of(OTHER, "m1", ChangeKind::Created)]).await;
    let second = append(pool, &[updated]).await[0];
    let mut tx = pool.begin().await.unwrap();
    changelog::append(&mut tx, &[change_of(MONEY, "m1", ChangeKind::Deleted)]).await.unwrap();
    tx.rollback().await.unwrap();

    let history = changelog::history(pool, MONEY, "m1").await.unwrap();
    let summary: Vec<_> = history
        .iter()
        .map(|event| (event.sequence, event.kind, event.actor.as_str(), event.field_paths.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (first, ChangeKind::Created as i32, "tester", Vec::new()),
            (second, ChangeKind::Updated as i32, "editor", vec!["minor_units".to_owned()]),
        ]
    );
    assert_ne!(history[0].event_id, history[1].event_id);
    assert!(changelog::history(pool, MONEY, "unknown").await.unwrap().is_empty());
}
