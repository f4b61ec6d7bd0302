//! The life of one session: create, load, flash, regenerate, destroy.
//!
//! Run with `cargo run --example quickstart`. It uses the Redis at `REDIS_URL`, or
//! redis://127.0.0.1:6379; when nothing answers there it starts a throwaway `redis-server` from
//! PATH in a temp dir for this run, says so, and stops it at the end.

use redis_sessions::test_server::TestServer;
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
    let throwaway = TestServer::unless_answering(&url)?;
    if let Some(server) = &throwaway {
        println!("No Redis answered at {url}; started a throwaway one at {}.\n", server.url());
    }
    let url = throwaway.as_ref().map_or(url, TestServer::url);
    let config = Config::from_url(url).with_key_prefix("quickstart:session:");
    let store = SessionStore::new(config)?;
    println!("store: {store:?}\n");

    // A visitor logs in: create a session and store who they are.
    let mut session = store.create().await?;
    session.insert("user", &User { id: 42, name: "Ada".into() })?;
    session.insert("cart", &vec!["teapot"])?;
    store.save(&mut session).await?;
    println!("created {:?}, saved {} attributes", session.token(), session.names().count());
    let cookie = session.token().expose().to_owned(); // what the browser keeps

    // The next request: one round trip loads it (a second slides the idle expiry, when due).
    let loaded = store.load(&cookie).await?.ok_or("session vanished")?;
    let user: Option<User> = loaded.get("user")?;
    println!("loaded: user {user:?}, ttl {} ms", loaded.metadata().ttl_ms);

    // Flash a message; the next page view pops it with its load (in the same round trip: the
    // read and the delete go as one transaction).
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
