//! Stateless sessions for the tests: a key, sessions whose feed has synchronised, and what the
//! demo's pages show a browser.

use std::time::Duration;

use redis_sessions::stateless::{JwtKey, StatelessSessions};
use redis_sessions::SessionStore;
use reqwest::Client;

use super::browser::{browser_named, cookie_value, page, session_cookie};

pub const SECRET: &[u8] = b"a test secret of 32 bytes or more";

pub fn hs256(kid: &str) -> JwtKey {
    JwtKey::hs256(kid, SECRET).expect("a key")
}

/// Stateless sessions over `store` signed with `key`, ready (their feed has read the set).
pub async fn sessions(store: SessionStore, key: JwtKey) -> StatelessSessions {
    let sessions = StatelessSessions::new(store, key).expect("sessions");
    sessions.ready().await.expect("the feed synchronises");
    sessions
}

pub async fn logged_in_as(client: &Client, base: &str, user: &str) -> bool {
    page(client, base).await.contains(&format!("Logged in as <b>{user}</b>"))
}

/// The session cookie of a fresh visitor who put `item` in the demo's cart at `base`.
pub async fn cookie_with(base: &str, item: &str) -> String {
    let client = browser_named("test");
    let response =
        client.post(format!("{base}/cart")).form(&[("item", item)]).send().await.expect("post");
    cookie_value(&session_cookie(&response).expect("a cookie"))
}

/// Polls the demo at `base` with `cookie` until it answers 200 with the page of a visitor not
/// logged in (an error page does not count); how long that took, or `None` past `within`.
pub async fn until_logged_out(base: &str, cookie: &str, within: Duration) -> Option<Duration> {
    let client = Client::new();
    let started = std::time::Instant::now();
    while started.elapsed() < within {
        let response = client.get(base).header("cookie", format!("session={cookie}")).send();
        let response = response.await.expect("get");
        let status = response.status();
        let text = response.text().await.expect("body");
        if status == 200 && text.contains("Not logged in.") {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}
