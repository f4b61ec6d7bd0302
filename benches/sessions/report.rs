//! Turning counters into the report: a Markdown table, a JSON line, and the ceiling.

use std::time::Duration;

use hdrhistogram::Histogram;
use redis_sessions::Config;
use serde::Serialize;

use crate::server::{redis_benchmark, Counters};
use crate::Args;

/// One store's figures.
#[derive(Serialize, Debug)]
pub struct Phase {
    pub name: &'static str,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub missed: u64,
    /// Every command Redis ran, those the scripts call included.
    pub server_commands_per_request: f64,
    pub redis_cpu_us_per_request: f64,
    pub client_cpu_us_per_request: f64,
    pub aof_bytes_per_request: f64,
    pub memory_bytes_per_session: f64,
    /// Redis time per request by command, µs (commands inside scripts counted separately).
    pub redis_us_by_command: Vec<(String, f64)>,
    /// Cycles/s of each round, in order (the stores alternate rounds).
    pub round_requests_per_sec: Vec<f64>,
    /// Percent of cycles whose session came back with its touch due (aging.rs).
    pub touch_due_percent: f64,
    /// Percent of loads the local cache served, when it is on.
    pub cache_hit_percent: Option<f64>,
    /// Bytes a session held in the local cache costs, as the cache counts them.
    pub cached_bytes_per_session: Option<f64>,
}

impl Phase {
    /// The figures of `cycles` cycles that took `elapsed` in all, from totals of deltas.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &'static str,
        cycles: u64,
        latency: &Histogram<u64>,
        elapsed: Duration,
        missed: u64,
        client_cpu: f64,
        memory_per_session: f64,
        redis: &Counters,
    ) -> Self {
        let n = cycles as f64;
        let none = Counters::default();
        let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
        Phase {
            name,
            requests_per_sec: n / elapsed.as_secs_f64(),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            missed,
            server_commands_per_request: redis.commands / n,
            redis_cpu_us_per_request: redis.cpu_seconds * 1e6 / n,
            client_cpu_us_per_request: client_cpu * 1e6 / n,
            aof_bytes_per_request: if redis.aof_rewrites > 0.0 {
                eprintln!("{name}: the AOF was rewritten during a round; AOF bytes not measured");
                f64::NAN
            } else {
                redis.aof_bytes / n
            },
            memory_bytes_per_session: memory_per_session,
            redis_us_by_command: redis
                .usec_since(&none)
                .into_iter()
                .map(|(c, us)| (c, us / n))
                .take(8)
                .collect(),
            round_requests_per_sec: Vec::new(),
            touch_due_percent: 0.0,
            cache_hit_percent: None,
            cached_bytes_per_session: None,
        }
    }
}

/// Everything one run measured.
#[derive(Serialize, Debug)]
pub struct Report {
    #[serde(skip)]
    pub args: Args,
    /// The table's column heads: the baseline, the measured store, their ratio.
    #[serde(skip)]
    pub labels: [&'static str; 3],
    pub baseline: Phase,
    pub ours: Phase,
    /// redis-benchmark running get-and-touch with EVALSHA at the same concurrency, requests/s.
    pub ceiling: Option<f64>,
}

impl Report {
    pub fn print(&self) {
        let a = &self.args;
        println!(
            "\n{} sessions, {} cycles per store, {} tasks, {} app instance(s); {}% save, {}% \
             regenerate, {}% flash; touch threshold {}, {:.1}% of cycles with a touch due; \
             reads decode {}; cache {}; {}\n",
            a.sessions,
            a.cycles,
            a.concurrency,
            a.instances,
            a.save_percent,
            a.regenerate_percent,
            a.flash_percent,
            a.touch_threshold,
            self.ours.touch_due_percent,
            if a.read_all { "every attribute" } else { "two attributes" },
            a.cache.as_deref().unwrap_or("off"),
            if a.server_defaults {
                "Redis' default hash limits"
            } else {
                "hash-max-listpack-value 1024"
            },
        );
        let [baseline, measured, ratio] = self.labels;
        println!("| | {baseline} | {measured} | {ratio} |");
        println!("|---|---:|---:|---:|");
        let (b, o) = (&self.baseline, &self.ours);
        row("request cycles/s", b.requests_per_sec, o.requests_per_sec, 0);
        row("p50 latency, ms", b.p50_ms, o.p50_ms, 3);
        row("p99 latency, ms", b.p99_ms, o.p99_ms, 3);
        row("p99.9 latency, ms", b.p999_ms, o.p999_ms, 3);
        row(
            "Redis commands per request (scripts' calls included)",
            b.server_commands_per_request,
            o.server_commands_per_request,
            2,
        );
        row("Redis CPU µs per request", b.redis_cpu_us_per_request, o.redis_cpu_us_per_request, 1);
        row(
            "client CPU µs per request",
            b.client_cpu_us_per_request,
            o.client_cpu_us_per_request,
            1,
        );
        row("AOF bytes per request", b.aof_bytes_per_request, o.aof_bytes_per_request, 1);
        row("memory per session, bytes", b.memory_bytes_per_session, o.memory_bytes_per_session, 0);
        if let (Some(hits), Some(bytes)) = (o.cache_hit_percent, o.cached_bytes_per_session) {
            println!("\nlocal cache: {hits:.1}% of loads served from memory, {bytes:.0} bytes per session held");
        }
        if let Some((low, median, high)) = round_ratios(b, o) {
            println!(
                "\nthroughput ratio round by round (each round's pair): median {median:.2}x, \
                 lowest {low:.2}x, highest {high:.2}x over {} rounds",
                o.round_requests_per_sec.len()
            );
        }
        if let Some(ceiling) = self.ceiling {
            println!(
                "\nceiling: redis-benchmark, EVALSHA get-and-touch, {} clients: {ceiling:.0} requests/s",
                a.concurrency
            );
        }
        for phase in [b, o] {
            let spent: Vec<String> =
                phase.redis_us_by_command.iter().map(|(c, us)| format!("{c} {us:.2}")).collect();
            println!("{}: Redis µs per request by command: {}", phase.name, spent.join(", "));
        }
        if b.missed + o.missed > 0 {
            println!("(cycles that found their session regenerated away by a concurrent cycle: baseline {}, ours {})", b.missed, o.missed);
        }
        println!("\n{}", serde_json::to_string(self).unwrap_or_default());
    }
}

/// Ours / baseline in each round (the baseline's round and ours that followed it): the lowest,
/// the median and the highest. Their spread shows how much the machine's noise moves the
/// ratio within one run; `None` with fewer than two rounds.
fn round_ratios(baseline: &Phase, ours: &Phase) -> Option<(f64, f64, f64)> {
    let pairs = baseline.round_requests_per_sec.iter().zip(&ours.round_requests_per_sec);
    let mut ratios: Vec<f64> = pairs.map(|(b, o)| o / b).collect();
    if ratios.len() < 2 {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let median = (ratios[(ratios.len() - 1) / 2] + ratios[ratios.len() / 2]) / 2.0;
    Some((ratios[0], median, ratios[ratios.len() - 1]))
}

fn row(label: &str, baseline: f64, ours: f64, decimals: usize) {
    // Two significant digits at least: an AOF ratio of 0.098 must not print as the 0.10 target.
    let ratio = match ours / baseline {
        _ if baseline <= 0.0 => "-".into(),
        r if r < 0.1 => format!("{r:.3}x"),
        r => format!("{r:.2}x"),
    };
    println!("| {label} | {baseline:.decimals$} | {ours:.decimals$} | {ratio} |");
}

/// redis-benchmark calling get-and-touch on one of our sessions, as fast as Redis can.
pub fn ceiling(port: u16, args: &Args, config: &Config) -> Option<f64> {
    let mut conn =
        redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?.get_connection().ok()?;
    // The library's script as the store sends it, helpers first.
    let source = redis_sessions::test_server::lua_source("get_and_touch")?;
    let sha: String = redis::cmd("SCRIPT").arg("LOAD").arg(source).query(&mut conn).ok()?;
    let (_, keys): (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg("ours:*")
        .arg("COUNT")
        .arg(1000)
        .query(&mut conn)
        .ok()?;
    let key = keys.first()?;
    let idle = config.idle_timeout.as_millis().to_string();
    // Whole milliseconds, rounded down, as the library sends it (Config::touch_after_ms).
    let touch =
        ((config.idle_timeout.as_millis() as f64 * config.touch_threshold) as u64).to_string();
    let requests = (args.cycles as usize).max(10_000);
    // One call first: a script that fails would be benchmarked as fast error replies.
    let mut call = redis::cmd("EVALSHA");
    call.arg(&sha).arg(1).arg(key).arg(&idle).arg(&touch).arg(0);
    let _: (i64, Vec<Vec<u8>>) = call.query(&mut conn).ok()?;
    redis_benchmark(
        port,
        args.concurrency,
        requests,
        &["EVALSHA", &sha, "1", key, &idle, &touch, "0"],
    )
}
