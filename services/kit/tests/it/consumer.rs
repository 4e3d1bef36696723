//! `consumer`: a change feed applied to another schema exactly once in
//! effect, the cursor committed with the effect; failing and hanging
//! handlers, restarts, replays, expired cursors, type filters.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use rapport_kit::changelog::{self, FeedItem};
use rapport_kit::consumer::{self, ConsumerConfig, FeedStream};
use rapport_kit::metrics::Metrics;
use rapport_proto::common::v1::ChangeKind;
use tonic::Status;

use support::consumer::{Recorder, config, metric, setup};
use support::{MONEY, change_of, eventually};

#[tokio::test]
async fn events_are_applied_once_and_the_cursor_is_the_last_sequence() {
    let setup = setup().await;
    let mut sequences = setup.append(&["before-1", "before-2", "before-3"]).await;
    let metrics = Metrics::new();
    let running = setup.start(&Recorder::default(), &metrics);
    running.reach(sequences[2]).await;
    let live: Vec<String> = (0..40).map(|index| format!("live-{index}")).collect();
    let live: Vec<&str> = live.iter().map(String::as_str).collect();
    sequences.extend(setup.append(&live).await);
    let last = *sequences.last().unwrap();
    running.reach(last).await;

    assert_eq!(setup.effects().await, sequences);
    assert_eq!(setup.stored().await, last);
    assert_eq!(running.handle.cursor(), last);
    assert!(running.handle.is_leader());
    assert_eq!(metric(&metrics, "rapport_feed_consumer_applied_total"), 43.0);
    assert_eq!(metric(&metrics, "rapport_feed_consumer_duplicates_total"), 0.0);
    assert_eq!(metric(&metrics, "rapport_feed_consumer_cursor"), last as f64);
    assert_eq!(metric(&metrics, "rapport_feed_consumer_leader"), 1.0);
    // Every applied event is remembered by id, in the consumer's schema.
    let remembered: i64 = sqlx::query_scalar("SELECT count(*) FROM feed_applied_events WHERE feed = 'money'")
        .fetch_one(&setup.consumer)
        .await
        .unwrap();
    assert_eq!(remembered, 43);
    running.stop().await;
    assert_eq!(metric(&metrics, "rapport_feed_consumer_leader"), 0.0);
}

#[tokio::test]
async fn a_failing_event_is_rolled_back_and_retried_without_moving_the_cursor_past_it() {
    let setup = setup().await;
    let metrics = Metrics::new();
    let recorder = Recorder::failing_on("bad");
    let sequences = setup.append(&["a", "b", "bad", "c"]).await;
    let running = setup.start(&recorder, &metrics);

    // By the second failure, the first one's batch was rolled back and what
    // came before the failing event committed.
    recorder.failed(2).await;
    assert_eq!(setup.stored().await, sequences[1]);
    assert_eq!(setup.effects().await, sequences[..2]);

    recorder.stop_failing();
    running.reach(sequences[3]).await;
    assert_eq!(setup.effects().await, sequences);
    assert_eq!(setup.stored().await, sequences[3]);
    let errors = r#"rapport_feed_consumer_errors_total{feed="money",kind="apply"}"#;
    assert!(rapport_kit::testing::sample(&metrics.encode(), errors).unwrap() >= 2.0);
}

#[tokio::test]
async fn a_restarted_consumer_goes_on_from_the_stored_cursor() {
    let setup = setup().await;
    let ids: Vec<String> = (1..=10).map(|index| format!("e{index}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut sequences = setup.append(&ids).await;

    // One event per transaction, stopped while applying e5: its
    // transaction rolls back, the four before it stay.
    let recorder = Recorder::hanging_on("e5");
    let config = ConsumerConfig { batch: 1, ..config() };
    let first = setup.start_with(config, setup.feed.clone(), &recorder, &Metrics::new());
    recorder.hung().await;
    first.stop().await;
    assert_eq!(setup.stored().await, sequences[3]);
    assert_eq!(setup.effects().await, sequences[..4]);

    sequences.extend(setup.append(&["e11", "e12"]).await);
    let second = setup.start(&Recorder::default(), &Metrics::new());
    second.reach(sequences[11]).await;
    assert_eq!(setup.effects().await, sequences);
    second.stop().await;
}

#[tokio::test]
async fn a_source_replaying_old_events_does_not_apply_them_twice() {
    let setup = setup().await;
    let sequences = setup.append(&["1", "2", "3", "4", "5"]).await;
    // A misbehaving source: always from the start, then a failure, so the
    // consumer reopens and gets everything again.
    let opens = Arc::new(AtomicUsize::new(0));
    let source = {
        let feed = setup.feed.clone();
        let opens = opens.clone();
        move |_after_sequence: i64, resource_types: Vec<String>| {
            opens.fetch_add(1, Ordering::SeqCst);
            let feed = feed.clone();
            async move {
                let changes = feed
                    .watch(0, resource_types)?
                    .filter(|item| std::future::ready(matches!(item, Ok(FeedItem::Change(_)))))
                    .take(5);
                let failure = futures::stream::once(async { Err(Status::unavailable("replayed")) });
                Ok::<FeedStream, Status>(Box::pin(changes.chain(failure)))
            }
        }
    };
    let metrics = Metrics::new();
    let running = setup.start_with(config(), source, &Recorder::default(), &metrics);
    eventually("three replays", || async { opens.load(Ordering::SeqCst) >= 3 }).await;
    running.reach(sequences[4]).await;

    assert_eq!(setup.effects().await, sequences);
    assert_eq!(metric(&metrics, "rapport_feed_consumer_applied_total"), 5.0);
    // The second stream was replayed in full before the third open.
    assert!(metric(&metrics, "rapport_feed_consumer_duplicates_total") >= 5.0);

    // Once the ids are forgotten, the cursor still keeps replays out.
    assert_eq!(consumer::prune(&setup.consumer, Duration::from_secs(3600)).await.unwrap(), 0);
    assert_eq!(consumer::prune(&setup.consumer, Duration::ZERO).await.unwrap(), 5);
    let replays = opens.load(Ordering::SeqCst);
    eventually("two more replays", || async { opens.load(Ordering::SeqCst) >= replays + 2 }).await;
    assert_eq!(setup.effects().await, sequences);
    assert_eq!(metric(&metrics, "rapport_feed_consumer_applied_total"), 5.0);
    running.stop().await;
}

#[tokio::test]
async fn events_applied_before_a_cursor_moved_back_are_skipped_by_id() {
    let setup = setup().await;
    let sequences = setup.append(&["1", "2", "3"]).await;
    let first = setup.start(&Recorder::default(), &Metrics::new());
    first.reach(sequences[2]).await;
    first.stop().await;

    sqlx::query("UPDATE feed_cursors SET after_sequence = 0").execute(&setup.consumer).await.unwrap();
    let metrics = Metrics::new();
    let second = setup.start(&Recorder::default(), &metrics);
    second.reach(sequences[2]).await;
    assert_eq!(setup.effects().await, sequences);
    assert_eq!(metric(&metrics, "rapport_feed_consumer_duplicates_total"), 3.0);
    assert_eq!(metric(&metrics, "rapport_feed_consumer_applied_total"), 0.0);
    assert_eq!(setup.stored().await, sequences[2]);
    second.stop().await;
}

#[tokio::test]
async fn an_expired_cursor_resyncs_once_and_resumes_where_the_producer_says() {
    let setup = setup().await;
    let pruned = setup.append(&["1", "2", "3"]).await;
    assert_eq!(changelog::prune(&setup.producer, Duration::ZERO).await.unwrap(), 3);

    let metrics = Metrics::new();
    let running = setup.start(&Recorder::default(), &metrics);
    running.reach(pruned[2]).await;
    assert_eq!(setup.resyncs().await, 1);
    assert_eq!(setup.stored().await, pruned[2]);

    let after = setup.append(&["4", "5"]).await;
    running.reach(after[1]).await;
    assert_eq!(setup.effects().await, after);
    assert_eq!(setup.resyncs().await, 1);
    assert_eq!(metric(&metrics, "rapport_feed_consumer_resyncs_total"), 1.0);
    running.stop().await;
}

#[tokio::test]
async fn events_filtered_out_move_the_cursor_through_heartbeats() {
    const OTHER: &str = "rapport.test.v1.Other";
    let setup = setup().await;
    let sequences = setup
        .append_changes(&[
            change_of(MONEY, "m1", ChangeKind::Created),
            change_of(OTHER, "o1", ChangeKind::Created),
            change_of(MONEY, "m1", ChangeKind::Updated),
            change_of(OTHER, "o2", ChangeKind::Created),
        ])
        .await;
    let config = ConsumerConfig { resource_types: vec![MONEY.into()], ..config() };
    let running = setup.start_with(config, setup.feed.clone(), &Recorder::default(), &Metrics::new());
    running.reach(sequences[3]).await;
    assert_eq!(setup.effects().await, [sequences[0], sequences[2]]);
    assert_eq!(setup.stored().await, sequences[3]);
    running.stop().await;
}
