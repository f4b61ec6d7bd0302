//! Bad input gets a clear error and loses nothing: malformed tokens, corrupt or foreign data,
//! wrong key types, oversized values.

mod support;

use redis::AsyncCommands;
use redis_sessions::{Error, Limits};

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
        format!("{}B", &valid[..46]), // wrong trailing bits: not a canonical 32-byte secret
        "../../etc/passwd".into(),
        "*".into(),
        format!("{}\r\nFLUSHALL\r\n", &valid[..30]),
    ];
    for token in &bad {
        assert!(store.load(token).await.expect("no error, no session").is_none(), "{token:?}");
        assert!(store.load_and_pop_flash(token).await.expect("no error").is_none());
    }

    assert_eq!(redis.command_calls("evalsha").await, 0);
    assert_eq!(redis.command_calls("eval").await, 0);
    // Only the three connections this test opened to look: the store never even connected.
    assert_eq!(redis.info_field("stats", "total_connections_received").await, 3);
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
    let _: () =
        redis.conn().await.hset(&key, "bad", &[0xc1u8, 0xff, 0x00][..]).await.expect("hset");

    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    let err = loaded.get::<String>("bad").expect_err("corrupt");
    assert!(matches!(&err, Error::Decode { attribute, .. } if attribute == "bad"), "{err:?}");
    assert!(std::error::Error::source(&err).is_some(), "keeps the decoder's error");
    assert_eq!(loaded.get::<String>("good").expect("unaffected"), Some("fine".into()));
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

    let _: () = conn.hset_multiple(&key, &[("@d", "tomorrow"), ("@c", "1")]).await.expect("hset");
    let err = store.load(&token).await.expect_err("bad metadata");
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
    let left: String = conn.hget(&key, "some").await.expect("hget");
    assert_eq!(left, "hash", "the foreign data is left as it was");
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
    session.remove("b");
    let err =
        session.insert("small", &"z".repeat(95)).map(|_| session.insert("b", &"q".repeat(95)));
    assert!(matches!(err, Ok(Err(Error::TooLarge { limit: "session", .. }))), "{err:?}");
    let err = session.insert("@d", &0).expect_err("reserved");
    assert!(matches!(err, Error::InvalidName(_)));
    let err = store.push_flash(&session, &"f".repeat(200)).await.expect_err("flash too large");
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");

    let after: Vec<(String, Vec<u8>)> = conn.hgetall(&key).await.expect("hgetall");
    assert_eq!(before, after, "nothing was written");
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
