//! Rotation of a bound session's token (rotate.lua), and what a load does with the stub a
//! rotation leaves under the old token: within the grace window it follows it to the new
//! session; after it, it revokes and reports (the token was most likely stolen).

use redis::Value;
use tracing::{debug, warn};

use crate::connection::scripts::SCRIPTS;
use crate::error::{Error, Result};
use crate::format::bound::{self, Retired};
use crate::format::{keys, RETIRED};
use crate::seal;
use crate::session::Session;
use crate::store::core::Core;
use crate::store::create::{collided, TOKEN_ATTEMPTS};
use crate::store::users::{self, add_fields, read_to_move, stub_user, unlink, Scope};
use crate::token::Token;

/// Whether `session`'s token is due for rotation: it is bound, rotation is on, and the token
/// has been in use for `every` on the server's clock as estimated here.
pub(crate) fn due(core: &Core, session: &Session) -> bool {
    let (Some(bound), Some(rotation)) = (&session.bound, &core.config.rotation) else {
        return false;
    };
    let every = rotation.every.as_millis() as u64;
    core.clock.now_ms().is_some_and(|now| now >= bound.rotated_ms.saturating_add(every))
}

/// What a rotation did.
pub(crate) enum Rotated {
    /// `session` holds the new token.
    Done(Token),
    /// Another request rotated the session first, to this token: `session` is left as it was.
    First(Token),
}

/// Moves `session` to a new token under its hash tag, leaving a stub under the old one.
pub(crate) async fn rotate(core: &Core, session: &mut Session) -> Result<Rotated> {
    let Some(bound) = session.bound.clone() else {
        return Err(Error::Config("only a session bound to a user by a login rotates".into()));
    };
    let index = bound::index_key(&core.config, &bound.user);
    let grace = users::grace(core).as_millis() as u64;
    let mut collisions = 0;
    for _ in 0..5 {
        let token = Token::generate_with_tag(session.token().tag())?;
        let key = keys::session_key(&core.config, &token);
        let (fields, moved) = match &session.seal {
            Some(_) => read_to_move(core, session, &key).await?,
            None => (Vec::new(), None),
        };
        let mut call = SCRIPTS.rotate.call(&[&session.key, &key, &index]);
        add_fields(call.arg(session.meta.deadline_ms), &fields);
        let sealed = bound::seal_next(session.token(), &token);
        let who = seal::seal_meta(session.seal.as_ref(), RETIRED, bound.user.clone().into_bytes())?;
        call.arg(grace).arg(Retired::tail(&bound.device, &sealed, &who));
        match core.run::<Value>(&call).await? {
            Value::Array(reply) => match <[Value; 2]>::try_from(reply) {
                Ok([Value::Int(1), Value::Int(grace_until)]) => {
                    debug!(new_session = ?token, "rotated");
                    session.rekey(token.clone(), key, moved);
                    let rotated = (grace_until.max(0) as u64).saturating_sub(grace);
                    session.bound = Some(bound::Bound { rotated_ms: rotated, ..bound });
                    return Ok(Rotated::Done(token));
                }
                Ok([Value::Int(2), Value::BulkString(stub)]) => {
                    return Ok(Rotated::First(rotated_first(session, &stub)?));
                }
                _ => return Err(unexpected()),
            },
            Value::Int(0) => return Err(Error::SessionGone),
            Value::Int(-1) if collisions + 1 < TOKEN_ATTEMPTS => collisions += 1,
            Value::Int(-1) => return Err(collided()),
            Value::Int(-2) => {} // changed while sealed anew: read and seal again
            _ => return Err(unexpected()),
        }
    }
    Err(Error::Conflict)
}

/// The token another request rotated `session` to first, from the `stub` it left.
fn rotated_first(session: &Session, stub: &[u8]) -> Result<Token> {
    let next = Retired::parse(stub).and_then(|r| bound::open_next(session.token(), &r.sealed_next));
    next.ok_or(Error::SessionGone)
}

/// The token a rotation moved `session` to, while the grace window is open (on the server's
/// clock as estimated here), from the stub under its key: for a request that loaded the
/// session before another rotated it. `None` once the window has closed: such a request is
/// not reported as a theft, but its session is gone.
pub(crate) async fn rotated_to(core: &Core, session: &Session) -> Result<Option<Token>> {
    let reply = core.read_one(redis::cmd("HGET").arg(&session.key).arg("@r")).await?;
    let Value::BulkString(stub) = reply else { return Ok(None) };
    let Some(retired) = Retired::parse(&stub) else { return Ok(None) };
    let open = core.clock.now_ms().is_some_and(|now| now < retired.grace_until_ms);
    Ok(open.then(|| bound::open_next(session.token(), &retired.sealed_next)).flatten())
}

/// What a load does with a retired token's stub: the next token within the grace window (as
/// the server's clock, estimated here and never behind it, says); after it, the user's
/// session(s) revoked, the stub deleted (reported once: a thief holding the old token cannot
/// log the user out again and again) and [`Error::TokenReused`]. `None` when the stub does not
/// open.
pub(crate) async fn follow(
    core: &Core,
    token: &Token,
    key: &str,
    retired: Retired,
) -> Result<Option<Token>> {
    let next = bound::open_next(token, &retired.sealed_next);
    if core.clock.now_ms().is_some_and(|now| now < retired.grace_until_ms) {
        debug!("a retired token within its grace window: following it");
        return Ok(next);
    }
    let scope = match core.config.rotation.is_some_and(|r| r.revoke_user_on_reuse) {
        true => Scope::All,
        false => Scope::One(retired.device),
    };
    let Some(user) = stub_user(core, key, &retired) else {
        debug!("a retired token's stub that does not open: no session");
        return Ok(None);
    };
    match users::revoke(core, &user, scope, Some(retired.grace_until_ms)).await? {
        None => Ok(next), // still within the window on the server's clock
        Some(revoked) => {
            report(token, revoked, matches!(scope, Scope::All));
            unlink(core, key).await?;
            Err(Error::TokenReused { user, revoked })
        }
    }
}

fn report(token: &Token, revoked: usize, all: bool) {
    warn!(
        session = ?token,
        revoked,
        all_of_the_user = all,
        "a retired session token was used after its grace window: likely stolen, revoked"
    );
}

fn unexpected() -> Error {
    Error::Corrupt("rotate answered neither 1, 0, -1, -2, {1, grace end} nor {2, stub}".into())
}
