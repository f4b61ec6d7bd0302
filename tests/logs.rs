//! Trace output names sessions by a fingerprint, never by token. (Its own test binary: tracing
//! caches per-callsite interest process-wide, so tests without a subscriber running beside it
//! could hide its events.)

mod support;

use std::sync::{Arc, Mutex};

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
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
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
async fn connect_warns_through_tracing_about_an_evicting_policy() {
    let redis = support::own_server(&["--maxmemory-policy", "allkeys-lru"]);
    let (captured, guard) = Captured::start(tracing::Level::WARN);
    redis_sessions::SessionStore::connect(redis.config()).await.expect("connect");
    drop(guard);

    let logs = captured.text();
    assert!(logs.contains("WARN") && logs.contains("allkeys-lru"), "{logs}");
}
