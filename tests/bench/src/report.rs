//! The report: the results table, the machine it ran on, the issue's
//! targets judged met or missed, as Markdown for stdout and BENCHMARKS.md.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use rapport_kit::cache::CacheCounts;

use crate::load::Outcome;
use crate::settings::Scenario;

/// One measured scenario.
pub struct Measured {
    /// Which one (`None` is the echo ceiling).
    pub scenario: Option<Scenario>,
    /// What it sends, in a few words.
    pub title: &'static str,
    /// What it measured.
    pub outcome: Outcome,
    /// Contact-cache counters during warm-up and measurement (GetContact).
    pub tiers: Option<CacheCounts>,
    /// PostgreSQL checkpoints (cluster-wide) during warm-up and measurement.
    pub checkpoints: Option<i64>,
    /// Further observations about this scenario.
    pub notes: Vec<String>,
}

/// Everything the report states besides the results.
pub struct Context {
    /// The settings, one line each.
    pub settings: Vec<String>,
    /// Facts about seeding and the services, one line each.
    pub facts: Vec<String>,
}

/// Where BENCHMARKS.md goes by default: the repository root.
pub fn default_output() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root).join("BENCHMARKS.md")
}

/// The results table.
pub fn table(results: &[Measured]) -> String {
    let echo_rps = results
        .iter()
        .find(|measured| measured.scenario.is_none())
        .map(|measured| measured.outcome.rps())
        .unwrap_or(0.0);
    let mut out = String::from(
        "| Scenario | Requests/s | vs echo | p50 ms | p95 ms | p99 ms | max ms | Server CPU µs/call | Client CPU µs/call | OK calls | Errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for measured in results {
        let outcome = &measured.outcome;
        let ratio = if echo_rps > 0.0 {
            format!("{:.1}%", 100.0 * outcome.rps() / echo_rps)
        } else {
            "n/a".to_owned()
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} |",
            measured.title,
            outcome.rps(),
            ratio,
            outcome.ms_at(0.50),
            outcome.ms_at(0.95),
            outcome.ms_at(0.99),
            outcome.max_ms(),
            micros(outcome.server_cpu_us_per_call()),
            micros(outcome.client_cpu_us_per_call()),
            outcome.ok(),
            errors(outcome),
        );
    }
    out
}

fn micros(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |us| format!("{us:.0}"))
}

fn errors(outcome: &Outcome) -> String {
    if outcome.errors.is_empty() {
        return "none".to_owned();
    }
    outcome.errors.iter().map(|(code, count)| format!("{code}: {count}")).collect::<Vec<_>>().join(", ")
}

/// One issue target and its verdict.
struct Verdict {
    target: &'static str,
    measured: String,
    verdict: &'static str,
}

fn verdicts(results: &[Measured]) -> Vec<Verdict> {
    let echo_rps = results
        .iter()
        .find(|measured| measured.scenario.is_none())
        .map(|measured| measured.outcome.rps())
        .unwrap_or(0.0);
    let find = |scenario: Scenario| {
        results.iter().find(|measured| measured.scenario == Some(scenario)).map(|measured| &measured.outcome)
    };
    let share_and_p99 = |target: &'static str, scenario, share: f64, p99_ms: f64| {
        judge(target, find(scenario), |outcome| {
            let ratio = if echo_rps > 0.0 { outcome.rps() / echo_rps } else { 0.0 };
            (
                format!(
                    "{:.1}% of echo ({:.0}/s), p99 {:.2} ms",
                    100.0 * ratio,
                    outcome.rps(),
                    outcome.ms_at(0.99)
                ),
                ratio >= share && outcome.ms_at(0.99) <= p99_ms,
            )
        })
    };
    let direct = find(Scenario::GetLocal);
    let paced_direct = find(Scenario::PacedDirect);
    let added = |target: &'static str, quantile: f64, label: &str, limit_ms: f64| {
        judge(target, find(Scenario::PacedGateway), |gateway| match paced_direct {
            Some(direct) => {
                let added = gateway.ms_at(quantile) - direct.ms_at(quantile);
                (
                    format!(
                        "{label} {:.2} ms via gateway vs {:.2} ms direct: {added:+.2} ms{}",
                        gateway.ms_at(quantile),
                        direct.ms_at(quantile),
                        failed_direct(direct)
                    ),
                    added <= limit_ms && direct.error_count() == 0,
                )
            }
            None => ("the direct paced run did not run".to_owned(), false),
        })
    };
    vec![
        share_and_p99("GetContact, in-process hit: ≥ 65% of echo, p99 ≤ 2 ms", Scenario::GetLocal, 0.65, 2.0),
        judge(
            "GetContact via gateway, in-process hit: ≥ 50% of direct requests/s",
            find(Scenario::GatewayGet),
            |gateway| match direct {
                Some(direct) => {
                    let ratio = if direct.rps() > 0.0 { gateway.rps() / direct.rps() } else { 0.0 };
                    (
                        format!(
                            "{:.1}% of direct ({:.0}/s vs {:.0}/s){}{}",
                            100.0 * ratio,
                            gateway.rps(),
                            direct.rps(),
                            cpu_comparison(gateway, direct),
                            failed_direct(direct)
                        ),
                        ratio >= 0.5 && direct.error_count() == 0,
                    )
                }
                None => ("the direct in-process hit did not run".to_owned(), false),
            },
        ),
        added("GetContact via gateway at half the maximum load: added p50 ≤ 0.3 ms", 0.5, "p50", 0.3),
        added("GetContact via gateway at half the maximum load: added p99 ≤ 1 ms", 0.99, "p99", 1.0),
        share_and_p99("GetContact, Redis only: ≥ 25% of echo, p99 ≤ 5 ms", Scenario::GetRedis, 0.25, 5.0),
        share_and_p99(
            "GetContact, PostgreSQL only: ≥ 10% of echo, p99 ≤ 10 ms",
            Scenario::GetPostgres,
            0.10,
            10.0,
        ),
        judge("SearchContacts over 100,000 contacts: p95 ≤ 30 ms", find(Scenario::Search), |outcome| {
            (format!("p95 {:.2} ms", outcome.ms_at(0.95)), outcome.ms_at(0.95) <= 30.0)
        }),
        judge("CreateContact: ≥ 2,000/s", find(Scenario::Create), |outcome| {
            (format!("{:.0}/s", outcome.rps()), outcome.rps() >= 2000.0)
        }),
        forecast("GetForecast by owner over 200,000 deals: p95 ≤ 150 ms", find(Scenario::ForecastOwner)),
        forecast("GetForecast by month over 200,000 deals: p95 ≤ 150 ms", find(Scenario::ForecastMonth)),
        judge("MoveDealStage: ≥ 1,500/s", find(Scenario::MoveStage), |outcome| {
            let ratio = if echo_rps > 0.0 { outcome.rps() / echo_rps } else { 0.0 };
            (
                format!(
                    "{:.0}/s ({:.1}% of echo), p99 {:.2} ms",
                    outcome.rps(),
                    100.0 * ratio,
                    outcome.ms_at(0.99)
                ),
                outcome.rps() >= 1500.0,
            )
        }),
        judge(
            "GetCustomer360 via gateway, all sections: p99 ≤ 15 ms",
            find(Scenario::Customer360),
            |outcome| match outcome.ok() {
                0 => ("no successful calls".to_owned(), false),
                _ => (
                    format!("p99 {:.2} ms ({:.0}/s)", outcome.ms_at(0.99), outcome.rps()),
                    outcome.ms_at(0.99) <= 15.0,
                ),
            },
        ),
        judge("Agent queue over 200,000 cases: p95 ≤ 20 ms", find(Scenario::SupportQueue), |outcome| {
            (
                format!("p95 {:.2} ms ({:.0}/s)", outcome.ms_at(0.95), outcome.rps()),
                outcome.ok() > 0 && outcome.ms_at(0.95) <= 20.0,
            )
        }),
        judge(
            "SuggestArticles over 10,000 articles: p95 ≤ 20 ms",
            find(Scenario::SupportSuggest),
            |outcome| {
                (
                    format!("p95 {:.2} ms ({:.0}/s)", outcome.ms_at(0.95), outcome.rps()),
                    outcome.ok() > 0 && outcome.ms_at(0.95) <= 20.0,
                )
            },
        ),
        judge("IngestEmail: ≥ 500 messages/s", find(Scenario::SupportIngest), |outcome| {
            (format!("{:.0}/s, p95 {:.2} ms", outcome.rps(), outcome.ms_at(0.95)), outcome.rps() >= 500.0)
        }),
        judge(
            "GetTimeline among 1,000,000 activities and 1,000,000 events: p95 ≤ 15 ms",
            find(Scenario::Timeline),
            |outcome| {
                (
                    format!("p95 {:.2} ms ({:.0}/s)", outcome.ms_at(0.95), outcome.rps()),
                    outcome.ok() > 0 && outcome.ms_at(0.95) <= 15.0,
                )
            },
        ),
        judge("ListMyTasks with 200,000 open tasks: p95 ≤ 10 ms", find(Scenario::MyTasks), |outcome| {
            (
                format!("p95 {:.2} ms ({:.0}/s)", outcome.ms_at(0.95), outcome.rps()),
                outcome.ok() > 0 && outcome.ms_at(0.95) <= 10.0,
            )
        }),
        judge("LogActivity: ≥ 3,000/s", find(Scenario::LogActivity), |outcome| {
            (format!("{:.0}/s, p95 {:.2} ms", outcome.rps(), outcome.ms_at(0.95)), outcome.rps() >= 3000.0)
        }),
    ]
}

/// A GetForecast target: p95 ≤ 150 ms (of OK calls; none OK is missed).
fn forecast(target: &'static str, outcome: Option<&Outcome>) -> Verdict {
    judge(target, outcome, |outcome| match outcome.ok() {
        0 => ("no successful calls".to_owned(), false),
        _ => (
            format!(
                "p95 {:.2} ms (p50 {:.2}, p99 {:.2}; {:.1} calls/s)",
                outcome.ms_at(0.95),
                outcome.ms_at(0.5),
                outcome.ms_at(0.99),
                outcome.rps()
            ),
            outcome.ms_at(0.95) <= 150.0,
        ),
    })
}

/// "; server CPU G vs D µs per call" when both runs measured their CPU.
fn cpu_comparison(gateway: &Outcome, direct: &Outcome) -> String {
    match (gateway.server_cpu_us_per_call(), direct.server_cpu_us_per_call()) {
        (Some(gateway), Some(direct)) => format!("; server CPU {gateway:.0} vs {direct:.0} µs per call"),
        _ => String::new(),
    }
}

/// "; N failed direct calls" when the direct run behind a comparison had
/// failures (they make the comparison missed).
fn failed_direct(direct: &Outcome) -> String {
    match direct.error_count() {
        0 => String::new(),
        failed => format!("; {failed} failed direct calls"),
    }
}

fn judge(
    target: &'static str,
    outcome: Option<&Outcome>,
    check: impl Fn(&Outcome) -> (String, bool),
) -> Verdict {
    let Some(outcome) = outcome else {
        return Verdict { target, measured: "not run".to_owned(), verdict: "not run" };
    };
    let (mut measured, met) = check(outcome);
    let failed = outcome.error_count();
    if failed > 0 {
        let _ = write!(measured, "; {failed} failed calls");
    }
    Verdict { target, measured, verdict: if met && failed == 0 { "met" } else { "missed" } }
}

/// The targets section as a table.
pub fn targets(results: &[Measured]) -> String {
    let mut out = String::from("| Target | Measured | Verdict |\n|---|---|---|\n");
    for verdict in verdicts(results) {
        let _ = writeln!(out, "| {} | {} | **{}** |", verdict.target, verdict.measured, verdict.verdict);
    }
    if let Some(echo) = results.iter().find(|measured| measured.scenario.is_none()) {
        let _ = writeln!(
            out,
            "\nFor comparison, the echo ceiling's own latency at the same concurrency: \
             p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms. A p99 target below the ceiling's \
             p99 cannot be met on this machine at this concurrency, whatever the service \
             does.",
            echo.outcome.ms_at(0.50),
            echo.outcome.ms_at(0.95),
            echo.outcome.ms_at(0.99)
        );
    }
    out
}

/// Cache-tier counters and error samples, one bullet each.
pub fn observations(results: &[Measured]) -> String {
    let mut out = String::new();
    for measured in results {
        if let Some(tiers) = measured.tiers {
            let _ = writeln!(
                out,
                "- {}: served {} from the in-process tier, {} from Redis, {} loaded from \
                 PostgreSQL; {} Redis fallbacks (warm-up and measurement).",
                measured.title, tiers.local_hits, tiers.redis_hits, tiers.misses, tiers.redis_fallbacks
            );
        }
        if let Some(checkpoints) = measured.checkpoints.filter(|count| *count > 0) {
            let _ =
                writeln!(out, "- {}: PostgreSQL ran {checkpoints} checkpoint(s) meanwhile.", measured.title);
        }
        for note in &measured.notes {
            let _ = writeln!(out, "- {}: {note}", measured.title);
        }
        for (code, message) in &measured.outcome.error_samples {
            let _ = writeln!(out, "- {}: a {code} said: {}", measured.title, message.replace('|', "\\|"));
        }
    }
    out
}

/// The whole BENCHMARKS.md.
pub fn document(context: &Context, results: &[Measured]) -> String {
    let mut out = String::from(
        "# Benchmarks\n\n\
         Written by `make bench` (`cargo run --release -p rapport-bench`); re-run it to \
         refresh this file rather than editing it.\n\n",
    );
    let _ = writeln!(out, "- Date: {}", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"));
    let _ = writeln!(out, "- Machine: {}", machine());
    let _ = writeln!(out, "- Commit: {}", commit());
    out.push_str("\n## Settings\n\n");
    for line in &context.settings {
        let _ = writeln!(out, "- {line}");
    }
    out.push_str("\n## Results\n\n");
    out.push_str(&table(results));
    out.push_str(
        "\nRequests/s counts OK calls completed in the measured window (paced rows: \
         scheduled in it); latencies are of OK calls, client-side (request built to \
         response decoded; paced rows: from the call's scheduled start); every other \
         status is counted under Errors by code.\n",
    );
    out.push_str("\n## Targets\n\n");
    out.push_str(&targets(results));
    out.push_str("\n## Observations\n\n");
    for line in &context.facts {
        let _ = writeln!(out, "- {line}");
    }
    out.push_str(&observations(results));
    out
}

/// Cores, CPU model and memory of this machine.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|cores| cores.get().to_string())
        .unwrap_or_else(|_| "?".to_owned());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("MemTotal:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown memory".to_owned());
    format!("{cores} cores (available parallelism), {cpu}, {memory} memory")
}

/// The short commit and whether the working tree differs from it.
pub fn commit() -> String {
    let root = default_output().parent().map(Path::to_path_buf).unwrap_or_default();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(&root)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(head) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(changes) if !changes.is_empty() => {
                format!("{head} (with uncommitted changes)")
            }
            _ => head,
        },
        None => "unknown (not a git checkout)".to_owned(),
    }
}
