//! What a request writes: delta saves (plain or checked), the compaction that folds a session
//! into a new packed record, and flash pushes. The save scripts report what they did, and the
//! session takes it in (session/changes.rs).

use crate::connection::scripts::{Call, SCRIPTS};
use crate::error::{Error, Result};
use crate::format::fields;
use crate::session::Session;
use crate::store::core::Core;

/// Writes the changes of `session` since it was read: folded into a new packed record when a
/// compaction is due and Redis still holds what the session read, else as a delta; when
/// `checked`, only if Redis still holds what it read.
pub(crate) async fn save(core: &Core, session: &mut Session, checked: bool) -> Result<()> {
    if !session.is_changed() {
        return Ok(());
    }
    if let Some(record) = session.compaction() {
        match compact(core, session, &record).await? {
            true => {
                session.compacted(record);
                return Ok(());
            }
            false if checked => return Err(Error::Conflict),
            // Another request saved since: its change stays, and this one goes as a delta.
            false => session.compaction_refused(),
        }
    }
    // A checked save also sends its view and the record's id (lua/save_checked.lua's ARGV).
    let (script, view) = match checked {
        true => (&SCRIPTS.save_checked, Some(session.view())),
        false => (&SCRIPTS.save, None),
    };
    let mut call = script.call(&[&session.key]);
    if view.is_some() {
        call.arg(if session.is_whole() { "all" } else { "read" });
    }
    timeouts_and_deadline(core, &mut call, session);
    call.arg(core.config.limits.max_attributes).arg(core.config.limits.max_session_bytes);
    let (set, deleted) = session.delta();
    if let Some(view) = &view {
        call.arg(record_id_arg(session)).arg(set.len()).arg(view.len());
    } else {
        call.arg(set.len());
    }
    for (name, value) in set {
        call.arg(name).arg(fields::stamped(name, value));
    }
    for (name, value) in view.into_iter().flatten() {
        call.arg(name).arg(value);
    }
    call.arg(deleted);
    let (code, number, tombstoned) = core.run::<(i64, i64, Vec<String>)>(&call).await?;
    match code {
        1 => {
            // -1: the save did not read the record (see lua/save.lua).
            session.saved_delta(u32::try_from(number).ok(), &tombstoned);
            Ok(())
        }
        0 => Err(Error::SessionGone),
        -1 => Err(Error::Conflict),
        -2 => Err(over_limit("attributes", number, core.config.limits.max_attributes)),
        -3 => Err(over_limit("session", number, core.config.limits.max_session_bytes)),
        code => Err(Error::Corrupt(format!("unexpected save reply {code}"))),
    }
}

/// Folds `session` into `record` if Redis still holds what it read: true when it did.
async fn compact(core: &Core, session: &Session, record: &[u8]) -> Result<bool> {
    let mut call = SCRIPTS.compact.call(&[&session.key]);
    timeouts_and_deadline(core, &mut call, session);
    call.arg(record).arg(record_id_arg(session));
    for (name, value) in session.view() {
        call.arg(name).arg(value);
    }
    match core.run::<(i64, i64, Vec<String>)>(&call).await? {
        (2, _, _) => Ok(true),
        (-1, _, _) => Ok(false),
        (0, _, _) => Err(Error::SessionGone),
        (code, _, _) => Err(Error::Corrupt(format!("unexpected compaction reply {code}"))),
    }
}

/// The idle timeout and touch threshold `session` slides by, then the deadline it read:
/// a session with timeouts of its own slides by those its hash holds (timeouts.rs).
fn timeouts_and_deadline(core: &Core, call: &mut Call, session: &Session) {
    match (session.meta.idle_timeout_ms, session.meta.touch_after_ms) {
        (Some(idle), Some(touch_after)) => call.arg(idle).arg(touch_after),
        _ => call.arg(core.config.idle_ms()).arg(core.config.touch_after_ms()),
    };
    call.arg(session.meta.deadline_ms);
}

/// Queues a message already encoded with MessagePack.
pub(crate) async fn push_flash(core: &Core, session: &Session, bytes: Vec<u8>) -> Result<()> {
    let max = core.config.limits.max_value_bytes;
    core.config.limits.check_value(bytes.len())?;
    let mut call = SCRIPTS.flash_push.call(&[&session.key]);
    call.arg(bytes).arg(max).arg(session.meta.deadline_ms);
    match core.run::<i64>(&call).await? {
        0 => Err(Error::SessionGone),
        over @ ..0 => {
            let size = usize::try_from(over.unsigned_abs()).unwrap_or(usize::MAX);
            Err(Error::TooLarge { limit: "flash", size, max })
        }
        _ => Ok(()),
    }
}

/// The id of the record `session` read, for a script to compare with the stored one; `''`
/// (never a record's id, so the script refuses the view) once a save found it out of date.
fn record_id_arg(session: &Session) -> String {
    session.view_record_id().map_or(String::new(), |id| id.to_string())
}

/// What a save reports when the script found it would take the session over a limit: the
/// session as stored, which other requests may have grown since this one read it.
fn over_limit(limit: &'static str, size: i64, max: usize) -> Error {
    Error::TooLarge { limit, size: usize::try_from(size).unwrap_or(0), max }
}
