//! Stateless sessions' revocations across app instances: a logout, a regenerate, a login as
//! someone else and "log out everywhere" honoured by another instance, on one server and on a
//! Cluster; and the feed down, failing closed or open.
#![cfg(feature = "stateless")]

#[path = "../demo/src/app/mod.rs"]
#[allow(dead_code)]
mod demo;
mod support;

use std::time::Duration;

use redis_sessions::stateless::{FeedDown, StatelessSessions};
use redis_sessions::web::{SessionLayer, WebSession};
use redis_sessions::SessionStore;
use reqwest::Client;
use support::browser::{browser_named, cookie_value, login, page, plain, serve, session_cookie};
use support::stateless::{hs256, logged_in_as, sessions, until_logged_out};

/// The demo's routes over `sessions`.
async fn demo_on(sessions: &StatelessSessions) -> String {
    serve(demo::routes(SessionLayer::stateless(sessions.clone()).with_cookie(plain()))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regenerate_and_a_login_as_someone_else_revoke_the_cookie_from_before() {
    let redis = support::any_server();
    let sessions = sessions(redis.store(), hs256("k1")).await;
    let regenerate = axum::routing::post(|session: WebSession| async move {
        session.regenerate().await.expect("regenerate");
        "ok"
    });
    let layer = SessionLayer::stateless(sessions.clone()).with_cookie(plain());
    let own = axum::Router::new().route("/regenerate", regenerate).layer(layer.clone());
    let base = serve(own.merge(demo::routes(layer))).await;
    let laptop = browser_named("laptop");
    let ada = cookie_value(&session_cookie(&login(&laptop, &base, "ada").await).unwrap());
    let response = laptop.post(format!("{base}/regenerate")).send().await.expect("post");
    let moved = cookie_value(&session_cookie(&response).expect("a new cookie"));
    assert_ne!(moved, ada);
    assert!(logged_in_as(&laptop, &base, "ada").await, "the new cookie is logged in");
    assert!(until_logged_out(&base, &ada, Duration::from_secs(5)).await.is_some());
    // The list shows the session once, under its new device id.
    let devices = page(&laptop, &format!("{base}/sessions")).await;
    assert_eq!(devices.matches("<li class=\"device\">").count(), 1, "{devices}");

    // A login as someone else: the cookie logged in as ada opens nothing now.
    let ada = cookie_value(&session_cookie(&login(&laptop, &base, "ada").await).unwrap());
    login(&laptop, &base, "bob").await;
    assert!(logged_in_as(&laptop, &base, "bob").await);
    assert!(until_logged_out(&base, &ada, Duration::from_secs(5)).await.is_some());
    assert!(sessions.verify(&ada).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_is_honoured_by_another_within_the_measured_delay() {
    let redis = support::any_server();
    // Two app instances: each with its own copy of the revocations and its own feed.
    let a = demo_on(&sessions(redis.store(), hs256("k1")).await).await;
    let b = demo_on(&sessions(redis.store(), hs256("k1")).await).await;
    let mut delays = Vec::new();
    for round in 0..20 {
        let laptop = browser_named("laptop");
        let response = login(&laptop, &a, &format!("user{round}")).await;
        let cookie = cookie_value(&session_cookie(&response).expect("a cookie"));
        let on_b = Client::new().get(&b).header("cookie", format!("session={cookie}")).send();
        let on_b = on_b.await.expect("get").text().await.expect("body");
        assert!(on_b.contains("Logged in as"), "the second instance takes the cookie");
        let started = std::time::Instant::now();
        laptop.post(format!("{a}/logout")).send().await.expect("logout");
        let logout_took = started.elapsed();
        let delay = until_logged_out(&b, &cookie, Duration::from_secs(5)).await;
        let delay = delay.expect("the second instance refuses the cookie within the bound");
        delays.push(logout_took + delay);
    }
    delays.sort();
    let p = |q: f64| delays[((delays.len() - 1) as f64 * q) as usize];
    println!(
        "logout on A -> refused on B: p50 {:?}, p90 {:?}, max {:?} (20 rounds)",
        p(0.5),
        p(0.9),
        p(1.0)
    );
    // Everywhere: a user's sessions begun before "log out everywhere else" go on both.
    let (laptop, phone) = (browser_named("laptop"), browser_named("phone"));
    login(&laptop, &a, "ada").await;
    let phone_cookie = cookie_value(&session_cookie(&login(&phone, &b, "ada").await).unwrap());
    laptop.post(format!("{a}/sessions/revoke-others")).send().await.expect("post");
    assert!(until_logged_out(&b, &phone_cookie, Duration::from_secs(5)).await.is_some());
    assert!(logged_in_as(&laptop, &a, "ada").await, "the laptop stays logged in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_feed_down_requests_fail_closed_after_the_bound_then_recover() {
    let mut redis = support::own_server(&[]);
    let bound = Duration::from_millis(600);
    let sessions = sessions(redis.store(), hs256("k1")).await.with_stale_after(bound);
    let base = demo_on(&sessions).await;
    let laptop = browser_named("laptop");
    login(&laptop, &base, "ada").await;
    assert!(logged_in_as(&laptop, &base, "ada").await);
    // While Redis answers, the heartbeats keep the copy current, past any bound.
    tokio::time::sleep(bound * 2).await;
    assert!(logged_in_as(&laptop, &base, "ada").await, "current while the heartbeats come back");

    redis.kill();
    tokio::time::sleep(bound + Duration::from_millis(300)).await;
    let response = laptop.get(&base).send().await.expect("get");
    assert_eq!(response.status(), 503, "fails closed once the feed is silent past the bound");
    // A visitor without a cookie is not refused: there is nothing to check.
    assert_eq!(Client::new().get(&base).send().await.expect("get").status(), 200);

    // The same, failing open: served by the revocations as last known, even by an instance
    // whose feed never read them.
    let open = StatelessSessions::new(redis.store(), hs256("k1")).unwrap();
    let open = open.with_stale_after(bound).with_feed_down(FeedDown::Accept);
    let open_base = demo_on(&open).await;
    assert!(logged_in_as(&laptop, &open_base, "ada").await, "fails open by configuration");

    redis.restart();
    let started = std::time::Instant::now();
    while !logged_in_as(&laptop, &base, "ada").await {
        assert!(started.elapsed() < Duration::from_secs(10), "the feed comes back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_logout_on_one_instance_is_honoured_by_another() {
    let cluster = support::cluster::start(false);
    let store = || SessionStore::new(cluster.config()).expect("store");
    let bound = Duration::from_millis(600);
    let a = demo_on(&sessions(store(), hs256("k1")).await).await;
    let b = demo_on(&sessions(store(), hs256("k1")).await.with_stale_after(bound)).await;
    let laptop = browser_named("laptop");
    let cookie = cookie_value(&session_cookie(&login(&laptop, &a, "ada").await).unwrap());
    let devices = page(&laptop, &format!("{a}/sessions")).await;
    assert!(devices.contains("(this device)"), "the user's list is on the cluster: {devices}");
    // The heartbeats come back through the node that holds the revocations: past the bound,
    // the copy is still current.
    tokio::time::sleep(bound * 2).await;
    let on_b = Client::new().get(&b).header("cookie", format!("session={cookie}")).send();
    assert!(on_b.await.unwrap().text().await.unwrap().contains("Logged in as"));
    laptop.post(format!("{a}/logout")).send().await.expect("logout");
    assert!(until_logged_out(&b, &cookie, Duration::from_secs(5)).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_all_from_outside_a_request_logs_every_device_out_on_every_instance() {
    let redis = support::any_server();
    let a = sessions(redis.store(), hs256("k1")).await;
    let b = sessions(redis.store(), hs256("k1")).await;
    let (base_a, base_b) = (demo_on(&a).await, demo_on(&b).await);
    let mut cookies = Vec::new();
    for device in ["laptop", "phone"] {
        let response = login(&browser_named(device), &base_a, "ada").await;
        cookies.push(cookie_value(&session_cookie(&response).expect("a cookie")));
    }
    let bob = browser_named("bob");
    login(&bob, &base_a, "bob").await;
    assert_eq!(a.user_sessions("ada").await.expect("list").len(), 2);
    // An administrator's tool, a password change: no request of the user's.
    assert_eq!(a.revoke_all("ada").await.expect("revoke"), 2);
    for cookie in &cookies {
        assert!(until_logged_out(&base_b, cookie, Duration::from_secs(5)).await.is_some());
    }
    assert!(a.user_sessions("ada").await.expect("list").is_empty());
    assert!(logged_in_as(&bob, &base_b, "bob").await, "another user stays logged in");
}
