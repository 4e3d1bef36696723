//! `consumer` leases: one replica consumes a feed at a time; another takes
//! over when it stops or loses its lease connection, and nothing is applied
//! twice or missed across the hand-over.

use crate::support;

use rapport_kit::consumer::LEASE_LOCK_CLASS;
use rapport_kit::metrics::Metrics;
use sqlx::PgPool;

use support::consumer::{Recorder, Running, Setup, metric, setup};
use support::{eventually, within};

/// The backends holding a consumer lease in this database.
async fn lease_holders(pool: &PgPool) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_locks \
         WHERE locktype = 'advisory' AND granted AND classid::bigint = $1 \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(i64::from(LEASE_LOCK_CLASS))
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Two consumers of the same feed, once one of them leads: (leader, standby).
async fn two_replicas(setup: &Setup, metrics: &Metrics) -> (Running, Running) {
    let one = setup.start(&Recorder::default(), metrics);
    let two = setup.start(&Recorder::default(), metrics);
    eventually("a leader", || async { one.handle.is_leader() || two.handle.is_leader() }).await;
    if one.handle.is_leader() { (one, two) } else { (two, one) }
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|index| format!("e{index}")).collect()
}

async fn append(setup: &Setup, ids: &[String]) -> Vec<i64> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    setup.append(&ids).await
}

#[tokio::test]
async fn one_replica_consumes_and_another_takes_over_when_it_stops() {
    let setup = setup().await;
    let metrics = Metrics::new();
    let (leader, standby) = two_replicas(&setup, &metrics).await;
    let mut sequences = append(&setup, &ids(0..20)).await;
    leader.reach(sequences[19]).await;
    assert!(!standby.handle.is_leader());
    assert_eq!(lease_holders(&setup.consumer).await.len(), 1);
    assert_eq!(metric(&metrics, "rapport_feed_consumer_leader"), 1.0);

    leader.stop().await;
    assert!(within("the standby to lead", standby.handle.leading()).await);
    sequences.extend(append(&setup, &ids(20..40)).await);
    standby.reach(sequences[39]).await;
    assert_eq!(setup.effects().await, sequences);
    assert_eq!(lease_holders(&setup.consumer).await.len(), 1);
    assert_eq!(metric(&metrics, "rapport_feed_consumer_leader"), 1.0);
    standby.stop().await;
    assert!(lease_holders(&setup.consumer).await.is_empty());
}

#[tokio::test]
async fn a_leader_whose_lease_connection_dies_stops_and_consuming_goes_on() {
    let setup = setup().await;
    let metrics = Metrics::new();
    let (leader, standby) = two_replicas(&setup, &metrics).await;
    let before = append(&setup, &ids(0..10)).await;
    leader.reach(before[9]).await;

    // Events keep coming while the lease changes hands (to the standby, or
    // back to the leader once it noticed and let its old lease go).
    let more = ids(10..60);
    let (during, ()) = tokio::join!(append(&setup, &more), async {
        let holders = lease_holders(&setup.consumer).await;
        assert_eq!(holders.len(), 1);
        let killed = holders[0];
        sqlx::query("SELECT pg_terminate_backend($1)").bind(killed).execute(&setup.consumer).await.unwrap();
        eventually("a new lease", || async {
            let holders = lease_holders(&setup.consumer).await;
            holders.len() == 1 && holders[0] != killed
        })
        .await;
    });
    let last = *during.last().unwrap();
    eventually("every event to be applied", || async { setup.stored().await == last }).await;
    let mut sequences = before;
    sequences.extend(during);
    assert_eq!(setup.effects().await, sequences);
    eventually("one leader", || async { leader.handle.is_leader() != standby.handle.is_leader() }).await;
    assert_eq!(lease_holders(&setup.consumer).await.len(), 1);
    assert_eq!(metric(&metrics, "rapport_feed_consumer_leader"), 1.0);
    standby.stop().await;
    leader.stop().await;
}
