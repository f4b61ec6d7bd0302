// The README is the crate's front page; its examples use every feature, so it is the docs (and
// its examples are doctests) when they are all on: on docs.rs, and in the README's test command.
#![cfg_attr(
    all(
        feature = "axum",
        feature = "tower-sessions",
        feature = "actix",
        feature = "test-server",
        feature = "stateless"
    ),
    doc = include_str!("../README.md")
)]
#![cfg_attr(
    not(all(
        feature = "axum",
        feature = "tower-sessions",
        feature = "actix",
        feature = "test-server",
        feature = "stateless"
    )),
    doc = "Web sessions in Redis for async Rust: see the README, or build these docs with \
           `--all-features` to read it here."
)]
//!
//! # Layout
//!
//! Each folder is a concern. No module imports a module that imports it back, however long the
//! way round (`tests/layering.rs` reads the sources and fails on a cycle).
//!
//! - `config.rs` ([`Config`]: where Redis is, timeouts, serde and `with_*`), `limits.rs`
//!   ([`Limits`]: size bounds checked before anything is written), `timeouts.rs`
//!   ([`Timeouts`]: a session's own, for "remember me"), `token.rs` ([`Token`]: 256-bit CSPRNG
//!   secrets with a Cluster hash tag, parsed strictly), `users.rs` ([`Login`], [`UserSession`]:
//!   sessions bound to a user), `rotation.rs` ([`Rotation`]: rotating their tokens) and
//!   `error.rs` ([`Error`]: one enum that keeps its sources and never holds a token).
//! - `format/`: what Redis holds for a session. `mod.rs` writes each tag byte, header offset
//!   and stamp marker once (the Lua scripts get them generated); `keys.rs` derives keys by
//!   hashing tokens, so Redis never holds a usable token; `fields.rs` tells each field of a
//!   session's hash by its value alone; `packed.rs` is the packed record, the attributes as of
//!   the last compaction in one field; `codec.rs` is MessagePack by attribute name; `bound.rs`
//!   is a session's binding to a user, a retired token's stub and a user's index key.
//! - `connection/`: reaching Redis. `connector.rs` opens connections to one server or a
//!   Cluster, `tls.rs` holds [`TlsConfig`], `pool.rs` keeps a few shared multiplexed
//!   connections, `scripts.rs` the Lua scripts of `lua/`, hashed once and run with EVALSHA.
//! - `seal/`: encryption at rest. `keys.rs` holds [`Encryption`] (keys from configuration)
//!   and the key ring, `sealer.rs` the store's ring and the epoch keys that seal, `envelope.rs`
//!   the bytes of a sealed value, `binding.rs` what binds a value to its session, `moved.rs` a
//!   session sealed anew for the key a regenerate moves it to, `usage.rs` what [`KeyUsage`]
//!   counts; `mod.rs` seals and opens.
//! - `cache/`: the local cache. `settings.rs` holds its settings ([`LocalCache`], [`Tracking`])
//!   and [`CacheStats`]; `entries.rs` the sessions, bounded, and the claims that keep a read from
//!   filling in a session that changed while it was read; `tracking.rs` the RESP3 connection
//!   with `CLIENT TRACKING` whose reports drop entries; `mod.rs` puts them together.
//! - `session/`: [`Session`], attributes as read apart from the changes pending, and in
//!   `changes.rs` what a save sends and what it leaves.
//! - `store/`: [`SessionStore`], whose public methods are in `mod.rs` (and, for sessions bound
//!   to users, `users_api.rs`), each carried out by a module of its own: `create.rs`, `load.rs`
//!   (with `cached.rs`, `read.rs`, `flash_pop.rs`, `reply.rs`, `server_clock.rs`,
//!   `expiry_rule.rs`), `save.rs`, `regenerate.rs`, `users.rs` (login, a user's list, revoke,
//!   logout), `rotation.rs` (rotating a token, following or reporting a
//!   retired one), `key_usage.rs` (the scan behind [`SessionStore::key_usage`]) and `advice.rs`
//!   ([`ServerAdvice`], the start-up check of the server's settings).
//! - `stateless/` (feature `stateless`): sessions in a signed cookie. `settings.rs` holds
//!   `stateless::StatelessSessions` and its settings, `keys.rs` the signing keys, `cookie.rs` the
//!   JWT and the session's binary form, `sessions.rs` what the web layer does with one,
//!   `users.rs` a user's stateless sessions, `mirror.rs` the copy of the revocations every
//!   request checks and `feed.rs` the subscription that keeps it current; the store's
//!   `stateless.rs` is their Redis side.
//! - `web/` (feature `axum`): `web::SessionLayer` and the `web::WebSession` extractor for
//!   axum and tower (`handle/users.rs`: its methods for users; `handle/finish.rs`: what
//!   happens after the handler; `handle/cookie_mode.rs`: where they go in the stateless
//!   mode), with the secure cookie
//!   defaults of `web::CookieConfig`.
//! - `adapters/` (features `tower-sessions`, `actix`): this store behind those crates'
//!   session-store traits.
//! - `test_server.rs` (feature `test-server`): `test_server::TestServer`, a throwaway
//!   redis-server for tests and examples.
//! - `lua/`: the scripts, each with a header (keys, arguments, reply, writes, why it is
//!   atomic), and the helpers prepended to them (`connection/scripts.rs` says which go with
//!   which): twins of Rust modules (`format.lua`, generated from `format/mod.rs`;
//!   `record.lua`, `packed.rs`; `fields.lua`, `fields.rs`; `expiry.lua`, `expiry_rule.rs`),
//!   and the parts the scripts share (`clock.lua`, `deadline.lua`, `live.lua`, `entries.lua`,
//!   `move.lua` and `devices.lua`, and for the saves `write.lua`, `limits.lua`, `view.lua`).
//!
//! `docs/design.md` describes the data model, each operation's path and the scripts;
//! `docs/operations.md` the Redis settings and failure behaviour; `docs/performance.md` the
//! benchmark.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

#[cfg(any(feature = "actix", feature = "tower-sessions"))]
pub mod adapters;
mod cache;
mod config;
mod connection;
mod error;
mod format;
mod limits;
mod rotation;
mod seal;
mod session;
#[cfg(feature = "stateless")]
pub mod stateless;
mod store;
mod timeouts;
mod token;
mod users;

#[cfg(feature = "test-server")]
pub mod test_server;
#[cfg(feature = "axum")]
pub mod web;

pub use cache::{CacheStats, LocalCache, Tracking};
pub use config::Config;
pub use connection::tls::{Pem, TlsConfig};
pub use error::{Error, Result, Unseal};
pub use limits::Limits;
pub use rotation::Rotation;
pub use seal::keys::{Encryption, EncryptionKey, KeySource};
pub use seal::usage::KeyUsage;
pub use session::{Metadata, Session};
pub use store::advice::ServerAdvice;
pub use store::SessionStore;
pub use timeouts::Timeouts;
pub use token::{Token, TOKEN_LEN};
pub use users::{Login, UserSession};

/// The redis-rs crate this library is built on, so users never pin a mismatched version.
pub use redis;
