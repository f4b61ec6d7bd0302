//! Stateless sessions: the session in a signed cookie (a JWT), behind the same
//! [`SessionLayer`](crate::web::SessionLayer) and [`WebSession`](crate::web::WebSession) as
//! sessions in Redis, and revocable through Redis without a Redis call per request.
//!
//! ```no_run
//! use redis_sessions::stateless::{JwtKey, StatelessSessions};
//! use redis_sessions::web::SessionLayer;
//! use redis_sessions::{Config, SessionStore};
//!
//! # fn demo(secret: &[u8]) -> redis_sessions::Result<()> {
//! let store = SessionStore::new(Config::from_url("redis://127.0.0.1:6379"))?;
//! let sessions = StatelessSessions::new(store, JwtKey::hs256("2026-12", secret)?)?;
//! let layer = SessionLayer::stateless(sessions);
//! # Ok(()) }
//! ```
//!
//! What a request costs: checking the cookie (its key, its algorithm, its signature, its
//! expiry) and looking the session up in this process's copy of the revocations. No Redis call,
//! unless the handler logs in, logs out or revokes. A response carries a new cookie when the
//! handler changed the session, took or queued flash messages, or when as much of the idle
//! timeout is used up as makes a session in Redis touch its expiry (`Config::touch_threshold`,
//! a tenth by default): the idle expiry slides that way.
//!
//! Revocation: a logout adds the session's device id to a sorted set in Redis, and "log out
//! everywhere" a per-user "not before" time, and the same script publishes it; every process keeps
//! a copy of the set, fed by that channel and read whole each time its feed connects (`feed.rs`).
//! [`StatelessSessions::revoke_all`] does it from outside a request (after a password change, say);
//! the store's own user methods see only sessions in Redis. When the feed has been silent for
//! longer than [`with_stale_after`](StatelessSessions::with_stale_after), requests fail closed
//! (503) or are served from the copy as it was, as
//! [`with_feed_down`](StatelessSessions::with_feed_down) says.
//!
//! What a cookie cannot do: its contents go with each request and come back with each response
//! that changes them, so two requests that change the session at once end with the cookie of
//! whichever response the browser took last; a cookie replayed from before a change (a flash
//! message taken, an attribute removed) shows it again until it expires, unless the session was
//! revoked. docs/design.md compares the two modes.
//!
//! # Layout
//!
//! - `settings.rs`: [`StatelessSessions`] and its settings, [`FeedDown`], [`Refused`].
//! - `keys.rs`: [`JwtKey`] (HS256 or Ed25519, each pinned to its algorithm) and the key ring.
//! - `cookie.rs`: the claims, the session's binary form, signing and checking.
//! - `sessions.rs`: what the web layer does with a stateless session: open, create, issue,
//!   login, regenerate, destroy.
//! - `users.rs`: a user's stateless sessions: the list Redis keeps, revoking one or all.
//! - `mirror.rs`: this process's copy of the revocations; `feed.rs`: the subscription that
//!   keeps it current.
//! - The Redis side is the store's `store/stateless.rs`, with `lua/revocation.lua` and
//!   `lua/cookie_devices.lua`.

mod cookie;
mod feed;
mod keys;
mod mirror;
mod sessions;
mod settings;
mod users;

pub use keys::{JwtKey, MIN_HS256_SECRET};
pub use sessions::Verified;
pub use settings::{FeedDown, Refused, StatelessSessions};
