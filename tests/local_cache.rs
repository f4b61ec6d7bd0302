//! The local cache against real servers: loads served from memory, and never what Redis no
//! longer holds once it has said so (a write or destroy through another store, a lost
//! connection, a restart), nor past a session's idle expiry or absolute deadline.

mod support;

use std::time::{Duration, Instant};

use redis_sessions::{Config, LocalCache, SessionStore, Tracking};
use tokio::time::sleep;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cached(config: Config) -> Config {
    config.with_local_cache(LocalCache::default())
}

async fn created(store: &SessionStore, value: u32) -> String {
    let mut session = store.create().await.expect("create");
    session.insert("n", &value).expect("insert");
    store.save(&mut session).await.expect("save");
    session.token().expose().to_owned()
}

async fn value(store: &SessionStore, token: &str) -> Option<u32> {
    let session = store.load(token).await.expect("load")?;
    session.get::<u32>("n").expect("a number")
}

#[tokio::test]
async fn a_held_session_is_served_without_a_redis_call() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(cached);
    let token = created(&store, 7).await;
    assert_eq!(value(&store, &token).await, Some(7)); // read, and held
    redis.reset_stats().await;
    for _ in 0..100 {
        assert_eq!(value(&store, &token).await, Some(7));
        let popped = store.load_and_pop_flash(&token).await.expect("load").expect("live");
        assert_eq!(popped.get::<u32>("n").expect("a number"), Some(7));
    }
    // At most the read that shows the tracking connection alive, once a second: 200 loads take
    // far less.
    let (reads, scripts) = (redis.command_calls("hvals").await, redis.script_calls().await);
    assert!(reads <= 2 && scripts == 0, "{reads} reads and {scripts} scripts for 200 loads");
    let stats = store.cache_stats().expect("the cache is on");
    assert!(stats.hits >= 198 && stats.entries == 1, "{stats:?}");
}

#[tokio::test]
async fn a_write_or_destroy_through_the_store_is_seen_by_its_next_load_at_once() {
    let redis = support::any_server();
    let store = redis.store_with(cached);
    let token = created(&store, 1).await;
    for n in 2..50 {
        let mut session = store.load(&token).await.expect("load").expect("live");
        session.insert("n", &n).expect("insert");
        store.save(&mut session).await.expect("save");
        assert_eq!(value(&store, &token).await, Some(n), "read back after its own save");
    }
    let mut session = store.load(&token).await.expect("load").expect("live");
    let new = store.regenerate(&mut session).await.expect("regenerate");
    assert!(store.load(&token).await.expect("load").is_none(), "the old token, regenerated away");
    assert_eq!(value(&store, new.expose()).await, Some(49));
    let session = store.load(new.expose()).await.expect("load").expect("live");
    assert!(store.destroy(&session).await.expect("destroy"));
    assert!(store.load(new.expose()).await.expect("load").is_none(), "destroyed");
    assert!(store.cache_stats().expect("on").hits > 40, "the loads between writes were held");
}

/// Percentile `p` (0 to 100) of sorted `values`.
fn percentile(values: &[Duration], p: usize) -> Duration {
    values[(values.len() - 1) * p / 100]
}

/// How long after a write acknowledged by one store a second store, on its own connections,
/// stops serving what the write replaced; `tries` writes and destroys.
async fn invalidation_delays(redis: &support::TestRedis, tracking: Tracking) -> Vec<Duration> {
    let with = |c: Config| c.with_local_cache(LocalCache::default().with_tracking(tracking));
    let (writer, reader) = (redis.store_with(with), redis.store_with(with));
    let mut delays = Vec::new();
    for round in 0..100u32 {
        let token = created(&writer, 0).await;
        assert_eq!(value(&reader, &token).await, Some(0));
        assert_eq!(value(&reader, &token).await, Some(0)); // held now
        let mut session = writer.load(&token).await.expect("load").expect("live");
        let destroy = round % 4 == 3;
        match destroy {
            true => assert!(writer.destroy(&session).await.expect("destroy")),
            false => {
                session.insert("n", &(round + 1)).expect("insert");
                writer.save(&mut session).await.expect("save");
            }
        }
        let acknowledged = Instant::now();
        let expected = (!destroy).then_some(round + 1);
        loop {
            if value(&reader, &token).await == expected {
                break;
            }
            // Under the second after which the reader would read anyway: Redis' report did it.
            assert!(acknowledged.elapsed() < ms(500), "the change never reached the reader");
            tokio::task::yield_now().await;
        }
        delays.push(acknowledged.elapsed());
    }
    let stats = reader.cache_stats().expect("on");
    assert!(stats.hits >= 100 && stats.invalidations >= 50, "{tracking:?}: {stats:?}");
    delays.sort();
    delays
}

#[tokio::test]
async fn two_stores_see_each_others_writes_and_destroys_once_redis_reports_them() {
    let redis = support::any_server();
    for tracking in [Tracking::Broadcast, Tracking::Reads] {
        let delays = invalidation_delays(&redis, tracking).await;
        let (p50, p99) = (percentile(&delays, 50), percentile(&delays, 99));
        let max = delays[delays.len() - 1];
        let tries = delays.len();
        eprintln!("{tracking:?}: acknowledged to seen: p50 {p50:?}, p99 {p99:?}, max {max:?}");
        eprintln!("  over {tries} writes and destroys");
    }
}

#[tokio::test]
async fn a_killed_tracking_connection_drops_everything_held() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(cached);
    let token = created(&store, 1).await;
    assert_eq!(value(&store, &token).await, Some(1));
    assert_eq!(store.cache_stats().expect("on").entries, 1);
    let clears = store.cache_stats().expect("on").clears;
    let mut conn = redis.conn().await;
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut conn)
        .await
        .expect("client kill");
    assert!(killed >= 1, "the store's connections were killed");
    let started = Instant::now();
    while store.cache_stats().expect("on").clears == clears {
        assert!(started.elapsed() < ms(1000), "the lost connection was never noticed");
        sleep(ms(1)).await;
    }
    assert_eq!(store.cache_stats().expect("on").entries, 0);
    // Written while no connection of the store tracked it: the store must read it anew.
    let _: () =
        redis::cmd("DEL").arg(redis.keys().await).query_async(&mut conn).await.expect("del");
    assert_eq!(value(&store, &token).await, None);
}

#[tokio::test]
async fn after_a_restart_nothing_held_before_it_is_served() {
    let mut redis = support::own_server(&[]);
    let store = redis.store_with(cached);
    let token = created(&store, 1).await;
    assert_eq!(value(&store, &token).await, Some(1));
    assert_eq!(value(&store, &token).await, Some(1));
    assert!(store.cache_stats().expect("on").hits >= 1);
    redis.kill();
    redis.restart(); // no persistence: the session is gone
    redis.wait_loaded().await;
    assert_eq!(value(&store, &token).await, None, "served from before the restart");
    // The pool's first write finds its connection broken by the restart, fails, and reopens.
    let _ = store.create().await;
    let token = created(&store, 2).await;
    assert_eq!(value(&store, &token).await, Some(2));
    assert_eq!(value(&store, &token).await, Some(2));
    assert!(store.cache_stats().expect("on").entries >= 1, "the cache works again");
}

/// A server that expires keys only when they are read: Redis reports no expiry by itself, so
/// what the cache serves past a deadline is its own judgement.
async fn without_active_expiry() -> support::TestRedis {
    let redis = support::own_server(&[]);
    let mut conn = redis.conn().await;
    let off = redis::cmd("DEBUG").arg("SET-ACTIVE-EXPIRE").arg(0).clone();
    let _: () = off.query_async(&mut conn).await.expect("debug set-active-expire");
    redis
}

#[tokio::test]
async fn a_held_session_is_never_served_past_its_absolute_deadline() {
    let redis = without_active_expiry().await;
    let store = redis
        .store_with(|c| cached(c.with_idle_timeout(ms(10_000)).with_absolute_timeout(ms(700))));
    let before = Instant::now();
    let token = created(&store, 1).await;
    let after = Instant::now();
    let mut served = 0;
    loop {
        let started = Instant::now();
        let found = value(&store, &token).await.is_some();
        if started > after + ms(700) {
            assert!(!found, "served {:?} after creation", started - before);
        }
        served += u32::from(found);
        if !found {
            break;
        }
        assert!(before.elapsed() < ms(3000), "still served 3 s after creation");
    }
    assert!(before.elapsed() >= ms(650), "the session was gone too early");
    assert!(served > 100 && store.cache_stats().expect("on").hits > 100, "{served} loads");
}

#[tokio::test]
async fn a_held_session_slides_when_used() {
    let redis = without_active_expiry().await;
    let store =
        redis.store_with(|c| cached(c.with_idle_timeout(ms(2000)).with_touch_threshold(0.5)));
    let token = created(&store, 1).await;
    // Used every 50 ms for 3 s, past its idle timeout: touched from the cache's judgement (each
    // touch due goes to get-and-touch), never expired.
    let started = Instant::now();
    while started.elapsed() < ms(3000) {
        assert_eq!(value(&store, &token).await, Some(1), "at {:?}", started.elapsed());
        sleep(ms(50)).await;
    }
    let hits = store.cache_stats().expect("on").hits;
    assert!(hits >= 20, "{hits} hits");
}

#[tokio::test]
async fn a_held_session_is_not_served_past_its_idle_expiry() {
    let redis = without_active_expiry().await;
    let store = redis.store_with(|c| cached(c.with_idle_timeout(ms(300))));
    let token = created(&store, 1).await;
    assert_eq!(value(&store, &token).await, Some(1)); // read, and held
    let hits = store.cache_stats().expect("on").hits;
    assert_eq!(value(&store, &token).await, Some(1));
    assert_eq!(store.cache_stats().expect("on").hits, hits + 1, "served from memory");
    // Left alone past its idle timeout, well within the second for which the tracking
    // connection's last answer vouches: Redis reports nothing (no active expiry), so only the
    // cache's own judgement keeps it from being served.
    sleep(ms(450)).await;
    redis.reset_stats().await;
    assert_eq!(value(&store, &token).await, None);
    assert_eq!(store.cache_stats().expect("on").hits, hits + 1, "not served from memory");
    // Which way it went, for the record: judged from what was held, a touch due runs
    // get-and-touch (a script); a stall past the second would have read instead (no script).
    let scripts = redis.script_calls().await;
    eprintln!("judged from what was held: {}", scripts > 0);
}

#[tokio::test]
async fn a_flushall_drops_everything_held() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(cached);
    let token = created(&store, 1).await;
    assert_eq!(value(&store, &token).await, Some(1));
    let clears = store.cache_stats().expect("on").clears;
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.expect("flushall");
    let started = Instant::now();
    while store.cache_stats().expect("on").clears == clears {
        assert!(started.elapsed() < ms(1000), "Redis' report of the flush never arrived");
        sleep(ms(1)).await;
    }
    assert_eq!(value(&store, &token).await, None);
}

#[tokio::test]
async fn entries_stay_within_the_bound() {
    let redis = support::any_server();
    let store = redis.store_with(|c| c.with_local_cache(LocalCache::default().with_max_entries(5)));
    for n in 0..40 {
        let token = created(&store, n).await;
        assert_eq!(value(&store, &token).await, Some(n));
        assert_eq!(value(&store, &token).await, Some(n));
        assert!(store.cache_stats().expect("on").entries <= 5);
    }
    let stats = store.cache_stats().expect("on");
    assert!(stats.evictions >= 30 && stats.hits >= 20, "{stats:?}");
}

#[test]
fn a_cluster_gets_no_local_cache() {
    let config =
        Config::for_cluster(["redis://127.0.0.1:7000"]).with_local_cache(LocalCache::default());
    let err = config.validate().expect_err("refused");
    assert!(err.to_string().contains("single server"), "{err}");
}

#[tokio::test]
async fn broadcast_keeps_no_table_in_redis_and_reads_keeps_one_key_per_session_read() {
    let redis = support::own_server(&[]);
    let (mut conn, mut stores) = (redis.conn().await, Vec::<SessionStore>::new());
    for (tracking, sessions) in [(Tracking::Broadcast, 0), (Tracking::Reads, 200)] {
        let store = redis.store_with(|c| {
            c.with_local_cache(LocalCache::default().with_tracking(tracking))
                .with_key_prefix(format!("{}{tracking:?}:", redis.prefix))
        });
        for n in 0..200 {
            let token = created(&store, n).await;
            assert_eq!(value(&store, &token).await, Some(n));
        }
        let stats: String =
            redis::cmd("INFO").arg("stats").query_async(&mut conn).await.expect("info");
        let field = |name: &str| -> i64 {
            let line = stats.lines().find_map(|l| l.strip_prefix(&format!("{name}:")));
            line.and_then(|v| v.trim().parse().ok()).unwrap_or(-1)
        };
        assert_eq!(field("tracking_total_keys"), sessions, "{tracking:?}");
        assert_eq!(
            field("tracking_total_prefixes"),
            1,
            "{tracking:?}: the broadcast store's prefix"
        );
        stores.push(store); // kept open: its tracking stays registered
    }
}

#[tokio::test]
async fn a_silent_tracking_connection_stops_hits_within_a_second() {
    let redis = support::own_server(&[]);
    let timeout = ms(300);
    let store = redis.store_with(|c| cached(c.with_timeouts(timeout, timeout, timeout)));
    let token = created(&store, 1).await;
    assert_eq!(value(&store, &token).await, Some(1)); // read over the tracking connection
    let hits = store.cache_stats().expect("on").hits;
    // Every client's commands wait, the tracking connection's included: it answers nothing,
    // as after a network cut that closes no connection.
    let mut conn = redis.conn().await;
    let pause = redis::cmd("CLIENT").arg("PAUSE").arg(2500).arg("ALL").clone();
    let _: () = pause.query_async(&mut conn).await.expect("client pause");
    let paused = Instant::now();
    while paused.elapsed() < ms(2000) {
        let (started, before) = (paused.elapsed(), store.cache_stats().expect("on").hits);
        let _ = store.load(&token).await; // a hit, a timeout, or Redis' answer once it resumes
        if started > ms(1100) {
            let served = store.cache_stats().expect("on").hits > before;
            assert!(!served, "served from memory {started:?} into the silence");
        }
        sleep(ms(10)).await;
    }
    assert!(store.cache_stats().expect("on").hits > hits, "served from memory at first");
}
