//! A session's own timeouts (`Timeouts`): "remember me" chosen at login or at creation.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use redis_sessions::{Error, Timeouts};
use tokio::time::sleep;

const DAY: Duration = Duration::from_secs(86_400);
const DAY_MS: i64 = 86_400_000;

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
async fn regenerate_with_timeouts_gives_the_session_its_own_and_takes_them_back() {
    let redis = support::any_server();
    let store = redis.store(); // the store's: 30 min idle, 12 h absolute
    let mut session = store.create().await.expect("create");
    session.insert("cart", &["tea"]).expect("insert");
    store.save(&mut session).await.expect("save");
    let old = session.token().expose().to_owned();

    let before = server_ms(&redis).await;
    let remember = Some(Timeouts::new(7 * DAY, 30 * DAY));
    let token = store.regenerate_with_timeouts(&mut session, remember).await.expect("regenerate");
    let token = token.expose().to_owned();
    assert!(store.load(&old).await.expect("load").is_none(), "the old token opens nothing");

    let loaded = store.load(&token).await.expect("load").expect("moved");
    let meta = loaded.metadata();
    let known = session.metadata();
    let (deadline, idle) = (known.deadline_ms, known.idle_timeout_ms);
    assert_eq!((meta.deadline_ms, meta.idle_timeout_ms), (deadline, idle), "the client knows");
    assert_eq!(meta.idle_timeout_ms, Some(7 * DAY_MS));
    assert!((meta.deadline_ms - before - 30 * DAY_MS).abs() < 5_000, "{meta:?}");
    let key = redis.keys().await.remove(0);
    let pttl: i64 = redis.conn().await.pttl(&key).await.expect("pttl");
    assert!(pttl > 7 * DAY_MS - 5_000 && pttl <= 7 * DAY_MS, "the own idle timeout: {pttl}");
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
    assert_eq!(partial.metadata().idle_timeout_ms, Some(7 * DAY_MS), "load_only reads @i");

    // A plain regenerate keeps them; one with None gives the store's back, from now on.
    let token = store.regenerate(&mut loaded).await.expect("regenerate").expose().to_owned();
    let kept = store.load(&token).await.expect("load").expect("live").metadata();
    assert_eq!((kept.deadline_ms, kept.idle_timeout_ms), (meta.deadline_ms, meta.idle_timeout_ms));
    let token = store.regenerate_with_timeouts(&mut loaded, None).await.expect("regenerate");
    let plain = store.load(token.expose()).await.expect("load").expect("live").metadata();
    assert_eq!(plain.idle_timeout_ms, None);
    assert!((plain.deadline_ms - before - 12 * 3_600_000).abs() < 5_000, "{plain:?}");
    let key = redis.keys().await.remove(0);
    let pttl: i64 = redis.conn().await.pttl(&key).await.expect("pttl");
    assert!(pttl > 1_795_000 && pttl <= 1_800_000, "the store's 30 minutes: {pttl}");
    let fields: Vec<String> = redis.conn().await.hkeys(&key).await.expect("hkeys");
    assert!(!fields.contains(&"@i".to_owned()), "{fields:?}");
}

#[tokio::test]
async fn an_own_idle_timeout_is_what_loads_and_saves_slide_by() {
    let redis = support::own_server(&[]);
    // The store's idle timeout (1 s) would have ended the session long before the end.
    let store = redis.store_with(|c| c.with_idle_timeout(ms(1000)).with_touch_threshold(0.5));
    let own = Timeouts::new(ms(8000), DAY); // so a touch is due once 4 s are used up
    let mut session = store.create_with_timeouts(own).await.expect("create");
    assert_eq!(session.metadata().idle_timeout_ms, Some(8000));
    let token = session.token().expose().to_owned();
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    let pttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(pttl > 7000, "created with its own idle timeout: {pttl}");
    store.load(&token).await.expect("load").expect("live"); // syncs the store's clock

    // 1.5 s used of 8: under the own threshold, so a plain read and no script.
    sleep(ms(1500)).await;
    redis.reset_stats().await;
    store.load(&token).await.expect("load").expect("alive past the store's idle timeout");
    assert_eq!(redis.script_calls().await, 0, "not due by its own idle timeout");

    // 4.5 s used: due. Get-and-touch slides the TTL to the own 8 s, not the store's 1 s.
    sleep(ms(3000)).await;
    let loaded = store.load(&token).await.expect("load").expect("live");
    assert_eq!(redis.command_calls("pexpireat").await, 1, "due: get-and-touch slid the TTL");
    assert!(loaded.metadata().ttl_ms > 7000, "slid by the own timeout: {:?}", loaded.metadata());

    // A save that finds the touch due slides by it too; so does a popping load.
    sleep(ms(4500)).await;
    session.insert("n", &1).expect("insert");
    store.save(&mut session).await.expect("save");
    let pttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(pttl > 7000, "the save slid the TTL by the own timeout: {pttl}");
    store.push_flash(&session, "hi").await.expect("push");
    sleep(ms(4500)).await;
    let mut popped = store.load_and_pop_flash(&token).await.expect("load").expect("live");
    assert_eq!(popped.take_flash::<String>().expect("decode"), ["hi"]);
    assert!(popped.metadata().ttl_ms > 7000, "{:?}", popped.metadata());
}

#[tokio::test]
async fn timeouts_out_of_range_are_refused_and_change_nothing() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    let token = session.token().expose().to_owned();
    for own in [Timeouts::new(Duration::ZERO, DAY), Timeouts::new(DAY, 200 * 365 * DAY)] {
        let refused = store.regenerate_with_timeouts(&mut session, Some(own)).await;
        assert!(matches!(refused, Err(Error::Config(_))), "{refused:?}");
        let created = store.create_with_timeouts(own).await;
        assert!(matches!(created, Err(Error::Config(_))), "{created:?}");
    }
    assert_eq!(session.token().expose(), token, "the session kept its token");
    let loaded = store.load(&token).await.expect("load").expect("still there");
    assert_eq!(loaded.metadata().idle_timeout_ms, None, "and the store's timeouts");
    assert_eq!(redis.keys().await.len(), 1, "nothing created");
}

#[tokio::test]
async fn a_gone_session_is_not_regenerated_with_timeouts() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    store.destroy(&session).await.expect("destroy");
    let gone = store.regenerate_with_timeouts(&mut session, Some(Timeouts::new(DAY, DAY))).await;
    assert!(matches!(gone, Err(Error::SessionGone)), "{gone:?}");
    assert!(redis.keys().await.is_empty(), "nothing brought back");
}

#[tokio::test]
async fn out_of_memory_regenerate_with_timeouts_changes_nothing() {
    let redis = support::own_server(&[]);
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    session.insert("user", "ada").expect("insert");
    store.save(&mut session).await.expect("save");
    let token = session.token().expose().to_owned();
    let key = redis.keys().await.remove(0);
    let stored: Vec<(String, Vec<u8>)> = redis.conn().await.hgetall(&key).await.expect("hgetall");

    redis.set_maxmemory(1).await;
    let refused = store.regenerate_with_timeouts(&mut session, Some(Timeouts::new(DAY, DAY))).await;
    assert!(refused.as_ref().is_err_and(Error::is_unavailable), "{refused:?}");
    redis.set_maxmemory(0).await;

    assert_eq!(session.token().expose(), token, "the session kept its token");
    assert_eq!(redis.keys().await, std::slice::from_ref(&key), "not moved");
    let after: Vec<(String, Vec<u8>)> = redis.conn().await.hgetall(&key).await.expect("hgetall");
    assert_eq!(after, stored, "not a field changed");
    let loaded = store.load(&token).await.expect("load").expect("the old token still opens it");
    assert_eq!(loaded.metadata().idle_timeout_ms, None);
}
