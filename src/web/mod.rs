//! Sessions in axum (and any tower stack): a [`SessionLayer`] and a [`Session`] extractor.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use redis_sessions::web::{Session, SessionLayer};
//! use redis_sessions::{Config, SessionStore};
//!
//! async fn visits(session: Session) -> Result<String, redis_sessions::Error> {
//!     let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
//!     session.insert("visits", &n).await?;
//!     Ok(format!("visit number {n}"))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SessionStore::connect(Config::from_url("redis://127.0.0.1:6379")).await?;
//! let app: Router = Router::new().route("/", get(visits)).layer(SessionLayer::new(store));
//! # Ok(()) }
//! ```
//!
//! What the layer does for each request:
//!
//! - Nothing, until a handler touches the session: a request that never does costs no Redis
//!   call, and a visitor who never stores anything gets no cookie and no Redis key.
//! - The first access loads the session with get-and-touch, popping its flash messages in the
//!   same call. Messages the handler does not read are queued again for the next request.
//! - After the handler, a save writes only the attributes that changed; flash messages for the
//!   next request are pushed; the cookie is set only when the token changed (new session,
//!   regenerate) and cleared on destroy or when it named no live session. A response that sets
//!   the cookie also gets `Cache-Control: no-store`, so no cache keeps someone's token.
//! - When Redis fails at that point, the response becomes a 503 (Redis unavailable) or a 500,
//!   rather than a success whose session change was lost.
//!
//! Cookies are built with the `cookie` crate; see [`CookieConfig`] for the secure defaults.

mod cookie_config;
mod handle;
mod layer;

pub use cookie_config::CookieConfig;
pub use handle::Session;
pub use layer::{SessionLayer, SessionService};

/// Lets handlers use `?` on session operations: 503 Service Unavailable when Redis cannot be
/// reached ([`Error::is_unavailable`](crate::Error::is_unavailable)), 500 otherwise. The body
/// is the error's text, which never holds a token.
impl axum::response::IntoResponse for crate::Error {
    fn into_response(self) -> axum::response::Response {
        let status = if self.is_unavailable() {
            http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            http::StatusCode::INTERNAL_SERVER_ERROR
        };
        (status, self.to_string()).into_response()
    }
}
