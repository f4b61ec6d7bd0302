//! Trace output names sessions by a fingerprint, never by token. (Its own test binary: tracing
//! caches per-callsite interest process-wide, so tests without a subscriber running beside it
//! could hide its events.)

mod support;

use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::format::FmtSpan;

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Captures this thread's events at `level` and above until the guard drops.
    fn start(level: tracing::Level) -> (Captured, tracing::subscriber::DefaultGuard) {
        Captured::capture(level, FmtSpan::NONE)
    }

    /// Like [`start`](Self::start), and logs each span as it closes, with its fields.
    fn start_with_spans(level: tracing::Level) -> (Captured, tracing::subscriber::DefaultGuard) {
        Captured::capture(level, FmtSpan::CLOSE)
    }

    fn capture(
        level: tracing::Level,
        spans: FmtSpan,
    ) -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_span_events(spans)
            .with_writer(move || writer.clone())
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8")
    }
}

#[tokio::test]
async fn trace_logs_name_sessions_by_fingerprint_only() {
    let redis = support::any_server();
    let store = redis.store();
    let (captured, guard) = Captured::start(tracing::Level::TRACE);
    let tokens = support::workload(&store).await;
    store.load("malformed-cookie").await.expect("no session");
    drop(guard);

    let logs = captured.text();
    assert!(logs.contains("session.load") && logs.contains("Token("), "spans were logged");
    for token in &tokens {
        assert!(!logs.contains(&token[4..]), "token in logs");
    }
}

#[tokio::test]
async fn a_load_records_the_way_it_read_and_whether_get_and_touch_ran() {
    let redis = support::any_server();
    let lazy = redis.store();
    let eager = redis.store_with(|config| config.with_touch_threshold(0.0)); // every read touches
    let token = lazy.create().await.expect("create").token().expose().to_owned();
    lazy.load(&token).await.expect("load").expect("live"); // syncs the clock estimate
    let (captured, guard) = Captured::start_with_spans(tracing::Level::DEBUG);
    lazy.load(&token).await.expect("load").expect("live");
    lazy.load_and_pop_flash(&token).await.expect("load").expect("live");
    eager.load(&token).await.expect("load").expect("live");
    drop(guard);

    let logs = captured.text();
    let closed: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("session.load{") && line.contains("close"))
        .collect();
    assert_eq!(closed.len(), 3, "{logs}");
    assert!(closed[0].contains("way=\"read\"") && !closed[0].contains("script"), "{}", closed[0]);
    assert!(closed[1].contains("way=\"transaction\""), "{}", closed[1]);
    // Every read slides the expiry: HVALS and PEXPIRE, no script.
    assert!(
        closed[2].contains("way=\"read_and_slide\"") && !closed[2].contains("script"),
        "{}",
        closed[2]
    );
}

/// A retired token used after its grace window is reported as a `warn` event that names the
/// session by fingerprint and says how many sessions were revoked; no token, no user id.
#[tokio::test]
async fn a_retired_token_used_after_its_window_is_reported_without_token_or_user() {
    let redis = support::any_server();
    let grace = std::time::Duration::from_millis(200);
    let rotation = redis_sessions::Rotation::default().with_grace(grace);
    let store = redis.store_with(|config| config.with_rotation(rotation));
    let mut session = store.create().await.expect("create");
    let login = redis_sessions::Login::new("ada-lovelace");
    store.login(&mut session, &login).await.expect("login");
    let old = session.token().expose().to_owned();
    let new = store.rotate(&mut session).await.expect("rotate").expose().to_owned();
    tokio::time::sleep(grace * 2).await;
    let (captured, guard) = Captured::start(tracing::Level::WARN);
    let err = store.load(&old).await.expect_err("reused");
    drop(guard);

    assert!(matches!(err, redis_sessions::Error::TokenReused { revoked: 1, .. }), "{err:?}");
    let logs = captured.text();
    assert!(logs.contains("WARN") && logs.contains("likely stolen"), "{logs}");
    assert!(logs.contains("revoked=1") && logs.contains("Token("), "{logs}");
    for secret in [&old[4..], &new[4..], "ada-lovelace"] {
        assert!(!logs.contains(secret), "{logs}");
    }
}

#[tokio::test]
async fn connect_warns_through_tracing_about_an_evicting_policy() {
    let redis = support::own_server(&["--maxmemory-policy", "allkeys-lru"]);
    let (captured, guard) = Captured::start(tracing::Level::WARN);
    redis_sessions::SessionStore::connect(redis.config()).await.expect("connect");
    drop(guard);

    let logs = captured.text();
    assert!(logs.contains("WARN") && logs.contains("allkeys-lru"), "{logs}");
}

#[cfg(feature = "axum")]
async fn remember(
    session: redis_sessions::web::WebSession,
) -> Result<&'static str, redis_sessions::Error> {
    session.insert("seen", &true).await?;
    Ok("ok")
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn a_secure_cookie_over_plain_http_to_another_host_is_warned_about_once() {
    let redis = support::any_server();
    let app = axum::Router::new()
        .route("/", axum::routing::post(remember))
        .layer(redis_sessions::web::SessionLayer::new(redis.store()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let (captured, guard) = Captured::start(tracing::Level::WARN);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::new();
    let post = |host: &str, proto: Option<&str>| {
        let request = client.post(&url).header("host", host);
        match proto {
            Some(proto) => request.header("x-forwarded-proto", proto),
            None => request,
        }
    };
    // Each visitor gets a new session, so each response issues the cookie.
    for (host, proto) in [("localhost:3000", None), ("shop.example", Some("https"))] {
        post(host, proto).send().await.expect("post");
        assert!(!captured.text().contains("plain HTTP"), "{host}: loopback or HTTPS");
    }
    for _ in 0..3 {
        post("192.168.1.20:3000", None).send().await.expect("post");
    }
    drop(guard);

    let logs = captured.text();
    assert_eq!(logs.matches("cookie went out over plain HTTP").count(), 1, "once: {logs}");
    assert!(logs.contains("192.168.1.20:3000") && logs.contains("with_secure(false)"), "{logs}");
}
