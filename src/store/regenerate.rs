//! Regenerate-and-migrate: a session moved to a fresh token in one script, optionally with new
//! timeouts from now on.

use redis::Value;
use tracing::debug;

use crate::connection::scripts::SCRIPTS;
use crate::error::{Error, Result};
use crate::format::{bound, keys};
use crate::seal::binding::Binding;
use crate::seal::moved::{moved, Moved};
use crate::session::Session;
use crate::store::core::Core;
use crate::store::create::{collided, TOKEN_ATTEMPTS};
use crate::timeouts::TimeoutsMs;
use crate::token::Token;

/// How many times a regenerate under encryption reads and seals the session anew when another
/// request changed it in between, before it reports a conflict.
const RESEAL_ATTEMPTS: u32 = 5;

/// Moves `session` to a new token under its hash tag; with `timeouts`, gives it those from
/// now on (its own when the flag is set, else the store's). Under encryption, every value is
/// sealed anew for the new key on the way (seal/moved.rs).
pub(crate) async fn move_to_new_token(
    core: &Core,
    session: &mut Session,
    timeouts: Option<(TimeoutsMs, bool)>,
) -> Result<Token> {
    let (mut collisions, mut changes) = (0, 0);
    loop {
        let token = Token::generate_with_tag(session.token().tag())?;
        let key = keys::session_key(&core.config, &token);
        let moved = match &session.seal {
            Some(seal) => Some(sealed_anew(core, session, seal, &seal.for_key(&key)).await?),
            None => None,
        };
        // A bound session's index entry follows it.
        let index = session.bound.as_ref().map(|bound| bound::index_key(&core.config, &bound.user));
        let mut keys = vec![session.key.as_str(), key.as_str()];
        keys.extend(index.as_deref());
        let mut call = SCRIPTS.regenerate.call(&keys);
        call.arg(session.meta.deadline_ms);
        let fields = moved.as_ref().map_or(&[][..], |moved| &moved.fields[..]);
        call.arg(fields.len());
        for (name, read, new) in fields {
            call.arg(&name[..]).arg(&read[..]).arg(&new[..]);
        }
        if let Some((ms, own)) = timeouts {
            call.arg(ms.idle).arg(ms.absolute);
            match own {
                true => call.arg(ms.touch_after),
                false => call.arg(""),
            };
        }
        let reply = core.run::<Value>(&call).await?;
        match (timeouts, reply) {
            (_, Value::Int(0)) => return Err(Error::SessionGone),
            (_, Value::Int(-1)) => {
                // The new token's key is taken: draw again.
                collisions += 1;
                match collisions < TOKEN_ATTEMPTS {
                    true => continue,
                    false => return Err(collided()),
                }
            }
            (_, Value::Int(-2)) => {
                // Changed since read (a save, a touch, a flash): read and seal again.
                changes += 1;
                match changes < RESEAL_ATTEMPTS {
                    true => continue,
                    false => return Err(Error::Conflict),
                }
            }
            (None, Value::Int(1)) => {}
            (Some((ms, own)), Value::Array(moved)) => match <[Value; 3]>::try_from(moved) {
                Ok([Value::Int(1), Value::Int(deadline), Value::Int(ttl)]) => {
                    session.meta.deadline_ms = deadline;
                    session.meta.ttl_ms = ttl;
                    session.meta.idle_timeout_ms = own.then_some(ms.idle as i64);
                    session.meta.touch_after_ms = own.then_some(ms.touch_after);
                }
                _ => return Err(unexpected_regenerate_reply()),
            },
            _ => return Err(unexpected_regenerate_reply()),
        }
        debug!(new_session = ?token, "regenerated");
        session.rekey(token.clone(), key, moved);
        return Ok(token);
    }
}

fn unexpected_regenerate_reply() -> Error {
    Error::Corrupt("regenerate answered neither 1, 0, -1, -2 nor {1, deadline, ttl}".into())
}

/// The session's hash, read and sealed for `to` instead of `from` (seal/moved.rs), with its
/// pending changes.
pub(crate) async fn sealed_anew(
    core: &Core,
    session: &Session,
    from: &Binding,
    to: &Binding,
) -> Result<Moved> {
    moved(from, to, read_hash(core, &session.key).await?, session.pending())
}

/// Every field of the session's hash and its value (`HGETALL`), for a move; the session is
/// gone when there is none.
pub(crate) async fn read_hash(core: &Core, key: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let reply = core.read_one(redis::cmd("HGETALL").arg(key)).await?;
    let fields: Vec<(Vec<u8>, Vec<u8>)> = redis::from_redis_value(reply)
        .map_err(|_| Error::Corrupt("HGETALL answered no field, value pairs".into()))?;
    if fields.is_empty() {
        return Err(Error::SessionGone);
    }
    Ok(fields)
}
