//! Redis never holds a usable token, and neither do logs, Debug output or error text.

mod support;

use redis::AsyncCommands;
use redis_sessions::{Config, Error, SessionStore};
use support::{contains, workload};

/// The token's secret as the 32 bytes it encodes: a store that kept those instead of the
/// text would hold a usable token just the same.
fn secret_bytes(token: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token[4..]).expect("base64url secret")
}

#[tokio::test]
async fn no_token_in_any_key_or_value() {
    let redis = support::any_server();
    let store = redis.store();
    let tokens = workload(&store).await;
    let mut conn = redis.conn().await;
    let keys = redis.keys().await;
    assert!(!keys.is_empty());
    for key in keys {
        let fields: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&key).await.expect("hgetall");
        for token in &tokens {
            assert!(!key.contains(token.as_str()), "token in key {key}");
            // Not even the secret part alone.
            assert!(!key.contains(&token[4..]), "secret in key {key}");
            let raw = secret_bytes(token);
            for (name, value) in &fields {
                assert!(!contains(name, &token[4..]) && !contains(value, &token[4..]));
                assert!(!contains(name, &raw) && !contains(value, &raw));
            }
        }
    }
}

#[tokio::test]
async fn no_token_in_the_aof_file() {
    let redis = support::own_server(&["--appendonly", "yes", "--appendfsync", "always"]);
    let store = redis.store();
    let tokens = workload(&store).await;
    let files = redis.files_written();
    assert!(files.len() > 1000, "the AOF recorded the workload ({} bytes)", files.len());
    assert!(contains(&files, &redis.prefix), "the AOF holds our keys");
    for token in &tokens {
        assert!(!contains(&files, &token[4..]), "a token's secret is in the AOF");
        assert!(!contains(&files, secret_bytes(token)), "its bytes are in the AOF");
    }
}

#[tokio::test]
async fn debug_output_and_errors_hide_tokens_and_passwords() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    session.insert("cart", &[1, 2]).expect("insert");
    let token = session.token().expose().to_owned();
    let secret = &token[4..];

    let token_debug = format!("{:?}", session.token());
    assert!(token_debug.starts_with("Token(") && token_debug.len() < 20, "{token_debug}");
    for text in
        [token_debug, format!("{session:?}"), format!("{store:?}"), format!("{:#?}", session)]
    {
        assert!(!text.contains(secret), "token leaked: {text}");
    }
    store.destroy(&session).await.expect("destroy");
    let err = store.save(&mut session).await.expect_err("gone");
    assert!(matches!(err, Error::SessionGone));
    assert!(!format!("{err} {err:?}").contains(secret));

    let config = Config::from_url("redis://user:hunter2@127.0.0.1:1/0");
    assert!(!format!("{config:?}").contains("hunter2"), "{config:?}");
    let store = SessionStore::new(config).expect("valid config");
    assert!(!format!("{store:?}").contains("hunter2"));
}
