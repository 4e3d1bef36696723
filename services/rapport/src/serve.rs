//! `serve` and `migrate`: compose the requested services in one process.

use rapport_kit::config::Env;
use rapport_kit::shutdown;
use rapport_kit::telemetry::{self, TelemetryConfig};

/// Runs every named service on its own port until SIGTERM or ctrl-c.
pub async fn serve(env: &Env, services: &[&'static str]) -> anyhow::Result<()> {
    let service_name = match services {
        [one] => format!("rapport-{one}"),
        _ => "rapport".to_owned(),
    };
    let telemetry = telemetry::init(&TelemetryConfig::from_env(env, &service_name)?)?;
    let (trigger, shutdown) = shutdown::channel();
    let mut running = Vec::new();
    // Services this process runs, by area, for the gateway to route to
    // unless the environment names their backends.
    let mut local = Vec::new();
    // The gateway starts last, once the addresses of the others are known.
    for service in services.iter().filter(|service| **service != "gateway") {
        match *service {
            "contacts" => {
                let app = rapport_contacts::build(rapport_contacts::Config::from_env(env)?).await?;
                println!("contacts  grpc://{}  (rapport.contacts.v1.ContactService)", app.local_addr());
                local.push(("contacts", app.local_addr()));
                if let Some(metrics) = app.metrics_addr() {
                    println!("contacts  http://{metrics}/metrics");
                }
                running.push(tokio::spawn(app.run_until(shutdown.clone())));
            }
            "pipeline" => {
                let mut config = rapport_pipeline::Config::from_env(env)?;
                // The Contacts of this process, unless the environment names one.
                let contacts = local.iter().find(|(area, _)| *area == "contacts");
                if let (Some((_, addr)), None) = (contacts, env.optional::<String>("PIPELINE_CONTACTS_ADDR")?)
                {
                    config = config.with_contacts(*addr);
                }
                let app = rapport_pipeline::build(config).await?;
                println!(
                    "pipeline  grpc://{}  (rapport.pipeline.v1: Pipeline, Deal, Product, Forecast, Order services)",
                    app.local_addr()
                );
                local.push(("pipeline", app.local_addr()));
                if let Some(metrics) = app.metrics_addr() {
                    println!("pipeline  http://{metrics}/metrics");
                }
                running.push(tokio::spawn(app.run_until(shutdown.clone())));
            }
            other => anyhow::bail!("unknown service {other}"),
        }
    }
    if services.contains(&"gateway") {
        let mut config = rapport_gateway::Config::from_env(env)?;
        for (area, addr) in local {
            let variable = format!("GATEWAY_BACKEND_{}", area.to_ascii_uppercase());
            if env.optional::<String>(&variable)?.is_none() {
                config = config
                    .with_backend(area, rapport_gateway::backend::Target::Static(vec![addr.to_string()]));
            }
        }
        let app = rapport_gateway::App::build(config).await?;
        println!("gateway   grpc://{}  (gRPC and gRPC-web)", app.local_addr());
        running.push(tokio::spawn(app.run_until(shutdown.clone())));
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

/// Applies the migrations of every named service.
pub async fn migrate(env: &Env, services: &[&'static str]) -> anyhow::Result<()> {
    let _telemetry = telemetry::init(&TelemetryConfig::from_env(env, "rapport-migrate")?)?;
    for service in services {
        match *service {
            "contacts" => rapport_contacts::migrate(&rapport_contacts::Config::from_env(env)?).await?,
            "pipeline" => rapport_pipeline::migrate(&rapport_pipeline::Config::from_env(env)?).await?,
            // The gateway keeps no data.
            "gateway" => continue,
            other => anyhow::bail!("unknown service {other}"),
        }
        println!("{service}: migrations applied");
    }
    Ok(())
}
