//! redis-sessions as a tower-sessions store: an axum app through `SessionManagerLayer`, and the
//! `SessionStore` trait called directly, against a real Redis.
#![cfg(feature = "tower-sessions")]

mod support;

use support::contains;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use redis::AsyncCommands;
use redis_sessions::adapters::tower_sessions::TowerSessionStore;
use redis_sessions::Limits;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};
use tower_sessions::session::{Id, Record};
use tower_sessions::{Session, SessionManagerLayer, SessionStore as _};

// ---------------------------------------------------------------------------------------------
// The app

async fn incr(session: Session) -> Result<String, StatusCode> {
    let n: i64 = session.get("n").await.map_err(fail)?.unwrap_or(0) + 1;
    session.insert("n", n).await.map_err(fail)?;
    Ok(n.to_string())
}

async fn read(session: Session) -> Result<String, StatusCode> {
    Ok(session.get::<i64>("n").await.map_err(fail)?.unwrap_or(0).to_string())
}

async fn cycle(session: Session) -> Result<&'static str, StatusCode> {
    session.cycle_id().await.map_err(fail)?;
    Ok("cycled")
}

async fn flush(session: Session) -> Result<&'static str, StatusCode> {
    session.flush().await.map_err(fail)?;
    Ok("flushed")
}

fn fail(e: tower_sessions::session::Error) -> StatusCode {
    eprintln!("session error: {e}");
    StatusCode::INTERNAL_SERVER_ERROR
}

/// The app served on a free port, and a client that keeps cookies.
struct App {
    base: String,
    client: reqwest::Client,
    jar: Arc<Jar>,
}

impl App {
    async fn start(store: TowerSessionStore) -> App {
        let router = Router::new()
            .route("/incr", get(incr))
            .route("/read", get(read))
            .route("/cycle", get(cycle))
            .route("/flush", get(flush))
            .layer(SessionManagerLayer::new(store).with_secure(false));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        let jar = Arc::new(Jar::default());
        let client =
            reqwest::Client::builder().cookie_provider(jar.clone()).build().expect("client");
        App { base: format!("http://{addr}"), client, jar }
    }

    /// GETs `path`; the body, after checking the status is 200.
    async fn get(&self, path: &str) -> String {
        let response = self.client.get(format!("{}{path}", self.base)).send().await.expect("send");
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.text().await.expect("body")
    }

    /// The session cookie's value (the tower-sessions ID), if the client holds one.
    fn cookie(&self) -> Option<String> {
        let url = self.base.parse().expect("url");
        let header = self.jar.cookies(&url)?;
        let header = header.to_str().expect("ascii cookies").to_owned();
        header.split("; ").find_map(|pair| pair.strip_prefix("id=")).map(str::to_owned)
    }
}

// ---------------------------------------------------------------------------------------------
// Through axum and SessionManagerLayer

#[tokio::test]
async fn a_counter_counts_across_requests_and_redis_never_sees_the_cookie() {
    let redis = support::any_server();
    let app = App::start(TowerSessionStore::new(redis.store())).await;

    assert_eq!(app.get("/incr").await, "1");
    let cookie = app.cookie().expect("a session cookie after the first write");
    assert_eq!(app.get("/incr").await, "2");
    assert_eq!(app.get("/incr").await, "3");
    assert_eq!(app.get("/read").await, "3");
    assert_eq!(app.cookie().as_deref(), Some(cookie.as_str()), "the ID stays the same");

    let id = Id::from_str(&cookie).expect("the cookie is a tower-sessions ID");
    let raw = id.0.to_le_bytes();
    let dump = redis.contents().await;
    assert_eq!(dump.len(), 1, "one session, one key: {:?}", dump.iter().map(|d| &d.0));
    for (key, fields) in &dump {
        assert!(!key.contains(&cookie), "the cookie's ID is in key {key}");
        assert!(!fields.is_empty());
        for (name, value) in fields {
            for needle in [cookie.as_bytes(), &raw[..]] {
                assert!(!contains(name, needle) && !contains(value, needle), "ID in {key}");
            }
        }
    }
}

#[tokio::test]
async fn cycle_id_retires_the_old_id_and_keeps_the_data() {
    let redis = support::any_server();
    let store = TowerSessionStore::new(redis.store());
    let app = App::start(store.clone()).await;

    assert_eq!(app.get("/incr").await, "1");
    assert_eq!(app.get("/incr").await, "2");
    let old = Id::from_str(&app.cookie().expect("cookie")).expect("an ID");
    assert!(store.load(&old).await.expect("load").is_some());

    assert_eq!(app.get("/cycle").await, "cycled");
    let new = Id::from_str(&app.cookie().expect("cookie")).expect("an ID");
    assert_ne!(old, new, "cycle_id sends a new ID");
    assert!(store.load(&old).await.expect("load").is_none(), "the old ID loads nothing");
    let record = store.load(&new).await.expect("load").expect("the new ID loads the session");
    assert_eq!(record.data.get("n"), Some(&json!(2)));

    assert_eq!(app.get("/incr").await, "3", "the data survives under the new cookie");
    assert_eq!(redis.keys().await.len(), 1, "the old session's key is gone");
}

#[tokio::test]
async fn with_encryption_on_the_adapter_works_the_same() {
    let redis = support::any_server();
    let sealed = redis.encrypted_store();
    let store = TowerSessionStore::new(sealed.clone());
    let app = App::start(store.clone()).await;

    assert_eq!(app.get("/incr").await, "1");
    assert_eq!(app.get("/incr").await, "2");
    assert_eq!(app.get("/cycle").await, "cycled");
    assert_eq!(app.get("/incr").await, "3", "the data survives cycle_id");
    let id = Id::from_str(&app.cookie().expect("cookie")).expect("an ID");
    let record = store.load(&id).await.expect("load").expect("live");
    assert_eq!(record.data.get("n"), Some(&json!(3)));
    redis.assert_all_sealed(&sealed).await;
}

#[tokio::test]
async fn flush_removes_the_redis_key() {
    let redis = support::any_server();
    let store = TowerSessionStore::new(redis.store());
    let app = App::start(store.clone()).await;

    assert_eq!(app.get("/incr").await, "1");
    let id = Id::from_str(&app.cookie().expect("cookie")).expect("an ID");
    assert_eq!(redis.keys().await.len(), 1);

    assert_eq!(app.get("/flush").await, "flushed");
    assert!(redis.keys().await.is_empty(), "flush deleted the key");
    assert!(store.load(&id).await.expect("load").is_none());
    assert_eq!(app.get("/read").await, "0", "the next request starts afresh");
}

// ---------------------------------------------------------------------------------------------
// The SessionStore trait, called directly

fn shapes() -> HashMap<String, Value> {
    HashMap::from([
        ("null".to_owned(), json!(null)),
        ("bool".to_owned(), json!(true)),
        ("int".to_owned(), json!(-42)),
        ("big".to_owned(), json!(u64::MAX)),
        ("float".to_owned(), json!(3.25)),
        ("whole_float".to_owned(), json!(2.0)),
        ("string".to_owned(), json!("héllo, wörld")),
        ("array".to_owned(), json!([1, "two", [3.5, null], {"four": false}])),
        ("object".to_owned(), json!({"user": {"id": 7, "roles": ["admin"]}, "": "empty key"})),
    ])
}

fn record(id: Id, data: HashMap<String, Value>) -> Record {
    Record { id, data, expiry_date: OffsetDateTime::now_utc() + Duration::days(14) }
}

#[tokio::test]
async fn create_save_load_delete_round_trip_json_values() {
    // Its own server: it counts the server's script calls, which other tests move on a shared one.
    let redis = support::own_server(&[]);
    let store = TowerSessionStore::new(redis.store());

    let mut rec = record(Id::default(), shapes());
    let id = rec.id;
    store.create(&mut rec).await.expect("create");
    assert_eq!(rec.id, id, "no collision, so the ID stays");
    let before = OffsetDateTime::now_utc();
    let loaded = store.load(&id).await.expect("load").expect("created");
    assert_eq!(loaded.id, id);
    assert_eq!(loaded.data, shapes());
    let idle = Duration::try_from(redis.store().config().idle_timeout).expect("duration");
    assert!(loaded.expiry_date > before, "{} not after {before}", loaded.expiry_date);
    assert!(loaded.expiry_date <= OffsetDateTime::now_utc() + idle, "TTL within the idle timeout");

    // Change one entry, remove one, add one.
    let mut changed = loaded.clone();
    changed.data.insert("int".into(), json!(43));
    changed.data.remove("array");
    changed.data.insert("added".into(), json!({"nested": [[]]}));
    let scripts = redis.script_calls().await;
    store.save(&changed).await.expect("save");
    assert_eq!(redis.script_calls().await, scripts + 1, "one write");
    assert_eq!(store.load(&id).await.expect("load").expect("saved").data, changed.data);
    let keys = redis.keys().await;
    let fields: Vec<(Vec<u8>, Vec<u8>)> =
        redis.conn().await.hgetall(&keys[0]).await.expect("hgetall");
    let stored: Vec<u8> =
        fields.into_iter().flat_map(|(name, value)| [name, value]).flatten().collect();
    let holds = |needle: &[u8]| contains(&stored, needle);
    assert!(!holds(b"array"), "the removed entry is gone from Redis, not just hidden");
    assert!(holds(b"added"));

    // Saving what Redis already holds writes nothing.
    store.save(&changed).await.expect("save");
    assert_eq!(redis.script_calls().await, scripts + 1, "an unchanged record writes nothing");

    store.delete(&id).await.expect("delete");
    assert!(store.load(&id).await.expect("load").is_none());
    assert!(redis.keys().await.is_empty());
    store.delete(&id).await.expect("deleting a missing session is fine");
}

#[tokio::test]
async fn a_save_never_brings_a_session_back() {
    let redis = support::any_server();
    let store = TowerSessionStore::new(redis.store());

    // Never created: a save is an error and writes nothing.
    let mut rec = record(Id::default(), shapes());
    assert!(matches!(
        store.save(&rec).await,
        Err(tower_sessions::session_store::Error::Backend(_))
    ));
    assert!(redis.keys().await.is_empty());

    // Deleted by another request (a logout, a cycled ID) while this one still held the record.
    store.create(&mut rec).await.expect("create");
    store.delete(&rec.id).await.expect("delete");
    assert!(store.save(&rec).await.is_err(), "revived");
    assert!(store.load(&rec.id).await.expect("load").is_none());
    assert!(redis.keys().await.is_empty());
}

#[tokio::test]
async fn unknown_ids_load_nothing() {
    let redis = support::any_server();
    let store = TowerSessionStore::new(redis.store());
    assert!(store.load(&Id::default()).await.expect("load").is_none());
    assert!(store.load(&Id(0)).await.expect("load").is_none());
    store.delete(&Id::default()).await.expect("delete of an unknown ID");
    assert!(redis.keys().await.is_empty(), "loads and deletes create nothing");
}

#[tokio::test]
async fn create_with_a_taken_id_draws_a_new_one() {
    let redis = support::any_server();
    let store = TowerSessionStore::new(redis.store());

    let mut first = record(Id::default(), HashMap::from([("who".into(), json!("first"))]));
    store.create(&mut first).await.expect("create");
    let mut second = record(first.id, HashMap::from([("who".into(), json!("second"))]));
    store.create(&mut second).await.expect("create");
    assert_ne!(second.id, first.id, "the colliding ID was replaced");

    let load = |id| {
        let store = store.clone();
        async move { store.load(&id).await.expect("load").expect("exists").data["who"].clone() }
    };
    assert_eq!(load(first.id).await, json!("first"), "the first session is untouched");
    assert_eq!(load(second.id).await, json!("second"));
}

#[tokio::test]
async fn entry_names_the_core_reserves_round_trip() {
    let redis = support::any_server();
    let store = TowerSessionStore::new(redis.store());
    let data = HashMap::from([
        (String::new(), json!("empty name")),
        ("@c".to_owned(), json!("looks like metadata")),
        ("@v".to_owned(), json!(99)),
        ("~tilde".to_owned(), json!("tilde")),
        ("plain".to_owned(), json!(1)),
    ]);
    let mut rec = record(Id::default(), data.clone());
    store.create(&mut rec).await.expect("create");
    assert_eq!(store.load(&rec.id).await.expect("load").expect("exists").data, data);

    // Removing the escaped ones removes them.
    let mut fewer = rec.clone();
    fewer.data.retain(|name, _| name == "plain");
    store.save(&fewer).await.expect("save");
    assert_eq!(store.load(&rec.id).await.expect("load").expect("exists").data, fewer.data);
}

#[tokio::test]
async fn a_value_over_the_limit_is_an_encode_error_and_leaves_nothing() {
    let redis = support::any_server();
    let store = TowerSessionStore::new(
        redis.store_with(|c| c.with_limits(Limits::default().with_max_value_bytes(64))),
    );
    let mut rec = record(Id::default(), HashMap::from([("big".into(), json!("x".repeat(100)))]));
    let id = rec.id;
    match store.create(&mut rec).await {
        Err(tower_sessions::session_store::Error::Encode(text)) => {
            assert!(text.contains("limit"), "{text}");
            assert!(!text.contains(&id.to_string()), "no ID in error text");
        }
        other => panic!("expected an Encode error, got {other:?}"),
    }
    assert!(redis.keys().await.is_empty(), "the half-made session was removed");
    assert!(store.save(&rec).await.is_err());
    assert!(redis.keys().await.is_empty(), "nor does a failed save leave one");
}

#[tokio::test]
async fn an_unreachable_redis_is_a_backend_error() {
    let port = redis_test::utils::get_random_available_port();
    let config = redis_sessions::Config::from_url(format!("redis://127.0.0.1:{port}"));
    let config = config.with_timeouts(
        std::time::Duration::from_millis(500),
        std::time::Duration::from_millis(500),
        std::time::Duration::from_millis(500),
    );
    let store = TowerSessionStore::new(redis_sessions::SessionStore::new(config).expect("config"));
    let mut rec = record(Id::default(), shapes());
    assert!(matches!(
        store.create(&mut rec).await,
        Err(tower_sessions::session_store::Error::Backend(_))
    ));
    assert!(matches!(
        store.load(&rec.id).await,
        Err(tower_sessions::session_store::Error::Backend(_))
    ));
}
