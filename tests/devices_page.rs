//! The demo's devices page in three browsers logged in as one user: the list, "this device",
//! logging out another device, everywhere else, and this one; and a rotated cookie that the
//! layer reissues by itself.
#![cfg(feature = "axum")]

#[path = "../demo/src/app/mod.rs"]
#[allow(dead_code)]
mod demo;
mod support;

use std::time::Duration;

use redis_sessions::web::SessionLayer;
use redis_sessions::Rotation;
use reqwest::Client;
use support::browser::{browser_named, login, page, plain, serve, session_cookie};

/// The rows of the devices list on the sessions page: (label, id, marked as this device).
async fn devices(client: &Client, base: &str) -> Vec<(String, String, bool)> {
    let html = page(client, &format!("{base}/sessions")).await;
    let rows = html.split("<li class=\"device\">").skip(1);
    let field = |row: &str, before: &str, after: &str| {
        let start = row.find(before).map(|at| at + before.len())?;
        Some(row[start..].split(after).next()?.to_owned())
    };
    rows.map(|row| {
        let label = field(row, "<b>", "</b>").expect("a label");
        let id = field(row, "name=\"id\" value=\"", "\"").expect("an id");
        (label, id, row.contains("(this device)"))
    })
    .collect()
}

async fn logged_in_as(client: &Client, base: &str) -> bool {
    page(client, base).await.contains("Logged in as <b>ada</b>")
}

async fn post(client: &Client, url: String, form: &[(&str, &str)]) -> reqwest::Response {
    client.post(url).form(form).send().await.expect("post")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devices_page_lists_and_logs_out_one_device_everywhere_else_and_this_one() {
    let redis = support::any_server();
    let base = serve(demo::routes(SessionLayer::new(redis.store()).with_cookie(plain()))).await;
    let laptop = browser_named("Firefox on a laptop");
    let phone = browser_named("Safari on a phone");
    let tablet = browser_named("Chrome on a tablet");
    for browser in [&laptop, &phone, &tablet] {
        login(browser, &base, "ada").await;
        assert!(logged_in_as(browser, &base).await);
    }
    assert_eq!(devices(&Client::new(), &base).await, [], "a visitor sees no devices");

    let listed = devices(&laptop, &base).await;
    let labels: Vec<&str> = listed.iter().map(|(label, ..)| label.as_str()).collect();
    assert_eq!(labels, ["Firefox on a laptop", "Safari on a phone", "Chrome on a tablet"]);
    let marked: Vec<bool> = listed.iter().map(|(.., this)| *this).collect();
    assert_eq!(marked, [true, false, false], "the laptop is this device");
    let html = page(&laptop, &format!("{base}/sessions")).await;
    assert!(html.contains("Log out everywhere else") && html.contains("last seen"), "{html}");

    // The laptop logs the phone out: the phone's next page is logged out.
    let phone_id = listed[1].1.clone();
    let response = post(&laptop, format!("{base}/sessions/revoke"), &[("id", &phone_id)]).await;
    assert_eq!(response.status(), 303);
    assert!(page(&laptop, &format!("{base}/sessions"))
        .await
        .contains("That device is logged out."));
    assert!(!logged_in_as(&phone, &base).await, "the phone is logged out");
    assert_eq!(devices(&laptop, &base).await.len(), 2);

    // Log out everywhere else: the tablet goes, the laptop stays.
    post(&laptop, format!("{base}/sessions/revoke-others"), &[]).await;
    assert!(page(&laptop, &format!("{base}/sessions")).await.contains("Logged out on 1 other"));
    assert!(!logged_in_as(&tablet, &base).await && logged_in_as(&laptop, &base).await);
    let left = devices(&laptop, &base).await;
    assert_eq!((left.len(), left[0].2), (1, true));

    // Its own button logs this device out, and clears its cookie.
    let own = post(&laptop, format!("{base}/sessions/revoke"), &[("id", &left[0].1)]).await;
    assert!(session_cookie(&own).is_some_and(|c| c.contains("Max-Age=0")));
    assert!(!logged_in_as(&laptop, &base).await);
    assert!(redis.keys().await.is_empty(), "no session, no index left in Redis");
}

/// With rotation on, a page view after the rotation period gets a new cookie from the layer;
/// the old cookie, replayed within the grace window, still shows the same cart and gets the new
/// cookie too; replayed after it, it is refused with 401 and clears, and the session it led to
/// is logged out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_rotates_and_reissues_the_cookie_and_a_replayed_old_one_ends_the_session() {
    let redis = support::any_server();
    let grace = Duration::from_millis(250);
    let rotation = Rotation::default().with_every(Duration::from_millis(300)).with_grace(grace);
    let store = redis.store_with(|c| c.with_rotation(rotation));
    let base = serve(demo::routes(SessionLayer::new(store).with_cookie(plain()))).await;
    let laptop = browser_named("Firefox on a laptop");
    post(&laptop, format!("{base}/cart"), &[("item", "Sencha")]).await;
    let first = session_cookie(&login(&laptop, &base, "ada").await).expect("login sets a cookie");
    let old = first.split(';').next().expect("name=value").to_owned();
    page(&laptop, &base).await;

    tokio::time::sleep(Duration::from_millis(350)).await;
    let response = laptop.get(&base).send().await.expect("get");
    let rotated = session_cookie(&response).expect("the layer reissues the cookie");
    assert_ne!(rotated.split(';').next(), Some(old.as_str()), "a new token");
    assert!(response.text().await.expect("body").contains("Sencha"));

    // A request still carrying the old cookie, within the window: same data, new cookie.
    let replay = Client::builder().redirect(reqwest::redirect::Policy::none()).build();
    let replay = replay.expect("client");
    let in_flight = replay.get(&base).header("cookie", &old).send().await.expect("get");
    let reissued = session_cookie(&in_flight).expect("the new cookie");
    assert_eq!(reissued.split(';').next(), rotated.split(';').next(), "one new token");
    assert!(in_flight.text().await.expect("body").contains("Sencha"));

    tokio::time::sleep(grace).await;
    let stolen = replay.get(&base).header("cookie", &old).send().await.expect("get");
    assert_eq!(stolen.status(), 401);
    assert!(session_cookie(&stolen).is_some_and(|c| c.contains("Max-Age=0")), "cleared");
    assert!(!logged_in_as(&laptop, &base).await, "the session it led to is logged out");
}
