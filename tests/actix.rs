//! redis-sessions as an actix-session storage backend: the trait methods against a real Redis,
//! and an actix-web app behind `SessionMiddleware`.
#![cfg(feature = "actix")]

mod support;

use std::collections::HashMap;

use actix_session::storage::{SessionKey, SessionStore as _};
use actix_session::{Session, SessionMiddleware};
use actix_web::body::MessageBody;
use actix_web::cookie::time::Duration;
use actix_web::cookie::{Cookie, CookieJar, Key};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::error::ErrorInternalServerError;
use actix_web::http::StatusCode;
use actix_web::{test, web, App};
use redis::AsyncCommands;
use redis_sessions::adapters::actix::ActixSessionStore;
use redis_sessions::Token;

const TTL: Duration = Duration::days(1);

fn state(entries: &[(&str, &str)]) -> HashMap<String, String> {
    entries.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn key(text: &str) -> SessionKey {
    SessionKey::try_from(text.to_owned()).expect("short enough for a cookie")
}

/// A copy of a session key (SessionKey is not Clone).
fn copy(session_key: &SessionKey) -> SessionKey {
    key(session_key.as_ref())
}

// The trait methods, called directly.

#[actix_web::test]
async fn save_load_update_delete_round_trip() {
    let redis = support::any_server();
    let store = ActixSessionStore::new(redis.store());

    let saved = store.save(state(&[("a", "\"1\""), ("b", "\"2\"")]), &TTL).await.expect("save");
    assert!(Token::parse(saved.as_ref()).is_some(), "the session key is one of our tokens");
    let loaded = store.load(&saved).await.expect("load").expect("live");
    assert_eq!(loaded, state(&[("a", "\"1\""), ("b", "\"2\"")]));

    // Change a, remove b, add c: same key, exactly the new state.
    let updated = store
        .update(copy(&saved), state(&[("a", "\"3\""), ("c", "\"4\"")]), &TTL)
        .await
        .expect("update");
    assert_eq!(updated, saved, "an update keeps the key");
    let loaded = store.load(&saved).await.expect("load").expect("live");
    assert_eq!(loaded, state(&[("a", "\"3\""), ("c", "\"4\"")]));
    let mut conn = redis.conn().await;
    let [redis_key] = &redis.keys().await[..] else { panic!("one session key in Redis") };
    let fields: Vec<String> = conn.hkeys(redis_key).await.expect("hkeys");
    assert!(!fields.contains(&"b".to_owned()), "b was deleted in Redis: {fields:?}");

    store.update_ttl(&saved, &TTL).await.expect("update_ttl");
    assert!(store.load(&saved).await.expect("load").is_some());

    store.delete(&saved).await.expect("delete");
    assert_eq!(store.load(&saved).await.expect("load"), None);
    assert!(redis.keys().await.is_empty(), "delete removed the Redis key");
    store.delete(&saved).await.expect("deleting a gone session is fine");
    store.update_ttl(&saved, &TTL).await.expect("update_ttl of a gone session is fine");
}

#[actix_web::test]
async fn malformed_keys_are_no_session() {
    let redis = support::any_server();
    let store = ActixSessionStore::new(redis.store());
    for text in ["", "garbage", &"A".repeat(48), &"é".repeat(47)] {
        assert_eq!(store.load(&key(text)).await.expect("no error"), None, "{text:?}");
        store.update_ttl(&key(text), &TTL).await.expect("no error");
        store.delete(&key(text)).await.expect("no error");
    }
    // Well-formed, but no such session.
    let unknown = key(&"A".repeat(47));
    assert_eq!(store.load(&unknown).await.expect("no error"), None);

    // Updating a key that names no session writes nothing.
    assert!(store.update(key("garbage"), state(&[("x", "\"y\"")]), &TTL).await.is_err());
    assert!(redis.keys().await.is_empty());
}

/// The arguments of every `EVALSHA` Redis logged since the last `SLOWLOG RESET` (the server
/// logs every command: `--slowlog-log-slower-than 0`).
async fn script_calls(redis: &support::TestRedis) -> Vec<Vec<Vec<u8>>> {
    type Entry = (i64, i64, i64, Vec<Vec<u8>>, String, String);
    let mut conn = redis.conn().await;
    let log: Vec<Entry> =
        redis::cmd("SLOWLOG").arg("GET").arg(1000).query_async(&mut conn).await.expect("slowlog");
    log.into_iter()
        .map(|entry| entry.3)
        .filter(|args| args.first().is_some_and(|cmd| cmd.eq_ignore_ascii_case(b"evalsha")))
        .collect()
}

async fn slowlog_reset(redis: &support::TestRedis) {
    let mut conn = redis.conn().await;
    let () = redis::cmd("SLOWLOG").arg("RESET").query_async(&mut conn).await.expect("reset");
}

#[actix_web::test]
async fn update_writes_only_what_changed() {
    let redis =
        support::own_server(&["--slowlog-log-slower-than", "0", "--slowlog-max-len", "1000"]);
    let actix = ActixSessionStore::new(redis.store());
    let native = actix.store();
    let entries = [("a", "\"1\""), ("b", "\"2\""), ("c", "\"3\"")];
    let saved = actix.save(state(&entries), &TTL).await.expect("save");

    // The same state again: nothing to write, so no script runs.
    slowlog_reset(&redis).await;
    actix.update(copy(&saved), state(&entries), &TTL).await.expect("update");
    assert_eq!(script_calls(&redis).await, Vec::<Vec<Vec<u8>>>::new(), "no write");

    // One entry changed, one removed: the save script gets exactly those names.
    slowlog_reset(&redis).await;
    let changed = [("a", "\"9\""), ("b", "\"2\"")];
    let same = actix.update(copy(&saved), state(&changed), &TTL).await.expect("update");
    assert_eq!(same, saved);
    let calls = script_calls(&redis).await;
    let [save] = &calls[..] else { panic!("one script call (the save), got {}", calls.len()) };
    let names: Vec<&[u8]> = save.iter().map(Vec::as_slice).collect();
    assert!(names.contains(&&b"a"[..]), "the changed entry is written");
    assert!(names.contains(&&b"c"[..]), "the removed entry is deleted");
    assert!(!names.contains(&&b"b"[..]), "the unchanged entry is not sent");

    let session = native.load(saved.as_ref()).await.expect("load").expect("live");
    assert_eq!(session.get::<String>("a").expect("a string"), Some("\"9\"".to_owned()));
    assert_eq!(session.get::<String>("b").expect("a string"), Some("\"2\"".to_owned()));
    assert_eq!(session.get::<String>("c").expect("absent"), None);
}

#[actix_web::test]
async fn update_of_a_gone_session_is_an_error_and_revives_nothing() {
    use actix_session::storage::UpdateError;

    let redis = support::any_server();
    let actix = ActixSessionStore::new(redis.store());

    // Regenerated away by the native API (a concurrent login, say).
    let saved = actix.save(state(&[("a", "\"1\"")]), &TTL).await.expect("save");
    let mut session = actix.store().load(saved.as_ref()).await.expect("load").expect("live");
    let moved = actix.store().regenerate(&mut session).await.expect("regenerate");
    let err = actix.update(copy(&saved), state(&[("a", "\"2\"")]), &TTL).await.expect_err("gone");
    assert!(matches!(err, UpdateError::Other(_)), "{err:?}");
    assert_eq!(actix.load(&saved).await.expect("load"), None, "the old key stays dead");
    let moved_key = SessionKey::try_from(moved.expose().to_owned()).expect("key");
    assert_eq!(
        actix.load(&moved_key).await.expect("load"),
        Some(state(&[("a", "\"1\"")])),
        "untouched"
    );
    assert_eq!(redis.keys().await.len(), 1, "no new session either");

    // Deleted behind the store's back (expired, or purged by another request).
    let mut conn = redis.conn().await;
    for redis_key in redis.keys().await {
        let _: i64 = conn.del(&redis_key).await.expect("del");
    }
    assert!(actix.update(moved_key, state(&[("b", "\"3\"")]), &TTL).await.is_err());
    assert!(redis.keys().await.is_empty(), "nothing revived");
}

#[actix_web::test]
async fn invalid_names_and_foreign_values_are_errors_not_panics() {
    use actix_session::storage::{LoadError, SaveError, UpdateError};

    let redis = support::any_server();
    let actix = ActixSessionStore::new(redis.store());
    for name in ["", "@version"] {
        match actix.save(state(&[(name, "\"x\"")]), &TTL).await {
            Err(SaveError::Serialization(_)) => {}
            other => panic!("{name:?}: expected a serialization error, got {other:?}"),
        }
    }
    assert!(redis.keys().await.is_empty(), "a rejected state leaves no session behind");

    let saved = actix.save(state(&[("a", "\"1\"")]), &TTL).await.expect("save");
    match actix.update(copy(&saved), state(&[("@x", "\"1\"")]), &TTL).await {
        Err(UpdateError::Serialization(_)) => {}
        other => panic!("expected a serialization error, got {other:?}"),
    }

    // A non-string attribute written through the native API.
    let mut session = actix.store().load(saved.as_ref()).await.expect("load").expect("live");
    session.insert("n", &42u32).expect("insert");
    actix.store().save(&mut session).await.expect("save");
    match actix.load(&saved).await {
        Err(LoadError::Deserialization(_)) => {}
        other => panic!("expected a deserialization error, got {other:?}"),
    }
}

// Behind SessionMiddleware.

async fn set(session: Session, path: web::Path<(String, String)>) -> actix_web::Result<String> {
    let (name, value) = path.into_inner();
    session.insert(name, value).map_err(ErrorInternalServerError)?;
    Ok("ok".to_owned())
}

async fn get(session: Session, name: web::Path<String>) -> actix_web::Result<String> {
    let value = session.get::<String>(&name).map_err(ErrorInternalServerError)?;
    Ok(value.unwrap_or_else(|| "<none>".to_owned()))
}

async fn remove(session: Session, name: web::Path<String>) -> String {
    session.remove(&name);
    "ok".to_owned()
}

async fn purge(session: Session) -> String {
    session.purge();
    "ok".to_owned()
}

async fn renew(session: Session) -> String {
    session.renew();
    "ok".to_owned()
}

/// An app with the session middleware over `$store`, signed and encrypted with `$key`.
macro_rules! app {
    ($store:expr, $key:expr) => {
        test::init_service(
            App::new()
                .wrap(SessionMiddleware::builder($store, $key).cookie_secure(false).build())
                .route("/set/{name}/{value}", web::get().to(set))
                .route("/get/{name}", web::get().to(get))
                .route("/remove/{name}", web::get().to(remove))
                .route("/purge", web::get().to(purge))
                .route("/renew", web::get().to(renew)),
        )
        .await
    };
}

struct Reply {
    status: StatusCode,
    body: String,
    /// The session cookie the response set (or removed), if any.
    cookie: Option<Cookie<'static>>,
}

fn request(uri: &str, cookie: Option<&Cookie<'static>>) -> test::TestRequest {
    let request = test::TestRequest::get().uri(uri);
    match cookie {
        Some(cookie) => request.cookie(cookie.clone()),
        None => request,
    }
}

async fn send<S, R, B>(app: &S, req: R) -> Reply
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    // A middleware error (the store failed) is an error, not a response: the server would
    // answer with the error's response.
    let response = match app.call(req).await {
        Ok(response) => response,
        Err(e) => {
            let status = e.as_response_error().status_code();
            return Reply { status, body: String::new(), cookie: None };
        }
    };
    let status = response.status();
    let cookie = response.response().cookies().find(|c| c.name() == "id").map(Cookie::into_owned);
    let body = test::read_body(response).await;
    Reply { status, body: String::from_utf8_lossy(&body).into_owned(), cookie }
}

/// The session key inside an (encrypted) session cookie.
fn session_key_in(cookie: &Cookie<'static>, signing: &Key) -> String {
    let mut jar = CookieJar::new();
    jar.add_original(cookie.clone());
    jar.private(signing).get("id").expect("the cookie decrypts with the key").value().to_owned()
}

#[actix_web::test]
async fn with_encryption_on_the_adapter_works_the_same() {
    let redis = support::any_server();
    let sealed = redis.encrypted_store();
    let store = ActixSessionStore::new(sealed.clone());
    let saved = store.save(state(&[("a", "\"1\""), ("b", "\"2\"")]), &TTL).await.expect("save");
    let updated = store
        .update(copy(&saved), state(&[("a", "\"3\""), ("c", "\"4\"")]), &TTL)
        .await
        .expect("update");
    let loaded = store.load(&updated).await.expect("load").expect("live");
    assert_eq!(loaded, state(&[("a", "\"3\""), ("c", "\"4\"")]));
    redis.assert_all_sealed(&sealed).await;

    let signing = Key::generate();
    let app = app!(store.clone(), signing.clone());
    let cookie = send(&app, request("/set/user/alice", None).to_request()).await.cookie;
    let reply = send(&app, request("/get/user", cookie.as_ref()).to_request()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "alice"));
    let reply = send(&app, request("/renew", cookie.as_ref()).to_request()).await;
    let reply = send(&app, request("/get/user", reply.cookie.as_ref()).to_request()).await;
    assert_eq!(reply.body, "alice", "renew (a regenerate) keeps what opens");
    redis.assert_all_sealed(&sealed).await;
}

#[actix_web::test]
async fn a_value_set_in_one_request_is_read_in_the_next() {
    let redis = support::any_server();
    let signing = Key::generate();
    let actix = ActixSessionStore::new(redis.store());
    let app = app!(actix.clone(), signing.clone());

    let reply = send(&app, request("/get/user", None).to_request()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "<none>"));
    assert!(reply.cookie.is_none(), "no state, no session and no cookie");
    assert!(redis.keys().await.is_empty());

    let reply = send(&app, request("/set/user/alice", None).to_request()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let cookie = reply.cookie.expect("a session cookie");
    let reply = send(&app, request("/get/user", Some(&cookie)).to_request()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "alice"));
    assert!(reply.cookie.is_none(), "an unchanged session sets no cookie");
    let reply = send(&app, request("/get/user", None).to_request()).await;
    assert_eq!(reply.body, "<none>", "without the cookie there is no session");

    // The cookie holds our token, encrypted; Redis holds neither the token nor its secret.
    let session_key = session_key_in(&cookie, &signing);
    assert!(Token::parse(&session_key).is_some(), "the session key is one of our tokens");
    assert!(!cookie.value().contains(&session_key), "the cookie does not show the token");
    let secret = &session_key[4..];
    let contents = redis.contents().await;
    assert!(!contents.is_empty());
    for (redis_key, fields) in &contents {
        assert!(!redis_key.contains(secret), "the Redis key holds the token's secret");
        for (name, value) in fields {
            let holds = support::contains(name, secret) || support::contains(value, secret);
            assert!(!holds, "a stored field or value holds the token's secret");
        }
    }
    assert_eq!(redis.keys().await.len(), 1);

    // The adapter reads the same session; actix's values are JSON strings.
    let loaded = actix.load(&key(&session_key)).await.expect("load").expect("live");
    assert_eq!(loaded, state(&[("user", "\"alice\"")]));

    // A tampered cookie is no session (actix rejects it before the store sees it). The first
    // character is replaced by one it is not (a cookie starting with "x" stayed intact once).
    let other = if cookie.value().starts_with('x') { 'y' } else { 'x' };
    let tampered = Cookie::new("id", format!("{other}{}", &cookie.value()[1..]));
    let reply = send(&app, request("/get/user", Some(&tampered)).to_request()).await;
    assert_eq!(reply.body, "<none>");
}

#[actix_web::test]
async fn updating_one_entry_leaves_the_others_intact() {
    let redis = support::any_server();
    let signing = Key::generate();
    let actix = ActixSessionStore::new(redis.store());
    let app = app!(actix.clone(), signing.clone());

    let cookie = send(&app, request("/set/a/1", None).to_request()).await.cookie.expect("cookie");
    let session_key = session_key_in(&cookie, &signing);
    for uri in ["/set/b/2", "/set/c/3", "/set/a/4", "/remove/c"] {
        let reply = send(&app, request(uri, Some(&cookie)).to_request()).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        // An update keeps the session key (actix re-sends the cookie with the same key).
        let again = reply.cookie.expect("a changed session re-sends the cookie");
        assert_eq!(session_key_in(&again, &signing), session_key, "{uri}");
    }
    for (name, want) in [("a", "4"), ("b", "2"), ("c", "<none>")] {
        let reply = send(&app, request(&format!("/get/{name}"), Some(&cookie)).to_request()).await;
        assert_eq!(reply.body, want, "{name}");
    }
    let loaded = actix.load(&key(&session_key)).await.expect("load").expect("live");
    assert_eq!(loaded, state(&[("a", "\"4\""), ("b", "\"2\"")]));
    assert_eq!(redis.keys().await.len(), 1);
}

#[actix_web::test]
async fn renew_moves_the_session_to_a_new_key() {
    let redis = support::any_server();
    let signing = Key::generate();
    let actix = ActixSessionStore::new(redis.store());
    let app = app!(actix.clone(), signing.clone());

    let old = send(&app, request("/set/user/bob", None).to_request()).await.cookie.expect("cookie");
    let reply = send(&app, request("/renew", Some(&old)).to_request()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let new = reply.cookie.expect("renew sets a new cookie");
    let (old_key, new_key) = (session_key_in(&old, &signing), session_key_in(&new, &signing));
    assert_ne!(old_key, new_key);

    assert_eq!(actix.load(&key(&old_key)).await.expect("load"), None, "the old key is dead");
    let loaded = actix.load(&key(&new_key)).await.expect("load").expect("live");
    assert_eq!(loaded, state(&[("user", "\"bob\"")]), "the state moved to the new key");
    assert_eq!(redis.keys().await.len(), 1, "the old session was deleted, not left to expire");

    let reply = send(&app, request("/get/user", Some(&old)).to_request()).await;
    assert_eq!(reply.body, "<none>");
    let reply = send(&app, request("/get/user", Some(&new)).to_request()).await;
    assert_eq!(reply.body, "bob");
}

#[actix_web::test]
async fn purge_deletes_the_redis_key() {
    let redis = support::any_server();
    let signing = Key::generate();
    let actix = ActixSessionStore::new(redis.store());
    let app = app!(actix.clone(), signing.clone());

    let cookie = send(&app, request("/set/user/carol", None).to_request()).await.cookie.expect("c");
    assert_eq!(redis.keys().await.len(), 1);
    let reply = send(&app, request("/purge", Some(&cookie)).to_request()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let removal = reply.cookie.expect("purge removes the cookie");
    assert_eq!(removal.value(), "");
    assert_eq!(removal.max_age(), Some(Duration::ZERO));
    assert!(redis.keys().await.is_empty(), "purge deleted the session in Redis");
    let session_key = session_key_in(&cookie, &signing);
    assert_eq!(actix.load(&key(&session_key)).await.expect("load"), None);

    // The old cookie is no session now, and a write with it starts a new one.
    let reply = send(&app, request("/get/user", Some(&cookie)).to_request()).await;
    assert_eq!(reply.body, "<none>");
    let reply = send(&app, request("/set/user/dave", Some(&cookie)).to_request()).await;
    let fresh = reply.cookie.expect("a new session cookie");
    assert_ne!(session_key_in(&fresh, &signing), session_key);
}

#[actix_web::test]
async fn redis_down_is_a_500_not_a_panic() {
    let mut redis = support::own_server(&[]);
    let signing = Key::generate();
    let actix = ActixSessionStore::new(redis.store());
    let app = app!(actix.clone(), signing.clone());
    let cookie = send(&app, request("/set/user/erin", None).to_request()).await.cookie.expect("c");

    redis.kill();
    let reply = send(&app, request("/get/user", Some(&cookie)).to_request()).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let reply = send(&app, request("/set/user/frank", None).to_request()).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(actix.load(&key(&session_key_in(&cookie, &signing))).await.is_err());
}
