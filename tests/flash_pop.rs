//! Popping flash messages: one transaction with the load's read, and the fallbacks when the
//! transaction cannot do it (src/store/flash_pop.rs). A Cluster's pops are in tests/cluster.rs.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use redis_sessions::test_server::stored::DEADLINE_AT;
use redis_sessions::{Config, SessionStore};

/// A touch due 200 ms into a 3 s idle timeout: long enough that a slow machine cannot expire
/// the session, short enough to wait for.
fn touching(config: Config) -> Config {
    config.with_idle_timeout(Duration::from_millis(3000)).with_touch_threshold(0.066)
}

/// A session with one pending flash message, "saved"; its token.
async fn pending(store: &SessionStore) -> String {
    let session = store.create().await.expect("create");
    store.push_flash(&session, "saved").await.expect("push");
    session.token().expose().to_owned()
}

/// Like [`pending`], and waits until a touch is due (with a `touching` store).
async fn pending_with_touch_due(store: &SessionStore) -> String {
    let token = pending(store).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    token
}

/// What a popping load of `token` takes.
async fn popped_by_load(store: &SessionStore, token: &str) -> Vec<String> {
    let mut session = store.load_and_pop_flash(token).await.expect("load").expect("live");
    session.take_flash().expect("decode")
}

#[tokio::test]
async fn a_popping_load_is_one_transaction_and_no_script() {
    let redis = support::own_server(&[]);
    let store = redis.store();
    let token = pending(&store).await;
    redis.reset_stats().await;

    assert_eq!(popped_by_load(&store, &token).await, ["saved"]);
    assert!(popped_by_load(&store, &token).await.is_empty(), "popped once");

    assert_eq!(redis.command_calls("exec").await, 2, "each load one transaction");
    assert_eq!(redis.script_calls().await, 0);
    let fields: Vec<String> =
        redis.conn().await.hkeys(redis.keys().await.remove(0)).await.expect("hkeys");
    assert!(!fields.contains(&"@f".to_owned()), "deleted: {fields:?}");
}

#[tokio::test]
async fn a_popping_load_that_touches_returns_the_messages_it_popped() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(touching);
    let token = pending_with_touch_due(&store).await;
    redis.reset_stats().await;

    assert_eq!(popped_by_load(&store, &token).await, ["saved"]);
    assert_eq!(redis.command_calls("pexpireat").await, 1, "the load touched");
    assert!(popped_by_load(&store, &token).await.is_empty(), "popped once");
}

#[tokio::test]
async fn a_popping_load_whose_touch_fails_serves_what_it_popped() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(touching);
    let token = pending_with_touch_due(&store).await;
    // A user who may read and delete but not run scripts: the touch fails after the pop.
    let mut conn = redis.conn().await;
    let acl = ["SETUSER", "popper", "on", ">secret", "~*", "+@all", "-eval", "-evalsha"];
    let _: () = redis::cmd("ACL").arg(&acl[..]).query_async(&mut conn).await.expect("acl");
    let mut config = touching(redis.config());
    config.url = config.url.replacen("redis://", "redis://popper:secret@", 1);
    let popper = SessionStore::new(config).expect("store");

    assert_eq!(popped_by_load(&popper, &token).await, ["saved"], "served, not lost");
    let key = redis.keys().await.remove(0);
    let pttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(pttl < 2800, "the touch did not run: {pttl}");
    assert!(popped_by_load(&store, &token).await.is_empty(), "popped once");
}

#[tokio::test]
async fn out_of_memory_pops_go_to_the_script() {
    let redis = support::own_server(&[]);
    let store = redis.store();
    let (token, other) = (pending(&store).await, pending(&store).await);
    // Out of memory under noeviction, Redis aborts every transaction but runs plain reads and
    // scripts that only delete or set TTLs. No touch is due, so only the fallback runs a script.
    redis.set_maxmemory(1).await;
    // A first read syncs the store's clock (TIME, src/store/server_clock.rs), and the next sync is
    // due only a second later: within that, every TIME counted below but one a second is a
    // script's.
    let synced = std::time::Instant::now();
    store.load(&other).await.expect("load").expect("live");
    redis.reset_stats().await;
    let by_load = store.load_and_pop_flash(&token).await;
    let load_scripts = redis.script_calls().await;
    let mut session = store.load(&other).await.expect("load").expect("live");
    let by_pop = store.pop_flash::<String>(&mut session).await;
    let (scripts, clock_reads) = (redis.script_calls().await, redis.command_calls("time").await);
    redis.set_maxmemory(0).await;

    assert!(load_scripts >= 1, "the load's transaction was refused, get-and-touch popped");
    assert!(scripts > load_scripts, "so was pop_flash's");
    // Get-and-touch reads the clock once a run, to hold the absolute deadline whatever the TTL
    // says; nothing else reads it but the syncs.
    let syncs = synced.elapsed().as_secs() as i64; // at most one a second since
    assert!(clock_reads <= scripts + syncs, "one clock read a script: {clock_reads}");
    let mut by_load = by_load.expect("popped").expect("live");
    assert_eq!(by_load.take_flash::<String>().expect("decode"), ["saved"]);
    assert_eq!(by_pop.expect("popped"), ["saved"]);
    assert!(popped_by_load(&store, &token).await.is_empty(), "popped once");
    assert!(popped_by_load(&store, &other).await.is_empty(), "popped once");
}

#[tokio::test]
async fn a_popping_load_past_the_deadline_of_a_key_without_a_ttl_serves_nothing() {
    let redis = support::any_server();
    let store = redis.store();
    let token = pending(&store).await;
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    let _: () = conn.persist(&key).await.expect("persist");
    // The deadline, a big-endian u64 in the packed record's header.
    let mut record: Vec<u8> = conn.hget(&key, "@p").await.expect("record");
    record[DEADLINE_AT..DEADLINE_AT + 8].copy_from_slice(&1_000u64.to_be_bytes());
    let _: () = conn.hset(&key, "@p", record).await.expect("deadline in 1970");

    // The read pops the message, then get-and-touch finds the session dead: the read judged it
    // due (the recorded expiry is capped at the deadline), so the load does not serve it.
    assert!(store.load_and_pop_flash(&token).await.expect("load").is_none());
}
