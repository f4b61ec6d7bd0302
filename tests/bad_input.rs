//! Bad input gets a clear error and loses nothing: malformed tokens, corrupt or foreign data,
//! wrong key types, oversized values.

mod support;

use redis::AsyncCommands;
use redis_sessions::test_server::stored::META;
use redis_sessions::{Error, Limits, Unseal};

#[tokio::test]
async fn a_malformed_token_never_reaches_redis() {
    let redis = support::own_server(&[]);
    let store = redis.store();
    redis.reset_stats().await; // also zeroes total_connections_received

    let valid = "A".repeat(47);
    let bad = [
        String::new(),
        "short".into(),
        "A".repeat(46),
        "A".repeat(48),
        format!("{}=", &valid[..46]),
        format!("{}+", &valid[..46]),
        format!("{}é", &valid[..45]),
        format!("AAAé{}", &valid[..42]), // 47 bytes, with a character across the tag boundary
        format!("{}B", &valid[..46]),    // wrong trailing bits: not a canonical 32-byte secret
        "../../etc/passwd".into(),
        "*".into(),
        format!("{}\r\nFLUSHALL\r\n", &valid[..30]),
    ];
    for token in &bad {
        assert!(store.load(token).await.expect("no error, no session").is_none(), "{token:?}");
        assert!(store.load_and_pop_flash(token).await.expect("no error").is_none());
    }

    // Neither a load's read, nor a clock sync, nor any script ran.
    let commands = ["hvals", "hmget", "pttl", "time", "evalsha", "eval"];
    for command in commands {
        assert_eq!(redis.command_calls(command).await, 0, "{command}");
    }
    // Only the connections this test opened to look (one per stats query above, and this
    // one): the store never even connected.
    let opened = redis.info_field("stats", "total_connections_received").await;
    assert_eq!(opened, commands.len() as i64 + 1);
}

#[tokio::test]
async fn a_token_with_any_one_character_changed_opens_nothing() {
    let redis = support::any_server();
    for hash_tags in [false, true] {
        let store = redis.store_with(|config| config.with_hash_tags(hash_tags));
        support::assert_altered_tokens_open_nothing(&store).await;
    }
}

#[tokio::test]
async fn corrupt_bytes_break_only_their_own_attribute() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    session.insert("good", &"fine").expect("insert");
    session.insert("bad", &"soon broken").expect("insert");
    store.save(&mut session).await.expect("save");
    let key = redis.keys().await.remove(0);
    // Stamped with its name (src/format/fields.rs), then bytes that are not MessagePack: an
    // array of two that holds one element.
    let mut bad = Vec::new();
    rmp::encode::write_str(&mut bad, "bad").expect("to a Vec");
    bad.extend_from_slice(&[0x92, 0x01]);
    let _: () = redis.conn().await.hset(&key, "bad", &bad[..]).await.expect("hset");

    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    let err = loaded.get::<String>("bad").expect_err("corrupt");
    assert!(matches!(&err, Error::Decode { attribute, .. } if attribute == "bad"), "{err:?}");
    assert!(std::error::Error::source(&err).is_some(), "keeps the decoder's error");
    assert_eq!(loaded.get::<String>("good").expect("unaffected"), Some("fine".into()));

    // Starting with META, never MessagePack, it reads as a sealed value cut short.
    let cut = [&bad[..4], &[META, 0xff, 0x00][..]].concat();
    let _: () = redis.conn().await.hset(&key, "bad", &cut[..]).await.expect("hset");
    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    let err = loaded.get::<String>("bad").expect_err("corrupt");
    assert!(matches!(err, Error::Unseal { cause: Unseal::Malformed, .. }), "{err:?}");
}

#[tokio::test]
async fn a_foreign_value_under_a_session_key_is_an_error_not_a_panic() {
    let redis = support::any_server();
    let store = redis.store();
    let session = store.create().await.expect("create");
    let token = session.token().expose().to_owned();
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;

    let _: () = conn.del(&key).await.expect("del");
    let _: () = conn.set(&key, "a plain string").await.expect("set");
    let err = store.load(&token).await.expect_err("wrong type");
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");

    let _: () = conn.del(&key).await.expect("del");
    let _: () = conn.hset(&key, "some", "hash").await.expect("hset");
    let err = store.load(&token).await.expect_err("no metadata");
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");

    let _: () = conn.hset(&key, "@p", "too short").await.expect("hset");
    let err = store.load(&token).await.expect_err("bad metadata");
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
    let left: String = conn.hget(&key, "some").await.expect("hget");
    assert_eq!(left, "hash", "the foreign data is left as it was");
}

#[tokio::test]
async fn a_hash_without_a_packed_record_is_corrupt_for_loads_and_gone_for_writes() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    session.insert("b", &1).expect("insert");
    store.save(&mut session).await.expect("save: a loose field, so the hash outlives its record");
    let token = session.token().expose().to_owned();
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    let _: () = conn.hdel(&key, "@p").await.expect("hdel");
    for result in [store.load(&token).await, store.load_only(&token, &["b"]).await] {
        assert!(matches!(result, Err(Error::Corrupt(_))), "{result:?}");
    }
    let _: () = conn.persist(&key).await.expect("persist"); // the load must go to the script
    let err = store.load(&token).await.expect_err("get-and-touch refuses it too");
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
    let ttl: i64 = conn.pttl(&key).await.expect("pttl");
    assert_eq!(ttl, -1, "get-and-touch wrote nothing");
    session.insert("a", &1).expect("insert");
    assert!(matches!(store.save(&mut session).await, Err(Error::SessionGone)));
}

#[tokio::test]
async fn oversized_values_are_refused_before_anything_is_written() {
    let redis = support::any_server();
    let limits = Limits::default()
        .with_max_value_bytes(100)
        .with_max_session_bytes(250)
        .with_max_attributes(3);
    let store = redis.store_with(|c| c.with_limits(limits));
    let mut session = store.create().await.expect("create");
    session.insert("small", &"x").expect("insert");
    store.save(&mut session).await.expect("save");
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    let before: Vec<(String, Vec<u8>)> = conn.hgetall(&key).await.expect("hgetall");

    let err = session.insert("big", &"y".repeat(200)).expect_err("value too large");
    assert!(matches!(err, Error::TooLarge { limit: "value", .. }), "{err:?}");
    session.insert("a", &"z".repeat(90)).expect("fits");
    session.insert("b", &"z".repeat(90)).expect("fits");
    let err = session.insert("c", &1).expect_err("too many");
    assert!(matches!(err, Error::TooLarge { limit: "attributes", .. }), "{err:?}");
    session.delete("b");
    let err =
        session.insert("small", &"z".repeat(95)).map(|_| session.insert("b", &"q".repeat(95)));
    assert!(matches!(err, Ok(Err(Error::TooLarge { limit: "session", .. }))), "{err:?}");
    let err = session.insert("@v", &0).expect_err("reserved");
    assert!(matches!(err, Error::InvalidName(_)));
    let err = store.push_flash(&session, &"f".repeat(200)).await.expect_err("flash too large");
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");

    let after: Vec<(String, Vec<u8>)> = conn.hgetall(&key).await.expect("hgetall");
    assert_eq!(before, after, "nothing was written");

    // The next save writes what was accepted and nothing that was refused.
    store.save(&mut session).await.expect("save");
    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    let mut names: Vec<&str> = loaded.names().collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "small"]);
    assert_eq!(loaded.get::<String>("small").expect("decode"), Some("z".repeat(95)));
}

#[tokio::test]
async fn the_attribute_limit_holds_against_concurrent_saves_too() {
    let redis = support::any_server();
    let store = redis.store_with(|c| c.with_limits(Limits::default().with_max_attributes(2)));
    let session = store.create().await.expect("create");
    let token = session.token().expose().to_owned();
    let mut a = store.load(&token).await.expect("load").expect("live");
    let mut b = store.load(&token).await.expect("load").expect("live");
    a.insert("one", &1).expect("insert");
    a.insert("two", &2).expect("insert");
    store.save(&mut a).await.expect("save");
    b.insert("three", &3).expect("fits in b's own view");
    let err = store.save(&mut b).await.expect_err("the script counts what Redis holds");
    assert!(matches!(err, Error::TooLarge { limit: "attributes", size: 3, max: 2 }), "{err:?}");
    let now = store.load(&token).await.expect("load").expect("live");
    assert_eq!(now.get::<i32>("three").expect("decode"), None);
}

#[test]
fn invalid_configuration_is_refused_clearly() {
    use redis_sessions::{Config, SessionStore};
    for (config, needle) in [
        (Config::from_url("http://x"), "redis://"),
        (Config::default().with_touch_threshold(1.5), "touch_threshold"),
        (Config::default().with_pool_max_size(0), "pool_max_size"),
        (Config::default().with_limits(Limits::default().with_max_attributes(0)), "max_attributes"),
    ] {
        let err = SessionStore::new(config).expect_err("invalid");
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[tokio::test]
async fn pending_flash_messages_stop_at_the_limit_in_redis() {
    let redis = support::any_server();
    let store = redis.store_with(|c| c.with_limits(Limits::default().with_max_value_bytes(100)));
    let mut session = store.create().await.expect("create");
    let message = "m".repeat(20); // 21 bytes of MessagePack: each fits alone, five do not
    for _ in 0..4 {
        store.push_flash(&session, &message).await.expect("fits");
    }
    let err = store.push_flash(&session, &message).await.expect_err("over the total");
    assert!(matches!(err, Error::TooLarge { limit: "flash", size: 105, max: 100 }), "{err:?}");
    assert_eq!(store.pop_flash::<String>(&mut session).await.expect("pop").len(), 4);
}

#[tokio::test]
async fn a_save_that_swaps_one_attribute_for_another_fits_at_the_limit() {
    let redis = support::any_server();
    let store = redis.store_with(|c| c.with_limits(Limits::default().with_max_attributes(2)));
    let mut session = store.create().await.expect("create");
    session.insert("a", &1).expect("insert");
    session.insert("b", &2).expect("insert");
    store.save(&mut session).await.expect("save");
    session.delete("a");
    session.insert("c", &3).expect("insert");
    store.save(&mut session).await.expect("the deletion makes room");
    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    let mut names: Vec<&str> = loaded.names().collect();
    names.sort_unstable();
    assert_eq!(names, ["b", "c"]);
}

#[tokio::test]
async fn a_session_over_a_lowered_limit_can_still_shrink_and_change() {
    let redis = support::any_server();
    let mut session = redis.store().create().await.expect("create");
    support::insert_numbered(&mut session, "a", 5);
    redis.store().save(&mut session).await.expect("save");

    let lowered = redis.store_with(|c| c.with_limits(Limits::default().with_max_attributes(2)));
    let mut session = lowered.load(session.token().expose()).await.expect("load").expect("live");
    session.delete("a0");
    session.insert("a1", &100).expect("overwriting does not grow the session");
    lowered.save(&mut session).await.expect("shrinking is allowed");
    let err = session.insert("new", &1).expect_err("growing is not");
    assert!(matches!(err, Error::TooLarge { limit: "attributes", .. }), "{err:?}");
}

#[tokio::test]
async fn a_corrupt_record_header_refuses_the_save_before_writing_anything() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    let key = redis.keys().await.remove(0);
    let mut conn = redis.conn().await;
    let _: () = conn.hset(&key, "@p", "too short").await.expect("hset");
    session.insert("a", &1).expect("insert");
    let err = store.save(&mut session).await.expect_err("corrupt header");
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
    let a: Option<Vec<u8>> = conn.hget(&key, "a").await.expect("hget");
    assert_eq!(a, None, "nothing written");
}

#[tokio::test]
async fn a_save_of_the_largest_allowed_number_of_attributes_works() {
    let redis = support::any_server();
    let limits = Limits::default().with_max_attributes(4000).with_max_session_bytes(1 << 20);
    let store = redis.store_with(|c| c.with_limits(limits));
    let token = store.create().await.expect("create").token().expose().to_owned();
    // Partial loads never compact, so both saves go through the delta path and its chunked
    // HSET and HDEL (Lua's unpack limit is about 8000 values).
    let mut session = store.load_only(&token, &[]).await.expect("load").expect("live");
    support::insert_numbered(&mut session, "k", 4000);
    store.save(&mut session).await.expect("one save of 4000 attributes");
    let names: Vec<String> = (0..4000).map(|i| format!("k{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut session = store.load_only(&token, &names).await.expect("load").expect("live");
    for name in &names {
        session.delete(name);
    }
    store.save(&mut session).await.expect("one save deleting 4000 attributes");
    let loaded = store.load(&token).await.expect("load").expect("live");
    assert_eq!(loaded.names().count(), 0);
}
