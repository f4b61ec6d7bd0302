//! Encryption at rest: no value in clear anywhere Redis keeps or shows data, values bound to
//! their attribute and session, key rotation, and tampering that costs one attribute.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use redis::AsyncCommands;
use redis_sessions::{Config, Encryption, EncryptionKey, Error, SessionStore, Unseal};
use support::{contains, TestRedis};

const MARKER: &str = "MARKER-7f3a";

fn key(id: u16) -> EncryptionKey {
    EncryptionKey::from_bytes(id, [id as u8 ^ 0x5c; 32])
}

fn encrypted(config: Config, encryption: Encryption) -> Config {
    config.with_encryption(encryption)
}

fn store_with_keys(redis: &TestRedis, encryption: Encryption) -> SessionStore {
    redis.store_with(|config| encrypted(config, encryption))
}

/// Every operation, with values, a long value in the record, and flash messages that all
/// carry the marker; returns the tokens still live.
async fn marked_workload(store: &SessionStore) -> Vec<String> {
    let mut tokens = Vec::new();
    for i in 0..4 {
        let mut session = store.create().await.expect("create");
        session.insert("user", &format!("{MARKER}-user-{i}")).expect("insert");
        session.insert("cart", &vec![format!("{MARKER}-book"); 20]).expect("insert");
        store.save(&mut session).await.expect("save");
        store.push_flash(&session, &format!("{MARKER}-flash-{i}")).await.expect("push");
        store.regenerate(&mut session).await.expect("regenerate");
        for n in 0..6 {
            // Past four loose fields: a compaction packs every value into the record.
            session.insert(&format!("note{n}"), &format!("{MARKER}-note-{n}")).expect("insert");
        }
        store.save_checked(&mut session).await.expect("save");
        store.push_flash(&session, &format!("{MARKER}-second-{i}")).await.expect("push");
        let token = session.token().expose().to_owned();
        if i % 2 == 0 {
            let mut loaded = store.load_and_pop_flash(&token).await.expect("load").expect("live");
            let flashes: Vec<String> = loaded.take_flash().expect("flash");
            assert_eq!(flashes.len(), 2, "both messages open");
            assert!(flashes.iter().all(|m| m.starts_with(MARKER)));
        }
        let user: Option<String> = session.get("user").expect("opens");
        assert_eq!(user, Some(format!("{MARKER}-user-{i}")));
        tokens.push(token);
    }
    tokens
}

/// `redis-cli monitor` on the test's server, writing to a file.
fn monitor(redis: &TestRedis, out: &std::path::Path) -> Child {
    let file = std::fs::File::create(out).expect("monitor file");
    let child = Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "monitor"])
        .stdout(file)
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli is on PATH");
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// Every place the server keeps or shows data after `workload`: keys, field names and values,
/// the AOF and an RDB dump, and what MONITOR showed.
async fn everything_redis_saw(redis: &TestRedis, store: &SessionStore) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let capture = dir.path().join("monitor.txt");
    let mut watcher = monitor(redis, &capture);
    marked_workload(store).await;
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("SAVE").query_async(&mut conn).await.expect("SAVE");
    std::thread::sleep(Duration::from_millis(300));
    watcher.kill().expect("stop monitor");
    watcher.wait().expect("monitor exits");
    let mut stored = Vec::new();
    for (key, fields) in redis.contents().await {
        stored.extend(key.into_bytes());
        for (name, value) in fields {
            stored.extend(name);
            stored.extend(value);
        }
    }
    let monitored = std::fs::read(&capture).expect("monitor output");
    assert!(contains(&monitored, "EVALSHA"), "MONITOR saw the scripts");
    vec![stored, redis.files_written(), monitored]
}

#[tokio::test]
async fn with_encryption_no_marker_reaches_keys_values_aof_rdb_or_monitor() {
    let args = ["--appendonly", "yes", "--appendfsync", "always", "--rdbcompression", "no"];
    // Without encryption the marker is everywhere: the check below can see it.
    let plain = support::own_server(&args);
    let seen = everything_redis_saw(&plain, &plain.store()).await;
    for (place, bytes) in ["keys and values", "AOF and RDB", "MONITOR"].iter().zip(&seen) {
        assert!(contains(bytes, MARKER), "without encryption the marker is in the {place}");
    }
    let sealed = support::own_server(&args);
    let store = store_with_keys(&sealed, Encryption::new(key(1)));
    let seen = everything_redis_saw(&sealed, &store).await;
    assert!(contains(&seen[1], &sealed.prefix), "the AOF and RDB hold the sessions");
    for (place, bytes) in ["keys and values", "AOF and RDB", "MONITOR"].iter().zip(&seen) {
        assert!(!contains(bytes, MARKER), "with encryption no marker in the {place}");
        assert!(!contains(bytes, "book"), "nor a part of one, in the {place}");
    }
}

/// The raw value of `field` in the only session key whose token is `token`.
async fn raw(redis: &TestRedis, store: &SessionStore, token: &str, field: &str) -> Vec<u8> {
    let key = redis_key(redis, store, token).await;
    redis.conn().await.hget(&key, field).await.expect("hget")
}

/// The Redis key of a session: the one that holds its fingerprint (8 characters of its hash).
async fn redis_key(redis: &TestRedis, store: &SessionStore, token: &str) -> String {
    let fingerprint = store.load(token).await.expect("load").expect("live").fingerprint();
    let keys = redis.keys().await;
    keys.into_iter()
        .find(|key| key.contains(&fingerprint))
        .unwrap_or_else(|| panic!("a key holds fingerprint {fingerprint}"))
}

/// A loose field's value: the attribute's name as a MessagePack string, then its value.
fn stamped(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    rmp::encode::write_str(&mut out, name).expect("to a Vec");
    out.extend_from_slice(value);
    out
}

fn unstamped(name: &str, field: &[u8]) -> Vec<u8> {
    field[stamped(name, b"").len()..].to_vec()
}

fn rejected(result: redis_sessions::Result<Option<String>>) -> bool {
    matches!(result, Err(Error::Unseal { cause: Unseal::Rejected, .. }))
}

#[tokio::test]
async fn a_value_moved_to_another_attribute_or_session_fails_to_open() {
    let redis = support::any_server();
    let store = store_with_keys(&redis, Encryption::new(key(1)));
    let mut admin = store.create().await.expect("create");
    admin.insert("role", "admin").expect("insert");
    admin.insert("name", "alice").expect("insert");
    store.save(&mut admin).await.expect("save");
    let mut guest = store.create().await.expect("create");
    guest.insert("role", "guest").expect("insert");
    store.save(&mut guest).await.expect("save");
    let (admin_token, guest_token) =
        (admin.token().expose().to_owned(), guest.token().expose().to_owned());
    let admin_key = redis_key(&redis, &store, &admin_token).await;
    let guest_key = redis_key(&redis, &store, &guest_token).await;
    let sealed_role = unstamped("role", &raw(&redis, &store, &admin_token, "role").await);
    let mut conn = redis.conn().await;

    // Within the session: the role's sealed value stamped as the name (the masquerade).
    let _: () = conn.hset(&admin_key, "name", stamped("name", &sealed_role)).await.expect("hset");
    let admin = store.load(&admin_token).await.expect("load").expect("live");
    assert!(rejected(admin.get::<String>("name")), "moved to another attribute");
    assert_eq!(admin.get::<String>("role").expect("untouched"), Some("admin".to_owned()));

    // To another session: the admin's role into the guest's.
    let _: () = conn.hset(&guest_key, "role", stamped("role", &sealed_role)).await.expect("hset");
    let guest = store.load(&guest_token).await.expect("load").expect("live");
    assert!(rejected(guest.get::<String>("role")), "moved to another session");

    // The whole hash copied over the guest's.
    let fields: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&admin_key).await.expect("hgetall");
    copy_hash(&mut conn, &fields, &guest_key).await;
    let copied = store.load(&guest_token).await.expect("load").expect("live");
    assert!(rejected(copied.get::<String>("role")), "a copied session opens nothing");
}

async fn copy_hash(
    conn: &mut redis::aio::MultiplexedConnection,
    fields: &[(Vec<u8>, Vec<u8>)],
    to: &str,
) {
    let _: () = conn.del(to).await.expect("del");
    let _: () = conn.hset_multiple(to, fields).await.expect("copy");
    let _: () = conn.pexpire(to, 600_000).await.expect("ttl");
}

#[tokio::test]
async fn a_regenerate_seals_anew_so_the_hash_copied_back_to_its_old_key_opens_nothing() {
    let redis = support::any_server();
    let store = store_with_keys(&redis, Encryption::new(key(1)));
    // A fixation: the attacker knows the token from before the login.
    let mut session = store.create().await.expect("create");
    session.insert("cart", "tea").expect("insert");
    store.save(&mut session).await.expect("save");
    let planted = session.token().expose().to_owned();
    let planted_key = redis_key(&redis, &store, &planted).await;
    store.push_flash(&session, "pushed before the login").await.expect("push");
    session.insert("user", "alice").expect("insert: pending through the regenerate");
    let day = Duration::from_secs(86_400);
    let timeouts = redis_sessions::Timeouts::new(day, 7 * day);
    let token = store.regenerate_with_timeouts(&mut session, Some(timeouts)).await.expect("login");
    assert_eq!(session.get::<String>("user").expect("pending, opens"), Some("alice".to_owned()));
    assert_eq!(session.get::<String>("cart").expect("read, opens"), Some("tea".to_owned()));
    store.save(&mut session).await.expect("save after the regenerate");
    let mut loaded = store.load_and_pop_flash(token.expose()).await.expect("load").expect("live");
    assert_eq!(loaded.get::<String>("user").expect("opens"), Some("alice".to_owned()));
    assert_eq!(loaded.get::<String>("cart").expect("opens"), Some("tea".to_owned()));
    assert_eq!(loaded.take_flash::<String>().expect("opens"), ["pushed before the login"]);
    assert_eq!(loaded.metadata().idle_timeout_ms, Some(86_400_000), "the new timeouts hold");

    // A writer copies the logged-in hash back under the planted token's key.
    store.push_flash(&loaded, "after the login").await.expect("push");
    let mut conn = redis.conn().await;
    let new_key = redis_key(&redis, &store, token.expose()).await;
    let fields: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&new_key).await.expect("hgetall");
    copy_hash(&mut conn, &fields, &planted_key).await;
    let mut copied = store.load_and_pop_flash(&planted).await.expect("load").expect("live");
    assert!(rejected(copied.get::<String>("user")), "the user does not open");
    assert!(rejected(copied.get::<String>("cart")), "nor anything else");
    let err = copied.take_flash::<String>().expect_err("nor the flash messages");
    assert!(matches!(err, Error::Unseal { cause: Unseal::Rejected, .. }), "{err:?}");
}

#[tokio::test]
async fn tampering_with_one_byte_fails_that_attribute_only() {
    let redis = support::any_server();
    let store = store_with_keys(&redis, Encryption::new(key(1)));
    let mut session = store.create().await.expect("create");
    for name in ["a", "b", "c", "d", "e", "f"] {
        session.insert(name, &format!("value of {name}")).expect("insert");
    }
    store.save(&mut session).await.expect("save: six loose fields compact into the record");
    session.insert("loose", "a loose value").expect("insert");
    store.save(&mut session).await.expect("save");
    let token = session.token().expose().to_owned();
    let key = redis_key(&redis, &store, &token).await;
    let mut conn = redis.conn().await;

    // A loose field: its last byte (the tag).
    let mut loose: Vec<u8> = conn.hget(&key, "loose").await.expect("hget");
    *loose.last_mut().expect("not empty") ^= 1;
    let _: () = conn.hset(&key, "loose", loose).await.expect("hset");
    // The record: the last byte, the tag of its last value.
    let mut record: Vec<u8> = conn.hget(&key, "@p").await.expect("hget");
    *record.last_mut().expect("not empty") ^= 0x80;
    let _: () = conn.hset(&key, "@p", record).await.expect("hset");

    let loaded = store.load(&token).await.expect("the session still loads").expect("live");
    assert!(rejected(loaded.get::<String>("loose")));
    let names = ["a", "b", "c", "d", "e", "f"];
    let failed: Vec<&str> =
        names.into_iter().filter(|name| loaded.get::<String>(name).is_err()).collect();
    assert_eq!(failed.len(), 1, "one record value fails, the others open: {failed:?}");
    for name in names.iter().filter(|name| !failed.contains(name)) {
        assert_eq!(loaded.get::<String>(name).expect("opens"), Some(format!("value of {name}")));
    }
    let err = loaded.get::<String>("loose").expect_err("tampered");
    assert!(err.to_string().contains("\"loose\" does not open"), "{err}");
}

#[tokio::test]
async fn a_tampered_flash_message_is_an_error_once_and_the_others_are_kept() {
    let redis = support::any_server();
    let store = store_with_keys(&redis, Encryption::new(key(1)));
    let session = store.create().await.expect("create");
    store.push_flash(&session, "first").await.expect("push");
    let token = session.token().expose().to_owned();
    let key = redis_key(&redis, &store, &token).await;
    let mut conn = redis.conn().await;
    let mut flash: Vec<u8> = conn.hget(&key, "@f").await.expect("hget");
    *flash.last_mut().expect("not empty") ^= 1;
    let _: () = conn.hset(&key, "@f", flash).await.expect("hset");
    store.push_flash(&session, "second").await.expect("push");

    let mut loaded = store.load_and_pop_flash(&token).await.expect("load").expect("live");
    let err = loaded.take_flash::<String>().expect_err("the tampered message");
    assert!(
        matches!(&err, Error::Unseal { attribute, cause: Unseal::Rejected } if attribute == "@flash")
    );
    assert_eq!(loaded.take_flash::<String>().expect("the rest"), ["second"]);
}

#[tokio::test]
async fn rotation_keeps_sessions_and_a_save_moves_them_to_the_new_key() {
    let redis = support::any_server();
    let old = store_with_keys(&redis, Encryption::new(key(1)));
    let mut tokens = Vec::new();
    for i in 0..3 {
        let mut session = old.create().await.expect("create");
        session.insert("user", &format!("user{i}")).expect("insert");
        session.insert("cart", &[i, i + 1]).expect("insert");
        old.save(&mut session).await.expect("save");
        if i == 0 {
            old.regenerate(&mut session).await.expect("regenerate: sealed anew under key 1");
        }
        tokens.push(session.token().expose().to_owned());
    }
    let usage = old.key_usage(|_, _| {}).await.expect("scan");
    assert_eq!((usage.uses(1), usage.uses(2), usage.unsealed), (6, 0, 0), "{usage:?}");

    // Key 2 becomes current; key 1 still opens.
    let rotated = store_with_keys(&redis, Encryption::new(key(2)).with_key(key(1)));
    for (i, token) in tokens.iter().enumerate() {
        let session = rotated.load(token).await.expect("load").expect("live");
        assert_eq!(session.get::<String>("user").expect("key 1 opens"), Some(format!("user{i}")));
    }
    // A save of the first two moves all their values to key 2.
    for token in &tokens[..2] {
        let mut session = rotated.load(token).await.expect("load").expect("live");
        session.insert("seen", &true).expect("insert");
        rotated.save(&mut session).await.expect("save");
    }
    let mut progress = Vec::new();
    let usage = rotated.key_usage(|_, seen| progress.push(seen)).await.expect("scan");
    assert_eq!((usage.uses(1), usage.uses(2), usage.sessions), (2, 6, 3), "{usage:?}");
    assert_eq!(progress.last(), Some(&3), "progress counts the keys seen");

    // Key 1 retired: the saved sessions load whole; the other fails clearly, per attribute.
    let retired = store_with_keys(&redis, Encryption::new(key(2)));
    for token in &tokens[..2] {
        let session = retired.load(token).await.expect("load").expect("live");
        assert!(session.get::<String>("user").expect("key 2").is_some());
        assert_eq!(session.get::<bool>("seen").expect("key 2"), Some(true));
    }
    let stale = retired.load(&tokens[2]).await.expect("load").expect("live");
    let err = stale.get::<String>("user").expect_err("key 1 is gone");
    assert!(matches!(err, Error::Unseal { cause: Unseal::UnknownKey(1), .. }), "{err:?}");
    assert!(err.to_string().contains("key id 1"), "the error names the key: {err}");
}

#[tokio::test]
async fn unsealed_sessions_are_refused_unless_accepted_and_a_save_seals_them() {
    let redis = support::any_server();
    let plain = redis.store();
    let mut session = plain.create().await.expect("create");
    session.insert("user", "alice").expect("insert");
    plain.save(&mut session).await.expect("save");
    let token = session.token().expose().to_owned();

    let strict = store_with_keys(&redis, Encryption::new(key(1)));
    let loaded = strict.load(&token).await.expect("load").expect("live");
    let err = loaded.get::<String>("user").expect_err("unsealed");
    assert!(matches!(err, Error::Unseal { cause: Unseal::NotSealed, .. }), "{err:?}");

    let migrating = store_with_keys(&redis, Encryption::new(key(1)).with_accept_unsealed(true));
    let mut loaded = migrating.load(&token).await.expect("load").expect("live");
    assert_eq!(loaded.get::<String>("user").expect("accepted"), Some("alice".to_owned()));
    loaded.insert("theme", "dark").expect("insert");
    migrating.save(&mut loaded).await.expect("save seals what was unsealed");
    let usage = migrating.key_usage(|_, _| {}).await.expect("scan");
    assert_eq!((usage.unsealed, usage.uses(1)), (0, 2), "{usage:?}");
    let loaded = strict.load(&token).await.expect("load").expect("live");
    assert_eq!(loaded.get::<String>("user").expect("sealed now"), Some("alice".to_owned()));

    // And a sealed value without keys is an error, not garbage.
    let loaded = plain.load(&token).await.expect("load").expect("live");
    let err = loaded.get::<String>("user").expect_err("no keys");
    assert!(matches!(err, Error::Unseal { cause: Unseal::NoKeys, .. }), "{err:?}");
}

#[tokio::test]
async fn keys_come_from_a_file_or_the_environment_and_bad_ones_fail_the_store() {
    let redis = support::any_server();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("session.key");
    let text = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    std::fs::write(&path, format!("{text}\n")).expect("write key");
    let from_file = store_with_keys(&redis, Encryption::new(EncryptionKey::file(3, &path)));
    let mut session = from_file.create().await.expect("create");
    session.insert("user", "bob").expect("insert");
    from_file.save(&mut session).await.expect("save");
    let inline = store_with_keys(&redis, Encryption::new(EncryptionKey::base64(3, text)));
    let loaded = inline.load(session.token().expose()).await.expect("load").expect("live");
    assert_eq!(loaded.get::<String>("user").expect("the same key"), Some("bob".to_owned()));

    let missing = Encryption::new(EncryptionKey::env(4, "REDIS_SESSIONS_TEST_UNSET_KEY"));
    let err = SessionStore::new(redis.config().with_encryption(missing)).expect_err("unset");
    assert!(matches!(err, Error::Config(_)) && err.to_string().contains("encryption key 4"));
    let short = Encryption::new(EncryptionKey::base64(5, "c2VjcmV0"));
    let err = SessionStore::new(redis.config().with_encryption(short)).expect_err("short");
    assert!(!format!("{err} {err:?}").contains("c2VjcmV0"), "the error hides the key");
    let config =
        redis.config().with_encryption(Encryption::new(EncryptionKey::base64(6, "c2VjcmV0")));
    assert!(!format!("{config:?}").contains("c2VjcmV0"), "Debug hides the key");
}
