//! A browser for the web tests: a cookie jar over real HTTP, and the pages and forms they use.

use std::sync::Arc;

use redis_sessions::web::CookieConfig;
use reqwest::redirect::Policy;
use reqwest::Client;

/// `app` served on a free port; its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A browser: a cookie jar, no redirects followed (so each response can be looked at).
pub fn browser() -> (Client, Arc<reqwest::cookie::Jar>) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = Client::builder().cookie_provider(jar.clone()).redirect(Policy::none()).build();
    (client.expect("client"), jar)
}

/// A browser that names itself `agent` (its `User-Agent`).
pub fn browser_named(agent: &str) -> Client {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = Client::builder().cookie_provider(jar).redirect(Policy::none()).user_agent(agent);
    client.build().expect("client")
}

/// Plain HTTP in tests: the cookie must not be Secure for the jar to send it back.
pub fn plain() -> CookieConfig {
    CookieConfig::default().with_secure(false)
}

pub async fn page(client: &Client, url: &str) -> String {
    client.get(url).send().await.expect("get").text().await.expect("body")
}

pub async fn login(client: &Client, base: &str, user: &str) -> reqwest::Response {
    let form = [("username", user), ("password", "pw")];
    client.post(format!("{base}/login")).form(&form).send().await.expect("login")
}

pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .next()
}

pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|p| p.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}
