//! Opening connections: what a server that refuses them, or is down, costs the application,
//! and what the errors say.

mod support;

use std::time::{Duration, Instant};

use redis_sessions::{Error, SessionStore};

#[tokio::test]
async fn connect_fails_without_the_credentials_or_permissions_the_server_requires() {
    let redis = support::own_server(&["--requirepass", "hunter2"]);
    let with_password = |password: &str| {
        let url = redis.url.replacen("redis://", &format!("redis://:{password}@"), 1);
        redis.config().with_url(url)
    };
    for (config, what) in
        [(redis.config(), "no password"), (with_password("wrong-one"), "a wrong password")]
    {
        let err = SessionStore::connect(config).await.expect_err(what);
        assert!(matches!(err, Error::Auth(_)) && !err.is_unavailable(), "{what}: {err:?}");
        let shown = err.to_string();
        assert!(shown.contains("credentials"), "{what}: {shown}");
        assert!(!format!("{shown} {err:?}").contains("wrong-one"), "{what}: no password shown");
    }
    let store = SessionStore::connect(with_password("hunter2")).await.expect("the right one");

    // A user whose ACL denies the scripts, and one denied only CONFIG, which the start-up
    // check reads where it may.
    drop(store);
    let admin = redis::Client::open(with_password("hunter2").url).expect("url");
    let mut admin = admin.get_multiplexed_async_connection().await.expect("connect");
    for (user, rules) in [("noscripts", "+@all -evalsha -eval"), ("noconfig", "+@all -config")] {
        let acl = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(user)
            .arg("on")
            .arg(">pw")
            .arg("~*")
            .arg(rules.split(' ').collect::<Vec<_>>())
            .clone();
        let _: () = acl.query_async(&mut admin).await.expect("acl");
    }
    let as_user = |user: &str| {
        redis.config().with_url(redis.url.replacen("redis://", &format!("redis://{user}:pw@"), 1))
    };
    let err = SessionStore::connect(as_user("noscripts")).await.expect_err("no scripts");
    assert!(matches!(err, Error::Auth(_)), "{err:?}");
    assert!(err.to_string().contains("NOPERM"), "{err}");
    let store = SessionStore::connect(as_user("noconfig")).await.expect("CONFIG may be refused");
    let advice = store.check_server().await.expect("check");
    assert_eq!(advice.maxmemory_policy, None, "not readable, not guessed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_maxclients_operations_use_the_connections_already_open() {
    let redis = support::own_server(&["--maxclients", "4"]);
    let mut watcher = redis.conn().await; // one client slot, held to read the stats
    let store = redis.store_with(|c| c.with_pool_max_size(8)); // 3 slots left for 8 connections
    let session = store.create().await.expect("create");
    let token = session.token().expose().to_owned();
    let started = Instant::now();
    let tasks = (0..16).map(|_| {
        let (store, token) = (store.clone(), token.clone());
        tokio::spawn(async move {
            for _ in 0..25 {
                store.load(&token).await.expect("every load succeeds").expect("live");
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.expect("no operation failed");
    }
    let info: String =
        redis::cmd("INFO").arg("stats").query_async(&mut watcher).await.expect("info");
    let rejected: i64 = info
        .lines()
        .find_map(|line| line.strip_prefix("rejected_connections:"))
        .map(|n| n.trim().parse().expect("a number"))
        .expect("rejected_connections");
    eprintln!("maxclients: 400 loads from 16 tasks, none failed, {rejected} connections refused");
    // Each of the 5 slots that cannot open tries once per 100 ms, not once per operation (and
    // reads the server's reason on a second connection, refused too).
    let tries = 5 * 2 * (started.elapsed().as_millis() as i64 / 100 + 1);
    assert!(rejected <= tries, "{rejected} connections refused for 400 loads, {tries} at most");

    // A store with no connection open yet: the server's own reason, not "connection reset".
    let late = redis.store();
    let err = late.create().await.expect_err("no client slot left");
    assert!(err.is_unavailable(), "{err:?}");
    assert!(err.to_string().contains("max number of clients"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_redis_fails_every_operation_fast_under_load() {
    let mut redis = support::own_server(&[]);
    let store = redis.store();
    let session = store.create().await.expect("create");
    let token = session.token().expose().to_owned();
    redis.kill();

    let tasks = (0..64).map(|_| {
        let (store, token) = (store.clone(), token.clone());
        tokio::spawn(async move {
            let mut took = Vec::new();
            for _ in 0..20 {
                let started = Instant::now();
                let err = store.load(&token).await.expect_err("Redis is down");
                took.push(started.elapsed());
                assert!(matches!(err, Error::Connect(_)) && err.is_unavailable(), "{err:?}");
                let shown = err.to_string();
                assert!(shown.starts_with("cannot connect to Redis: "), "{shown}");
                assert!(shown.to_lowercase().contains("refused"), "the cause: {shown}");
            }
            took
        })
    });
    let mut took: Vec<Duration> = Vec::new();
    for task in futures::future::join_all(tasks).await {
        took.extend(task.expect("typed errors"));
    }
    took.sort();
    let at = |q: f64| took[((took.len() - 1) as f64 * q) as usize];
    eprintln!(
        "down: 64 tasks, {} failed operations: median {:?}, p99 {:?}, slowest {:?}",
        took.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    // Queued behind a slot's connect, each operation took about 3 ms here (a debug build),
    // and failed only after a refused connect of its own.
    assert!(at(0.5) < Duration::from_millis(1), "fails at once: median {:?}", at(0.5));
}

#[tokio::test]
async fn a_connect_that_gets_no_answer_says_so() {
    // A listener that never answers: the TCP handshake completes, Redis's greeting never comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("redis://{}", silent.local_addr().expect("addr"));
    let ms = Duration::from_millis;
    let config = redis_sessions::Config::from_url(url).with_timeouts(ms(500), ms(200), ms(300));
    let err = SessionStore::new(config).expect("store").create().await.expect_err("silence");
    assert!(matches!(err, Error::Connect(_)) && err.is_unavailable(), "{err:?}");
    assert!(err.to_string().contains("cannot connect to Redis"), "{err}");
}
