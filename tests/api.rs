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

    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    assert_eq!(loaded.get::<User>("user").expect("decode"), Some(alice()));
    assert_eq!(loaded.get::<Vec<i32>>("cart").expect("decode"), Some(vec![1, 2, 3]));
    assert_eq!(loaded.get::<u8>("missing").expect("absent is fine"), None);
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
    assert!(session.delete("a"));
    assert!(!session.delete("never-set"));
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
async fn remove_returns_the_old_value_and_a_bad_type_keeps_it() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    session.insert("return_to", "/cart").expect("insert");
    session.insert("n", &7).expect("insert");
    store.save(&mut session).await.expect("save");
    let mut loaded = store.load(session.token().expose()).await.expect("load").expect("live");

    let wrong = loaded.remove::<Vec<u8>>("return_to");
    assert!(matches!(wrong, Err(redis_sessions::Error::Decode { .. })), "{wrong:?}");
    assert!(!loaded.is_changed(), "a value of the wrong type is not removed");
    let old: Option<String> = loaded.remove("return_to").expect("decode");
    assert_eq!(old.as_deref(), Some("/cart"));
    assert_eq!(loaded.remove::<String>("return_to").expect("decode"), None, "gone now");
    store.save(&mut loaded).await.expect("save");

    let again = store.load(session.token().expose()).await.expect("load").expect("live");
    assert_eq!(again.get::<String>("return_to").expect("decode"), None);
    assert_eq!(again.get::<i32>("n").expect("decode"), Some(7));

    // After a partial load the old value of a name it did not read is unknown: an error, as
    // `get` gives, and nothing removed; `delete` removes it.
    let mut partial =
        store.load_only(session.token().expose(), &["x"]).await.expect("load").expect("live");
    let unknown = partial.remove::<i32>("n");
    assert!(matches!(unknown, Err(redis_sessions::Error::NotLoaded(_))), "{unknown:?}");
    assert!(!partial.is_changed(), "nothing removed");
    assert!(!partial.delete("n"), "not known to be set, deleted all the same");
    store.save(&mut partial).await.expect("save");
    let last = store.load(session.token().expose()).await.expect("load").expect("live");
    assert_eq!(last.get::<i32>("n").expect("decode"), None);
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
    // A single server tags keys only when asked (a cluster always does: tests/cluster.rs).
    let store = redis.store_with(|c| c.with_hash_tags(true));
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
    let (key, mut conn) = (redis.keys().await.remove(0), redis.conn().await);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let touched =
        store.load_only(session.token().expose(), &["x"]).await.expect("load").expect("live");
    let pttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert!(touched.metadata().ttl_ms > 900, "touched: {}", touched.metadata().ttl_ms);
    assert!(pttl > 800, "the TTL slid: {pttl}");
}

#[tokio::test]
async fn clear_removes_every_attribute_but_keeps_the_session_and_its_flash() {
    let redis = support::any_server();
    let store = redis.store();
    // Six attributes, packed into the record by the first save, and one loose after it.
    let mut session = support::saved_with(&store, 6).await;
    session.insert("loose", &true).expect("insert");
    store.save(&mut session).await.expect("save");
    store.push_flash(&session, "kept").await.expect("push");
    let mut loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    assert!(!loaded.is_empty());

    loaded.clear();
    assert!(loaded.is_empty() && loaded.is_changed());
    store.save(&mut loaded).await.expect("save");
    let mut again =
        store.load_and_pop_flash(session.token().expose()).await.expect("load").expect("live");
    assert!(again.is_empty(), "{:?}", again.names().collect::<Vec<_>>());
    assert_eq!(again.take_flash::<String>().expect("decode"), ["kept"]);
    assert_eq!(again.token(), session.token(), "the same session");
}

#[tokio::test]
async fn the_fingerprint_names_a_session_in_logs_without_opening_it() {
    let redis = support::any_server();
    let store = redis.store();
    let session = store.create().await.expect("create");
    let print = session.fingerprint();
    assert_eq!(print.len(), 8);
    assert_eq!(format!("{:?}", session.token()), format!("Token({print})"), "as Debug shows it");
    assert!(!session.token().expose().contains(&print), "no part of the token");
    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    assert_eq!(loaded.fingerprint(), print, "stable across loads");
    let other = store.create().await.expect("create");
    assert_ne!(other.fingerprint(), print, "another session, another name");
}
