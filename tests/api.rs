//! The whole API, end to end, against a real Redis.

mod support;

use redis::AsyncCommands;
use redis_sessions::Error;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct User {
    id: u64,
    name: String,
    roles: Vec<String>,
}

fn alice() -> User {
    User { id: 7, name: "alice".into(), roles: vec!["admin".into()] }
}

#[tokio::test]
async fn create_save_load_round_trip() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    session.insert("user", &alice()).expect("insert");
    session.insert("cart", &vec![1, 2, 3]).expect("insert");
    store.save(&mut session).await.expect("save");
    assert_eq!(session.metadata().version, 1);

    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    assert_eq!(loaded.get::<User>("user").expect("decode"), Some(alice()));
    assert_eq!(loaded.get::<Vec<i32>>("cart").expect("decode"), Some(vec![1, 2, 3]));
    assert_eq!(loaded.get::<u8>("missing").expect("absent is fine"), None);
    assert_eq!(loaded.metadata().version, 1);
    assert!(loaded.metadata().deadline_ms > loaded.metadata().created_ms);
}

#[tokio::test]
async fn remove_deletes_only_that_field() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    session.insert("a", &1).expect("insert");
    session.insert("b", &2).expect("insert");
    store.save(&mut session).await.expect("save");
    assert!(session.remove("a"));
    assert!(!session.remove("never-set"));
    store.save(&mut session).await.expect("save");

    let fields: Vec<String> =
        redis.conn().await.hkeys(redis.keys().await[0].clone()).await.expect("hkeys");
    assert!(fields.contains(&"b".to_owned()));
    assert!(!fields.contains(&"a".to_owned()));
    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    assert_eq!(loaded.get::<i32>("a").expect("decode"), None);
    assert_eq!(loaded.get::<i32>("b").expect("decode"), Some(2));
}

#[tokio::test]
async fn destroy_ends_the_session() {
    let redis = support::any_server();
    let store = redis.store();
    let session = store.create().await.expect("create");
    assert!(store.destroy(&session).await.expect("destroy"));
    assert!(!store.destroy(&session).await.expect("second destroy"));
    assert!(store.load(session.token().expose()).await.expect("load").is_none());
    assert!(redis.keys().await.is_empty());
}

#[tokio::test]
async fn regenerate_moves_data_and_kills_the_old_token() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    session.insert("user", &alice()).expect("insert");
    store.save(&mut session).await.expect("save");
    let old = session.token().expose().to_owned();
    let created = session.metadata();

    let new = store.regenerate(&mut session).await.expect("regenerate");
    assert_ne!(new.expose(), old);
    assert_eq!(session.token(), &new);
    assert!(store.load(&old).await.expect("load old").is_none());
    let loaded = store.load(new.expose()).await.expect("load new").expect("live");
    assert_eq!(loaded.get::<User>("user").expect("decode"), Some(alice()));
    // Same TTL rules: the absolute deadline moves with the data, it does not restart.
    assert_eq!(loaded.metadata().deadline_ms, created.deadline_ms);
    assert_eq!(loaded.metadata().created_ms, created.created_ms);
    assert!(loaded.metadata().ttl_ms > 0);
    assert_eq!(redis.keys().await.len(), 1);
}

#[tokio::test]
async fn regenerate_keeps_the_hash_tag_so_the_cluster_slot_stays() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    let before = redis.keys().await.remove(0);
    store.regenerate(&mut session).await.expect("regenerate");
    let after = redis.keys().await.remove(0);
    assert_ne!(before, after);
    // Redis Cluster hashes only what is between the first braces: equal tags, equal slots
    // (tests/cluster.rs checks the slot itself with CLUSTER KEYSLOT).
    let tag = |key: &str| key.split(['{', '}']).nth(1).map(str::to_owned);
    assert!(tag(&before).is_some_and(|t| t.len() == 4));
    assert_eq!(tag(&before), tag(&after));
}

#[tokio::test]
async fn flash_round_trip_and_pop_in_load() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    store.push_flash(&session, "saved").await.expect("push");
    store.push_flash(&session, "welcome").await.expect("push");

    // A plain load leaves the messages pending.
    let mut plain = store.load(session.token().expose()).await.expect("load").expect("live");
    assert!(plain.take_flash::<String>().expect("decode").is_empty());

    let mut popped =
        store.load_and_pop_flash(session.token().expose()).await.expect("load").expect("live");
    assert_eq!(popped.take_flash::<String>().expect("decode"), ["saved", "welcome"]);
    assert!(store.pop_flash::<String>(&mut session).await.expect("pop").is_empty());

    store.push_flash(&session, "again").await.expect("push");
    assert_eq!(store.pop_flash::<String>(&mut session).await.expect("pop"), ["again"]);
}

#[tokio::test]
async fn a_popping_load_is_one_transaction_and_no_script() {
    let redis = support::own_server(&[]);
    let store = redis.store();
    let session = store.create().await.expect("create");
    store.push_flash(&session, "saved").await.expect("push");
    redis.reset_stats().await;

    let token = session.token().expose();
    let mut popped = store.load_and_pop_flash(token).await.expect("load").expect("live");
    assert_eq!(popped.take_flash::<String>().expect("decode"), ["saved"]);
    let mut again = store.load_and_pop_flash(token).await.expect("load").expect("live");
    assert!(again.take_flash::<String>().expect("decode").is_empty(), "popped once");

    assert_eq!(redis.command_calls("exec").await, 2, "each load one transaction");
    assert_eq!(redis.command_calls("evalsha").await + redis.command_calls("eval").await, 0);
    let fields: Vec<String> =
        redis.conn().await.hkeys(redis.keys().await.remove(0)).await.expect("hkeys");
    assert!(!fields.contains(&"@f".to_owned()), "deleted: {fields:?}");
}

#[tokio::test]
async fn a_popping_load_that_touches_returns_the_messages_it_popped() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(touching);
    let token = pending_and_due(&store).await;
    redis.reset_stats().await;

    let mut popped = store.load_and_pop_flash(&token).await.expect("load").expect("live");
    assert_eq!(redis.command_calls("pexpire").await, 1, "the load touched");
    assert_eq!(popped.take_flash::<String>().expect("decode"), ["saved"]);
    let mut again = store.load_and_pop_flash(&token).await.expect("load").expect("live");
    assert!(again.take_flash::<String>().expect("decode").is_empty(), "popped once");
}

/// A store whose touch is due 200 ms into a 3 s idle timeout, for the popping tests below.
fn touching(config: redis_sessions::Config) -> redis_sessions::Config {
    let idle = std::time::Duration::from_millis(3000);
    config.with_idle_timeout(idle).with_touch_threshold(0.066)
}

/// A session with one pending flash message whose touch is due.
async fn pending_and_due(store: &redis_sessions::SessionStore) -> String {
    let session = store.create().await.expect("create");
    store.push_flash(&session, "saved").await.expect("push");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    session.token().expose().to_owned()
}

#[tokio::test]
async fn a_popping_load_whose_touch_fails_serves_what_it_popped() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(touching);
    let token = pending_and_due(&store).await;
    // A user who may read and delete but not run scripts: the touch fails after the pop.
    let mut conn = redis.conn().await;
    let acl = ["SETUSER", "popper", "on", ">secret", "~*", "+@all", "-eval", "-evalsha"];
    let _: () = redis::cmd("ACL").arg(&acl[..]).query_async(&mut conn).await.expect("acl");
    let mut config = touching(redis.config());
    config.url = config.url.replacen("redis://", "redis://popper:secret@", 1);
    let popper = redis_sessions::SessionStore::new(config).expect("store");

    let mut popped = popper.load_and_pop_flash(&token).await.expect("served").expect("live");
    assert_eq!(popped.take_flash::<String>().expect("decode"), ["saved"], "not lost");
    let key = redis.keys().await.remove(0);
    let pttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(pttl < 2800, "the touch did not run: {pttl}");
    let mut again = store.load_and_pop_flash(&token).await.expect("load").expect("live");
    assert!(again.take_flash::<String>().expect("decode").is_empty(), "popped once");
}

#[tokio::test]
async fn a_popping_load_out_of_memory_pops_with_the_script() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(touching);
    let token = pending_and_due(&store).await;
    // Out of memory under noeviction, Redis aborts every transaction but runs plain reads and
    // scripts that only delete or set TTLs.
    let mut conn = redis.conn().await;
    let maxmemory =
        |bytes: u64| redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(bytes).clone();
    let _: () = maxmemory(1).query_async(&mut conn).await.expect("config");
    redis.reset_stats().await;
    let popped = store.load_and_pop_flash(&token).await;
    let scripts = redis.command_calls("evalsha").await + redis.command_calls("eval").await;
    let _: () = maxmemory(0).query_async(&mut conn).await.expect("config");

    assert!(scripts >= 1, "the transaction was refused, get-and-touch popped");
    let mut popped = popped.expect("popped").expect("live");
    assert_eq!(popped.take_flash::<String>().expect("decode"), ["saved"]);
    let mut again = store.load_and_pop_flash(&token).await.expect("load").expect("live");
    assert!(again.take_flash::<String>().expect("decode").is_empty(), "popped once");
}

#[tokio::test]
async fn flash_of_the_wrong_type_is_kept_for_a_retry() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    store.push_flash(&session, "text").await.expect("push");
    let err = store.pop_flash::<u32>(&mut session).await.expect_err("wrong type");
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert_eq!(session.take_flash::<String>().expect("right type"), ["text"]);
}

#[tokio::test]
async fn operations_on_a_destroyed_session_say_so_and_write_nothing() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    store.destroy(&session).await.expect("destroy");
    session.insert("x", &1).expect("insert");
    assert!(matches!(store.save(&mut session).await, Err(Error::SessionGone)));
    assert!(matches!(store.push_flash(&session, "hi").await, Err(Error::SessionGone)));
    assert!(matches!(store.regenerate(&mut session).await, Err(Error::SessionGone)));
    assert!(redis.keys().await.is_empty(), "nothing resurrected");
}

#[tokio::test]
async fn load_only_reads_just_the_named_attributes_and_saves_a_delta() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    session.insert("user", &alice()).expect("insert");
    session.insert("cart", &vec![1, 2]).expect("insert");
    session.insert("theme", &"dark").expect("insert");
    store.save(&mut session).await.expect("save");
    let token = session.token().expose().to_owned();

    let mut partial =
        store.load_only(&token, &["cart", "absent"]).await.expect("load").expect("live");
    assert_eq!(partial.get::<Vec<i32>>("cart").expect("read"), Some(vec![1, 2]));
    assert_eq!(partial.get::<i32>("absent").expect("asked for, not set"), None);
    let err = partial.get::<User>("user").expect_err("not read");
    assert!(matches!(err, Error::NotLoaded(ref name) if name == "user"), "{err:?}");
    assert_eq!(partial.metadata().version, 1);

    partial.insert("cart", &vec![3]).expect("insert");
    partial.insert("new", &true).expect("insert");
    assert_eq!(partial.get::<bool>("new").expect("inserted here"), Some(true));
    store.save(&mut partial).await.expect("save");
    let full = store.load(&token).await.expect("load").expect("live");
    assert_eq!(full.get::<User>("user").expect("decode"), Some(alice()), "untouched by the save");
    assert_eq!(full.get::<Vec<i32>>("cart").expect("decode"), Some(vec![3]));
    assert_eq!(full.get::<String>("theme").expect("decode").as_deref(), Some("dark"));
    assert!(store.load_only("malformed", &["cart"]).await.expect("no error").is_none());
    store.destroy(&full).await.expect("destroy");
    assert!(store.load_only(&token, &["cart"]).await.expect("load").is_none());
}

#[tokio::test]
async fn load_only_still_slides_the_expiry_when_due() {
    let redis = support::any_server();
    let store = redis.store_with(|c| {
        c.with_idle_timeout(std::time::Duration::from_millis(1000)).with_touch_threshold(0.3)
    });
    let mut session = store.create().await.expect("create");
    session.insert("user", &alice()).expect("insert");
    store.save(&mut session).await.expect("save");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let touched =
        store.load_only(session.token().expose(), &["x"]).await.expect("load").expect("live");
    assert!(touched.metadata().ttl_ms > 900, "touched: {}", touched.metadata().ttl_ms);
    let key = redis.keys().await.remove(0);
    let pttl: i64 = redis.conn().await.pttl(&key).await.expect("pttl");
    assert!(pttl > 800, "the TTL slid: {pttl}");
}
