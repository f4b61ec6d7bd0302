//! The benchmark: request cycles through redis-sessions and through a naive baseline, in one
//! run against one Redis, with throughput, latency percentiles and what each costs Redis.
//!
//! `cargo bench --bench sessions` (defaults below; `-- --help` lists the flags).

mod aging;
mod naive;
mod ours;
mod profile;
mod report;
mod server;
mod stores;
mod users;
#[cfg(feature = "stateless")]
mod web;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use redis_sessions::{
    Config, Encryption, EncryptionKey, LocalCache, Rotation, SessionStore, Tracking,
};

use crate::naive::Naive;
use crate::profile::Profile;
use crate::report::{Phase, Report};
use crate::server::{client_cpu_seconds, own_server, Counters};
use crate::stores::{Handlers, Kind, Store};

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
    /// Read cycles decode every attribute (the baseline always decodes its whole blob), not
    /// only the user and the CSRF token.
    #[arg(long)]
    pub read_all: bool,
    /// redis-sessions' touch threshold (0: every load slides the expiry).
    #[arg(long, default_value_t = 0.1)]
    pub touch_threshold: f64,
    /// Percent of cycles whose session comes back with its touch due (aging.rs).
    #[arg(long, default_value_t = 0.0)]
    pub touch_due_percent: f64,
    /// App instances: each store runs as this many, on connections of their own, and each
    /// cycle runs on one drawn at random.
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// redis-sessions with its local cache on (`LocalCache` defaults), in this tracking mode
    /// (`Tracking::Broadcast` or `Tracking::Reads`).
    #[arg(long, value_parser = ["broadcast", "reads"])]
    pub cache: Option<String>,
    /// Start the benchmark's server with Redis' default hash encoding limits, instead of
    /// `hash-max-listpack-value 1024`.
    #[arg(long)]
    pub server_defaults: bool,
    /// Compare redis-sessions with encryption at rest (one key, AES-256-GCM) against
    /// redis-sessions without it, instead of against the naive baseline.
    #[arg(long, conflicts_with = "only")]
    pub encrypted: bool,
    /// Compare redis-sessions with every session logged in to a user (bound, in its user's
    /// index, rotation on) against redis-sessions with anonymous sessions.
    #[arg(long, conflicts_with_all = ["only", "encrypted"])]
    pub bound: bool,
    /// Whole requests through the web layer instead: sessions in Redis against stateless
    /// sessions in signed cookies (needs `--features stateless`).
    #[arg(long, conflicts_with_all = ["only", "encrypted", "bound"])]
    pub web: bool,
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
    /// Sessions that came back with their touch due (aging.rs).
    touch_due: u64,
    /// Loads the local cache served, and those it sent to Redis.
    hits: u64,
    misses: u64,
}

/// Round `round`'s cycles: the kind, the session slot and the app instance of each, drawn before the round from
/// a generator seeded with the round's number, so both stores run the very same cycles (cycle
/// `n` is the same for both, whichever task takes it) and no drawing is timed.
fn plan(args: &Args, round: u64, cycles: u64, sessions: usize) -> Arc<[(Kind, usize, usize)]> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(round);
    let draw = |rng: &mut rand::rngs::StdRng| {
        let (kind, slot) = (args.pick(rng), rng.random_range(0..sessions));
        // Drawn only with several instances, so that one instance's plans stay as they were.
        let instance = if args.instances > 1 { rng.random_range(0..args.instances) } else { 0 };
        (kind, slot, instance)
    };
    (0..cycles).map(|_| draw(&mut rng)).collect()
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
    if let (Store::Ours(stores, _), true) = (store, args.touch_due_percent > 0.0) {
        let slots = aging::choose(&plan, args.touch_due_percent, totals.rounds);
        let config = stores[0].config();
        totals.touch_due += aging::age(conn, config, tokens, &slots).await.expect("aging");
    }
    let cached_before = cache_counts(store);
    totals.rounds += 1;
    let before = Counters::read(conn).await.expect("INFO");
    let (cpu_before, started) = (client_cpu_seconds(), Instant::now());
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (store, tokens, next, bar, plan) =
                (store.clone(), tokens.clone(), next.clone(), bar.clone(), plan.clone());
            let handlers = Handlers { partial: args.partial, read_all: args.read_all };
            tokio::spawn(async move {
                let mut histogram =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
                let mut misses = 0u64;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(kind, slot, instance)) = plan.get(n as usize) else {
                        return (histogram, misses);
                    };
                    let start = Instant::now();
                    let found = store
                        .cycle(kind, &tokens[slot], n, instance, handlers)
                        .await
                        .expect("cycle failed");
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
    let cached_after = cache_counts(store);
    totals.hits += cached_after.0 - cached_before.0;
    totals.misses += cached_after.1 - cached_before.1;
}

/// Loads served from memory and loads that went to Redis so far, over every instance with a
/// local cache: (hits, misses).
fn cache_counts(store: &Store) -> (u64, u64) {
    let Store::Ours(stores, _) = store else { return (0, 0) };
    let stats = stores.iter().filter_map(SessionStore::cache_stats);
    stats.fold((0, 0), |(hits, misses), s| (hits + s.hits, misses + s.misses))
}

/// Bytes each session held in a local cache costs, over every instance (`None` without one).
fn cached_bytes_per_session(store: &Store) -> Option<f64> {
    let Store::Ours(stores, _) = store else { return None };
    let stats: Vec<_> = stores.iter().filter_map(SessionStore::cache_stats).collect();
    let entries: usize = stats.iter().map(|s| s.entries).sum();
    let bytes: usize = stats.iter().map(|s| s.bytes).sum();
    (entries > 0).then(|| bytes as f64 / entries as f64)
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
            touch_due: 0,
            hits: 0,
            misses: 0,
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
        .map(|(name, store, _, memory, totals, bar)| {
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
            phase.touch_due_percent = totals.touch_due as f64 * 100.0 / cycles as f64;
            let loads = totals.hits + totals.misses;
            phase.cache_hit_percent =
                (loads > 0).then(|| totals.hits as f64 * 100.0 / loads as f64);
            phase.cached_bytes_per_session = cached_bytes_per_session(&store);
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
            let server = own_server(args.server_defaults).expect("start redis-server");
            let url = server.url();
            (Some(server), url)
        }
    };
    let mut conn = redis::Client::open(url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    if args.web {
        #[cfg(feature = "stateless")]
        web::run(&url, &args, &mut conn).await;
        #[cfg(not(feature = "stateless"))]
        eprintln!("--web needs: cargo bench --bench sessions --features stateless -- --web");
        return;
    }
    let mut config = Config::from_url(url.clone())
        .with_key_prefix("ours:")
        .with_pool_max_size(args.pool)
        .with_touch_threshold(args.touch_threshold);
    if let Some(mode) = args.cache.as_deref() {
        let tracking = if mode == "reads" { Tracking::Reads } else { Tracking::Broadcast };
        config = config.with_local_cache(LocalCache::default().with_tracking(tracking));
    }
    let ours = Store::Ours(instances(&config, args.instances).await, false);
    let mut naive = Vec::new();
    for _ in 0..args.instances.max(1) {
        let idle = config.idle_timeout;
        naive.push(Naive::new(&url, idle, args.baseline_connections).await.expect("naive"));
    }
    let naive = Store::Naive(naive.into());

    let mut labels = ["baseline (naive)", "redis-sessions", "ours / baseline"];
    // The same store under a prefix of its own (as long as ours, so that keys cost the same),
    // sealing its values under a random key.
    let key = EncryptionKey::from_bytes(1, rand::random());
    let sealed = config.clone().with_key_prefix("seal:").with_encryption(Encryption::new(key));
    // The same store under a prefix of its own (as long as ours), its sessions logged in to
    // users, with rotation on (each token rotated after 15 minutes of use: none in a run).
    let users = config.clone().with_key_prefix("user:").with_rotation(Rotation::default());
    let stores = match args.only.as_deref() {
        Some("ours") => vec![("ours", ours)],
        Some("baseline") => vec![("baseline", naive)],
        Some(_) => {
            vec![("encrypted", Store::Ours(instances(&sealed, args.instances).await, false))]
        }
        _ if args.encrypted => {
            let sealed = Store::Ours(instances(&sealed, args.instances).await, false);
            labels = ["unencrypted", "encrypted", "encrypted / unencrypted"];
            vec![("unencrypted", ours), ("encrypted", sealed)]
        }
        _ if args.bound => {
            let bound = Store::Ours(instances(&users, args.instances).await, true);
            labels = ["anonymous", "bound", "bound / anonymous"];
            vec![("anonymous", ours), ("bound", bound)]
        }
        _ => vec![("baseline", naive), ("ours", ours)],
    };
    let phases = run_stores(stores, &args, &mut conn).await;
    if let [alone] = &phases[..] {
        // One store alone (under a profiler, say): its figures, nothing to compare with.
        println!("{}", serde_json::to_string(alone).unwrap_or_default());
        return;
    }
    let [baseline, measured] = <[Phase; 2]>::try_from(phases).expect("two phases");
    if args.bound {
        let (anonymous, bound) = (instances(&config, 1).await, instances(&users, 1).await);
        users::report(&anonymous[0], &bound[0]).await;
    }
    let ceiling = own.as_ref().filter(|_| !args.encrypted && !args.bound);
    let ceiling = ceiling.and_then(|server| report::ceiling(server.port(), &args, &config));
    Report { args: args.clone(), labels, baseline, ours: measured, ceiling }.print();
}

/// `count` app instances of redis-sessions, each with its own connections (and cache).
async fn instances(config: &Config, count: usize) -> Arc<[SessionStore]> {
    let mut stores = Vec::new();
    for _ in 0..count.max(1) {
        stores.push(SessionStore::connect(config.clone()).await.expect("store"));
    }
    stores.into()
}
