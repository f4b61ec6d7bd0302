//! Turning load replies into a session, strictly: the plain read's (`HVALS`, and `TIME` once a
//! second) and the get-and-touch script's.
//!
//! The reply comes from Redis and the hash it read may hold anything (a foreign writer under our
//! prefix, a half-restored backup), so nothing here indexes, unwraps or trusts a shape: every
//! surprise becomes [`Error::Corrupt`]. Each value says which field it is (fields.rs).

use std::collections::BTreeMap;

use redis::Value;

use crate::error::{Error, Result};
use crate::format::bound::{Retired, StoredBound};
use crate::format::fields::Field;
use crate::format::packed::Packed;
use crate::session::Metadata;

/// Splits a plain read's replies into the values it read and, when it carried `TIME`
/// (`timed`), the server's answer.
pub(crate) fn read_replies(replies: Vec<Value>, timed: bool) -> Result<(Value, Option<Value>)> {
    let mut replies = replies.into_iter();
    match (replies.next(), replies.next(), replies.next()) {
        (Some(values), time, None) if time.is_some() == timed => Ok((values, time)),
        _ => corrupt("the read's replies are not {values, TIME}"),
    }
}

/// A session as a load read it: metadata, packed record, loose fields and flash.
#[derive(Clone, Debug)]
pub(crate) struct Loaded {
    pub(crate) meta: Metadata,
    pub(crate) packed: Packed,
    /// Loose fields (see packed.rs); `None` for a tombstone (a stamp alone), a removed attribute.
    pub(crate) loose: BTreeMap<String, Option<Vec<u8>>>,
    pub(crate) flash: Vec<u8>,
    /// When the key expires, as the hash records it (`@t`): ms on the server's clock.
    pub(crate) expires_ms: Option<u64>,
    /// The session's binding to a user (`@u`).
    pub(crate) bound: Option<StoredBound>,
    /// Under a retired token, the stub that leads on (`@r`), and nothing else.
    pub(crate) retired: Option<Retired>,
}

/// What a plain read (`HVALS`, no script) found.
#[derive(Debug)]
pub(crate) enum Snapshot {
    /// No session under the key.
    Missing,
    /// A session that needs nothing written: serve it as it is.
    Fresh(Loaded),
    /// A session that needs the get-and-touch script: its expiry is due to slide, or the hash
    /// records none (or the clock has no estimate yet). The session as read stays for a
    /// popping load, which may have to serve it (see flash_pop.rs).
    NeedsScript(Loaded),
}

/// What a plain read judges a session's expiry by: the server's time as estimated here
/// (server_clock.rs), and the configured idle timeout and touch threshold (a session with
/// timeouts of its own is judged by those its hash holds).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TouchRule {
    pub(crate) now_ms: Option<u64>,
    pub(crate) idle_ms: u64,
    pub(crate) touch_after_ms: u64,
}

impl TouchRule {
    /// The TTL of `loaded` now when it needs nothing written (no touch due, not expired);
    /// `None` when it must go to the script.
    pub(crate) fn fresh_ttl(&self, loaded: &Loaded) -> Option<i64> {
        let ttl_ms = self.ttl_ms(loaded);
        (!self.due(loaded, ttl_ms)).then_some(ttl_ms)
    }

    /// The TTL of a session read now, as `PTTL` would answer: -1 when the hash records no
    /// expiry or the clock has no estimate, and 0 once expired (by the estimate, which is never
    /// behind the server's clock: the script decides).
    fn ttl_ms(&self, loaded: &Loaded) -> i64 {
        let Some((now, expires)) = self.now_ms.zip(loaded.expires_ms) else { return -1 };
        let expires = expires.min(loaded.meta.deadline_ms.max(0) as u64);
        i64::try_from(expires.saturating_sub(now)).unwrap_or(i64::MAX)
    }

    /// Whether `loaded`, with `ttl_ms` left, must go to the script: the same rule as
    /// get_and_touch.lua, but that an expiry already at the deadline has nothing left to slide,
    /// and goes to the script only once it is past (to be found dead there).
    fn due(&self, loaded: &Loaded, ttl_ms: i64) -> bool {
        let deadline = loaded.meta.deadline_ms.max(0) as u64;
        if ttl_ms >= 0 && loaded.expires_ms.is_some_and(|expires| expires >= deadline) {
            return ttl_ms == 0;
        }
        let (idle, touch_after) = match (loaded.meta.idle_timeout_ms, loaded.meta.touch_after_ms) {
            (Some(idle), Some(touch_after)) => (idle.max(0) as u64, touch_after),
            _ => (self.idle_ms, self.touch_after_ms),
        };
        crate::store::expiry_rule::touch_due(ttl_ms, idle, touch_after)
    }
}

/// Parses the values of a plain read (`HVALS key`), and decides whether the script must run.
pub(crate) fn snapshot(values: Value, rule: TouchRule) -> Result<Snapshot> {
    let Value::Array(values) = values else {
        return corrupt(format!("HVALS answered {}", shape(&values)));
    };
    if values.is_empty() {
        return Ok(Snapshot::Missing);
    }
    let mut loaded = Loaded::from_values(values)?;
    if loaded.retired.is_some() {
        return Ok(Snapshot::Fresh(loaded)); // a stub: nothing to touch
    }
    loaded.meta.ttl_ms = rule.ttl_ms(&loaded);
    Ok(match rule.due(&loaded, loaded.meta.ttl_ms) {
        true => Snapshot::NeedsScript(loaded),
        false => Snapshot::Fresh(loaded),
    })
}

/// Parses a plain read's values, judging nothing: `None` when the hash is empty.
pub(crate) fn loaded_values(values: Value) -> Result<Option<Loaded>> {
    let Value::Array(values) = values else {
        return corrupt(format!("HVALS answered {}", shape(&values)));
    };
    match values.is_empty() {
        true => Ok(None),
        false => Loaded::from_values(values).map(Some),
    }
}

/// Parses the script's reply: `false` (no session) or `{pttl, {value, ...}}`.
pub(crate) fn loaded(reply: Value) -> Result<Option<Loaded>> {
    let items = match reply {
        Value::Nil => return Ok(None),
        Value::Array(items) => items,
        other => return corrupt(format!("unexpected reply: {}", shape(&other))),
    };
    let [Value::Int(ttl_ms), Value::Array(values)] =
        <[Value; 2]>::try_from(items).or_else(|_| corrupt("reply is not {pttl, values}"))?
    else {
        return corrupt("reply is not {pttl, values}");
    };
    let mut loaded = Loaded::from_values(values)?;
    loaded.meta.ttl_ms = ttl_ms;
    Ok(Some(loaded))
}

impl Loaded {
    /// Sorts the values of a session's hash into metadata, attributes and flash.
    /// Its TTL is left at -1 for the caller to set.
    pub(crate) fn from_values(values: Vec<Value>) -> Result<Self> {
        let mut loaded = Loaded::empty();
        for value in values {
            loaded.add(Field::parse(bulk(value)?)?)?;
        }
        if loaded.retired.is_some() {
            return Ok(loaded);
        }
        let Some((created_ms, deadline_ms)) = loaded.packed.times() else {
            return corrupt("session hash has no packed record");
        };
        (loaded.meta.created_ms, loaded.meta.deadline_ms) = (created_ms, deadline_ms);
        Ok(loaded)
    }

    /// No record, no fields.
    pub(crate) fn empty() -> Self {
        let (packed, loose) = (Packed::default(), BTreeMap::new());
        let (bound, retired) = (None, None);
        Loaded {
            meta: empty_meta(),
            packed,
            loose,
            flash: Vec::new(),
            expires_ms: None,
            bound,
            retired,
        }
    }

    fn add(&mut self, field: Field) -> Result<()> {
        match field {
            Field::Flash(messages) => self.flash = messages,
            Field::Expiry(ms) => self.expires_ms = Some(ms),
            Field::OwnTimeouts { idle, touch_after } => {
                self.meta.idle_timeout_ms = Some(i64::try_from(idle).unwrap_or(i64::MAX));
                self.meta.touch_after_ms = Some(touch_after);
            }
            Field::Record(_) if self.packed.times().is_some() => {
                return corrupt("session hash has two packed records");
            }
            Field::Record(bytes) => self.packed = Packed::parse(bytes)?,
            Field::Loose(name, value) => _ = self.loose.insert(name, value),
            Field::Bound(bound) => self.bound = Some(bound),
            Field::Retired(retired) => self.retired = Some(retired),
            Field::Unknown => {}
        }
        Ok(())
    }
}

fn empty_meta() -> Metadata {
    Metadata {
        created_ms: 0,
        deadline_ms: 0,
        ttl_ms: -1,
        idle_timeout_ms: None,
        touch_after_ms: None,
    }
}

fn bulk(value: Value) -> Result<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Ok(bytes),
        other => corrupt(format!("unexpected field: {}", shape(&other))),
    }
}

/// What kind of value a reply is, for an error: never the value itself, which may be session
/// data (a CSRF token, say) that has no place in error text or logs.
fn shape(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) => "a string",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        _ => "another type",
    }
}

fn corrupt<T>(why: impl Into<String>) -> Result<T> {
    Err(Error::Corrupt(why.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::fields::{stamped, EXPIRY_TAG, FLASH_TAG};

    fn bulk(bytes: Vec<u8>) -> Value {
        Value::BulkString(bytes)
    }

    /// A packed record created at 1 with its deadline at 2, holding one attribute.
    fn record() -> Value {
        bulk(Packed::encode((1, 2), 3, [("a", &b"\x01"[..])].into_iter()))
    }

    fn flash(messages: &[u8]) -> Value {
        bulk([FLASH_TAG, messages].concat())
    }

    fn hash(values: &[Value]) -> Value {
        Value::Array(values.iter().cloned().chain([record()]).collect())
    }

    #[test]
    fn parses_metadata_values_and_flash() {
        let newer = bulk(vec![crate::format::META, b'z', b'z']);
        let values = hash(&[flash(b"x"), bulk(stamped("cart", b"y")), newer]);
        let reply = Value::Array(vec![Value::Int(99), values]);
        let loaded = loaded(reply).expect("valid").expect("present");
        let meta = Metadata { created_ms: 1, deadline_ms: 2, ttl_ms: 99, ..empty_meta() };
        assert_eq!(loaded.meta, meta);
        assert_eq!(loaded.packed.record_id(), 3);
        assert_eq!(loaded.flash, b"x");
        assert_eq!(
            loaded.loose.into_iter().collect::<Vec<_>>(),
            [("cart".into(), Some(b"y".to_vec()))]
        );
    }

    #[test]
    fn odd_shapes_are_corrupt_not_panics() {
        let short = bulk(vec![0, 1]);
        for reply in [
            Value::Int(1),
            Value::Array(vec![]),
            Value::Array(vec![Value::Int(1), Value::Int(2)]),
            Value::Array(vec![Value::Int(1), Value::Array(vec![short])]),
            Value::Array(vec![Value::Int(1), Value::Array(vec![bulk(stamped("a", b"b"))])]),
            Value::Array(vec![Value::Int(1), Value::Array(vec![flash(b"x")])]),
            Value::Array(vec![Value::Int(1), hash(&[record()])]),
            Value::Array(vec![Value::Int(1), hash(&[Value::Int(5)])]),
        ] {
            assert!(matches!(loaded(reply), Err(Error::Corrupt(_))));
        }
        assert!(loaded(Value::Nil).expect("nil is fine").is_none());
    }

    #[test]
    fn errors_name_the_shape_of_a_reply_never_its_data() {
        let secret = bulk(b"csrf-SECRET-value".to_vec());
        let errors = [
            snapshot(secret.clone(), rule()).map(|_| ()),
            snapshot(hash(std::slice::from_ref(&secret)), rule()).map(|_| ()),
            read_replies(vec![secret.clone(); 3], true).map(|_| ()),
            loaded(secret.clone()).map(|_| ()),
            loaded(Value::Array(vec![
                Value::Int(1),
                Value::Array(vec![Value::Array(vec![secret])]),
            ]))
            .map(|_| ()),
        ];
        for error in errors {
            let error = error.expect_err("corrupt");
            let text = format!("{error} {error:?}");
            assert!(!text.contains("SECRET"), "{text}");
        }
    }

    /// The touch rule at the server's time 1,000 (estimated), idle timeout 1,000, threshold 100.
    fn rule() -> TouchRule {
        TouchRule { now_ms: Some(1_000), idle_ms: 1_000, touch_after_ms: 100 }
    }

    fn expiry(at: u64) -> Value {
        bulk([EXPIRY_TAG, &at.to_be_bytes()].concat())
    }

    /// A packed record created at 1 with its deadline far off.
    fn long_lived() -> Value {
        bulk(Packed::encode((1, 1_000_000), 3, std::iter::empty()))
    }

    #[test]
    fn a_snapshot_goes_to_the_script_only_when_something_must_be_written() {
        let read = |values: &[Value], rule: TouchRule| {
            snapshot(Value::Array(values.to_vec()), rule).expect("valid")
        };
        let session = |at: u64| [long_lived(), bulk(stamped("a", b"b")), expiry(at)];
        let Snapshot::Fresh(fresh) = read(&session(1_950), rule()) else { panic!("fresh") };
        assert_eq!(fresh.meta.ttl_ms, 950, "the TTL as PTTL would answer it");
        assert!(matches!(read(&session(1_900), rule()), Snapshot::NeedsScript(_)), "due");
        assert!(matches!(read(&session(900), rule()), Snapshot::NeedsScript(_)), "expired");
        let no_expiry = [long_lived()];
        assert!(matches!(read(&no_expiry, rule()), Snapshot::NeedsScript(_)), "none recorded");
        let unsynced = TouchRule { now_ms: None, ..rule() };
        assert!(matches!(read(&session(1_950), unsynced), Snapshot::NeedsScript(_)), "no clock");
        assert!(matches!(read(&[], rule()), Snapshot::Missing));
        let capped = [record(), expiry(1_950)]; // its deadline, 2, is long past
        assert!(matches!(read(&capped, rule()), Snapshot::NeedsScript(_)), "deadline first");
        let with_flash = [long_lived(), flash(b"x"), expiry(1_900)];
        let Snapshot::NeedsScript(kept) = read(&with_flash, rule()) else { panic!("due") };
        assert_eq!((kept.flash, kept.meta.ttl_ms), (b"x".to_vec(), 900), "kept for a pop");
        let foreign = Value::Array(vec![bulk(b"some".to_vec()), bulk(b"hash".to_vec())]);
        let err = snapshot(foreign, rule()).expect_err("corrupt");
        assert!(matches!(err, Error::Corrupt(_)));
    }

    #[test]
    fn a_read_replies_with_its_values_and_time_only_when_it_asked() {
        let (values, time) = (Value::Array(vec![]), Value::Array(vec![]));
        assert!(matches!(read_replies(vec![values.clone()], false), Ok((_, None))));
        let timed = read_replies(vec![values.clone(), time.clone()], true);
        assert!(matches!(timed, Ok((_, Some(_)))));
        for (replies, timed) in [(vec![values.clone(), time], false), (vec![values], true)] {
            assert!(matches!(read_replies(replies, timed), Err(Error::Corrupt(_))));
        }
    }
}
