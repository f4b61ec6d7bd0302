//! The life of one session: create, load, flash, regenerate, destroy.
//!
//! Run with `cargo run --example quickstart`. It uses the Redis at `REDIS_URL`, or
//! redis://127.0.0.1:6379; when nothing answers there it starts a throwaway `redis-server` from
//! PATH in a temp dir for this run, says so, and stops it at the end.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_sessions::{Config, SessionStore};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
struct User {
    id: u64,
    name: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let (url, _throwaway) = match answers(&url) {
        true => (url, None),
        false => start_throwaway(&url)?,
    };
    let config = Config::from_url(url).with_key_prefix("quickstart:session:");
    let store = SessionStore::new(config)?;
    println!("store: {store:?}\n");

    // A visitor logs in: create a session and store who they are.
    let mut session = store.create().await?;
    session.insert("user", &User { id: 42, name: "Ada".into() })?;
    session.insert("cart", &vec!["teapot"])?;
    store.save(&mut session).await?;
    println!("created {:?}, saved version {}", session.token(), session.metadata().version);
    let cookie = session.token().expose().to_owned(); // what the browser keeps

    // The next request: one round trip loads and slides the idle expiry when due.
    let loaded = store.load(&cookie).await?.ok_or("session vanished")?;
    let user: Option<User> = loaded.get("user")?;
    println!("loaded: user {user:?}, ttl {} ms", loaded.metadata().ttl_ms);

    // Flash a message; the next page view pops it in the same round trip as the load.
    store.push_flash(&loaded, "Item added to your cart").await?;
    let mut next = store.load_and_pop_flash(&cookie).await?.ok_or("session vanished")?;
    println!("flash shown once: {:?}", next.take_flash::<String>()?);
    let mut again = store.load_and_pop_flash(&cookie).await?.ok_or("session vanished")?;
    println!("and not again:    {:?}", again.take_flash::<String>()?);

    // A privilege change: move the session to a fresh token, the old one dies at once.
    let new_token = store.regenerate(&mut next).await?;
    println!("\nregenerated to {new_token:?}");
    println!("old cookie loads: {:?}", store.load(&cookie).await?.map(|_| "a session"));
    let moved = store.load(new_token.expose()).await?.ok_or("session vanished")?;
    println!("new cookie loads: user {:?}", moved.get::<User>("user")?);

    // Logout.
    println!("\ndestroyed: {}", store.destroy(&moved).await?);
    println!("new cookie loads: {:?}", store.load(new_token.expose()).await?.map(|_| "a session"));
    Ok(())
}

/// True when something answers PING at `url` within half a second.
fn answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else { return false };
    let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
        return false;
    };
    redis::cmd("PING").query::<String>(&mut conn).is_ok()
}

/// A redis-server on a free port in a temp dir, stopped when the guard drops.
struct Throwaway {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_throwaway(tried: &str) -> Result<(String, Option<Throwaway>), Box<dyn std::error::Error>> {
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
