//! The benchmark: request cycles through redis-sessions and through a naive baseline, in one
//! run against one Redis, with throughput, latency percentiles and what each costs Redis.
//!
//! `cargo bench --bench sessions` (defaults below; `-- --help` lists the flags).

mod naive;
mod ours;
mod profile;
mod report;
mod server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use redis_sessions::{Config, Encryption, EncryptionKey, SessionStore};

use crate::naive::Naive;
use crate::profile::Profile;
use crate::report::{Phase, Report};
use crate::server::{client_cpu_seconds, own_server, Counters};

/// Benchmark redis-sessions against a naive store (blob, GET+PEXPIRE per request).
#[derive(Parser, Debug, Clone)]
pub struct Args {
    /// Sessions created before the run.
    #[arg(long, default_value_t = 10_000)]
    pub sessions: usize,
    /// Request cycles per store.
    #[arg(long, default_value_t = 200_000)]
    pub cycles: u64,
    /// Concurrent tasks.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Rounds: the stores take turns, each running cycles/rounds per round. With ten, the
    /// cycles/s ratio of repeated runs here spread over about 0.1x; with four, over 0.2x.
    #[arg(long, default_value_t = 10)]
    pub rounds: u64,
    /// Percent of cycles that save one changed attribute.
    #[arg(long, default_value_t = 10.0)]
    pub save_percent: f64,
    /// Percent of cycles that regenerate the session.
    #[arg(long, default_value_t = 1.0)]
    pub regenerate_percent: f64,
    /// Percent of cycles that push, then pop, a flash message.
    #[arg(long, default_value_t = 2.0)]
    pub flash_percent: f64,
    /// redis-sessions' pool size (shared connections).
    #[arg(long, default_value_t = 2)]
    pub pool: usize,
    /// The baseline's multiplexed connections, taken in turn (1: what most stores do).
    #[arg(long, default_value_t = 1)]
    pub baseline_connections: usize,
    /// redis-sessions reads only the attributes a request uses (`load_only`) instead of all.
    #[arg(long)]
    pub partial: bool,
    /// Compare redis-sessions with encryption at rest (one key, AES-256-GCM) against
    /// redis-sessions without it, instead of against the naive baseline.
    #[arg(long, conflicts_with = "only")]
    pub encrypted: bool,
    /// Run only one store (`ours`, `baseline`, or `encrypted`: ours with encryption at rest),
    /// e.g. under a profiler.
    #[arg(long, value_parser = ["ours", "baseline", "encrypted"])]
    pub only: Option<String>,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Accepted for `cargo bench`, which passes it.
    #[arg(long, hide = true)]
    pub bench: bool,
}

/// What one cycle does.
#[derive(Clone, Copy)]
enum Kind {
    Read,
    Save,
    Regenerate,
    Flash,
}

impl Args {
    fn pick(&self, rng: &mut impl Rng) -> Kind {
        let r: f64 = rng.random_range(0.0..100.0);
        if r < self.regenerate_percent {
            Kind::Regenerate
        } else if r < self.regenerate_percent + self.flash_percent {
            Kind::Flash
        } else if r < self.regenerate_percent + self.flash_percent + self.save_percent {
            Kind::Save
        } else {
            Kind::Read
        }
    }
}

/// The two stores behind one interface.
#[derive(Clone)]
enum Store {
    Ours(SessionStore),
    Naive(Naive),
}

type Outcome = Result<bool, String>;

impl Store {
    async fn create(&self, profile: &Profile) -> Result<String, String> {
        match self {
            Store::Ours(store) => {
                let mut session = store.create().await.map_err(|e| e.to_string())?;
                profile.insert_into(&mut session).map_err(|e| e.to_string())?;
                store.save(&mut session).await.map_err(|e| e.to_string())?;
                Ok(session.token().expose().to_owned())
            }
            Store::Naive(naive) => naive.create(profile).await.map_err(|e| e.to_string()),
        }
    }

    /// Runs one cycle of `kind` on the session in `slot`; false when it was not there.
    async fn cycle(&self, kind: Kind, slot: &Mutex<String>, n: u64, partial: bool) -> Outcome {
        let token = slot.lock().map_err(|e| e.to_string())?.clone();
        let err = |e: &dyn std::fmt::Display| e.to_string();
        match (self, kind) {
            (Store::Ours(s), Kind::Read) => {
                ours::read_request(s, &token, partial).await.map_err(|e| err(&e))
            }
            (Store::Ours(s), Kind::Save) => {
                ours::save_request(s, &token, n, partial).await.map_err(|e| err(&e))
            }
            (Store::Ours(s), Kind::Flash) => {
                ours::flash_request(s, &token).await.map_err(|e| err(&e))
            }
            (Store::Ours(s), Kind::Regenerate) => {
                let new = ours::regenerate_request(s, &token).await.map_err(|e| err(&e))?;
                Ok(replace(slot, new))
            }
            (Store::Naive(s), Kind::Read) => s.read_request(&token).await.map_err(|e| err(&e)),
            (Store::Naive(s), Kind::Save) => s.save_request(&token, n).await.map_err(|e| err(&e)),
            (Store::Naive(s), Kind::Flash) => s.flash_request(&token).await.map_err(|e| err(&e)),
            (Store::Naive(s), Kind::Regenerate) => {
                let new = s.regenerate_request(&token).await.map_err(|e| err(&e))?;
                Ok(replace(slot, new))
            }
        }
    }
}

fn replace(slot: &Mutex<String>, new: Option<String>) -> bool {
    match (new, slot.lock()) {
        (Some(new), Ok(mut token)) => {
            *token = new;
            true
        }
        _ => false,
    }
}

/// Creates the sessions; returns their tokens and the memory they took per session.
async fn populate(
    store: &Store,
    args: &Args,
    conn: &mut redis::aio::MultiplexedConnection,
) -> (Arc<Vec<Mutex<String>>>, f64) {
    let before = Counters::read(conn).await.expect("INFO");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut tokens = Vec::with_capacity(args.sessions);
    for _ in 0..args.sessions {
        tokens.push(Mutex::new(store.create(&Profile::random(&mut rng)).await.expect("create")));
    }
    let after = Counters::read(conn).await.expect("INFO");
    (Arc::new(tokens), (after.used_memory - before.used_memory) / args.sessions as f64)
}

/// What the rounds of one store add up to.
struct Totals {
    latency: Histogram<u64>,
    missed: u64,
    elapsed: Duration,
    client_cpu: f64,
    redis: Counters,
    /// Rounds run so far; it seeds the next round's plan, so both stores run the same cycles.
    rounds: u64,
    /// Cycles/s of each round, in order.
    per_round: Vec<f64>,
}

/// Round `round`'s cycles: the kind and the session slot of each, drawn before the round from
/// a generator seeded with the round's number, so both stores run the very same cycles (cycle
/// `n` is the same for both, whichever task takes it) and no drawing is timed.
fn plan(args: &Args, round: u64, cycles: u64, sessions: usize) -> Arc<[(Kind, usize)]> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(round);
    (0..cycles).map(|_| (args.pick(&mut rng), rng.random_range(0..sessions))).collect()
}

/// Runs `cycles` cycles over `concurrency` tasks, adding what they cost to `totals`.
async fn round(
    store: &Store,
    tokens: &Arc<Vec<Mutex<String>>>,
    cycles: u64,
    args: &Args,
    bar: &ProgressBar,
    conn: &mut redis::aio::MultiplexedConnection,
    totals: &mut Totals,
) {
    let plan = plan(args, totals.rounds, cycles, tokens.len());
    totals.rounds += 1;
    let before = Counters::read(conn).await.expect("INFO");
    let (cpu_before, started) = (client_cpu_seconds(), Instant::now());
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (store, tokens, next, bar, plan, partial) = (
                store.clone(),
                tokens.clone(),
                next.clone(),
                bar.clone(),
                plan.clone(),
                args.partial,
            );
            tokio::spawn(async move {
                let mut histogram =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
                let mut misses = 0u64;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(kind, slot)) = plan.get(n as usize) else {
                        return (histogram, misses);
                    };
                    let start = Instant::now();
                    let found =
                        store.cycle(kind, &tokens[slot], n, partial).await.expect("cycle failed");
                    let _ = histogram.record(start.elapsed().as_micros() as u64);
                    misses += u64::from(!found);
                    bar.inc(1);
                }
            })
        })
        .collect();
    for task in tasks {
        let (histogram, missed) = task.await.expect("task");
        totals.latency.add(&histogram).expect("merge");
        totals.missed += missed;
    }
    let took = started.elapsed();
    totals.elapsed += took;
    totals.per_round.push(cycles as f64 / took.as_secs_f64());
    totals.client_cpu += client_cpu_seconds() - cpu_before;
    tokio::time::sleep(Duration::from_millis(1100)).await; // let everysec write the AOF tail
    let after = Counters::read(conn).await.expect("INFO");
    totals.redis.add_delta(&before, &after);
}

/// The stores, measured in alternating rounds so that drift in the machine's speed (other
/// load, CPU frequency) falls on all alike.
async fn run_stores(
    stores: Vec<(&'static str, Store)>,
    args: &Args,
    conn: &mut redis::aio::MultiplexedConnection,
) -> Vec<Phase> {
    let mut prepared = Vec::new();
    for (name, store) in stores {
        let (tokens, memory) = populate(&store, args, conn).await;
        let totals = Totals {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram"),
            missed: 0,
            elapsed: Duration::ZERO,
            client_cpu: 0.0,
            redis: Counters::default(),
            rounds: 0,
            per_round: Vec::new(),
        };
        prepared.push((name, store, tokens, memory, totals, progress(name, args)));
    }
    let per_round = args.cycles / args.rounds.max(1);
    for number in 0..args.rounds.max(1) {
        // ABBA: every other round the stores go in the other order, so that whatever the
        // store before leaves behind (its AOF's fsync, a cooler or warmer CPU) falls on both.
        if number % 2 == 1 {
            prepared.reverse();
        }
        for (_, store, tokens, _, totals, bar) in prepared.iter_mut() {
            round(store, tokens, per_round, args, bar, conn, totals).await;
        }
        if number % 2 == 1 {
            prepared.reverse();
        }
    }
    let cycles = per_round * args.rounds.max(1);
    prepared
        .into_iter()
        .map(|(name, _, _, memory, totals, bar)| {
            bar.finish_and_clear();
            let mut phase = Phase::new(
                name,
                cycles,
                &totals.latency,
                totals.elapsed,
                totals.missed,
                totals.client_cpu,
                memory,
                &totals.redis,
            );
            phase.round_requests_per_sec = totals.per_round;
            phase
        })
        .collect()
}

fn progress(name: &str, args: &Args) -> ProgressBar {
    if args.quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(args.cycles / args.rounds.max(1) * args.rounds.max(1));
    let style =
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .expect("template")
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(name.to_owned());
    bar
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let (own, url) = match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => (None, url),
        _ => {
            let server = own_server().expect("start redis-server");
            let url = server.url();
            (Some(server), url)
        }
    };
    let mut conn = redis::Client::open(url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let config =
        Config::from_url(url.clone()).with_key_prefix("ours:").with_pool_max_size(args.pool);
    let ours = SessionStore::connect(config.clone()).await.expect("store");
    let naive =
        Naive::new(&url, config.idle_timeout, args.baseline_connections).await.expect("naive");

    let mut labels = ["baseline (naive)", "redis-sessions", "ours / baseline"];
    // The same store under a prefix of its own (as long as ours, so that keys cost the same),
    // sealing its values under a random key.
    let key = EncryptionKey::from_bytes(1, rand::random());
    let sealed = config.clone().with_key_prefix("seal:").with_encryption(Encryption::new(key));
    let stores = match args.only.as_deref() {
        Some("ours") => vec![("ours", Store::Ours(ours))],
        Some("baseline") => vec![("baseline", Store::Naive(naive))],
        Some(_) => {
            let sealed = SessionStore::connect(sealed).await.expect("store");
            vec![("encrypted", Store::Ours(sealed))]
        }
        _ if args.encrypted => {
            let sealed = SessionStore::connect(sealed).await.expect("store");
            labels = ["unencrypted", "encrypted", "encrypted / unencrypted"];
            vec![("unencrypted", Store::Ours(ours)), ("encrypted", Store::Ours(sealed))]
        }
        _ => vec![("baseline", Store::Naive(naive)), ("ours", Store::Ours(ours))],
    };
    let phases = run_stores(stores, &args, &mut conn).await;
    if let [alone] = &phases[..] {
        // One store alone (under a profiler, say): its figures, nothing to compare with.
        println!("{}", serde_json::to_string(alone).unwrap_or_default());
        return;
    }
    let [baseline, measured] = <[Phase; 2]>::try_from(phases).expect("two phases");
    let ceiling = own.as_ref().filter(|_| !args.encrypted);
    let ceiling = ceiling.and_then(|server| report::ceiling(server.port(), &args, &config));
    Report { args: args.clone(), labels, baseline, ours: measured, ceiling }.print();
}
