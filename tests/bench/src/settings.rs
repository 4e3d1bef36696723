//! The benchmark's flags; every one can also be set by environment
//! variable, so `BENCH_DURATION=2s make bench` is a quick run.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Load-tests the services and writes BENCHMARKS.md.
#[derive(Debug, Clone, Parser)]
#[command(name = "rapport-bench", version)]
pub struct Settings {
    /// Measured time per scenario (e.g. 8s, 500ms).
    #[arg(long, env = "BENCH_DURATION", default_value = "8s", value_parser = duration)]
    pub duration: Duration,
    /// Unmeasured time before each scenario's measurement.
    #[arg(long, env = "BENCH_WARMUP", default_value = "1s", value_parser = duration)]
    pub warmup: Duration,
    /// Calls in flight: this many tasks, each looping one call at a time.
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 32)]
    pub concurrency: usize,
    /// HTTP/2 connections the tasks share round-robin.
    #[arg(long, env = "BENCH_CONNECTIONS", default_value_t = 4)]
    pub connections: usize,
    /// Contacts to seed.
    #[arg(long, env = "BENCH_CONTACTS", default_value_t = 100_000)]
    pub contacts: u32,
    /// Seeded contact ids GetContact picks from at random.
    #[arg(long, env = "BENCH_WORKING_SET", default_value_t = 10_000)]
    pub working_set: u32,
    /// Worker threads of the servers' runtime.
    #[arg(long, env = "BENCH_SERVER_THREADS", default_value_t = 2)]
    pub server_threads: usize,
    /// Worker threads of the load generator's runtime.
    #[arg(long, env = "BENCH_CLIENT_THREADS", default_value_t = 2)]
    pub client_threads: usize,
    /// Longest a single call may take before it counts as DeadlineExceeded.
    #[arg(long, env = "BENCH_CALL_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub call_timeout: Duration,
    /// Scenarios to run (comma separated); the echo ceiling always runs.
    #[arg(
        long,
        env = "BENCH_SCENARIOS",
        value_delimiter = ',',
        default_value = "get-local,gateway-get,gateway-web,paced-direct,paced-gateway,get-redis,get-postgres,list,search,create,forecast-owner,forecast-month,move-stage,customer-360,support-queue,support-suggest,timeline,my-tasks,support-ingest,log-activity"
    )]
    pub scenarios: Vec<Scenario>,
    /// Deals to seed for the forecast (only when a Pipeline scenario runs).
    #[arg(long, env = "BENCH_DEALS", default_value_t = 200_000)]
    pub deals: u32,
    /// Open deals (of those seeded) MoveDealStage moves round-robin.
    #[arg(long, env = "BENCH_MOVE_DEALS", default_value_t = 20_000)]
    pub move_deals: u32,
    /// Support cases to seed (only when a Support scenario runs).
    #[arg(long, env = "BENCH_CASES", default_value_t = 200_000)]
    pub cases: u32,
    /// Knowledge-base articles to seed (only when a Support scenario runs).
    #[arg(long, env = "BENCH_ARTICLES", default_value_t = 10_000)]
    pub articles: u32,
    /// Activities to seed for the timeline (only when an activity scenario runs).
    #[arg(long, env = "BENCH_ACTIVITIES", default_value_t = 1_000_000)]
    pub activities: u32,
    /// Projected Pipeline and Support events to seed into timelines.
    #[arg(long, env = "BENCH_TIMELINE_EVENTS", default_value_t = 1_000_000)]
    pub timeline_events: u32,
    /// Open tasks to seed (ListMyTasks reads the bench caller's share).
    #[arg(long, env = "BENCH_TASKS", default_value_t = 200_000)]
    pub tasks: u32,
    /// Tasks with a reminder due that the timed sweep publishes.
    #[arg(long, env = "BENCH_DUE_TASKS", default_value_t = 100_000)]
    pub due_tasks: u32,
    /// Calls in flight of the GetForecast scenarios (each call is heavy).
    #[arg(long, env = "BENCH_FORECAST_CONCURRENCY", default_value_t = 2)]
    pub forecast_concurrency: usize,
    /// Calls in flight of the Customer 360 scenario.
    #[arg(long, env = "BENCH_CUSTOMER360_CONCURRENCY", default_value_t = 16)]
    pub customer360_concurrency: usize,
    /// Contacts (with a company, from the working set) Customer 360 asks
    /// for; each gets open deals, its company unpaid invoices.
    #[arg(long, env = "BENCH_CUSTOMER360_CONTACTS", default_value_t = 1_000)]
    pub customer360_contacts: u32,
    /// Calls per second of the paced (open-loop) scenarios; default: half
    /// of the lower of the rates `get-local` and `gateway-get` measured in
    /// the same run.
    #[arg(long, env = "BENCH_PACED_RATE")]
    pub paced_rate: Option<f64>,
    /// Where to write the report; `-` writes none. Default: BENCHMARKS.md
    /// at the repository root.
    #[arg(long, env = "BENCH_OUTPUT")]
    pub output: Option<PathBuf>,
    /// Keep the bench database afterwards (its URL is printed) to inspect
    /// query plans with psql; drop it yourself.
    #[arg(long, env = "BENCH_KEEP_DATABASE")]
    pub keep_database: bool,
}

/// The scenarios after the echo ceiling, in the order they run: the reads
/// first, then the writes, so that no read is measured while PostgreSQL
/// is still vacuuming and checkpointing after a write scenario's burst
/// (Customer 360 right after MoveDealStage ran at ~70 % of its throughput
/// alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Scenario {
    /// GetContact served from the in-process cache tier.
    GetLocal,
    /// GetContact through the gateway (gRPC, HTTP/2), in-process hits.
    GatewayGet,
    /// GetContact through the gateway as binary gRPC-web over HTTP/1.1,
    /// in-process hits.
    GatewayWeb,
    /// GetContact direct, in-process hits, paced (open loop) at half the
    /// maximum load (see `--paced-rate`).
    PacedDirect,
    /// GetContact through the gateway, in-process hits, paced like
    /// `paced-direct`.
    PacedGateway,
    /// GetContact served from Redis (in-process tier off).
    GetRedis,
    /// GetContact served by PostgreSQL (both cache tiers off).
    GetPostgres,
    /// ListContacts, first pages of 50 with varying filters.
    List,
    /// SearchContacts with 1-2 word queries.
    Search,
    /// GetForecast over a year in EUR, grouped by owner.
    ForecastOwner,
    /// GetForecast over a year in EUR, grouped by month.
    ForecastMonth,
    /// GetCustomer360 through a gateway in front of Contacts and Pipeline.
    #[value(name = "customer-360")]
    Customer360,
    /// The agent queue: ListCases of a team's open cases by next SLA due.
    SupportQueue,
    /// SuggestArticles for an open case.
    SupportSuggest,
    /// GetTimeline of a contact among 1,000,000 activities and 1,000,000
    /// projected events.
    Timeline,
    /// ListMyTasks among 200,000 open tasks.
    MyTasks,
    /// CreateContact with unique emails.
    Create,
    /// MoveDealStage between OPEN stages, deals round-robin, no etag.
    MoveStage,
    /// IngestEmail of new messages, each opening a case.
    SupportIngest,
    /// LogActivity: calls on contacts of the working set.
    LogActivity,
}

impl Scenario {
    /// Whether it runs against the Support service (and needs its seed).
    pub fn is_support(self) -> bool {
        matches!(self, Scenario::SupportQueue | Scenario::SupportSuggest | Scenario::SupportIngest)
    }

    /// Whether it reads or writes the shared record (and needs its seed).
    pub fn is_activities(self) -> bool {
        matches!(self, Scenario::Timeline | Scenario::MyTasks | Scenario::LogActivity)
    }

    /// Whether it runs against the Pipeline service (and needs its seed).
    pub fn is_pipeline(self) -> bool {
        matches!(
            self,
            Scenario::ForecastOwner | Scenario::ForecastMonth | Scenario::MoveStage | Scenario::Customer360
        )
    }
}

impl Settings {
    /// The scenarios to run, in run order, each once.
    pub fn selected(&self) -> Vec<Scenario> {
        let mut selected = self.scenarios.clone();
        selected.sort();
        selected.dedup();
        selected
    }
}

fn duration(raw: &str) -> Result<Duration, String> {
    rapport_kit::config::parse_duration(raw)
        .ok_or_else(|| format!("{raw:?} is not a duration (examples: 500ms, 8s, 1m)"))
}
