//! The whole run, in order: database and seed, echo ceiling, then each
//! selected scenario against a Contacts instance of its own (behind a
//! gateway of its own for the gateway scenarios), then the report. Servers live on one runtime and the load generator on another;
//! this thread only drives them.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use rapport_kit::auth::Role;
use rapport_kit::cache::CacheCounts;
use rapport_kit::testing::{self, TestDatabase};
use rapport_proto::pipeline::v1::ForecastGrouping;
use sqlx::Connection;
use tokio::runtime::Runtime;

use crate::load::{self, Load, Outcome, Target, WebTarget};
use crate::report::{self, Context, Measured};
use crate::scenarios::{self, Scenario as Calls};
use crate::seed::pipeline::PipelineSeeded;
use crate::seed::support::SupportSeeded;
use crate::seed::{self, Seeded};
use crate::servers::{self, Running};
use crate::settings::{Scenario, Settings};

/// The two runtimes and what every scenario shares.
struct Bench {
    servers: Runtime,
    clients: Runtime,
    load: Load,
    connections: usize,
    token: String,
    database_url: String,
    /// Whether `--paced-rate` set the paced scenarios' rate.
    paced_rate_given: bool,
    /// Calls in flight of the GetForecast scenarios.
    forecast_concurrency: usize,
    /// Calls in flight of the Customer 360 scenario.
    customer360_concurrency: usize,
}

/// Runs everything `settings` selects and writes the report.
pub fn run(settings: &Settings) -> anyhow::Result<()> {
    anyhow::ensure!(!settings.duration.is_zero(), "--duration must be positive");
    anyhow::ensure!(
        settings.working_set > 0 && settings.working_set <= settings.contacts,
        "--working-set must be between 1 and --contacts"
    );
    let paced =
        settings.selected().into_iter().any(|s| matches!(s, Scenario::PacedDirect | Scenario::PacedGateway));
    anyhow::ensure!(
        !paced || settings.paced_rate.is_some() || settings.selected().contains(&Scenario::GetLocal),
        "the paced scenarios run at half of the maximum get-local measures: select get-local too, or give --paced-rate"
    );
    let load_before = load_average();
    let servers = runtime("bench-server", settings.server_threads)?;
    let clients = runtime("bench-client", settings.client_threads)?;

    let database = servers.block_on(TestDatabase::create())?;
    eprintln!("seeding {} contacts ...", settings.contacts);
    let seeded = servers.block_on(seed::seed(&database.url, settings.contacts, settings.working_set))?;
    eprintln!(
        "seeded {} contacts and {} companies in {:.1} s (+ {:.1} s VACUUM ANALYZE, CHECKPOINT)",
        seeded.contacts,
        seeded.companies,
        seeded.insert_time.as_secs_f64(),
        seeded.vacuum_time.as_secs_f64()
    );
    let pipeline = if settings.selected().iter().any(|scenario| scenario.is_pipeline()) {
        eprintln!("seeding {} deals into the pipeline ...", settings.deals);
        let pipeline = servers.block_on(seed::pipeline::seed(
            &database.url,
            settings.deals,
            settings.move_deals,
            &seeded.working_set,
            settings.customer360_contacts,
        ))?;
        eprintln!(
            "seeded {} deals (+ {} for Customer 360) in {:.1} s (+ {:.1} s VACUUM ANALYZE, CHECKPOINT)",
            pipeline.deals,
            pipeline.customer360.2 + pipeline.customer360.1 as i64,
            pipeline.insert_time.as_secs_f64(),
            pipeline.vacuum_time.as_secs_f64()
        );
        Some(pipeline)
    } else {
        None
    };

    let support = if settings.selected().iter().any(|scenario| scenario.is_support()) {
        eprintln!("seeding {} cases and {} articles into support ...", settings.cases, settings.articles);
        let support =
            servers.block_on(seed::support::seed(&database.url, settings.cases, settings.articles))?;
        eprintln!(
            "seeded {} cases ({} open) and {} articles in {:.1} s (+ {:.1} s VACUUM ANALYZE, CHECKPOINT)",
            support.cases,
            support.open,
            support.articles,
            support.insert_time.as_secs_f64(),
            support.vacuum_time.as_secs_f64()
        );
        Some(support)
    } else {
        None
    };

    let activities = if settings.selected().iter().any(|scenario| scenario.is_activities()) {
        eprintln!(
            "seeding {} activities, {} projected events, {} open tasks and {} due tasks ...",
            settings.activities, settings.timeline_events, settings.tasks, settings.due_tasks
        );
        let activities = servers.block_on(seed::activities::seed(
            &database.url,
            settings.activities,
            settings.timeline_events,
            settings.tasks,
            settings.due_tasks,
        ))?;
        eprintln!(
            "seeded the shared record in {:.1} s (+ {:.1} s VACUUM ANALYZE, CHECKPOINT)",
            activities.insert_time.as_secs_f64(),
            activities.vacuum_time.as_secs_f64()
        );
        Some(activities)
    } else {
        None
    };

    let bench = Bench {
        servers,
        clients,
        load: Load {
            concurrency: settings.concurrency,
            warmup: settings.warmup,
            duration: settings.duration,
            call_timeout: settings.call_timeout,
            rate: None,
        },
        connections: settings.connections,
        token: testing::token("rapport-bench", &[Role::Admin]),
        database_url: database.url.clone(),
        paced_rate_given: settings.paced_rate.is_some(),
        forecast_concurrency: settings.forecast_concurrency,
        customer360_concurrency: settings.customer360_concurrency,
    };
    let mut results = vec![bench.echo()?];
    report_progress(&results);
    for scenario in settings.selected() {
        let paced_rate = settings.paced_rate.or_else(|| default_paced_rate(&results));
        let measured = match (scenario.is_pipeline(), &pipeline, &support) {
            (true, Some(pipeline), _) => bench.pipeline_scenario(scenario, pipeline)?,
            (false, _, _) if scenario.is_activities() => match &activities {
                Some(activities) => bench.activities_scenario(scenario, activities, &seeded)?,
                None => anyhow::bail!("{scenario:?} needs the shared-record seed"),
            },
            (false, _, Some(support)) if scenario.is_support() => {
                bench.support_scenario(scenario, support)?
            }
            _ => bench.scenario(scenario, &seeded, paced_rate)?,
        };
        results.push(measured);
        report_progress(&results);
    }

    let context = Context {
        settings: settings_lines(settings),
        facts: facts(&seeded, pipeline.as_ref(), &load_before)?,
    };
    println!("{}", report::table(&results));
    println!("{}", report::targets(&results));
    print!("{}", report::observations(&results));
    let output = settings.output.clone().unwrap_or_else(report::default_output);
    if output.as_os_str() != "-" {
        std::fs::write(&output, report::document(&context, &results))
            .with_context(|| format!("writing {}", output.display()))?;
        eprintln!("wrote {}", output.display());
    }
    if settings.keep_database {
        eprintln!("kept the bench database: psql {}", database.url);
        std::mem::forget(database);
    }
    Ok(())
}

impl Bench {
    /// The ceiling: `Echo` through the kit bootstrap.
    fn echo(&self) -> anyhow::Result<Measured> {
        let server = self.servers.block_on(servers::start_echo())?;
        let run = self.measure(&server, None, scenarios::echo)?;
        self.servers.block_on(server.stop())?;
        Ok(Measured {
            scenario: None,
            title: "Echo (ceiling)",
            outcome: run.outcome,
            tiers: None,
            checkpoints: run.checkpoints,
            notes: Vec::new(),
        })
    }

    fn scenario(
        &self,
        scenario: Scenario,
        seeded: &Seeded,
        paced_rate: Option<f64>,
    ) -> anyhow::Result<Measured> {
        let ids = Arc::new(seeded.working_set.clone());
        let (title, flags): (&'static str, &[(&str, &str)]) = match scenario {
            Scenario::GetLocal => ("GetContact, in-process hit", &[]),
            Scenario::GatewayGet => ("GetContact via gateway, in-process hit", &[]),
            Scenario::GatewayWeb => ("GetContact via gateway, gRPC-web, in-process hit", &[]),
            Scenario::PacedDirect => ("GetContact, in-process hit, paced at ½ max", &[]),
            Scenario::PacedGateway => ("GetContact via gateway, in-process hit, paced at ½ max", &[]),
            Scenario::GetRedis => ("GetContact, Redis only", &[("CONTACTS_CACHE_LOCAL", "false")]),
            Scenario::GetPostgres => (
                "GetContact, PostgreSQL only",
                &[("CONTACTS_CACHE_LOCAL", "false"), ("CONTACTS_CACHE_REDIS", "false")],
            ),
            Scenario::List => ("ListContacts, 50 per page, filtered", &[]),
            Scenario::Search => ("SearchContacts, 20 hits", &[]),
            Scenario::Create => ("CreateContact", &[]),
            pipeline => anyhow::bail!("{pipeline:?} runs against the Pipeline service"),
        };
        let server = self
            .servers
            .block_on(servers::start_contacts(&self.database_url, flags))
            .with_context(|| format!("starting contacts for {title}"))?;
        let gateway = match scenario {
            Scenario::GatewayGet | Scenario::GatewayWeb | Scenario::PacedGateway => {
                match self.servers.block_on(servers::start_gateway(&server)) {
                    Ok(gateway) => Some(gateway),
                    Err(err) => {
                        let _ = self.servers.block_on(server.stop());
                        return Err(err.context(format!("starting the gateway for {title}")));
                    }
                }
            }
            _ => None,
        };
        let front = gateway.as_ref().unwrap_or(&server);
        let measured = match scenario {
            Scenario::GetLocal | Scenario::GetRedis | Scenario::GatewayGet => {
                self.measure(front, Some(&ids), |target| scenarios::get(target, ids.clone()))
            }
            Scenario::GatewayWeb => self
                .clients
                .block_on(WebTarget::connect(front.addr, self.load.concurrency, &self.token))
                .and_then(|web| self.measure(front, Some(&ids), |_| scenarios::get_web(web, ids.clone()))),
            Scenario::PacedDirect | Scenario::PacedGateway => match paced_rate {
                Some(rate) => {
                    self.measure_with(Load { rate: Some(rate), ..self.load }, front, Some(&ids), |target| {
                        scenarios::get(target, ids.clone())
                    })
                }
                None => Err(anyhow::anyhow!("no rate to pace {title} at")),
            },
            Scenario::GetPostgres => {
                self.measure(&server, None, |target| scenarios::get(target, ids.clone()))
            }
            Scenario::List => self.measure(&server, None, scenarios::list),
            Scenario::Search => self.measure(&server, None, scenarios::search),
            Scenario::ForecastOwner
            | Scenario::ForecastMonth
            | Scenario::MoveStage
            | Scenario::Customer360
            | Scenario::SupportQueue
            | Scenario::SupportSuggest
            | Scenario::SupportIngest
            | Scenario::Timeline
            | Scenario::MyTasks
            | Scenario::LogActivity => Err(anyhow::anyhow!("{title} runs elsewhere")),
            Scenario::Create => {
                let companies = Arc::new(seeded.company_ids.clone());
                let run = uuid::Uuid::now_v7().simple().to_string()[..12].to_owned();
                self.measure(&server, None, move |target| scenarios::create(target, companies, run))
            }
        };
        let notes = match (&measured, scenario) {
            (Ok(_), Scenario::Search) => self.search_profile(&server),
            (Ok(run), Scenario::PacedDirect | Scenario::PacedGateway) => Ok(vec![format!(
                "open loop: a call started every {:.1} µs ({:.0}/s{}), latency from each call's \
                 scheduled start; at most {} calls in flight.",
                1e6 / paced_rate.unwrap_or(f64::NAN),
                paced_rate.unwrap_or(f64::NAN),
                if self.paced_rate_given {
                    ", as --paced-rate says"
                } else {
                    ", half of the lower of the direct and the gateway maximum"
                },
                run.outcome.peak_in_flight.unwrap_or(0)
            )]),
            (Ok(_), Scenario::GatewayWeb) => Ok(vec![format!(
                "binary gRPC-web (`application/grpc-web+proto`, `x-grpc-web: 1`) over {} HTTP/1.1 \
                 keep-alive connections, one per task; the reply decoded from the data frame, the \
                 status from the trailer frame.",
                self.load.concurrency
            )]),
            _ => Ok(Vec::new()),
        };
        let gateway_stopped = gateway.map(|gateway| self.servers.block_on(gateway.stop())).unwrap_or(Ok(()));
        let stopped = self.servers.block_on(server.stop());
        let run = measured?;
        let notes = notes?;
        gateway_stopped?;
        stopped?;
        let is_get = !matches!(scenario, Scenario::List | Scenario::Search | Scenario::Create);
        Ok(Measured {
            scenario: Some(scenario),
            title,
            outcome: run.outcome,
            tiers: run.tiers.filter(|_| is_get),
            checkpoints: run.checkpoints,
            notes,
        })
    }

    /// A Pipeline scenario: fresh Contacts and Pipeline instances (Pipeline's
    /// Contacts client pointed at that Contacts), behind a gateway of its
    /// own for Customer 360.
    fn pipeline_scenario(&self, scenario: Scenario, seeded: &PipelineSeeded) -> anyhow::Result<Measured> {
        let title = match scenario {
            Scenario::ForecastOwner => "GetForecast by owner, 1 year, EUR",
            Scenario::ForecastMonth => "GetForecast by month, 1 year, EUR",
            Scenario::MoveStage => "MoveDealStage, no etag",
            Scenario::Customer360 => "GetCustomer360 via gateway, all sections",
            other => anyhow::bail!("{other:?} is not a Pipeline scenario"),
        };
        let contacts = self
            .servers
            .block_on(servers::start_contacts(&self.database_url, &[]))
            .with_context(|| format!("starting contacts for {title}"))?;
        let pipeline = match self.servers.block_on(servers::start_pipeline(&self.database_url, &contacts)) {
            Ok(pipeline) => pipeline,
            Err(err) => {
                let _ = self.servers.block_on(contacts.stop());
                return Err(err.context(format!("starting pipeline for {title}")));
            }
        };
        let gateway = if scenario == Scenario::Customer360 {
            match self.servers.block_on(servers::start_gateway_with(&contacts, Some(&pipeline))) {
                Ok(gateway) => Some(gateway),
                Err(err) => {
                    let _ = self.servers.block_on(pipeline.stop());
                    let _ = self.servers.block_on(contacts.stop());
                    return Err(err.context(format!("starting the gateway for {title}")));
                }
            }
        } else {
            None
        };
        let front = gateway.as_ref().unwrap_or(&pipeline);
        let mut notes = Vec::new();
        let measured = match scenario {
            Scenario::ForecastOwner | Scenario::ForecastMonth => {
                let group_by = if scenario == Scenario::ForecastOwner {
                    ForecastGrouping::Owner
                } else {
                    ForecastGrouping::Month
                };
                let range = scenarios::forecast_range(chrono::Utc::now().date_naive());
                notes.push(format!(
                    "{} calls in flight; {:04}-{:02}-{:02} to {:04}-{:02}-{:02} in EUR, all pipelines \
                     and owners, over {} seeded deals ({} open, {} won, {} lost; {} not in EUR) \
                     and the {} of Customer 360.",
                    self.forecast_concurrency,
                    range.0.year,
                    range.0.month,
                    range.0.day,
                    range.1.year,
                    range.1.month,
                    range.1.day,
                    seeded.deals,
                    seeded.by_status.0,
                    seeded.by_status.1,
                    seeded.by_status.2,
                    seeded.foreign_currency,
                    seeded.customer360.2 + seeded.customer360.1 as i64
                ));
                let load = Load { concurrency: self.forecast_concurrency, ..self.load };
                self.measure_with(load, front, None, move |target| {
                    scenarios::forecast(target, group_by, range)
                })
            }
            Scenario::MoveStage => {
                let deals = Arc::new(seeded.move_deals.clone());
                let stages = Arc::new(seeded.open_stages.clone());
                notes.push(format!(
                    "{} calls in flight over {} open deals taken round-robin, each moved to the next of \
                     the {} OPEN stages (never its current one); no etag. Each call locks the deal, \
                     rewrites it, closes its stage visit and opens the next (deal_stage_history), \
                     appends a change-log row, and reads its company's account standing for the \
                     response's warning.",
                    self.load.concurrency,
                    deals.len(),
                    stages.len()
                ));
                self.measure(front, None, move |target| scenarios::move_stage(target, deals, stages))
            }
            Scenario::Customer360 => {
                let ids = Arc::new(seeded.customer360_contacts.clone());
                let profile = self.clients.block_on(async {
                    let target = Target::connect(front.addr, self.connections, &self.token).await?;
                    let started = Instant::now();
                    let profile =
                        scenarios::customer360_profile(&target, &ids, self.customer360_concurrency).await?;
                    eprintln!(
                        "  fetched {} views once in {:.1} s",
                        profile.views,
                        started.elapsed().as_secs_f64()
                    );
                    anyhow::Ok(profile)
                });
                match profile {
                    Ok(profile) => {
                        notes.push(format!(
                            "{} calls in flight over {} contacts (each with a company); every view \
                             fetched once first: {} of {} with every section OK, {} with a company, {} \
                             with open deals ({:.1} on average), {} with unpaid invoices ({:.1} on \
                             average), {} with the account standing. A failed section counts as a \
                             failed call, under its code.",
                            self.customer360_concurrency,
                            ids.len(),
                            profile.all_ok,
                            profile.views,
                            profile.with_company,
                            profile.with_deals,
                            profile.deals as f64 / profile.views.max(1) as f64,
                            profile.with_invoices,
                            profile.invoices as f64 / profile.views.max(1) as f64,
                            profile.with_standing
                        ));
                        let load = Load { concurrency: self.customer360_concurrency, ..self.load };
                        self.measure_with(load, front, None, move |target| {
                            scenarios::customer360(target, ids)
                        })
                    }
                    Err(err) => Err(err),
                }
            }
            _ => Err(anyhow::anyhow!("{title} is not a Pipeline scenario")),
        };
        let gateway_stopped = gateway.map(|gateway| self.servers.block_on(gateway.stop())).unwrap_or(Ok(()));
        let pipeline_stopped = self.servers.block_on(pipeline.stop());
        let contacts_stopped = self.servers.block_on(contacts.stop());
        let run = measured?;
        gateway_stopped?;
        pipeline_stopped?;
        contacts_stopped?;
        Ok(Measured {
            scenario: Some(scenario),
            title,
            outcome: run.outcome,
            tiers: run.tiers.filter(|_| scenario == Scenario::Customer360),
            checkpoints: run.checkpoints,
            notes,
        })
    }

    /// A shared-record scenario: a fresh Contacts instance. Before the
    /// timeline, one reminder sweep over the due tasks is timed on its own.
    fn activities_scenario(
        &self,
        scenario: Scenario,
        seeded: &seed::activities::ActivitiesSeeded,
        contacts: &seed::Seeded,
    ) -> anyhow::Result<Measured> {
        let title = match scenario {
            Scenario::Timeline => "GetTimeline of a contact, newest 50 entries",
            Scenario::MyTasks => "ListMyTasks, first page of 50",
            Scenario::LogActivity => "LogActivity, a call on a contact",
            other => anyhow::bail!("{other:?} is not a shared-record scenario"),
        };
        let mut notes = Vec::new();
        if scenario == Scenario::Timeline {
            let swept =
                self.servers.block_on(seed::activities::sweep_once(&self.database_url, seeded.start))?;
            notes.push(format!(
                "one reminder sweep over {} tasks due within the hour: {:.0} ms ({:.0} ms of it the commit, \
                 where the change log numbers each event), {} DUE reminders marked and published as change \
                 events (target ≤ 1 s).",
                seeded.due,
                swept.took.as_secs_f64() * 1000.0,
                swept.commit.as_secs_f64() * 1000.0,
                swept.sent
            ));
        }
        let server = self
            .servers
            .block_on(servers::start_contacts(&self.database_url, &[]))
            .with_context(|| format!("starting contacts for {title}"))?;
        let measured = match scenario {
            Scenario::Timeline => {
                let subjects = Arc::new(seeded.subjects.clone());
                notes.push(format!(
                    "{} calls in flight; {} activities and {} projected Pipeline and Support events over {} \
                     contacts (about {} entries each).",
                    self.load.concurrency,
                    seeded.activities,
                    seeded.events,
                    subjects.len(),
                    (u64::from(seeded.activities) + u64::from(seeded.events))
                        / (subjects.len().max(1) as u64)
                ));
                self.measure(&server, None, move |target| scenarios::timeline(target, subjects))
            }
            Scenario::MyTasks => {
                notes.push(format!(
                    "{} calls in flight; {} open tasks of 200 owners, {} of them the caller's.",
                    self.load.concurrency, seeded.tasks, seeded.mine
                ));
                self.measure(&server, None, scenarios::my_tasks)
            }
            _ => {
                let ids = Arc::new(contacts.working_set.clone());
                notes.push(format!(
                    "{} calls in flight; each call locks its contact, writes the activity, its timeline entry, \
                     the contact's last activity time and its change event in one transaction, then drops the \
                     contact's cached copies.",
                    self.load.concurrency
                ));
                self.measure(&server, None, move |target| scenarios::log_activity(target, ids))
            }
        };
        let stopped = self.servers.block_on(server.stop());
        let run = measured?;
        stopped?;
        Ok(Measured {
            scenario: Some(scenario),
            title,
            outcome: run.outcome,
            tiers: None,
            checkpoints: run.checkpoints,
            notes,
        })
    }

    /// A Support scenario: fresh Contacts and Support instances. Before the
    /// agent queue, one full SLA sweep is timed on its own.
    fn support_scenario(&self, scenario: Scenario, seeded: &SupportSeeded) -> anyhow::Result<Measured> {
        let title = match scenario {
            Scenario::SupportQueue => "ListCases, agent queue (a team's open cases by next SLA due)",
            Scenario::SupportSuggest => "SuggestArticles for an open case, 5 suggestions",
            Scenario::SupportIngest => "IngestEmail, new messages each opening a case",
            other => anyhow::bail!("{other:?} is not a Support scenario"),
        };
        let mut notes = Vec::new();
        if scenario == Scenario::SupportQueue {
            let (took, alerts) =
                self.servers.block_on(seed::support::sweep_once(&self.database_url, seeded.start))?;
            notes.push(format!(
                "one full SLA sweep a day after the seed, over {} open cases of {}: {:.0} ms, {} warnings and \
                 breaches recorded and announced (target ≤ 1 s).",
                seeded.open,
                seeded.cases,
                took.as_secs_f64() * 1000.0,
                alerts
            ));
        }
        let contacts = self
            .servers
            .block_on(servers::start_contacts(&self.database_url, &[]))
            .with_context(|| format!("starting contacts for {title}"))?;
        let support = match self.servers.block_on(servers::start_support(&self.database_url, &contacts)) {
            Ok(support) => support,
            Err(err) => {
                let _ = self.servers.block_on(contacts.stop());
                return Err(err.context(format!("starting support for {title}")));
            }
        };
        let measured = match scenario {
            Scenario::SupportQueue => {
                notes.push(format!(
                    "{} calls in flight; 20 team queues over {} cases ({} open).",
                    self.load.concurrency, seeded.cases, seeded.open
                ));
                self.measure(&support, None, scenarios::support_queue)
            }
            Scenario::SupportSuggest => {
                let cases = Arc::new(seeded.suggest_cases.clone());
                notes.push(format!(
                    "{} calls in flight over {} open cases and {} published articles; each call also records \
                     its suggestions against the case.",
                    self.load.concurrency,
                    cases.len(),
                    seeded.articles
                ));
                self.measure(&support, None, move |target| scenarios::support_suggest(target, cases))
            }
            _ => {
                notes.push(format!(
                    "{} calls in flight; each message parsed (MIME), its sender looked up in Contacts (200 \
                     senders, created on first sight), a case opened with its first comment, in one transaction.",
                    self.load.concurrency
                ));
                let run = uuid::Uuid::now_v7().simple().to_string()[..12].to_owned();
                self.measure(&support, None, move |target| scenarios::support_ingest(target, run))
            }
        };
        let support_stopped = self.servers.block_on(support.stop());
        let contacts_stopped = self.servers.block_on(contacts.stop());
        let run = measured?;
        support_stopped?;
        contacts_stopped?;
        Ok(Measured {
            scenario: Some(scenario),
            title,
            outcome: run.outcome,
            tiers: None,
            checkpoints: run.checkpoints,
            notes,
        })
    }

    /// Connects to `server`, warms its caches with `warm` ids, runs the
    /// load, and returns it with the contact-cache counters it moved and
    /// the PostgreSQL checkpoints that happened meanwhile.
    fn measure<S: Calls>(
        &self,
        server: &Running,
        warm: Option<&[String]>,
        calls: impl FnOnce(Target) -> S,
    ) -> anyhow::Result<Run> {
        self.measure_with(self.load, server, warm, calls)
    }

    /// [`Bench::measure`] under `load` rather than the bench's own.
    fn measure_with<S: Calls>(
        &self,
        load: Load,
        server: &Running,
        warm: Option<&[String]>,
        calls: impl FnOnce(Target) -> S,
    ) -> anyhow::Result<Run> {
        let caches = server.caches.clone();
        self.clients.block_on(async {
            let target = Target::connect(server.addr, self.connections, &self.token).await?;
            if let Some(ids) = warm {
                let started = Instant::now();
                scenarios::warm(&target, ids, self.load.concurrency).await?;
                eprintln!("  warmed {} ids in {:.1} s", ids.len(), started.elapsed().as_secs_f64());
            }
            let checkpoints_before = checkpoints(&self.database_url).await;
            let before = caches.as_ref().map(|caches| caches.contacts.counts());
            let outcome = load::run(load, calls(target)).await?;
            let after = caches.as_ref().map(|caches| caches.contacts.counts());
            let checkpoints_after = checkpoints(&self.database_url).await;
            Ok(Run {
                outcome,
                tiers: before.zip(after).map(|(b, a)| delta(b, a)),
                checkpoints: checkpoints_before.zip(checkpoints_after).map(|(b, a)| a - b),
            })
        })
    }

    /// Each search query alone against `server`, as notes.
    fn search_profile(&self, server: &Running) -> anyhow::Result<Vec<String>> {
        self.clients.block_on(async {
            let target = Target::connect(server.addr, 1, &self.token).await?;
            let profile = scenarios::search_profile(&target).await?;
            let queries = profile
                .iter()
                .map(|(query, ms, hits)| format!("`{query}` {ms:.1} ms ({hits} hits)"))
                .collect::<Vec<_>>()
                .join(", ");
            Ok(vec![format!("one call at a time (median of 3), per query: {queries}.")])
        })
    }
}

/// What [`Bench::measure`] returns.
struct Run {
    outcome: Outcome,
    tiers: Option<CacheCounts>,
    checkpoints: Option<i64>,
}

/// Checkpoints PostgreSQL has completed so far (cluster-wide), if readable.
async fn checkpoints(url: &str) -> Option<i64> {
    let mut connection = sqlx::PgConnection::connect(url).await.ok()?;
    let count = sqlx::query_scalar("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
        .fetch_one(&mut connection)
        .await
        .ok();
    let _ = connection.close().await;
    count
}

fn delta(before: CacheCounts, after: CacheCounts) -> CacheCounts {
    after.since(before)
}

/// Half of the lower of the maxima measured so far of GetContact direct
/// and via the gateway: the paced scenarios compare the two paths at half
/// the maximum load. (Half of the direct maximum alone would load a gateway
/// that sustains half as much to saturation, where an open loop's latency
/// grows without bound.)
fn default_paced_rate(results: &[Measured]) -> Option<f64> {
    results
        .iter()
        .filter(|measured| matches!(measured.scenario, Some(Scenario::GetLocal | Scenario::GatewayGet)))
        .map(|measured| measured.outcome.rps() / 2.0)
        .min_by(f64::total_cmp)
}

fn runtime(name: &str, threads: usize) -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("starting the {name} runtime"))
}

fn report_progress(results: &[Measured]) {
    if let Some(last) = results.last() {
        let outcome = &last.outcome;
        eprintln!(
            "{}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            last.title,
            outcome.rps(),
            outcome.ms_at(0.5),
            outcome.ms_at(0.99),
            outcome.error_count()
        );
    }
}

fn settings_lines(settings: &Settings) -> Vec<String> {
    vec![
        format!(
            "Layout: one process; the servers on a tokio runtime of {} worker threads, the \
             load generator on a separate runtime of {}; PostgreSQL and Redis on the same \
             machine, over loopback TCP.",
            settings.server_threads, settings.client_threads
        ),
        format!(
            "Load: {} calls in flight ({} tasks, each one call at a time) over {} HTTP/2 \
             connections (one tonic `Channel` each, tasks assigned round-robin); bearer JWT \
             (HS256) on every call.",
            settings.concurrency, settings.concurrency, settings.connections
        ),
        format!(
            "Per scenario: {:?} warm-up, then {:?} measured; a fresh server instance each; \
             calls time out after {:?}.",
            settings.warmup, settings.duration, settings.call_timeout
        ),
        format!(
            "Data: {} contacts; GetContact picks uniformly from {} random seeded ids, \
             fetched once through the server first for the cached scenarios.",
            settings.contacts, settings.working_set
        ),
        format!(
            "ListContacts: first page of 50 (order create_time) under one of {} filters, \
             e.g. `{}`.",
            scenarios::LIST_FILTERS.len(),
            scenarios::LIST_FILTERS[0]
        ),
        format!(
            "SearchContacts: 20 hits for one of {} queries: {}.",
            scenarios::SEARCH_QUERIES.len(),
            scenarios::SEARCH_QUERIES.iter().map(|query| format!("`{query}`")).collect::<Vec<_>>().join(", ")
        ),
        "CreateContact: unique emails, varied names, titles, stages, sources and tags; half \
         name a seeded company; no request_id."
            .to_owned(),
        format!(
            "Gateway: `rapport-gateway` (rate limiting off, metrics off) in front of a fresh \
             Contacts instance, on the servers' runtime, caches warmed through it. \"via \
             gateway\" GetContact is the same load as the direct in-process hit; gRPC-web sends \
             binary gRPC-web over {} HTTP/1.1 connections (one per task). The two \"paced\" \
             rows are open loop (calls started on a fixed schedule, {}, latency from each \
             call's scheduled start, as many in flight as the schedule takes, a call counted \
             when it was scheduled in the window), direct and via the gateway; their \
             latency difference is what the gateway adds.",
            settings.concurrency,
            match settings.paced_rate {
                Some(rate) => format!("{rate:.0}/s"),
                None => "at half the lower of the direct and the via-gateway maximum measured above: \
                         half of the maximum load of the slower path, so that neither runs near \
                         saturation"
                    .to_owned(),
            }
        ),
        format!(
            "Pipeline: each scenario against fresh Contacts and Pipeline instances (Pipeline's \
             Contacts client pointed at that Contacts). GetForecast over {} seeded deals, one \
             year in EUR, grouped by owner or by month, {} calls in flight. MoveDealStage: {} \
             open deals round-robin, no etag, {} in flight. Customer 360: `rapport-gateway` \
             (rate limiting off, metrics off) routing Contacts and Pipeline, every section, {} \
             contacts picked uniformly, {} in flight.",
            settings.deals,
            settings.forecast_concurrency,
            settings.move_deals,
            settings.concurrency,
            settings.customer360_contacts,
            settings.customer360_concurrency
        ),
    ]
}

/// The 1-, 5- and 15-minute load averages, as /proc/loadavg writes them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|loadavg| loadavg.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn facts(
    seeded: &Seeded,
    pipeline: Option<&PipelineSeeded>,
    load_before: &str,
) -> anyhow::Result<Vec<String>> {
    let contacts_config = rapport_contacts::Config::from_env(&servers::base_env())?;
    let mut facts = vec![
        format!(
            "Load average before the run: {load_before} (1, 5, 15 min). Other work on \
             this machine, and other sessions creating or dropping databases (each forces \
             a PostgreSQL checkpoint), disturbs the PostgreSQL-bound figures."
        ),
        format!(
            "Seeding: {} contacts and {} companies inserted set-based in {:.1} s, then \
             VACUUM ANALYZE and CHECKPOINT in {:.1} s.",
            seeded.contacts,
            seeded.companies,
            seeded.insert_time.as_secs_f64(),
            seeded.vacuum_time.as_secs_f64()
        ),
        format!(
            "Contacts runs with its defaults: a pool of {} PostgreSQL connections, \
             in-process tier {} entries for {:?}, Redis TTL {:?}.",
            contacts_config.service.db.max_connections,
            contacts_config.service.cache.local_capacity,
            contacts_config.service.cache.local_ttl,
            contacts_config.service.cache.redis_ttl
        ),
        format!(
            "Every server ran with log level `{}` (`RUST_LOG`).",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,sqlx::query=error".to_owned())
        ),
    ];
    if let Some(pipeline) = pipeline {
        let (contacts, companies, deals, invoices) = pipeline.customer360;
        facts.push(format!(
            "Pipeline seeding (after its migrations and default pipeline): {} deals over 50 owners \
             ({} open, {} won, {} lost; {} in USD, GBP or JPY, with {} exchange rates to EUR), \
             expected close dates from a year back to a year ahead; for Customer 360, {} open \
             deals naming {} contacts and {} unpaid invoices (plus a won deal, an order and a paid \
             invoice) of their {} companies; one stage visit per deal. Inserted set-based in \
             {:.1} s, then VACUUM ANALYZE and CHECKPOINT in {:.1} s.",
            pipeline.deals,
            pipeline.by_status.0,
            pipeline.by_status.1,
            pipeline.by_status.2,
            pipeline.foreign_currency,
            pipeline.exchange_rates,
            deals,
            contacts,
            invoices,
            companies,
            pipeline.insert_time.as_secs_f64(),
            pipeline.vacuum_time.as_secs_f64()
        ));
        let config = rapport_pipeline::Config::from_env(&servers::base_env())?;
        facts.push(format!(
            "Pipeline runs with its defaults: a pool of {} PostgreSQL connections.",
            config.service.db.max_connections
        ));
    }
    Ok(facts)
}
