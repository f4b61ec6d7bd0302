// The README is the crate's front page; its examples use every feature, so it is the docs (and
// its examples are doctests) when they are all on: on docs.rs, and in the README's test command.
#![cfg_attr(
    all(feature = "axum", feature = "tower-sessions", feature = "actix", feature = "test-server"),
    doc = include_str!("../README.md")
)]
#![cfg_attr(
    not(all(
        feature = "axum",
        feature = "tower-sessions",
        feature = "actix",
        feature = "test-server"
    )),
    doc = "Web sessions in Redis for async Rust: see the README, or build these docs with \
           `--all-features` to read it here."
)]
//!
//! # Layout
//!
//! - [`config`](crate::Config) (`config.rs`): where Redis is, timeouts, serde and `with_*`.
//! - `limits.rs`: [`Limits`], size bounds checked before anything is written.
//! - `expiry_rule.rs`: when a touch is due and the TTL a session gets, as plain loads judge
//!   it; its Lua twin is in `lua/record.lua`, and both run one table of cases.
//! - `timeouts.rs`: [`Timeouts`], a session's own idle and absolute timeouts ("remember me").
//! - `connector.rs`: opening connections to one server or a Redis Cluster, TLS certificates
//!   kept.
//! - `pool.rs`: a few shared multiplexed connections, replaced when they fail.
//! - `tls.rs`: [`TlsConfig`], custom CA and client certificates, and the rustls provider.
//! - `token.rs`: [`Token`], 256-bit CSPRNG secrets with a Cluster hash tag, parsed strictly.
//! - `keys.rs`: Redis keys derived by hashing tokens, so Redis never holds a usable token.
//! - `scripts.rs`: the Lua scripts of `lua/`, hashed once and run with EVALSHA.
//! - `reply.rs`: strict parsing of load replies (the plain read's and the get-and-touch
//!   script's); surprises are errors, not panics.
//! - `codec.rs`: MessagePack by field name, decoded lazily.
//! - `format.rs`: the stored format's constants (tags, header offsets, stamp markers), the one
//!   place they are written; the Lua scripts get them generated.
//! - `fields.rs`: what each field of a session's hash holds, told by its value alone (so a
//!   load reads values, not names), and the name stamped on each loose attribute.
//! - `packed.rs`: the packed record, one hash field holding the attributes as of the last
//!   compaction, so a load reads a few fields, not one per attribute.
//! - `session.rs`: [`Session`], attributes plus the delta a save writes.
//! - `store.rs`: [`SessionStore`]: construction, create, destroy, and the path of every
//!   operation to Redis (EVALSHA, EVAL after NOSCRIPT, dropping broken connections).
//! - `load.rs`: loads: a plain read of one command, and the get-and-touch script only when a
//!   write is due.
//! - `server_clock.rs`: the server's time as estimated here, from a `TIME` a read carries once
//!   a second, so that a plain load judges the expiry the hash records without a `PTTL`.
//! - `writes.rs`: delta saves, regenerate-and-migrate, flash push (and `pop_flash`, which
//!   `flash_pop.rs` carries out).
//! - `flash_pop.rs`: popping flash messages: the load's read as a `MULTI` transaction that
//!   also deletes them; get-and-touch on a Cluster (redis-rs follows no redirection inside a
//!   transaction) and when a server refuses the transaction.
//! - `advice.rs`: [`ServerAdvice`], the start-up check of the server's eviction and
//!   persistence settings.
//! - `error.rs`: [`Error`], one enum that keeps its sources and never holds a token.
//! - `web/` (feature `axum`): `web::SessionLayer` and the `web::WebSession` extractor for
//!   axum and tower, with the secure cookie defaults of `web::CookieConfig`.
//! - `test_server.rs` (feature `test-server`): `test_server::TestServer`, a throwaway
//!   redis-server for tests and examples.
//! - `adapters/` (features `tower-sessions`, `actix`): this store behind those crates'
//!   session-store traits.
//!
//! `docs/design.md` describes the data model, each operation's path and the scripts;
//! `docs/operations.md` the Redis settings and failure behaviour; `docs/performance.md` the
//! benchmark.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

#[cfg(any(feature = "actix", feature = "tower-sessions"))]
pub mod adapters;
mod advice;
mod codec;
mod config;
mod connector;
mod error;
mod expiry_rule;
mod fields;
mod flash_pop;
mod format;
mod keys;
mod limits;
mod load;
mod packed;
mod pool;
mod reply;
mod scripts;
mod server_clock;
mod session;
mod store;
mod timeouts;
mod tls;
mod token;
mod writes;

#[cfg(feature = "test-server")]
pub mod test_server;
#[cfg(feature = "axum")]
pub mod web;

pub use advice::ServerAdvice;
pub use config::Config;
pub use error::{Error, Result};
pub use limits::Limits;
pub use session::{Metadata, Session};
pub use store::SessionStore;
pub use timeouts::Timeouts;
pub use tls::{Pem, TlsConfig};
pub use token::{Token, TOKEN_LEN};

/// The redis-rs crate this library is built on, so users never pin a mismatched version.
pub use redis;
