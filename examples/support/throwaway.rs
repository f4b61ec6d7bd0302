//! A throwaway redis-server for the examples, when none answers at the URL they were given.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when something answers PING at `url` within half a second.
pub fn answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else { return false };
    let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
        return false;
    };
    redis::cmd("PING").query::<String>(&mut conn).is_ok()
}

/// A redis-server on a free port in a temp dir, stopped when the guard drops.
pub struct Throwaway {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_throwaway(
    tried: &str,
) -> Result<(String, Option<Throwaway>), Box<dyn std::error::Error>> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let dir = tempfile::tempdir()?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("no Redis at {tried} and no redis-server on PATH to start: {e}"))?;
    let guard = Throwaway { child, _dir: dir };
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    while !answers(&url) {
        if started.elapsed() > Duration::from_secs(5) {
            return Err("the throwaway redis-server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "No Redis answered at {tried}; started a throwaway redis-server at {url} for this run."
    );
    Ok((url, Some(guard)))
}

/// The Redis URL to use: `REDIS_URL`, or the local default; a throwaway server when nothing
/// answers there (kept alive by the returned guard).
pub fn redis_url() -> Result<(String, Option<Throwaway>), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if answers(&url) {
        return Ok((url, None));
    }
    start_throwaway(&url)
}
