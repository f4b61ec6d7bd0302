//! The test helper users get with feature `test-server`: a throwaway redis-server.

use std::io::ErrorKind;

use redis_sessions::test_server::TestServer;
use redis_sessions::SessionStore;

#[tokio::test]
async fn a_test_server_holds_sessions_and_leaves_nothing_behind() {
    let redis = TestServer::builder().args(["--requirepass", "hunter2"]).start().expect("start");
    let dir = redis.dir().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).expect("dir").permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the AOF's dir is this user's alone");
    }
    assert!(!format!("{redis:?}").contains("hunter2"), "Debug shows no arguments: {redis:?}");
    let url = format!("redis://:hunter2@127.0.0.1:{}", redis.port());
    let store =
        SessionStore::connect(redis_sessions::Config::from_url(url)).await.expect("connect");
    let mut session = store.create().await.expect("create");
    session.insert("user", "ada").expect("insert");
    store.save(&mut session).await.expect("save");
    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    assert_eq!(loaded.get::<String>("user").expect("decode").as_deref(), Some("ada"));

    drop(redis);
    assert!(!dir.exists(), "its temp dir is removed");
    assert!(store.load(session.token().expose()).await.is_err(), "and the server is gone");
}

#[tokio::test]
async fn a_restart_keeps_what_was_persisted_on_the_same_port() {
    let kept = tempfile::tempdir().expect("temp dir");
    let mut redis = TestServer::builder()
        .dir(kept.path())
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .start()
        .expect("start");
    let store = SessionStore::new(redis.config()).expect("config");
    let mut session = store.create().await.expect("create");
    session.insert("cart", &["tea"]).expect("insert");
    store.save(&mut session).await.expect("save");

    redis.kill();
    assert!(store.load(session.token().expose()).await.is_err(), "down while killed");
    redis.restart().expect("restart");
    let loaded = store.load(session.token().expose()).await.expect("load").expect("kept");
    assert_eq!(loaded.get::<Vec<String>>("cart").expect("decode"), Some(vec!["tea".to_owned()]));
    drop(redis);
    assert!(kept.path().join("appendonlydir").exists(), "a given dir is kept");
}

#[test]
fn failures_to_start_say_why() {
    let missing = TestServer::builder().program("no-such-redis-server").start();
    let error = missing.expect_err("no such program");
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(error.to_string().contains("no-such-redis-server"), "{error}");

    let bad = TestServer::builder().args(["--no-such-directive", "1"]).start();
    let error = bad.expect_err("a bad argument");
    assert!(error.to_string().contains("no-such-directive"), "the server's words: {error}");

    let taken = TestServer::start().expect("start");
    let again = TestServer::builder().port(taken.port()).start();
    let error = again.expect_err("the port is taken");
    assert_eq!(error.kind(), ErrorKind::AddrInUse, "{error}");
}

#[test]
fn unless_answering_starts_a_server_only_when_none_answers() {
    let running = TestServer::start().expect("start");
    assert!(TestServer::unless_answering(&running.url()).expect("check").is_none());
    // A port that accepts connections and never answers: not a Redis. (Held open, so no other
    // test's server can take it meanwhile.)
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("redis://127.0.0.1:{}", silent.local_addr().expect("addr").port());
    let started = TestServer::unless_answering(&url).expect("start").expect("a new server");
    assert!(TestServer::unless_answering(&started.url()).expect("check").is_none());
}
