//! Failures of the server that must cost the application nothing.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use redis_sessions::{Config, SessionStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn script_flush_mid_workload_costs_no_failed_operation() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(|c| c.with_pool_max_size(4));
    redis.reset_stats().await;
    let done = Arc::new(AtomicBool::new(false));

    let flusher = {
        let (done, mut conn) = (done.clone(), redis.conn().await);
        tokio::spawn(async move {
            let mut flushes = 0;
            while !done.load(Ordering::Relaxed) {
                let _: () =
                    redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut conn).await.expect("flush");
                flushes += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            flushes
        })
    };
    let workers = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..10 {
                support::workload(&store).await; // every call expects Ok
            }
        })
    });
    for worker in join_all(workers).await {
        worker.expect("no operation failed");
    }
    done.store(true, Ordering::Relaxed);
    let flushes = flusher.await.expect("flusher");

    let noscript = noscript_count(&redis).await;
    eprintln!("{flushes} flushes, {noscript} NOSCRIPT replies recovered");
    assert!(flushes > 5, "the scripts were flushed {flushes} times");
    assert!(noscript > 0, "some calls met NOSCRIPT and were recovered");
}

/// `errorstat_NOSCRIPT:count=N` is not a plain integer field.
async fn noscript_count(redis: &support::TestRedis) -> i64 {
    let mut conn = redis.conn().await;
    let info: String =
        redis::cmd("INFO").arg("errorstats").query_async(&mut conn).await.expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix("errorstat_NOSCRIPT:count="))
        .map_or(0, |n| n.trim().parse().expect("count"))
}

/// One operation of a probe loop: when it started, how long it took, and whether it worked.
struct Probe {
    at: Instant,
    took: Duration,
    ok: bool,
}

/// Loads `token` every 10 ms until `stop`, and saves a counter after every other load, so
/// scripts run too; records every outcome. Any error must be one that says "Redis
/// unavailable" (typed, retryable), never anything else.
async fn probe_loop(store: SessionStore, token: String, stop: Arc<AtomicBool>) -> Vec<Probe> {
    let mut probes = Vec::new();
    for n in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let at = Instant::now();
        let ok = match probe(&store, &token, n).await {
            Ok(()) => true,
            Err(e) => {
                assert!(e.is_unavailable(), "typed, retryable error: {e:?}");
                false
            }
        };
        probes.push(Probe { at, took: at.elapsed(), ok });
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    probes
}

/// One probe: a load, and on odd `n` a save of `n`.
async fn probe(store: &SessionStore, token: &str, n: u64) -> redis_sessions::Result<()> {
    let Some(mut session) = store.load(token).await? else { panic!("the session was lost") };
    if n % 2 == 1 {
        session.insert("probe", &n)?;
        store.save(&mut session).await?;
    }
    Ok(())
}

fn fast_timeouts(config: Config) -> Config {
    let ms = Duration::from_millis;
    config.with_timeouts(ms(200), ms(200), ms(200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_fails_fast_while_down_and_recovers_without_an_app_restart() {
    let mut redis = support::own_server(&["--appendonly", "yes", "--appendfsync", "always"]);
    let store = redis.store_with(fast_timeouts);
    // Created with the default timeouts: 200 ms is tight for a first connect on a loaded machine.
    let session = redis.store().create().await.expect("create");
    let stop = Arc::new(AtomicBool::new(false));
    let probes =
        tokio::spawn(probe_loop(store.clone(), session.token().expose().into(), stop.clone()));

    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Instant::now();
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let restarted = Instant::now();
    redis.restart();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let probes = probes.await.expect("probe loop");

    let down: Vec<&Probe> = probes.iter().filter(|p| p.at > killed && p.at < restarted).collect();
    assert!(down.len() > 10, "probed while down");
    assert!(down.iter().all(|p| !p.ok), "nothing answers while down");
    let slowest = down.iter().map(|p| p.took).max().expect("probes");
    assert!(slowest < Duration::from_millis(700), "fails fast while down: slowest {slowest:?}");
    let first_ok = probes.iter().find(|p| p.at > restarted && p.ok).expect("recovered");
    let recovery = first_ok.at + first_ok.took - restarted;
    eprintln!(
        "restart: slowest failure while down {slowest:?}, recovery {recovery:?} after restart"
    );
    assert!(recovery < Duration::from_millis(1000), "recovered in {recovery:?}");
    assert!(probes.iter().filter(|p| p.at > first_ok.at).all(|p| p.ok), "stays recovered");
    // The restarted server had no scripts: the saves met NOSCRIPT and recovered from it.
    assert!(noscript_count(&redis).await > 0, "a save ran a script after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_costs_a_command_timeout_not_a_hang() {
    let redis = support::own_server(&[]);
    let ms = Duration::from_millis;
    // Distinct timeouts, so the figure says which one bounded the wait.
    let store =
        redis.store_with(|c| c.with_timeouts(ms(300), ms(1000), ms(200)).with_pool_max_size(2));
    let session = store.create().await.expect("create");
    for _ in 0..4 {
        store.load(session.token().expose()).await.expect("warm every pooled connection");
    }
    let mut blocker = redis.conn().await;
    // Redis sleeps 1.5 s in one command: a GC pause, a slow disk, a huge KEYS.
    let stall = tokio::spawn(async move {
        let _: redis::RedisResult<()> =
            redis::cmd("DEBUG").arg("SLEEP").arg(1.5).query_async(&mut blocker).await;
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    let (read, write) = tokio::join!(store.load(session.token().expose()), store.create());
    let took = started.elapsed();
    let err = read.expect_err("Redis is asleep");
    eprintln!("stalled: {err} after {took:?}");
    assert!(matches!(err, redis_sessions::Error::Timeout(_)), "{err:?}");
    assert!(matches!(write, Err(redis_sessions::Error::Timeout(_))), "{write:?}");
    assert!(took >= ms(190) && took < ms(450), "one command timeout (200 ms), no retry: {took:?}");
    stall.await.expect("stall"); // (the blocker's own connection gives up after 500 ms)
    tokio::time::sleep(Duration::from_millis(1600).saturating_sub(started.elapsed())).await;
    assert!(store.load(session.token().expose()).await.expect("awake again").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_replica_without_the_scripts_serves_every_session() {
    let primary = support::own_server(&[]);
    let port = primary.port().to_string();
    let replica = support::own_server(&["--replicaof", "127.0.0.1", &port]);
    let on_primary = primary.store();
    let mut tokens = Vec::new();
    for i in 0..20 {
        let mut session = on_primary.create().await.expect("create");
        session.insert("n", &i).expect("insert");
        on_primary.save(&mut session).await.expect("save");
        on_primary.push_flash(&session, "hello").await.expect("flash");
        tokens.push(session.token().expose().to_owned());
    }
    let mut conn = primary.conn().await;
    let synced = support::replicas_caught_up(&mut conn, Duration::from_secs(10)).await;
    assert!(synced, "the replica caught up");
    let mut conn = replica.conn().await;
    let _: () =
        redis::cmd("REPLICAOF").arg("NO").arg("ONE").query_async(&mut conn).await.expect("promote");

    // The application now reaches the promoted node (as through a failover endpoint).
    let on_promoted =
        SessionStore::new(primary.config().with_url(replica.url.clone())).expect("store");
    for (i, token) in tokens.iter().enumerate() {
        let mut session = on_promoted.load_and_pop_flash(token).await.expect("load").expect("live");
        assert_eq!(session.get::<i32>("n").expect("decode"), Some(i as i32));
        assert_eq!(session.take_flash::<String>().expect("decode"), ["hello"]);
        session.insert("after", &true).expect("insert");
        on_promoted.save(&mut session).await.expect("save");
    }
    assert!(noscript_count(&replica).await > 0, "the promoted node had no scripts cached");
}
