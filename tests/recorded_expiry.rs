//! The expiry each session's hash records (field `@t`), by which a plain load judges whether
//! the idle expiry is due without asking Redis for the TTL (src/store/server_clock.rs).

mod support;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use redis_sessions::test_server::stored::{EXPIRY, META};
use redis_sessions::{Session, SessionStore};
use tokio::time::sleep;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The expiry `@t` records (`None` when missing or malformed), and the key's own, both in ms
/// on the server's clock. The key's is the server's time plus its TTL, read in one script
/// (`PEXPIRETIME` would need Redis 7), so it may be 1 ms off.
async fn expiries(conn: &mut MultiplexedConnection, key: &str) -> (Option<u64>, i64) {
    let field: Option<Vec<u8>> = conn.hget(key, "@t").await.expect("hget");
    let recorded = field.and_then(|field| match field.as_slice() {
        [META, EXPIRY, ms @ ..] => Some(u64::from_be_bytes(ms.try_into().ok()?)),
        _ => None,
    });
    let script = redis::Script::new(
        "local t = redis.call('TIME') local pttl = redis.call('PTTL', KEYS[1]) \
         if pttl < 0 then return pttl end \
         return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + pttl",
    );
    let actual: i64 = script.key(key).invoke_async(conn).await.expect("expiry");
    (recorded, actual)
}

/// Asserts that `@t` says when the key expires (to within 2 ms, get_and_touch.lua's SLACK);
/// returns that.
async fn assert_recorded(conn: &mut MultiplexedConnection, key: &str, after: &str) -> i64 {
    let (recorded, actual) = expiries(conn, key).await;
    assert!(actual > 0, "{after}: the key has a TTL");
    let recorded = recorded.unwrap_or_else(|| panic!("{after}: @t is missing")) as i64;
    assert!((recorded - actual).abs() <= 2, "{after}: @t {recorded}, the key's {actual}");
    recorded
}

/// Asserts that the next loads of `session` are plain reads: no script runs.
async fn assert_plain_loads(redis: &support::TestRedis, store: &SessionStore, session: &Session) {
    let scripts = redis.script_calls().await;
    for _ in 0..5 {
        store.load(session.token().expose()).await.expect("load").expect("live");
    }
    assert_eq!(redis.script_calls().await, scripts, "the next loads ran no script");
}

#[tokio::test]
async fn every_script_that_sets_the_ttl_records_it() {
    let redis = support::any_server();
    let store = redis.store_with(|c| c.with_idle_timeout(ms(1000)).with_touch_threshold(0.5));
    let mut session = store.create().await.expect("create");
    let (key, mut conn) = (redis.keys().await.remove(0), redis.conn().await);
    let created = assert_recorded(&mut conn, &key, "create").await;

    sleep(ms(600)).await;
    store.load(session.token().expose()).await.expect("load").expect("live");
    let touched = assert_recorded(&mut conn, &key, "a touch").await;
    assert!(touched >= created + 600, "the touch slid it: {created} -> {touched}");

    sleep(ms(600)).await;
    session.insert("x", &1).expect("insert");
    store.save(&mut session).await.expect("save");
    let saved = assert_recorded(&mut conn, &key, "a save that slides").await;
    assert!(saved >= touched + 600, "the save slid it: {touched} -> {saved}");

    store.regenerate(&mut session).await.expect("regenerate");
    let key = redis.keys().await.remove(0);
    assert_eq!(assert_recorded(&mut conn, &key, "regenerate").await, saved, "moved along");
}

#[tokio::test]
async fn a_plain_load_is_one_command_and_the_clock_is_synced_once_a_second() {
    let redis = support::own_server(&[]);
    let store = redis.store();
    let session = store.create().await.expect("create");
    redis.reset_stats().await;

    for _ in 0..10 {
        assert!(store.load(session.token().expose()).await.expect("load").is_some());
    }

    assert_eq!(redis.command_calls("hvals").await, 10, "ten reads ran");
    assert_eq!(redis.command_calls("pttl").await, 0, "judged from @t");
    let syncs = redis.command_calls("time").await;
    assert!((1..=2).contains(&syncs), "the first read synced the clock, not each: {syncs}");
    assert_eq!(redis.script_calls().await, 0);
}

/// A store and a new session whose hash has no `@t`, as one written before it, its key, and a
/// connection to look at it.
async fn without_recorded_expiry(
    redis: &support::TestRedis,
) -> (SessionStore, Session, String, MultiplexedConnection) {
    let store = redis.store();
    let session = store.create().await.expect("create");
    let (key, mut conn) = (redis.keys().await.remove(0), redis.conn().await);
    let _: () = conn.hdel(&key, "@t").await.expect("as a hash from before @t");
    (store, session, key, conn)
}

#[tokio::test]
async fn a_hash_without_a_recorded_expiry_gets_one_from_its_next_load() {
    let redis = support::own_server(&[]);
    let (store, session, key, mut conn) = without_recorded_expiry(&redis).await;
    redis.reset_stats().await;

    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    assert!(redis.script_calls().await >= 1, "get-and-touch wrote it");
    assert_recorded(&mut conn, &key, "the load").await;
    assert!(loaded.metadata().ttl_ms > 0, "the script's TTL");
    assert_plain_loads(&redis, &store, &session).await;
}

#[tokio::test]
async fn a_ttl_set_by_hand_is_what_the_recorded_expiry_comes_to_say() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(|c| c.with_idle_timeout(ms(1000)).with_touch_threshold(0.5));
    let session = store.create().await.expect("create");
    let (key, mut conn) = (redis.keys().await.remove(0), redis.conn().await);
    let _: () = conn.pexpire(&key, 60_000).await.expect("a TTL set by hand");
    sleep(ms(600)).await; // @t now says a touch is due; the TTL says it is not
    redis.reset_stats().await;

    store.load(session.token().expose()).await.expect("load").expect("live");
    assert!(redis.script_calls().await >= 1, "the load asked the script");
    assert_eq!(redis.command_calls("pexpireat").await, 0, "which did not shorten the TTL");
    let actual = assert_recorded(&mut conn, &key, "the script").await;
    let pttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(pttl > 50_000, "the hand-set TTL stands: {pttl} ({actual})");
    assert_plain_loads(&redis, &store, &session).await;
}

#[tokio::test]
async fn out_of_memory_a_missing_expiry_waits_and_the_load_still_serves() {
    let redis = support::own_server(&[]);
    let (store, session, key, mut conn) = without_recorded_expiry(&redis).await;
    let maxmemory =
        |bytes: &str| redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(bytes).clone();
    let _: () = maxmemory("1").query_async(&mut conn).await.expect("out of memory");

    // Under noeviction the repair's HSET is refused as the script's first write.
    let loaded = store.load(session.token().expose()).await;
    let (recorded, _) = expiries(&mut conn, &key).await;
    let _: () = maxmemory("0").query_async(&mut conn).await.expect("memory back");

    assert!(loaded.expect("served, not an OOM error").is_some());
    assert_eq!(recorded, None, "not written meanwhile");
    store.load(session.token().expose()).await.expect("load").expect("live");
    assert_recorded(&mut conn, &key, "the next load").await;
}

#[tokio::test]
async fn near_the_deadline_loads_run_no_script_until_it_passes() {
    // Absolute 2 s, idle 10 s: the expiry sits at the deadline from the start, and with nothing
    // left to slide a load has nothing to write, though by the idle timeout a touch looks due.
    let redis = support::own_server(&[]);
    let store =
        redis.store_with(|c| c.with_idle_timeout(ms(10_000)).with_absolute_timeout(ms(2000)));
    let session = store.create().await.expect("create");
    store.load(session.token().expose()).await.expect("load").expect("live"); // syncs the clock
    assert_plain_loads(&redis, &store, &session).await;
    sleep(ms(2100)).await;
    assert!(store.load(session.token().expose()).await.expect("load").is_none(), "past it");
}
