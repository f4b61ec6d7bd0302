//! Idle and absolute timeouts, and touch throttling, enforced by the scripts with Redis' clock.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use redis_sessions::test_server::stored::{session_key, DEADLINE_AT};
use redis_sessions::Timeouts;
use tokio::time::sleep;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test]
async fn an_unused_session_idles_out() {
    let redis = support::any_server();
    let store = redis.store_with(|c| c.with_idle_timeout(ms(300)));
    let session = store.create().await.expect("create");
    assert!(store.load(session.token().expose()).await.expect("load").is_some());
    sleep(ms(800)).await;
    assert!(store.load(session.token().expose()).await.expect("load").is_none());
    assert!(redis.keys().await.is_empty(), "Redis expired the key itself");
}

#[tokio::test]
async fn a_busy_session_still_dies_at_the_absolute_timeout() {
    let redis = support::any_server();
    let store = redis.store_with(|c| {
        c.with_idle_timeout(ms(600)).with_absolute_timeout(ms(1500)).with_touch_threshold(0.0)
    });
    let session = store.create().await.expect("create");
    let token = session.token().expose().to_owned();
    let started = std::time::Instant::now();
    // Touch every 100 ms, well inside the idle timeout, until past the absolute deadline.
    let mut died_at = None;
    while started.elapsed() < ms(2500) {
        if store.load(&token).await.expect("load").is_none() {
            died_at = Some(started.elapsed());
            break;
        }
        sleep(ms(100)).await;
    }
    let died_at = died_at.expect("the session died although it was touched all along");
    assert!(died_at >= ms(1400) && died_at < ms(2000), "died at the deadline: {died_at:?}");
}

#[tokio::test]
async fn the_ttl_never_runs_past_the_absolute_deadline() {
    let redis = support::any_server();
    let store = redis.store_with(|c| {
        c.with_idle_timeout(Duration::from_secs(60))
            .with_absolute_timeout(ms(3000))
            .with_touch_threshold(0.0)
    });
    let mut session = store.create().await.expect("create");
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    let pttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(pttl > 2500 && pttl <= 3000, "create caps the TTL: {pttl}");

    sleep(ms(500)).await;
    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    let pttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(pttl > 2000 && pttl <= 2500, "a touch caps the TTL at the deadline: {pttl}");
    assert!(loaded.metadata().ttl_ms <= 2500);

    sleep(ms(500)).await;
    session.insert("x", &1).expect("insert");
    store.save(&mut session).await.expect("save");
    let pttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(pttl > 1500 && pttl <= 2000, "a save caps the TTL at the deadline: {pttl}");
}

/// A new session whose key lost its TTL (a PERSIST by hand, a restore without TTLs), its key,
/// and a connection to look at it.
async fn session_without_ttl(
    redis: &support::TestRedis,
    store: &redis_sessions::SessionStore,
) -> (redis_sessions::Session, String, redis::aio::MultiplexedConnection) {
    let session = store.create().await.expect("create");
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    let _: () = conn.persist(&key).await.expect("persist");
    (session, key, conn)
}

#[tokio::test]
async fn past_its_deadline_a_session_is_gone_for_every_operation_even_without_a_ttl() {
    let redis = support::any_server();
    let store = redis.store();
    let (mut session, key, mut conn) = session_without_ttl(&redis, &store).await;
    // The deadline, a big-endian u64 in the packed record's header.
    let mut record: Vec<u8> = conn.hget(&key, "@p").await.expect("record");
    record[DEADLINE_AT..DEADLINE_AT + 8].copy_from_slice(&1_000u64.to_be_bytes());
    let _: () = conn.hset(&key, "@p", record).await.expect("deadline in 1970");

    assert!(store.load(session.token().expose()).await.expect("load").is_none());
    session.insert("x", &1).expect("insert");
    assert!(matches!(store.save(&mut session).await, Err(redis_sessions::Error::SessionGone)));
    assert!(matches!(
        store.push_flash(&session, "hi").await,
        Err(redis_sessions::Error::SessionGone)
    ));
    assert!(matches!(
        store.regenerate(&mut session).await,
        Err(redis_sessions::Error::SessionGone)
    ));
    let fields: Vec<String> = conn.hkeys(&key).await.expect("hkeys");
    assert!(
        !fields.contains(&"x".to_owned()) && !fields.contains(&"@f".to_owned()),
        "nothing written"
    );
}

#[tokio::test]
async fn without_a_ttl_an_unreadable_deadline_is_corrupt_for_every_operation() {
    let redis = support::any_server();
    let store = redis.store();
    let (mut session, key, mut conn) = session_without_ttl(&redis, &store).await;
    let _: () = conn.hset(&key, "@p", "short").await.expect("a record without a header");
    let before: Vec<(String, Vec<u8>)> = conn.hgetall(&key).await.expect("hgetall");

    let corrupt = |e: &redis_sessions::Error| matches!(e, redis_sessions::Error::Corrupt(_));
    let err = store.load(session.token().expose()).await.expect_err("load");
    assert!(corrupt(&err), "{err:?}");
    session.insert("x", &1).expect("insert");
    let err = store.save(&mut session).await.expect_err("save");
    assert!(corrupt(&err), "{err:?}");
    let err = store.push_flash(&session, "hi").await.expect_err("flash push");
    assert!(corrupt(&err), "{err:?}");
    let err = store.regenerate(&mut session).await.expect_err("regenerate");
    assert!(corrupt(&err), "{err:?}");
    let after: Vec<(String, Vec<u8>)> = conn.hgetall(&key).await.expect("hgetall");
    assert_eq!(after, before, "nothing written, the key not moved");
}

#[tokio::test]
async fn a_read_inside_the_throttle_window_writes_nothing() {
    let redis = support::own_server(&[]);
    let store = redis
        .store_with(|c| c.with_idle_timeout(Duration::from_secs(60)).with_touch_threshold(0.5));
    let session = store.create().await.expect("create");
    let dirty_before = redis.info_field("persistence", "rdb_changes_since_last_save").await;
    redis.reset_stats().await;

    for _ in 0..10 {
        assert!(store.load(session.token().expose()).await.expect("load").is_some());
    }

    assert_eq!(redis.command_calls("hvals").await, 10, "ten reads ran");
    assert_eq!(redis.script_calls().await, 0, "no script");
    assert_eq!(redis.command_calls("pttl").await, 0, "the expiry judged from @t");
    assert_eq!(redis.command_calls("pexpireat").await, 0, "no read extended the TTL");
    assert_eq!(redis.command_calls("hdel").await, 0);
    let dirty_after = redis.info_field("persistence", "rdb_changes_since_last_save").await;
    assert_eq!(dirty_after, dirty_before, "no write at all");
}

#[tokio::test]
async fn a_read_past_the_throttle_window_extends_the_ttl() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(|c| c.with_idle_timeout(ms(1000)).with_touch_threshold(0.5));
    let session = store.create().await.expect("create");
    let (key, mut conn) = (redis.keys().await.remove(0), redis.conn().await);
    sleep(ms(600)).await;
    let pttl_before: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(pttl_before < 500, "more than half of the idle timeout used up: {pttl_before}");
    redis.reset_stats().await;

    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    let pttl_after: i64 = conn.pttl(&key).await.expect("pttl"); // read first: time runs

    assert_eq!(redis.command_calls("pexpireat").await, 1, "this read extended the TTL");
    assert!(pttl_after > 900, "back to a full idle timeout: {pttl_after}");
    assert!(loaded.metadata().ttl_ms > 900);
    sleep(ms(600)).await;
    assert!(
        store.load(session.token().expose()).await.expect("load").is_some(),
        "alive past the first 1 s"
    );
}

/// Ways a key gets a TTL that runs past the session's absolute deadline, none of them the
/// store's: an `EXPIRE` by hand, short or long, and a `RESTORE` (as `MIGRATE` does) with a TTL.
async fn outlive_the_deadline(conn: &mut redis::aio::MultiplexedConnection, key: &str, how: &str) {
    match how {
        "restore" => {
            let dump: Vec<u8> = redis::cmd("DUMP").arg(key).query_async(conn).await.expect("dump");
            let _: () = conn.del(key).await.expect("del");
            let restore = redis::cmd("RESTORE").arg(key).arg(60_000).arg(dump).clone();
            let _: () = restore.query_async(conn).await.expect("restore");
        }
        pexpire => {
            let ttl: i64 = pexpire.parse().expect("a TTL in ms");
            let _: () = conn.pexpire(key, ttl).await.expect("pexpire");
        }
    }
}

#[tokio::test]
async fn past_its_deadline_a_session_is_gone_whatever_its_ttl_says() {
    gone_past_the_deadline(&support::any_server()).await;
}

#[tokio::test]
async fn past_its_deadline_a_session_is_gone_without_pexpiretime_too() {
    // Redis 6.2 has no PEXPIRETIME: the scripts then work out the key's expiry from TIME.
    gone_past_the_deadline(&support::own_server(&["--rename-command", "PEXPIRETIME", ""])).await;
}

async fn gone_past_the_deadline(redis: &support::TestRedis) {
    // The deadline comes 1 s after creation, well inside the 2 s idle timeout.
    let store = redis.store_with(|c| c.with_idle_timeout(ms(2000)).with_absolute_timeout(ms(1000)));
    let mut conn = redis.conn().await;
    let mut cases = Vec::new();
    // 60 s runs past the idle timeout, so no save slides it; 3.1 s stays inside it at the check
    // below, where a save does not slide either.
    for how in ["60000", "3100", "restore"] {
        let keys = redis.keys().await;
        let mut session = store.create().await.expect("create");
        session.insert("x", &1).expect("insert");
        store.save(&mut session).await.expect("save");
        store.push_flash(&session, "hi").await.expect("push");
        let key = redis.keys().await.into_iter().find(|k| !keys.contains(k)).expect("new key");
        outlive_the_deadline(&mut conn, &key, how).await;
        cases.push((how, session, key));
    }
    sleep(ms(1150)).await; // past the last session's deadline

    for (how, mut session, key) in cases {
        // A popping load deletes the messages with its read (src/store/flash_pop.rs), before it
        // finds the session dead: they die with it. Nothing else may change.
        let fields = |mut all: std::collections::BTreeMap<String, Vec<u8>>| {
            all.remove("@f");
            all
        };
        let before = fields(conn.hgetall(&key).await.expect("hgetall"));
        assert!(!before.is_empty(), "{how}: the key outlived the deadline");
        let token = session.token().expose().to_owned();
        assert!(store.load(&token).await.expect("load").is_none(), "{how}: load");
        assert!(store.load_and_pop_flash(&token).await.expect("pop").is_none(), "{how}: pop");
        assert!(store.load_only(&token, &["x"]).await.expect("load").is_none(), "{how}: part");
        session.insert("y", &2).expect("insert");
        let gone =
            |r: redis_sessions::Result<()>| matches!(r, Err(redis_sessions::Error::SessionGone));
        assert!(gone(store.save(&mut session).await), "{how}: save");
        assert!(gone(store.push_flash(&session, "again").await), "{how}: push");
        assert!(gone(store.regenerate(&mut session).await.map(drop)), "{how}: regenerate");
        let after = fields(conn.hgetall(&key).await.expect("hgetall"));
        assert_eq!(after, before, "{how}: nothing written, @t included");
    }
}

#[tokio::test]
async fn a_ttl_past_the_deadline_is_cut_back_to_it_by_the_next_touch_or_save() {
    let redis = support::any_server();
    let store = redis.store_with(|c| c.with_idle_timeout(ms(2000)).with_absolute_timeout(ms(3000)));
    let mut session = store.create().await.expect("create");
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    let within = |pttl: i64| pttl > 0 && pttl <= 3000;

    // Once the expiry the hash records is due to slide, a load goes to get-and-touch, which
    // finds the TTL past the deadline and cuts it back rather than keep it.
    let _: () = conn.pexpire(&key, 60_000).await.expect("pexpire");
    sleep(ms(300)).await; // over the touch threshold, a tenth of the idle timeout
    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    let pttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(within(pttl) && loaded.metadata().ttl_ms <= 3000, "a touch cuts it: {pttl}");

    let _: () = conn.pexpire(&key, 60_000).await.expect("pexpire");
    session.insert("x", &1).expect("insert");
    store.save(&mut session).await.expect("save");
    let pttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(within(pttl), "a save cuts it: {pttl}");
    // And the expiry the hash records says so, so plain loads judge by the real one.
    let recorded: Vec<u8> = conn.hget(&key, "@t").await.expect("@t");
    let at = u64::from_be_bytes(recorded[2..].try_into().expect("8 bytes"));
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.expect("time");
    let now = secs * 1000 + micros / 1000;
    assert!(at > now && at <= now + 3000, "@t {at} within the deadline, now {now}");
}

#[tokio::test]
async fn touching_on_every_read_is_one_round_trip_without_a_script() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(|c| c.with_idle_timeout(ms(60_000)).with_touch_threshold(0.0));
    let session = store.create().await.expect("create");
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    let _: () = conn.pexpire(&key, 20_000).await.expect("pexpire"); // as if unused for 40 s
    redis.reset_stats().await;
    for _ in 0..20 {
        let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
        assert_eq!(loaded.metadata().ttl_ms, 60_000);
    }
    let (reads, slides) =
        (redis.command_calls("hvals").await, redis.command_calls("pexpire").await);
    assert_eq!((reads, slides, redis.script_calls().await), (20, 20, 0));
    let pttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(pttl > 59_000, "slid to the idle timeout: {pttl}");
}

#[tokio::test]
async fn touching_on_every_read_gives_a_session_its_own_idle_timeout() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(|c| c.with_idle_timeout(ms(60_000)).with_touch_threshold(0.0));
    let shorter = Timeouts::new(ms(5_000), Duration::from_secs(3600));
    let longer = Timeouts::new(Duration::from_secs(600), Duration::from_secs(3600));
    for (timeouts, low, high) in [(shorter, 4_000, 5_000), (longer, 599_000, 600_000)] {
        let session = store.create_with_timeouts(timeouts).await.expect("create");
        let key = session_key(&redis.config(), session.token().expose()).expect("a token");
        let mut conn = redis.conn().await;
        for _ in 0..3 {
            let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
            let pttl: i64 = conn.pttl(&key).await.expect("pttl");
            assert!(pttl > low && pttl <= high, "its own idle timeout: {pttl}");
            assert!(loaded.metadata().ttl_ms > low && loaded.metadata().ttl_ms <= high);
        }
    }
}
