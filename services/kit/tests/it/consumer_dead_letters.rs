//! `consumer` dead letters: an event that can never apply is set aside
//! (stored, its id remembered, the cursor past it) and the feed goes on;
//! one failing with a database error is retried, never set aside.

use crate::support;

use futures::StreamExt as _;
use rapport_kit::changelog::FeedItem;
use rapport_kit::consumer::{self, ConsumerConfig, FeedStream};
use rapport_kit::metrics::Metrics;
use tonic::Status;

use support::consumer::{Failure, Recorder, Setup, config, metric, setup};

async fn applied_ids(setup: &Setup) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM feed_applied_events").fetch_one(&setup.consumer).await.unwrap()
}

#[tokio::test]
async fn a_poison_event_is_set_aside_at_once_and_the_feed_goes_on() {
    let setup = setup().await;
    let sequences = setup.append(&["a", "bad", "c"]).await;
    let recorder = Recorder::failing_with("bad", Failure::Poison);
    let metrics = Metrics::new();
    let running = setup.start(&recorder, &metrics);
    running.reach(sequences[2]).await;

    assert_eq!(setup.effects().await, [sequences[0], sequences[2]]);
    let dead = consumer::dead_letters(&setup.consumer, "money").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].0, dead[0].1.as_str()), (sequences[1], "bad"));
    assert!(dead[0].2.contains("bad can never apply"), "{}", dead[0].2);
    recorder.failed(1).await;
    assert_eq!(metric(&metrics, "rapport_feed_consumer_dead_letters_total"), 1.0);
    // Its id is remembered with the others: a replay skips it too.
    assert_eq!(applied_ids(&setup).await, 3);
    // The whole event is kept, to inspect or replay by hand.
    let kept: Vec<u8> =
        sqlx::query_scalar("SELECT event FROM feed_dead_letters").fetch_one(&setup.consumer).await.unwrap();
    let event = <rapport_proto::common::v1::ChangeEvent as prost::Message>::decode(kept.as_slice()).unwrap();
    assert_eq!((event.sequence, event.resource_id.as_str()), (sequences[1], "bad"));
    running.stop().await;
}

#[tokio::test]
async fn an_event_failing_again_and_again_is_set_aside_after_dead_letter_after_failures() {
    let setup = setup().await;
    let sequences = setup.append(&["a", "bad", "c"]).await;
    let recorder = Recorder::failing_on("bad");
    let config = ConsumerConfig { dead_letter_after: Some(3), ..config() };
    let running = setup.start_with(config, setup.feed.clone(), &recorder, &Metrics::new());
    running.reach(sequences[2]).await;

    assert_eq!(setup.effects().await, [sequences[0], sequences[2]]);
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM feed_dead_letters")
        .fetch_one(&setup.consumer)
        .await
        .unwrap();
    assert_eq!(attempts, 3);
    let dead = consumer::dead_letters(&setup.consumer, "money").await.unwrap();
    assert!(dead[0].2.contains("refusing bad"), "{}", dead[0].2);
    running.stop().await;
}

#[tokio::test]
async fn database_errors_are_retried_never_set_aside() {
    let setup = setup().await;
    let sequences = setup.append(&["a", "bad", "c"]).await;
    let recorder = Recorder::failing_with("bad", Failure::Database);
    let config = ConsumerConfig { dead_letter_after: Some(2), ..config() };
    let running = setup.start_with(config, setup.feed.clone(), &recorder, &Metrics::new());
    recorder.failed(5).await;
    assert!(consumer::dead_letters(&setup.consumer, "money").await.unwrap().is_empty());
    assert_eq!(setup.stored().await, sequences[0]);

    recorder.stop_failing();
    running.reach(sequences[2]).await;
    assert_eq!(setup.effects().await, sequences);
    assert!(consumer::dead_letters(&setup.consumer, "money").await.unwrap().is_empty());
    running.stop().await;
}

#[tokio::test]
async fn an_event_whose_id_is_not_a_uuid_is_set_aside() {
    let setup = setup().await;
    let sequences = setup.append(&["a", "mangled", "c"]).await;
    // A producer sending one event with a broken id.
    let source = {
        let feed = setup.feed.clone();
        move |after_sequence: i64, resource_types: Vec<String>| {
            let feed = feed.clone();
            async move {
                let items = feed.watch(after_sequence, resource_types)?.map(|item| {
                    item.map(|item| match item {
                        FeedItem::Change(mut event) if event.resource_id == "mangled" => {
                            event.event_id = "not-a-uuid".into();
                            FeedItem::Change(event)
                        }
                        other => other,
                    })
                });
                Ok::<FeedStream, Status>(Box::pin(items))
            }
        }
    };
    let metrics = Metrics::new();
    let running = setup.start_with(config(), source, &Recorder::default(), &metrics);
    running.reach(sequences[2]).await;

    assert_eq!(setup.effects().await, [sequences[0], sequences[2]]);
    let dead = consumer::dead_letters(&setup.consumer, "money").await.unwrap();
    assert_eq!((dead.len(), dead[0].0), (1, sequences[1]));
    assert!(dead[0].2.contains("not-a-uuid"), "{}", dead[0].2);
    let errors = r#"rapport_feed_consumer_errors_total{feed="money",kind="invalid_event"}"#;
    assert_eq!(rapport_kit::testing::sample(&metrics.encode(), errors), None);
    assert_eq!(applied_ids(&setup).await, 2);
    running.stop().await;
}
