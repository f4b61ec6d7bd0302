//! A session's own timeouts (`Expiry`): "remember me" chosen at login or at creation.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use redis_sessions::{Error, Expiry};
use tokio::time::sleep;

const DAY: Duration = Duration::from_secs(86_400);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The server's clock, ms since the epoch.
async fn server_ms(redis: &support::TestRedis) -> i64 {
    let mut conn = redis.conn().await;
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await.expect("time");
    secs * 1000 + micros / 1000
}

#[tokio::test]
async fn regenerate_with_expiry_gives_the_session_its_own_timeouts() {
    let redis = support::any_server();
    let store = redis.store(); // the store's: 30 min idle, 12 h absolute
    let mut session = store.create().await.expect("create");
    session.insert("cart", &["tea"]).expect("insert");
    store.save(&mut session).await.expect("save");
    let old = session.token().expose().to_owned();

    let before = server_ms(&redis).await;
    let token = store.regenerate_with_expiry(&mut session, Expiry::new(7 * DAY, 30 * DAY)).await;
    let token = token.expect("regenerate").expose().to_owned();
    assert!(store.load(&old).await.expect("load").is_none(), "the old token opens nothing");

    let loaded = store.load(&token).await.expect("load").expect("moved");
    let meta = loaded.metadata();
    assert_eq!(meta.idle_timeout_ms, Some(7 * 86_400_000));
    let thirty_days = 30 * 86_400_000;
    assert!((meta.deadline_ms - before - thirty_days).abs() < 5_000, "{meta:?}");
    assert!(meta.ttl_ms > 7 * 86_400_000 - 5_000, "the TTL is the own idle timeout: {meta:?}");
    let key = redis.keys().await.remove(0);
    let pttl: i64 = redis.conn().await.pttl(&key).await.expect("pttl");
    assert!(pttl > 7 * 86_400_000 - 5_000 && pttl <= 7 * 86_400_000, "{pttl}");
    assert_eq!(loaded.get::<Vec<String>>("cart").expect("decode"), Some(vec!["tea".into()]));

    // A compaction writes a new record header: it keeps the new deadline, and @i stays.
    let mut loaded = loaded;
    support::insert_numbered(&mut loaded, "a", 6);
    loaded.delete("cart");
    store.save(&mut loaded).await.expect("a compacting save");
    let after = store.load(&token).await.expect("load").expect("live").metadata();
    assert_eq!(
        (after.deadline_ms, after.idle_timeout_ms),
        (meta.deadline_ms, meta.idle_timeout_ms)
    );
    let partial = store.load_only(&token, &["a0"]).await.expect("load").expect("live");
    assert_eq!(partial.metadata().idle_timeout_ms, Some(7 * 86_400_000), "load_only reads @i");
}

#[tokio::test]
async fn an_own_idle_timeout_is_what_loads_and_saves_slide_by() {
    let redis = support::own_server(&[]);
    // The store's idle timeout (1 s) would have ended the session long before the end.
    let store = redis.store_with(|c| c.with_idle_timeout(ms(1000)).with_touch_threshold(0.5));
    let mut session = store.create_with_expiry(Expiry::new(ms(4000), DAY)).await.expect("create");
    assert_eq!(session.metadata().idle_timeout_ms, Some(4000));
    let token = session.token().expose().to_owned();
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    let pttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(pttl > 3500, "created with its own idle timeout: {pttl}");
    store.load(&token).await.expect("load").expect("live"); // syncs the store's clock

    // 1.5 s used of 4: under the own threshold (half of 4 s), so a plain read and no script.
    sleep(ms(1500)).await;
    redis.reset_stats().await;
    store.load(&token).await.expect("load").expect("alive past the store's idle timeout");
    assert_eq!(redis.script_calls().await, 0, "not due by its own idle timeout");

    // 2.6 s used: due. Get-and-touch slides the TTL to the own 4 s, not the store's 1 s.
    sleep(ms(1100)).await;
    let loaded = store.load(&token).await.expect("load").expect("live");
    assert_eq!(redis.command_calls("pexpireat").await, 1, "due: get-and-touch slid the TTL");
    assert!(loaded.metadata().ttl_ms > 3500, "slid by the own timeout: {:?}", loaded.metadata());

    // A save that finds the touch due slides by it too.
    sleep(ms(2200)).await;
    session.insert("n", &1).expect("insert");
    store.save(&mut session).await.expect("save");
    let pttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(pttl > 3500, "the save slid the TTL by the own timeout: {pttl}");
}

#[tokio::test]
async fn an_expiry_out_of_range_is_refused_and_changes_nothing() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    let token = session.token().expose().to_owned();
    for expiry in [Expiry::new(Duration::ZERO, DAY), Expiry::new(DAY, 200 * 365 * DAY)] {
        let refused = store.regenerate_with_expiry(&mut session, expiry).await;
        assert!(matches!(refused, Err(Error::Config(_))), "{refused:?}");
        let created = store.create_with_expiry(expiry).await;
        assert!(matches!(created, Err(Error::Config(_))), "{created:?}");
    }
    assert_eq!(session.token().expose(), token, "the session kept its token");
    let loaded = store.load(&token).await.expect("load").expect("still there");
    assert_eq!(loaded.metadata().idle_timeout_ms, None, "and the store's timeouts");
    assert_eq!(redis.keys().await.len(), 1, "nothing created");
}

#[tokio::test]
async fn a_gone_session_is_not_regenerated_with_an_expiry() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    store.destroy(&session).await.expect("destroy");
    let gone = store.regenerate_with_expiry(&mut session, Expiry::new(DAY, DAY)).await;
    assert!(matches!(gone, Err(Error::SessionGone)), "{gone:?}");
    assert!(redis.keys().await.is_empty(), "nothing brought back");
}
