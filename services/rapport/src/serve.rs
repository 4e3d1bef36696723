//! `serve` and `migrate`: compose the requested services in one process.

use anyhow::Context as _;
use rapport_kit::config::Env;
use rapport_kit::shutdown;
use rapport_kit::telemetry::{self, TelemetryConfig};

use crate::registry::{self, Local, SERVICES};

/// Runs every named service on its own port until SIGTERM or ctrl-c, in
/// the registry's order (each after the services it calls, which it then
/// finds in this process).
pub async fn serve(env: &Env, services: &[&'static str]) -> anyhow::Result<()> {
    let service_name = match services {
        [one] => format!("rapport-{one}"),
        _ => "rapport".to_owned(),
    };
    let telemetry = telemetry::init(&TelemetryConfig::from_env(env, &service_name)?)?;
    let (trigger, shutdown) = shutdown::channel();
    let mut running = Vec::new();
    let mut local = Local::new();
    let ordered = registry::in_start_order(services);
    let mut addresses: Vec<_> = ordered.iter().map(|service| local.expect(service.name)).collect();
    for (service, address) in ordered.into_iter().zip(addresses.drain(..)) {
        let built = (service.build)(env.clone(), local.clone())
            .await
            .with_context(|| format!("starting {}", service.name))?;
        println!("{:<9} grpc://{}  ({})", service.name, built.addr, built.names.join(", "));
        if let Some(metrics) = built.metrics_addr {
            println!("{:<9} http://{metrics}/metrics", service.name);
        }
        local.insert(service.name, built.addr);
        // Services started earlier that follow this one's feed reach it now.
        address.send_replace(Some(built.addr));
        running.push(tokio::spawn((built.run)(shutdown.clone())));
    }
    tokio::select! {
        () = shutdown::signal() => {}
        // A service that stops on its own (an error) stops the others.
        _ = futures::future::select_all(running.iter_mut()) => {
            tracing::error!("a service stopped unexpectedly; shutting down the others");
        }
    }
    trigger.fire();
    let mut failed = None;
    for task in running {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => failed = Some(err),
            Err(err) => failed = Some(anyhow::anyhow!("service task failed: {err}")),
        }
    }
    tracing::info!("stopped");
    // Flushing spans blocks; keep it off the async workers.
    let _ = tokio::task::spawn_blocking(move || drop(telemetry)).await;
    failed.map_or(Ok(()), Err)
}

/// Applies the migrations of every named service that keeps data.
pub async fn migrate(env: &Env, services: &[&'static str]) -> anyhow::Result<()> {
    let _telemetry = telemetry::init(&TelemetryConfig::from_env(env, "rapport-migrate")?)?;
    for service in SERVICES.iter().filter(|service| services.contains(&service.name)) {
        if service.migrate(env).await? {
            println!("{}: migrations applied", service.name);
        }
    }
    Ok(())
}
