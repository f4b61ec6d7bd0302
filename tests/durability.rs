//! Durability with AOF: SIGKILL mid-workload, restart on the same directory, and check that
//! every acknowledged operation is there, exactly, and nothing destroyed came back.
//!
//! Each task runs sessions through a fixed plan of operations, one at a time, and stops at its
//! first error. Per session, what Redis holds after the restart must then be the state after
//! some prefix of its plan (the AOF is a prefix of the write stream); every operation that
//! returned Ok must lie inside that prefix.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_sessions::{Config, SessionStore};

#[derive(Clone, Copy, Debug)]
enum Op {
    Create,
    Save(u8),
    Flash,
    Regenerate,
    Destroy,
}

fn plan(n: usize) -> Vec<Op> {
    use Op::*;
    let mut ops = vec![Create, Save(0), Save(1), Flash, Regenerate, Save(2), Flash];
    if n.is_multiple_of(3) {
        ops.push(Destroy);
    }
    ops
}

/// One session's history as the client saw it.
struct Tracked {
    plan: Vec<Op>,
    tokens: Vec<String>,
    acked_at: Vec<Instant>,
}

/// What a token opens: attribute numbers and pending flash count.
type Seen = Option<(BTreeSet<u8>, usize)>;

/// The state after the first `p` operations: which token opens it, and what it holds.
fn simulate(plan: &[Op], p: usize) -> (Option<usize>, BTreeSet<u8>, usize) {
    let (mut alive, mut attrs, mut flash) = (None, BTreeSet::new(), 0);
    for op in &plan[..p] {
        match op {
            Op::Create => alive = Some(0),
            Op::Save(k) => drop(attrs.insert(*k)),
            Op::Flash => flash += 1,
            Op::Regenerate => alive = alive.map(|t| t + 1),
            Op::Destroy => alive = None,
        }
    }
    (alive, attrs, flash)
}

/// The longest prefix of the plan consistent with what each known token opens now.
fn applied_prefix(tracked: &Tracked, seen: &[Seen]) -> Option<usize> {
    // At most one operation past the last acknowledged one was sent: a longer prefix would
    // credit operations the kill came before (a plan ending in Destroy matches a lost session).
    let sent = (tracked.acked_at.len() + 1).min(tracked.plan.len());
    (0..=sent).rev().find(|&p| {
        let (alive, attrs, flash) = simulate(&tracked.plan, p);
        seen.iter().enumerate().all(|(t, seen)| match (alive == Some(t), seen) {
            (true, Some((a, f))) => *a == attrs && *f == flash,
            (false, None) => true,
            _ => false,
        })
    })
}

async fn run_plan(store: &SessionStore, n: usize) -> (Tracked, bool) {
    let mut tracked = Tracked { plan: plan(n), tokens: vec![], acked_at: vec![] };
    let mut session = None;
    for op in tracked.plan.clone() {
        let outcome = match (op, session.as_mut()) {
            (Op::Create, _) => store.create().await.map(|s| {
                tracked.tokens.push(s.token().expose().to_owned());
                session = Some(s);
            }),
            (Op::Save(k), Some(s)) => {
                s.insert(&format!("k{k}"), &k).expect("insert");
                store.save(s).await
            }
            (Op::Flash, Some(s)) => store.push_flash(s, "m").await,
            (Op::Regenerate, Some(s)) => {
                store.regenerate(s).await.map(|t| tracked.tokens.push(t.expose().to_owned()))
            }
            (Op::Destroy, Some(s)) => store.destroy(s).await.map(drop),
            (_, None) => unreachable!("create comes first"),
        };
        match outcome {
            Ok(()) => tracked.acked_at.push(Instant::now()),
            Err(e) => {
                assert!(e.is_unavailable(), "only the kill may fail an operation: {e:?}");
                return (tracked, false);
            }
        }
    }
    (tracked, true)
}

/// Runs 4 tasks of sessions until `stop` or their first error; returns every session tracked.
async fn workload(store: &SessionStore, stop: Arc<AtomicBool>) -> Vec<Tracked> {
    let tasks = (0..4).map(|task| {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut all = Vec::new();
            for n in (task * 100_000).. {
                let (tracked, ok) = run_plan(&store, n).await;
                all.push(tracked);
                if !ok || stop.load(Ordering::Relaxed) {
                    return all;
                }
            }
            all
        })
    });
    let mut all = Vec::new();
    for task in futures::future::join_all(tasks).await {
        all.extend(task.expect("task"));
    }
    all
}

/// What each token of each session opens now (popping the flash messages to count them).
async fn observe(store: &SessionStore, tracked: &Tracked) -> Vec<Seen> {
    let mut seen = Vec::new();
    for token in &tracked.tokens {
        let loaded = store.load_and_pop_flash(token).await.expect("load after restart");
        seen.push(loaded.map(|mut s| {
            let attrs = s.names().map(|n| n[1..].parse().expect("k<n>")).collect();
            (attrs, s.take_flash::<String>().expect("flash").len())
        }));
    }
    seen
}

struct Verdict {
    acked: usize,
    lost: usize,
    oldest_loss_before_kill: Duration,
}

async fn verify(store: &SessionStore, all: &[Tracked], killed: Instant) -> Verdict {
    let mut verdict = Verdict { acked: 0, lost: 0, oldest_loss_before_kill: Duration::ZERO };
    for tracked in all {
        let seen = observe(store, tracked).await;
        let p = applied_prefix(tracked, &seen).expect("Redis holds a state the plan never had");
        verdict.acked += tracked.acked_at.len();
        if p < tracked.acked_at.len() {
            verdict.lost += tracked.acked_at.len() - p;
            let age = killed.saturating_duration_since(tracked.acked_at[p]);
            verdict.oldest_loss_before_kill = verdict.oldest_loss_before_kill.max(age);
        }
    }
    verdict
}

fn config(redis: &support::TestRedis) -> Config {
    let ms = Duration::from_millis;
    redis.config().with_timeouts(ms(200), ms(200), ms(200))
}

/// SIGKILL after `run`, restart on the same directory, verify.
async fn kill_mid_workload(fsync: &str) -> Verdict {
    let mut redis = support::own_server(&["--appendonly", "yes", "--appendfsync", fsync]);
    let store = SessionStore::new(config(&redis)).expect("store");
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn({
        let store = store.clone();
        async move { workload(&store, stop).await }
    });
    // Longer than everysec's 2 s bound, so a loss older than the bound could show.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let killed = Instant::now();
    redis.kill();
    let all = running.await.expect("workload");
    redis.restart();
    redis.wait_loaded().await;
    // A fresh store: the workload's, whose last operations failed to connect, waits a moment
    // before it tries a slot again (src/connection/pool.rs), and the restart may be quicker than that.
    let store = SessionStore::new(config(&redis)).expect("store");
    let verdict = verify(&store, &all, killed).await;
    let sessions = all.len();
    eprintln!(
        "appendfsync {fsync}: {} acknowledged operations over {sessions} sessions, {} lost \
         (oldest lost acknowledged {:?} before the kill)",
        verdict.acked, verdict.lost, verdict.oldest_loss_before_kill
    );
    assert!(verdict.acked > 100, "the workload ran: {}", verdict.acked);
    verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appendfsync_always_loses_nothing_acknowledged_on_sigkill() {
    let verdict = kill_mid_workload("always").await;
    assert_eq!(verdict.lost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appendfsync_everysec_loses_at_most_its_window_on_sigkill() {
    let verdict = kill_mid_workload("everysec").await;
    // Redis documents one second; a slow fsync can postpone a write by up to two.
    assert!(
        verdict.oldest_loss_before_kill <= Duration::from_secs(2),
        "{:?}",
        verdict.oldest_loss_before_kill
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aof_rewrite_during_the_workload_loses_nothing() {
    let mut redis = support::own_server(&["--appendonly", "yes", "--appendfsync", "always"]);
    let store = SessionStore::new(config(&redis)).expect("store");
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn({
        let (store, stop) = (store.clone(), stop.clone());
        async move { workload(&store, stop).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut conn = redis.conn().await;
    let _: String = redis::cmd("BGREWRITEAOF").query_async(&mut conn).await.expect("rewrite");
    while redis.info_field("persistence", "aof_rewrite_in_progress").await == 1
        || redis.info_field("persistence", "aof_rewrite_scheduled").await == 1
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(redis.info_text("persistence", "aof_last_bgrewrite_status").await, "ok");
    assert!(redis.info_field("persistence", "aof_rewrites").await >= 1, "a rewrite ran");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let all = running.await.expect("workload");
    let killed = Instant::now();
    redis.kill();
    redis.restart();
    redis.wait_loaded().await;
    let verdict = verify(&store, &all, killed).await;
    eprintln!("rewrite: {} acknowledged operations, {} lost", verdict.acked, verdict.lost);
    assert!(verdict.acked > 100);
    assert_eq!(verdict.lost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_survive_a_restart_as_absolute_deadlines() {
    let mut redis = support::own_server(&["--appendonly", "yes", "--appendfsync", "always"]);
    let store = SessionStore::new(
        config(&redis)
            .with_idle_timeout(Duration::from_secs(4))
            .with_absolute_timeout(Duration::from_secs(60)),
    )
    .expect("store");
    let session = store.create().await.expect("create");
    let created = Instant::now();
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.restart();
    redis.wait_loaded().await;
    let key = redis.keys().await.remove(0);
    let pttl: i64 = redis::AsyncCommands::pttl(&mut redis.conn().await, &key).await.expect("pttl");
    let left = Duration::from_secs(4).saturating_sub(created.elapsed()).as_millis() as i64;
    assert!(pttl <= left + 50, "the downtime counted against the TTL: pttl {pttl}, at most {left}");
    tokio::time::sleep(Duration::from_millis(pttl as u64 + 200)).await;
    assert!(store.load(session.token().expose()).await.expect("load").is_none());
}
