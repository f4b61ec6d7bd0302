//! A small shop on axum with redis-sessions: log in, fill a cart, see flash messages, log out.
//!
//! `cargo run -p redis-sessions-demo`, then open http://127.0.0.1:3000. It uses the Redis at
//! `REDIS_URL`, or redis://127.0.0.1:6379, or a throwaway redis-server from PATH when nothing
//! answers there. `DEMO_ADDR` sets the address it listens on (default 127.0.0.1:3000).
//!
//! `DEMO_SESSIONS=stateless` keeps each session in its signed cookie instead of in Redis (Redis
//! then holds only the revocations and the users' device lists). The signing key is
//! `DEMO_JWT_SECRET` (32 bytes or more), or one drawn at start, which logs everyone out at each
//! restart; every instance behind one address must share it.

mod app;

use std::net::{IpAddr, SocketAddr, UdpSocket};

use redis_sessions::stateless::{JwtKey, StatelessSessions};
use redis_sessions::test_server::TestServer;
use redis_sessions::web::{CookieConfig, SessionLayer};
use redis_sessions::{Rotation, SessionStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info,redis_sessions=debug").init();
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let throwaway = TestServer::unless_answering(&url)?;
    let config = match &throwaway {
        None => redis_sessions::Config::from_url(url),
        Some(server) => {
            println!("No Redis answered at {url}; started a throwaway one at {}.", server.url());
            server.config()
        }
    };
    // Tokens of logged-in sessions rotate every 15 minutes of use; a stolen one used after its
    // 30-second grace window ends the session.
    let config = config.with_key_prefix("demo:session:").with_rotation(Rotation::default());
    let store = SessionStore::connect(config).await?;
    let layer = match std::env::var("DEMO_SESSIONS").as_deref() {
        Ok("stateless") => {
            println!(
                "Stateless sessions: each one is its signed cookie (DEMO_SESSIONS=stateless)."
            );
            SessionLayer::stateless(StatelessSessions::new(store, signing_key()?)?)
        }
        Ok("redis") | Err(_) => SessionLayer::new(store),
        Ok(other) => {
            return Err(format!("DEMO_SESSIONS is \"redis\" or \"stateless\", not {other:?}").into())
        }
    };

    let addr: SocketAddr =
        std::env::var("DEMO_ADDR").as_deref().unwrap_or("127.0.0.1:3000").parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let cookie = CookieConfig::default();
    let cookie = if addr.ip().is_loopback() {
        println!("The shop is at http://{addr} (browsers accept Secure cookies on localhost).");
        println!(
            "To reach it from another host: DEMO_ADDR=0.0.0.0:{} cargo run -p redis-sessions-demo",
            addr.port()
        );
        cookie
    } else {
        // Plain HTTP on an address other hosts reach: browsers drop a Secure cookie there, so
        // the demo, which serves no HTTPS, sends its cookie without Secure.
        let host = match addr.ip().is_unspecified() {
            true => outward_ip(),
            false => Some(addr.ip()),
        };
        let host = host.map_or("<this host's address>".to_owned(), |ip| ip.to_string());
        println!(
            "The shop is at http://{host}:{} from other hosts, and http://127.0.0.1:{} here.",
            addr.port(),
            addr.port()
        );
        println!("Plain HTTP: the session cookie goes without Secure (CookieConfig::with_secure(false)).");
        cookie.with_secure(false)
    };
    axum::serve(listener, app::routes(layer.with_cookie(cookie))).await?;
    Ok(())
}

/// The key that signs stateless sessions' cookies: from `DEMO_JWT_SECRET`, or drawn now.
fn signing_key() -> Result<JwtKey, Box<dyn std::error::Error>> {
    let secret = match std::env::var("DEMO_JWT_SECRET") {
        Ok(secret) => secret.into_bytes(),
        Err(_) => rand::random::<[u8; 32]>().to_vec(),
    };
    Ok(JwtKey::hs256("demo-1", &secret)?)
}

/// The address this host reaches other hosts from: a UDP socket "connected" to a documentation
/// address (nothing is sent) is bound to the outward interface.
fn outward_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}
