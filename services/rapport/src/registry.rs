//! The one table of services: what `serve`, `migrate`, `--help` and the
//! gateway's default routing read. A new service is one row here.

use std::collections::HashMap;
use std::net::SocketAddr;

use futures::future::{BoxFuture, LocalBoxFuture};
use rapport_kit::auth::Policy;
use rapport_kit::config::Env;
use rapport_kit::service::{App, Spec};
use rapport_kit::shutdown::Shutdown;

/// One service of the binary.
pub struct Service {
    /// The one word for it: the `serve` target, its schema, its settings
    /// prefix, its gateway area, its chart values key.
    pub name: &'static str,
    /// What it does, for `--help`.
    pub summary: &'static str,
    /// Its schema, migrations and default ports; `None` for the gateway,
    /// which keeps no data.
    pub spec: Option<&'static Spec>,
    /// The services it calls: in one process they start first, and it
    /// finds them there unless its settings name an address.
    pub calls: &'static [&'static str],
    /// The services whose change feeds it follows without calling them
    /// otherwise: in one process they may start later (they call it), and
    /// it reaches them once they have.
    pub follows: &'static [&'static str],
    /// Its role tables, one per gRPC service it serves.
    pub policies: fn() -> Vec<Policy>,
    /// Builds it (bound, not yet serving) from the environment and the
    /// services this process already runs.
    pub build: fn(Env, Local) -> LocalBoxFuture<'static, anyhow::Result<Built>>,
}

/// The services of this process: the addresses of those started so far,
/// and, for those still to start, where their address will appear.
#[derive(Clone, Default)]
pub struct Local {
    started: HashMap<&'static str, SocketAddr>,
    upcoming: HashMap<&'static str, tokio::sync::watch::Receiver<Option<SocketAddr>>>,
}

impl Local {
    /// No services yet.
    pub fn new() -> Local {
        Local::default()
    }

    /// The address of `name`, when it has started here.
    pub fn get(&self, name: &str) -> Option<&SocketAddr> {
        self.started.get(name)
    }

    /// Where the address of `name`, served by this process but not started
    /// yet, will appear.
    pub fn later(&self, name: &str) -> Option<tokio::sync::watch::Receiver<Option<SocketAddr>>> {
        self.upcoming.get(name).cloned()
    }

    /// `name` will start in this process; returns the sender of its address.
    pub fn expect(&mut self, name: &'static str) -> tokio::sync::watch::Sender<Option<SocketAddr>> {
        let (sender, receiver) = tokio::sync::watch::channel(None);
        self.upcoming.insert(name, receiver);
        sender
    }

    /// `name` started at `addr`.
    pub fn insert(&mut self, name: &'static str, addr: SocketAddr) {
        self.upcoming.remove(name);
        self.started.insert(name, addr);
    }
}

/// A built service, as `serve` runs it.
pub struct Built {
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// Its `/metrics` address, when served.
    pub metrics_addr: Option<SocketAddr>,
    /// The gRPC services it answers.
    pub names: Vec<&'static str>,
    /// Serves until shutdown.
    pub run: Box<dyn FnOnce(Shutdown) -> BoxFuture<'static, anyhow::Result<()>> + Send>,
}

impl<X: Send + 'static> From<App<X>> for Built {
    fn from(app: App<X>) -> Built {
        Built {
            addr: app.local_addr(),
            metrics_addr: app.metrics_addr(),
            names: app.service_names().to_vec(),
            run: Box::new(move |shutdown| Box::pin(app.run_until(shutdown))),
        }
    }
}

/// Every service, each after the services it calls.
pub const SERVICES: &[Service] = &[
    Service {
        name: "contacts",
        summary: "people and companies: the customer record every department shares",
        spec: Some(&rapport_contacts::SPEC),
        calls: &[],
        follows: &["pipeline", "support"],
        policies: rapport_contacts::policy::policies,
        build: |env, local| {
            Box::pin(async move {
                let mut config = rapport_contacts::Config::from_env(&env)?;
                if let (Some(later), None) =
                    (local.later("pipeline"), env.optional::<String>("CONTACTS_PIPELINE_ADDR")?)
                {
                    config.pipeline = config.pipeline.at_later(later);
                }
                if let (Some(later), None) =
                    (local.later("support"), env.optional::<String>("CONTACTS_SUPPORT_ADDR")?)
                {
                    config.support = config.support.at_later(later);
                }
                Ok(rapport_contacts::build(config).await?.into())
            })
        },
    },
    Service {
        name: "pipeline",
        summary: "pipelines, deals, products, forecasts, orders, invoices and payments",
        spec: Some(&rapport_pipeline::SPEC),
        calls: &["contacts"],
        follows: &[],
        policies: rapport_pipeline::policy::policies,
        build: |env, local| {
            Box::pin(async move {
                let mut config = rapport_pipeline::Config::from_env(&env)?;
                if let (Some(addr), None) =
                    (local.get("contacts"), env.optional::<String>("PIPELINE_CONTACTS_ADDR")?)
                {
                    config = config.with_contacts(*addr);
                }
                Ok(rapport_pipeline::build(config).await?.into())
            })
        },
    },
    Service {
        name: "support",
        summary: "support cases with SLA clocks on business-hours calendars, comments and the agent queue",
        spec: Some(&rapport_support::SPEC),
        calls: &["contacts"],
        follows: &[],
        policies: rapport_support::policy::policies,
        build: |env, local| {
            Box::pin(async move {
                let mut config = rapport_support::Config::from_env(&env)?;
                if let (Some(addr), None) =
                    (local.get("contacts"), env.optional::<String>("SUPPORT_CONTACTS_ADDR")?)
                {
                    config = config.with_contacts(*addr);
                }
                Ok(rapport_support::build(config).await?.into())
            })
        },
    },
    Service {
        name: "gateway",
        summary: "the one public endpoint: gRPC and gRPC-web, auth, limits, tracing, Customer 360",
        spec: None,
        calls: &["contacts", "pipeline", "support"],
        follows: &[],
        policies: || vec![rapport_gateway::customer::policy()],
        build: build_gateway,
    },
];

/// The gateway routing each area to the service of this process, else to
/// its default local address, unless the environment names a backend.
fn build_gateway(env: Env, local: Local) -> LocalBoxFuture<'static, anyhow::Result<Built>> {
    Box::pin(async move {
        let defaults = SERVICES.iter().filter_map(|service| {
            let spec = service.spec?;
            let addr = match local.get(service.name) {
                Some(addr) => addr.to_string(),
                None => format!("127.0.0.1:{}", spec.ports.grpc),
            };
            Some((service.name, addr))
        });
        let public = SERVICES
            .iter()
            .flat_map(|service| (service.policies)())
            .flat_map(|policy| policy.public_paths().collect::<Vec<_>>());
        let config = rapport_gateway::Config::from_env(&env)?
            .with_default_backends(defaults)
            .with_public_paths(public);
        let app = rapport_gateway::App::build(config).await?;
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        Ok(Built {
            addr,
            metrics_addr,
            names: vec![rapport_gateway::customer::SERVICE_NAME],
            run: Box::new(move |shutdown| Box::pin(app.run_until(shutdown))),
        })
    })
}

/// The services named, in an order where each comes after those of the
/// others it calls (so `serve pipeline contacts` starts Contacts first).
pub fn in_start_order(names: &[&str]) -> Vec<&'static Service> {
    let mut pending: Vec<&'static Service> =
        SERVICES.iter().filter(|service| names.contains(&service.name)).collect();
    let mut ordered: Vec<&'static Service> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending.iter().position(|service| {
            service.calls.iter().all(|callee| {
                !pending.iter().any(|other| other.name == *callee)
                    || ordered.iter().any(|done| done.name == *callee)
            })
        });
        // A cycle cannot happen (a test checks the table); take the rest as listed.
        let next = ready.unwrap_or(0);
        ordered.push(pending.remove(next));
    }
    ordered
}

impl Service {
    /// Applies its migrations to the database `env` names; false when it
    /// keeps no data.
    pub async fn migrate(&self, env: &Env) -> anyhow::Result<bool> {
        let Some(spec) = self.spec else { return Ok(false) };
        rapport_kit::service::migrate(spec, &rapport_kit::service::Settings::from_env(env, spec)?).await?;
        Ok(true)
    }

    /// Its default local ports.
    pub fn ports(&self) -> rapport_kit::service::Ports {
        self.spec.map_or(rapport_gateway::config::PORTS, |spec| spec.ports)
    }
}

/// The table as JSON, for deployment checks (`rapport services`): each
/// service's name, default ports, whether it keeps data, and its callees.
pub fn describe() -> serde_json::Value {
    serde_json::Value::Array(
        SERVICES
            .iter()
            .map(|service| {
                let ports = service.ports();
                serde_json::json!({
                    "name": service.name,
                    "summary": service.summary,
                    "grpc": ports.grpc,
                    "metrics": ports.metrics,
                    "database": service.spec.is_some(),
                    "calls": service.calls,
                    "follows": service.follows,
                })
            })
            .collect(),
    )
}

/// The service called `name`.
pub fn find(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|service| service.name == name)
}

/// Every name `serve` and `migrate` take.
pub fn targets() -> Vec<&'static str> {
    SERVICES.iter().map(|service| service.name).chain(["all"]).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn services_start_after_those_they_call_whatever_order_they_are_named_in() {
        let names = |services: Vec<&Service>| services.iter().map(|service| service.name).collect::<Vec<_>>();
        assert_eq!(
            names(in_start_order(&["gateway", "pipeline", "contacts"])),
            ["contacts", "pipeline", "gateway"]
        );
        assert_eq!(names(in_start_order(&["pipeline", "contacts"])), ["contacts", "pipeline"]);
        assert_eq!(names(in_start_order(&["pipeline"])), ["pipeline"]);
    }

    /// Without a configured key and outside the development mode, no
    /// service starts: it names the settings to set.
    #[tokio::test]
    async fn no_service_builds_without_a_signing_key_outside_development_mode() {
        for service in SERVICES {
            let env = Env::from_pairs([("DATABASE_URL", "postgres://127.0.0.1:1/none")]);
            let Err(err) = (service.build)(env, Local::new()).await else {
                panic!("{} built without a key", service.name);
            };
            let message = format!("{err:#}");
            assert!(
                message.contains("AUTH_JWT_SECRET") && message.contains("AUTH_JWKS_FILE"),
                "{}: {message}",
                service.name
            );
        }
    }

    #[test]
    fn each_service_comes_after_the_services_it_calls() {
        for (index, service) in SERVICES.iter().enumerate() {
            for callee in service.calls {
                let at = SERVICES.iter().position(|other| other.name == *callee);
                assert!(
                    at.is_some_and(|at| at < index),
                    "{} calls {callee}, which must come first",
                    service.name
                );
            }
        }
    }

    #[test]
    fn every_rpc_of_every_public_service_is_in_its_role_table_exactly_once() {
        let policies: Vec<Policy> = SERVICES.iter().flat_map(|service| (service.policies)()).collect();
        for (name, methods) in rapport_proto::SERVICES {
            if name.starts_with("rapport.bench.") {
                continue;
            }
            let tables: Vec<&Policy> = policies.iter().filter(|policy| policy.service() == *name).collect();
            assert_eq!(tables.len(), 1, "{name} must have exactly one role table");
            let mut listed: Vec<&str> = tables[0].methods().collect();
            listed.sort_unstable();
            let mut declared = methods.to_vec();
            declared.sort_unstable();
            assert_eq!(
                listed, declared,
                "the role table of {name} must list each of its RPCs once, and only those"
            );
        }
        for policy in &policies {
            assert!(
                rapport_proto::SERVICES.iter().any(|(name, _)| *name == policy.service()),
                "a role table for {}, which no contract declares",
                policy.service()
            );
        }
    }

    #[test]
    fn the_description_lists_every_service_with_its_ports() {
        let described = describe();
        let names: Vec<&str> =
            described.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["contacts", "pipeline", "support", "gateway"]);
        assert_eq!(described[1]["grpc"], 50052);
        assert_eq!(described[1]["calls"], serde_json::json!(["contacts"]));
        assert_eq!(described[2]["grpc"], 50053);
        assert_eq!(described[3]["database"], false);
    }

    #[test]
    fn each_served_service_is_the_spec_of_its_row() {
        for service in SERVICES {
            if let Some(spec) = service.spec {
                assert_eq!(spec.name, service.name);
            }
        }
        assert!(find("pipeline").is_some() && find("nope").is_none());
        assert_eq!(targets().last(), Some(&"all"));
    }
}
