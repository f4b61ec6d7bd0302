//! Sessions bound to a user: login (bind.lua, and retire.lua on a Cluster), the list of a user's
//! sessions (list.lua), revoking some or all of them (revoke.lua), and logout (destroy.lua, with
//! the index for a bound session).
//!
//! A user's index is a hash of device id -> session key, under a key derived from the user id
//! that carries the user's hash tag, as every token bound to the user does: on a Redis Cluster
//! all of it is in one slot, and each operation here is one single-slot script. Those that need
//! every session's key read the index first (`HGETALL`), then name the keys to a script that
//! checks the index is still as read; a login, rotation or revoke in between makes them read
//! again.

use std::time::Duration;

use redis::Value;
use tracing::{debug, warn};

use crate::connection::scripts::{Call, SCRIPTS};
use crate::error::{Error, Result};
use crate::format::bound::{self, Bound, Retired, MAX_USER_BYTES};
use crate::format::fields::Field;
use crate::format::{keys, BOUND, RETIRED};
use crate::seal;
use crate::seal::moved::Moved;
use crate::session::Session;
use crate::store::core::Core;
use crate::store::create::{collided, TOKEN_ATTEMPTS};
use crate::store::regenerate::{read_hash, sealed_anew};
use crate::timeouts::TimeoutsMs;
use crate::token::Token;
use crate::users::{Login, UserSession};

/// How many times an operation reads the index or the session again when another request
/// changed it in between, before it reports a conflict.
const ATTEMPTS: u32 = 5;

/// Per field of a session's hash: its name, its value as read, its value for the new key.
type Fields = Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>;

/// Logs `session` in as `login.user`: a new token under the user's hash tag, bound to the user
/// and in the user's index, with new timeouts from now on.
pub(crate) async fn login(core: &Core, session: &mut Session, login: &Login) -> Result<Token> {
    let user = login.user.as_str();
    if user.is_empty() || user.len() > MAX_USER_BYTES {
        let why = format!("a login's user id must be 1 to {MAX_USER_BYTES} bytes");
        return Err(Error::Config(why));
    }
    let (ms, own) = match &login.timeouts {
        Some(timeouts) => (TimeoutsMs::of(timeouts, &core.config)?, true),
        None => (TimeoutsMs::of_store(&core.config), false),
    };
    let device = match &session.bound {
        Some(bound) if bound.user == user => bound.device,
        _ => bound::new_device()?,
    };
    let label = bound::cut_label(&login.label);
    let binding = Bound { rotated_ms: 0, device, user: user.to_owned(), label };
    let index = bound::index_key(&core.config, user);
    let tag = bound::user_tag(user);
    // One script where the old key is in the new one's slot: on one server, or on a Cluster
    // when the session already carries the user's tag (a login again as the same user).
    let copy = core.pool.is_cluster() && session.token().tag() != tag;
    let (mut collisions, mut changes) = (0, 0);
    loop {
        let token = Token::generate_with_tag(&tag)?;
        let key = keys::session_key(&core.config, &token);
        let (fields, moved) = read_to_move(core, session, &key).await?;
        if fields.iter().any(|(name, ..)| name == b"@r") {
            return Err(Error::SessionGone); // a rotation since the load: its token is retired
        }
        let keys: &[&str] = match copy {
            true => &[&key, &index],
            false => &[&key, &index, &session.key],
        };
        let mut call = SCRIPTS.bind.call(keys);
        add_fields(call.arg(session.meta.deadline_ms), &fields);
        call.arg(ms.idle).arg(ms.absolute);
        match own {
            true => call.arg(ms.touch_after),
            false => call.arg(""),
        };
        let who = seal::seal_meta(core.binding(&key).as_ref(), BOUND, binding.who())?;
        call.arg(binding.value(&who));
        let (deadline, ttl, now) = match core.run::<Value>(&call).await? {
            Value::Array(reply) => match <[Value; 4]>::try_from(reply) {
                Ok([Value::Int(1), Value::Int(d), Value::Int(t), Value::Int(n)]) => (d, t, n),
                _ => return Err(unexpected("bind")),
            },
            Value::Int(0) => return Err(Error::SessionGone),
            Value::Int(-1) if collisions + 1 < TOKEN_ATTEMPTS => {
                collisions += 1;
                continue;
            }
            Value::Int(-1) => return Err(collided()),
            Value::Int(-2) => {
                changes += 1;
                match changes < ATTEMPTS {
                    true => continue,
                    false => return Err(Error::Conflict),
                }
            }
            _ => return Err(unexpected("bind")),
        };
        if copy {
            // The old key is in another slot: delete it now, if it is still as copied.
            let mut call = SCRIPTS.retire.call(&[&session.key]);
            add_fields(call.arg(session.meta.deadline_ms), &fields);
            let retired = core.run::<i64>(&call).await;
            if !retired.as_ref().is_ok_and(|&n| n == 1) {
                // The copy goes, whatever happened to the original, and the login with it.
                let mut undo = SCRIPTS.destroy.call(&[&key, &index]);
                undo.arg(&device[..]);
                core.run::<i64>(&undo).await?;
                match retired? {
                    -2 if changes + 1 < ATTEMPTS => {
                        changes += 1;
                        continue;
                    }
                    -2 => return Err(Error::Conflict),
                    _ => return Err(Error::SessionGone),
                }
            }
        }
        debug!(new_session = ?token, "logged in");
        session.rekey(token.clone(), key, moved);
        session.meta.deadline_ms = deadline;
        session.meta.ttl_ms = ttl;
        session.meta.idle_timeout_ms = own.then_some(ms.idle as i64);
        session.meta.touch_after_ms = own.then_some(ms.touch_after);
        session.bound = Some(Bound { rotated_ms: now.max(0) as u64, ..binding });
        return Ok(token);
    }
}

/// The session's hash as read, with each value for the key `to` (sealed anew under encryption),
/// and, under encryption, what the session holds once moved.
pub(crate) async fn read_to_move(
    core: &Core,
    session: &Session,
    to: &str,
) -> Result<(Fields, Option<Moved>)> {
    match &session.seal {
        Some(seal) => {
            let moved = sealed_anew(core, session, seal, &seal.for_key(to)).await?;
            Ok((moved.fields.clone(), Some(moved)))
        }
        None => {
            let fields = read_hash(core, &session.key).await?;
            Ok((
                fields.into_iter().map(|(name, value)| (name, value.clone(), value)).collect(),
                None,
            ))
        }
    }
}

/// Appends a move's fields: their count, then name, value as read and value for the new key.
pub(crate) fn add_fields(call: &mut Call, fields: &Fields) {
    call.arg(fields.len());
    for (name, read, new) in fields {
        call.arg(&name[..]).arg(&read[..]).arg(&new[..]);
    }
}

/// The index as read: (device id, session key) per entry.
async fn read_index(core: &Core, index: &str) -> Result<Vec<(Vec<u8>, String)>> {
    let reply = core.read_one(redis::cmd("HGETALL").arg(index)).await?;
    redis::from_redis_value(reply)
        .map_err(|_| Error::Corrupt("a user's index is not a hash of device ids to keys".into()))
}

/// The user's live sessions, oldest first; entries of sessions that are gone are removed.
pub(crate) async fn list(core: &Core, user: &str) -> Result<Vec<UserSession>> {
    let index = bound::index_key(&core.config, user);
    for _ in 0..ATTEMPTS {
        let entries = read_index(core, &index).await?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = vec![index.as_str()];
        keys.extend(entries.iter().map(|(_, key)| key.as_str()));
        let mut call = SCRIPTS.list.call(&keys);
        for (device, _) in &entries {
            call.arg(&device[..]);
        }
        match core.run::<Value>(&call).await? {
            Value::Int(-2) => continue,
            Value::Array(rows) => {
                let key_of = |device: &[u8]| entries.iter().find(|e| e.0 == device).map(|e| &e.1);
                let mut listed = Vec::with_capacity(rows.len());
                for row in rows {
                    listed.extend(self::listed(core, row, key_of)?);
                }
                listed.sort_by_key(|session| session.created_ms);
                return Ok(listed);
            }
            _ => return Err(unexpected("list")),
        }
    }
    Err(Error::Conflict)
}

/// One row of list.lua's reply: {device id, created, @t, @i, @u}; `None` when its binding
/// does not open (sealed under a key the ring no longer holds).
fn listed<'a>(
    core: &Core,
    row: Value,
    key_of: impl Fn(&[u8]) -> Option<&'a String>,
) -> Result<Option<UserSession>> {
    let Value::Array(row) = row else { return Err(unexpected("list")) };
    let Ok([device, Value::Int(created_ms), expiry, own, bound]) = <[Value; 5]>::try_from(row)
    else {
        return Err(unexpected("list"));
    };
    let field = |value: Value| match value {
        Value::BulkString(bytes) => Field::parse(bytes).ok(),
        _ => None,
    };
    let expires = match field(expiry) {
        Some(Field::Expiry(at)) => Some(at),
        _ => None,
    };
    let idle = match field(own) {
        Some(Field::OwnTimeouts { idle, .. }) => idle,
        _ => core.config.idle_ms(),
    };
    let Some(Field::Bound(stored)) = field(bound) else { return Err(unexpected("list")) };
    let Value::BulkString(device) = device else { return Err(unexpected("list")) };
    let Some(key) = key_of(&device).filter(|_| device[..] == stored.device[..]) else {
        return Err(unexpected("list"));
    };
    let who = seal::open_meta(core.binding(key).as_ref(), BOUND, &stored.who);
    let Some(bound) = who.and_then(|who| Bound::from_stored(&stored, &who)) else {
        return Ok(None);
    };
    let seen = expires.map(|at| at.saturating_sub(idle).max(bound.rotated_ms));
    let ms = |at: u64| i64::try_from(at).unwrap_or(i64::MAX);
    Ok(Some(UserSession {
        id: bound.device_id(),
        label: bound.label,
        created_ms,
        last_seen_ms: seen.map(|at| ms(at).max(created_ms)),
        expires_ms: expires.map(ms),
    }))
}

/// Which of a user's sessions a revoke ends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Scope {
    /// The session of this device id.
    One([u8; 8]),
    /// Every session.
    All,
    /// Every session but this device id's.
    AllBut([u8; 8]),
}

/// Ends the user's sessions in `scope`: how many there were. With `not_before` (ms on the
/// server's clock), nothing before then, and `None` is the answer.
pub(crate) async fn revoke(
    core: &Core,
    user: &str,
    scope: Scope,
    not_before: Option<u64>,
) -> Result<Option<usize>> {
    let index = bound::index_key(&core.config, user);
    for _ in 0..ATTEMPTS {
        let entries = read_index(core, &index).await?;
        let chosen: Vec<&(Vec<u8>, String)> = entries
            .iter()
            .filter(|(device, _)| match scope {
                Scope::One(one) => device[..] == one[..],
                Scope::All => true,
                Scope::AllBut(keep) => device[..] != keep[..],
            })
            .collect();
        // Nothing to end, unless the window's end must be checked on the server's clock.
        if chosen.is_empty() && !matches!(scope, Scope::All) && not_before.is_none() {
            return Ok(Some(0));
        }
        let mut keys = vec![index.as_str()];
        keys.extend(chosen.iter().map(|(_, key)| key.as_str()));
        let mut call = SCRIPTS.revoke.call(&keys);
        let (mode, keep) = match scope {
            Scope::One(_) => ("some", &b""[..]),
            Scope::All => ("all", &b""[..]),
            Scope::AllBut(ref keep) => ("all", &keep[..]),
        };
        call.arg(mode).arg(not_before.unwrap_or(0)).arg(keep);
        for (device, _) in &chosen {
            call.arg(&device[..]);
        }
        match core.run::<i64>(&call).await? {
            -2 => continue,
            -3 => return Ok(None),
            ended if ended >= 0 => {
                debug!(ended, "revoked");
                return Ok(Some(ended as usize));
            }
            _ => return Err(unexpected("revoke")),
        }
    }
    Err(Error::Conflict)
}

/// Deletes a session, and its index entry when it is bound; true when it existed. Under a
/// retired token's stub (a rotation since the caller read the session, or a logout with an old
/// cookie), the session the stub leads to is revoked instead ([`end_retired`]).
pub(crate) async fn destroy(core: &Core, key: &str, bound: Option<&Bound>) -> Result<bool> {
    let call = match bound {
        Some(bound) => {
            let index = bound::index_key(&core.config, &bound.user);
            let mut call = SCRIPTS.destroy.call(&[key, &index]);
            call.arg(&bound.device[..]);
            call
        }
        None => SCRIPTS.destroy.call(&[key]),
    };
    match core.run::<Value>(&call).await? {
        Value::Int(deleted) => Ok(deleted == 1),
        Value::Array(reply) => match <[Value; 2]>::try_from(reply) {
            Ok([Value::Int(-3), Value::BulkString(stub)]) => {
                let stub = Retired::parse(&stub).ok_or_else(|| unexpected("destroy"))?;
                Ok(end_retired(core, key, stub).await? > 0)
            }
            _ => Err(unexpected("destroy")),
        },
        _ => Err(unexpected("destroy")),
    }
}

/// Deletes the session under `key`, not loaded: its binding is read first (`HGET @u`), so that
/// a bound session's index entry goes with it.
pub(crate) async fn destroy_unloaded(core: &Core, key: &str) -> Result<bool> {
    let bound = match core.read_one(redis::cmd("HGET").arg(key).arg("@u")).await? {
        Value::BulkString(value) => match Field::parse(value) {
            Ok(Field::Bound(stored)) => {
                seal::open_meta(core.binding(key).as_ref(), BOUND, &stored.who)
                    .and_then(|who| Bound::from_stored(&stored, &who))
            }
            _ => None,
        },
        _ => None,
    };
    destroy(core, key, bound.as_ref()).await
}

/// A logout under a retired token's stub (a rotation since the session was read, or an old
/// cookie): the session it leads to is revoked, then the stub deleted; how many were revoked.
/// After the grace window this is a reuse, reported as a load reports it.
pub(crate) async fn end_retired(core: &Core, key: &str, retired: Retired) -> Result<usize> {
    let revoked = match stub_user(core, key, &retired) {
        Some(user) => revoke(core, &user, Scope::One(retired.device), None).await?,
        None => None,
    };
    let revoked = revoked.unwrap_or(0);
    if core.clock.now_ms().is_some_and(|now| now >= retired.grace_until_ms) {
        warn!(
            revoked,
            "a retired session token was used to log out after its grace window: likely stolen"
        );
    }
    unlink(core, key).await?;
    Ok(revoked)
}

/// The user id a stub holds, opened (it is sealed under encryption).
pub(crate) fn stub_user(core: &Core, key: &str, retired: &Retired) -> Option<String> {
    let who = seal::open_meta(core.binding(key).as_ref(), RETIRED, &retired.who)?;
    String::from_utf8(who).ok()
}

/// Deletes a stub; idempotent, so a retry after a broken connection does no harm.
pub(crate) async fn unlink(core: &Core, key: &str) -> Result<()> {
    let mut unlink = redis::cmd("UNLINK");
    unlink.arg(key);
    core.settle(core.pool.get().await?.query::<i64>(&unlink).await).map(drop)
}

/// The grace window of rotations: the configured one, or the default's.
pub(crate) fn grace(core: &Core) -> Duration {
    core.config.rotation.unwrap_or_default().grace
}

fn unexpected(script: &str) -> Error {
    Error::Corrupt(format!("{script} answered an unexpected reply"))
}
