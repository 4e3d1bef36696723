//! Graceful shutdown: in-flight calls finish, open streams end cleanly with
//! UNAVAILABLE (so clients reconnect elsewhere), new calls are refused.

use crate::common;

use std::time::{Duration, Instant};

use common::{Stack, bearer, within};
use rapport_kit::auth::Role;
use rapport_proto::bench::v1::EchoRequest;
use rapport_proto::bench::v1::echo_service_client::EchoServiceClient;
use rapport_proto::contacts::v1::WatchChangesRequest;
use tonic::Code;

#[tokio::test]
async fn shutdown_drains_calls_and_ends_streams() {
    let Stack { gateway, contacts, echo, metrics_addr, database, .. } = Stack::start().await;
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", gateway.addr)).unwrap().connect_lazy();
    let mut contacts_client =
        rapport_proto::contacts::v1::contact_service_client::ContactServiceClient::with_interceptor(
            channel.clone(),
            bearer("watcher", &[Role::Viewer]),
        );
    let mut stream =
        contacts_client.watch_changes(WatchChangesRequest::default()).await.unwrap().into_inner();
    let mut echo_client =
        EchoServiceClient::with_interceptor(channel.clone(), bearer("drain", &[Role::Viewer]));
    let slow =
        tokio::spawn(async move { echo_client.echo(EchoRequest { payload: b"sleep:700".to_vec() }).await });
    common::eventually("the slow call to be in flight", || async {
        let text = common::http_get(metrics_addr, "/metrics").await.1;
        common::sample(&text, "rpc_server_in_flight", &[("method", "Echo")]) >= 1.0
    })
    .await;

    let started = Instant::now();
    gateway.begin_stop();
    let ended = within("the stream to end", async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await;
    let status = ended.expect("the stream ends with a status");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "stream ended after {:?}", started.elapsed());

    let answer = slow.await.unwrap().expect("the in-flight call completes during the drain");
    assert_eq!(answer.into_inner().payload, b"sleep:700");
    within("the gateway to stop", gateway.stopped()).await.unwrap();

    let mut late = EchoServiceClient::with_interceptor(channel, bearer("late", &[Role::Viewer]));
    assert!(late.echo(EchoRequest { payload: b"x".to_vec() }).await.is_err());
    if let Some(echo) = echo {
        echo.stop().await;
    }
    if let Some(contacts) = contacts {
        contacts.stop().await;
    }
    drop(database);
}
