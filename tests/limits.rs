//! What Redis holds stays within bounds whoever writes: a session's byte limit across saves of
//! several requests at once, and the server's `maxmemory`.

mod support;

use redis::AsyncCommands;
use redis_sessions::{Error, Limits};

/// A hash's fields, in an order that does not depend on its encoding.
type Fields = std::collections::BTreeMap<String, Vec<u8>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_saves_cannot_together_pass_the_session_byte_limit() {
    concurrent_saves_of(&support::any_server()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_limit_holds_where_memory_usage_is_refused() {
    // The save script bounds the bytes with MEMORY USAGE, or, where managed Redis renames it
    // away or an ACL denies it, with the length of every field.
    concurrent_saves_of(&support::own_server(&["--rename-command", "MEMORY", ""])).await;
}

/// Five rounds of four saves at once, each of which alone fits the byte limit.
async fn concurrent_saves_of(redis: &support::TestRedis) {
    let limits = Limits::default().with_max_value_bytes(3000).with_max_session_bytes(3000);
    let store = redis.store_with(|c| c.with_limits(limits));
    for round in 0..5 {
        let token = store.create().await.expect("create").token().expose().to_owned();
        // Four requests load the same session and each adds 1,800 bytes under its own name:
        // each alone keeps the session under 3,000 bytes, any two together do not. Every request
        // reads the session before any of them saves.
        let loaded = std::sync::Arc::new(tokio::sync::Barrier::new(4));
        let saves = (0..4).map(|i| {
            let (store, token, loaded) = (store.clone(), token.clone(), loaded.clone());
            tokio::spawn(async move {
                let mut session = store.load(&token).await.expect("load").expect("live");
                loaded.wait().await; // every request has read the session empty
                session.insert(&format!("n{i}"), &"x".repeat(1800))?;
                store.save(&mut session).await
            })
        });
        let mut saved = 0;
        for result in futures::future::join_all(saves).await {
            match result.expect("task") {
                Ok(()) => saved += 1,
                Err(Error::TooLarge { limit: "session", size, max: 3000 }) => assert!(size > 3000),
                Err(e) => panic!("unexpected: {e:?}"),
            }
        }
        let session = store.load(&token).await.expect("load").expect("live");
        let value_bytes =
            |name| session.get::<String>(name).expect("decode").map_or(0, |v| v.len());
        // Each value is a MessagePack string: a 3-byte header, then its 1,800 bytes.
        let bytes: usize = session.names().map(|name| name.len() + 3 + value_bytes(name)).sum();
        assert!(bytes <= 3000, "round {round}: {bytes} bytes stored");
        assert_eq!(saved, 1, "round {round}: one save fits");
    }
}

#[tokio::test]
async fn out_of_memory_a_save_that_would_grow_the_session_is_refused_whole() {
    let redis = support::own_server(&[]);
    // Every save slides the expiry, so each also sets @t.
    let store = redis.store_with(|c| c.with_touch_threshold(0.0));
    let mut conn = redis.conn().await;
    // Four loose attributes (a0 .. a3, which a save of a fifth folds into the record), and one
    // in the record (r0), which a removal hides with a tombstone.
    let mut session = support::saved_with(&store, 1).await;
    session.delete("a0");
    support::insert_numbered(&mut session, "r", 5);
    store.save(&mut session).await.expect("five: compacted into the record");
    support::insert_numbered(&mut session, "a", 4);
    store.save(&mut session).await.expect("four loose");
    let key = redis.keys().await.remove(0);
    let stored: Fields = conn.hgetall(&key).await.expect("hgetall");
    assert_eq!(stored.len(), 2 + 4, "@p, @t and four loose fields");

    redis.set_maxmemory(1).await;
    let mut compacting = store.load(session.token().expose()).await.expect("load").expect("live");
    compacting.insert("a4", &4).expect("insert");
    let compaction = store.save(&mut compacting).await;
    // A loose attribute deleted (an HDEL) and a record's attribute hidden (an HSET).
    let mut removing = store.load(session.token().expose()).await.expect("load").expect("live");
    assert!(removing.delete("a1") && removing.delete("r0"));
    let removal = store.save(&mut removing).await;
    let unchanged: Fields = conn.hgetall(&key).await.expect("hgetall");
    // A save that only deletes (and slides the expiry) grows nothing, and goes through.
    let mut deleting = store.load(session.token().expose()).await.expect("load").expect("live");
    assert!(deleting.delete("a2"));
    let deletion = store.save(&mut deleting).await;
    redis.set_maxmemory(0).await;

    for (what, result) in [("compaction", compaction), ("removal", removal)] {
        let err = result.expect_err(what);
        assert!(err.is_unavailable(), "{what}: out of memory is transient: {err:?}");
        assert!(err.to_string().contains("out of memory"), "{what}: {err}");
    }
    assert_eq!(unchanged, stored, "nothing half-written");
    deletion.expect("a deletion");
    let left: Vec<String> = conn.hkeys(&key).await.expect("hkeys");
    assert!(!left.contains(&"a2".to_owned()) && left.contains(&"a1".to_owned()), "{left:?}");
}
