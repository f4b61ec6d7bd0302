//! Turning load replies into a session, strictly: the plain read's (`HVALS` or `HMGET`, and
//! `PTTL`) and the get-and-touch script's.
//!
//! The reply comes from Redis and the hash it read may hold anything (a foreign writer under our
//! prefix, a half-restored backup), so nothing here indexes, unwraps or trusts a shape: every
//! surprise becomes [`Error::Corrupt`]. Each value says which field it is (fields.rs).

use std::collections::BTreeMap;

use redis::Value;

use crate::error::{Error, Result};
use crate::fields::Field;
use crate::packed::Packed;
use crate::session::Metadata;

/// The field a partial load reads besides the attributes it asks for: the packed record, whose
/// header holds the creation time, the deadline and the record's id.
pub(crate) const METADATA: [&str; 1] = ["@p"];

/// Turns the replies to `HMGET key @p names...` and `PTTL` into the shape of `HVALS`'s (the
/// values of the fields that exist), so one parser serves both.
pub(crate) fn hmget_as_hvals(replies: Vec<Value>, names: &[&str]) -> Result<Vec<Value>> {
    let [Value::Array(values), pttl] =
        <[Value; 2]>::try_from(replies).or_else(|_| corrupt("reply is not {values, pttl}"))?
    else {
        return corrupt("HMGET did not answer an array");
    };
    if values.len() != METADATA.len() + hmget_names(names).count() {
        return corrupt("HMGET answered the wrong number of values");
    }
    let values = values.into_iter().filter(|value| *value != Value::Nil).collect();
    Ok(vec![Value::Array(values), pttl])
}

/// The names a partial load reads besides the metadata: a metadata name among them (`load_only`
/// of `@p`) would read the record twice.
pub(crate) fn hmget_names<'a>(names: &'a [&'a str]) -> impl Iterator<Item = &'a str> {
    names.iter().copied().filter(|name| !METADATA.contains(name))
}

/// A session as a load read it: metadata, packed record, loose fields and flash.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) meta: Metadata,
    pub(crate) packed: Packed,
    /// Loose fields (see packed.rs); `None` for a tombstone (a stamp alone), a removed attribute.
    pub(crate) loose: BTreeMap<String, Option<Vec<u8>>>,
    pub(crate) flash: Vec<u8>,
}

/// What a plain read (`HVALS` + `PTTL`, no script) found.
#[derive(Debug)]
pub(crate) enum Snapshot {
    /// No session under the key.
    Missing,
    /// A session that needs nothing written: serve it as it is.
    Fresh(Loaded),
    /// A session that needs the get-and-touch script: its expiry is due to slide, or it has
    /// no TTL. The read's values and TTL stay for a popping load, which may have to serve the
    /// session as read (see flash_pop.rs).
    NeedsScript { values: Vec<Value>, pttl: i64 },
}

/// When a read must slide the expiry: the same rule as get_and_touch.lua.
pub(crate) fn touch_due(pttl: i64, idle_ms: u64, touch_after_ms: u64) -> bool {
    pttl < 0 || (idle_ms as i64).saturating_sub(pttl) >= touch_after_ms as i64
}

/// Parses the replies to `HVALS key` and `PTTL key`, and decides whether the script must run.
pub(crate) fn snapshot(replies: Vec<Value>, idle_ms: u64, touch_after_ms: u64) -> Result<Snapshot> {
    let [Value::Array(values), Value::Int(pttl)] =
        <[Value; 2]>::try_from(replies).or_else(|_| corrupt("reply is not {values, pttl}"))?
    else {
        return corrupt("reply is not {values, pttl}");
    };
    if values.is_empty() || pttl == -2 {
        return Ok(Snapshot::Missing);
    }
    if touch_due(pttl, idle_ms, touch_after_ms) {
        return Ok(Snapshot::NeedsScript { values, pttl });
    }
    Loaded::from_values(pttl, values).map(Snapshot::Fresh)
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
    Loaded::from_values(ttl_ms, values).map(Some)
}

impl Loaded {
    /// Sorts the values of a session's hash into metadata, attributes and flash.
    pub(crate) fn from_values(ttl_ms: i64, values: Vec<Value>) -> Result<Self> {
        let (packed, loose) = (Packed::default(), BTreeMap::new());
        let (meta, flash) = (empty_meta(ttl_ms), Vec::new());
        let mut loaded = Loaded { meta, packed, loose, flash };
        for value in values {
            loaded.add(Field::parse(bulk(value)?)?)?;
        }
        let Some((created_ms, deadline_ms)) = loaded.packed.times() else {
            return corrupt("session hash has no packed record");
        };
        (loaded.meta.created_ms, loaded.meta.deadline_ms) = (created_ms, deadline_ms);
        Ok(loaded)
    }

    fn add(&mut self, field: Field) -> Result<()> {
        match field {
            Field::Flash(messages) => self.flash = messages,
            Field::Record(_) if self.packed.times().is_some() => {
                return corrupt("session hash has two packed records");
            }
            Field::Record(bytes) => self.packed = Packed::parse(bytes)?,
            Field::Loose(name, value) => _ = self.loose.insert(name, value),
            Field::Unknown => {}
        }
        Ok(())
    }
}

fn empty_meta(ttl_ms: i64) -> Metadata {
    Metadata { created_ms: 0, deadline_ms: 0, ttl_ms }
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
    use crate::fields::{stamped, FLASH_TAG};

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
        let newer = bulk(b"\xc1zz".to_vec());
        let values = hash(&[flash(b"x"), bulk(stamped("cart", b"y")), newer]);
        let reply = Value::Array(vec![Value::Int(99), values]);
        let loaded = loaded(reply).expect("valid").expect("present");
        assert_eq!(loaded.meta, Metadata { created_ms: 1, deadline_ms: 2, ttl_ms: 99 });
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
            snapshot(vec![secret.clone(), Value::Int(5)], 1000, 100).map(|_| ()),
            snapshot(vec![hash(std::slice::from_ref(&secret)), Value::Int(950)], 1000, 100)
                .map(|_| ()),
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

    #[test]
    fn a_snapshot_goes_to_the_script_only_when_something_must_be_written() {
        let session = hash(&[bulk(stamped("a", b"b"))]);
        let with_flash = hash(&[flash(b"x")]);
        let read = |values: &Value, pttl: i64| {
            snapshot(vec![values.clone(), Value::Int(pttl)], 1000, 100).expect("valid")
        };
        assert!(matches!(read(&session, 950), Snapshot::Fresh(_)));
        assert!(matches!(read(&session, 900), Snapshot::NeedsScript { .. }), "touch due");
        assert!(matches!(read(&session, -1), Snapshot::NeedsScript { .. }), "no TTL");
        assert!(matches!(read(&session, -2), Snapshot::Missing), "gone meanwhile");
        assert!(matches!(read(&Value::Array(vec![]), -2), Snapshot::Missing));
        let Snapshot::Fresh(loaded) = read(&with_flash, 950) else { panic!("fresh") };
        assert_eq!(loaded.flash, b"x", "the flash messages read");
        let Snapshot::NeedsScript { values, pttl } = read(&with_flash, 900) else { panic!() };
        let kept = Loaded::from_values(pttl, values).expect("valid");
        assert_eq!((kept.flash, pttl), (b"x".to_vec(), 900), "kept for a popping load");
        let foreign = Value::Array(vec![bulk(b"some".to_vec()), bulk(b"hash".to_vec())]);
        let err = snapshot(vec![foreign, Value::Int(950)], 1000, 100).expect_err("corrupt");
        assert!(matches!(err, Error::Corrupt(_)));
    }
}
