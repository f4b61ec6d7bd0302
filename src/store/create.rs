//! Creating and destroying sessions.

use tracing::debug;

use crate::connection::scripts::SCRIPTS;
use crate::error::{Error, Result};
use crate::format::keys;
use crate::session::{Metadata, Session};
use crate::store::core::Core;
use crate::store::expiry_rule;
use crate::timeouts::TimeoutsMs;
use crate::token::Token;

/// How often create and regenerate draw a new token after a collision before giving up. With
/// 256-bit secrets a single collision is already beyond belief; the bound only keeps a broken
/// random source from looping forever.
pub(crate) const TOKEN_ATTEMPTS: usize = 3;

/// What create and regenerate report when every fresh token they drew was taken.
pub(crate) fn collided() -> Error {
    Error::Corrupt("token collided repeatedly: is the random source broken?".into())
}

/// Creates a session under a fresh token, drawing again on a collision; with timeouts of its
/// own when `own`, else the store's.
pub(crate) async fn create(core: &Core, own: Option<TimeoutsMs>) -> Result<Session> {
    for _ in 0..TOKEN_ATTEMPTS {
        if let Some(session) = create_with_token(core, Token::generate()?, own).await? {
            return Ok(session);
        }
    }
    Err(collided())
}

/// Creates an empty session under `token`, with timeouts of its own when `own` (else the
/// store's); `None` when a session already has that token. (The adapters use it for IDs their
/// framework draws.)
pub(crate) async fn create_with_token(
    core: &Core,
    token: Token,
    own: Option<TimeoutsMs>,
) -> Result<Option<Session>> {
    let key = keys::session_key(&core.config, &token);
    let mut call = SCRIPTS.create.call(&[&key]);
    let ms = own.unwrap_or_else(|| TimeoutsMs::of_store(&core.config));
    call.arg(ms.idle).arg(ms.absolute);
    if own.is_some() {
        call.arg(ms.touch_after);
    }
    let Some((created_ms, deadline_ms)) = core.run::<Option<(i64, i64)>>(&call).await? else {
        return Ok(None);
    };
    let absolute = i64::try_from(ms.absolute).unwrap_or(i64::MAX);
    let ttl_ms = expiry_rule::next_ttl(-1, true, ms.idle, absolute);
    let meta = Metadata {
        created_ms,
        deadline_ms,
        ttl_ms,
        idle_timeout_ms: own.map(|own| own.idle as i64),
        touch_after_ms: own.map(|own| own.touch_after),
    };
    debug!(session = ?token, "created");
    let seal = core.binding(&key);
    Ok(Some(Session::new(token, key, meta, core.config.limits, seal)))
}
