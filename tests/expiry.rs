//! Idle and absolute timeouts, and touch throttling, enforced by the scripts with Redis' clock.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
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
    sleep(ms(450)).await;
    assert!(store.load(session.token().expose()).await.expect("load").is_none());
    assert!(redis.keys().await.is_empty(), "Redis expired the key itself");
}

#[tokio::test]
async fn a_busy_session_still_dies_at_the_absolute_timeout() {
    let redis = support::any_server();
    let store = redis.store_with(|c| {
        c.with_idle_timeout(ms(400)).with_absolute_timeout(ms(1200)).with_touch_threshold(0.0)
    });
    let session = store.create().await.expect("create");
    let token = session.token().expose().to_owned();
    let started = std::time::Instant::now();
    // Touch every 150 ms: without the absolute timeout this would live forever.
    while started.elapsed() < ms(1000) {
        assert!(
            store.load(&token).await.expect("load").is_some(),
            "alive at {:?}",
            started.elapsed()
        );
        sleep(ms(150)).await;
    }
    sleep(ms(300)).await;
    assert!(store.load(&token).await.expect("load").is_none(), "dead after the deadline");
}

#[tokio::test]
async fn the_ttl_never_runs_past_the_absolute_deadline() {
    let redis = support::any_server();
    let store = redis.store_with(|c| {
        c.with_idle_timeout(Duration::from_secs(60)).with_absolute_timeout(ms(2000))
    });
    let session = store.create().await.expect("create");
    let pttl: i64 = redis.conn().await.pttl(&redis.keys().await[0]).await.expect("pttl");
    assert!(pttl > 0 && pttl <= 2000, "pttl {pttl} capped by the absolute timeout");
    assert!(session.metadata().ttl_ms <= 2000);
}

#[tokio::test]
async fn a_read_inside_the_throttle_window_writes_nothing() {
    let redis = support::own_server(&[]);
    let store = redis
        .store_with(|c| c.with_idle_timeout(Duration::from_secs(60)).with_touch_threshold(0.5));
    let session = store.create().await.expect("create");
    // Warm up: the first call of a script answers NOSCRIPT and loads it.
    store.load(session.token().expose()).await.expect("load");
    let dirty_before = redis.info_field("persistence", "rdb_changes_since_last_save").await;
    redis.reset_stats().await;

    for _ in 0..10 {
        assert!(store.load(session.token().expose()).await.expect("load").is_some());
    }

    assert_eq!(redis.command_calls("evalsha").await, 10, "ten reads ran");
    assert_eq!(redis.command_calls("pexpire").await, 0, "no read extended the TTL");
    assert_eq!(redis.command_calls("hdel").await, 0);
    let dirty_after = redis.info_field("persistence", "rdb_changes_since_last_save").await;
    assert_eq!(dirty_after, dirty_before, "no write at all");
}

#[tokio::test]
async fn a_read_past_the_throttle_window_extends_the_ttl() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(|c| c.with_idle_timeout(ms(1000)).with_touch_threshold(0.5));
    let session = store.create().await.expect("create");
    let key = redis.keys().await.remove(0);
    sleep(ms(600)).await;
    let pttl_before: i64 = redis.conn().await.pttl(&key).await.expect("pttl");
    assert!(pttl_before < 500, "more than half of the idle timeout used up: {pttl_before}");
    redis.reset_stats().await;

    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");

    assert_eq!(redis.command_calls("pexpire").await, 1, "this read extended the TTL");
    let pttl_after: i64 = redis.conn().await.pttl(&key).await.expect("pttl");
    assert!(pttl_after > 900, "back to a full idle timeout: {pttl_after}");
    assert!(loaded.metadata().ttl_ms > 900);
    sleep(ms(600)).await;
    assert!(
        store.load(session.token().expose()).await.expect("load").is_some(),
        "alive past the first 1 s"
    );
}
