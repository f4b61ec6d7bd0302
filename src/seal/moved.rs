//! A session's hash sealed anew for the key a regenerate moves it to.
//!
//! Values are sealed for their session's key (binding.rs), and the regenerate script moves the
//! hash with `RENAMENX`, which cannot re-seal: so the client reads the hash (`HGETALL`), seals
//! every value anew for the new key here, and the script writes them only if the hash is still
//! as read (regenerate.lua).

use std::collections::BTreeMap;

use crate::error::Result;
use crate::format::fields::{stamped, Field, FLASH_TAG};
use crate::format::packed::{fresh_id, Packed};
use crate::format::BOUND;
use crate::seal::binding::Binding;
use crate::seal::{moved_flash, moved_meta, moved_value};

/// What the regenerate script compares and writes, and what the session holds after it.
#[derive(Debug)]
pub(crate) struct Moved {
    /// Per field: its name, its value as read, its value sealed for the new key.
    pub(crate) fields: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    /// The record and the loose fields as read: what the session compares with what it read.
    pub(crate) read: (u32, BTreeMap<String, Option<Vec<u8>>>),
    /// The record and the loose fields as moved.
    pub(crate) packed: Packed,
    pub(crate) loose: BTreeMap<String, Option<Vec<u8>>>,
    /// The session's pending changes, sealed for the new key.
    pub(crate) pending: BTreeMap<String, Option<Vec<u8>>>,
}

/// The hash `fields` (name, value pairs, as `HGETALL` read them), sealed for `to` instead of
/// `from`, with the session's `pending` changes. The packed record gets a new id, so a view of
/// the old one is refused.
///
/// # Errors
///
/// [`Error::Corrupt`](crate::Error::Corrupt) for a hash that is not a session's, as a load;
/// [`Error::Unseal`](crate::Error::Unseal) when a value cannot be sealed (the random source
/// failed).
pub(crate) fn moved(
    from: &Binding,
    to: &Binding,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    pending: &BTreeMap<String, Option<Vec<u8>>>,
) -> Result<Moved> {
    let mut out = Moved {
        fields: Vec::with_capacity(fields.len()),
        read: (0, BTreeMap::new()),
        packed: Packed::default(),
        loose: BTreeMap::new(),
        pending: BTreeMap::new(),
    };
    for (name, value) in pending {
        let value = value.as_deref().map(|value| moved_value(from, to, name, value));
        out.pending.insert(name.clone(), value.transpose()?);
    }
    for (name, value) in fields {
        let new = match Field::parse(value.clone())? {
            Field::Record(bytes) => {
                let packed = Packed::parse(bytes)?;
                let times = packed.times().unwrap_or_default();
                let mut values = Vec::with_capacity(usize::from(packed.count()));
                for (name, value) in packed.iter() {
                    values.push((name, moved_value(from, to, name, value)?));
                }
                let entries = values.iter().map(|(name, value)| (*name, &value[..]));
                let record = Packed::encode(times, fresh_id(packed.record_id()), entries);
                out.read.0 = packed.record_id();
                out.packed = Packed::encoded(record.clone());
                record
            }
            Field::Loose(attribute, Some(stored)) => {
                let moved = moved_value(from, to, &attribute, &stored)?;
                out.read.1.insert(attribute.clone(), Some(stored));
                out.loose.insert(attribute.clone(), Some(moved.clone()));
                stamped(&attribute, &moved)
            }
            Field::Loose(attribute, None) => {
                out.read.1.insert(attribute.clone(), None);
                out.loose.insert(attribute, None);
                value.clone()
            }
            Field::Flash(run) => [FLASH_TAG, &moved_flash(from, to, &run)?].concat(),
            Field::Bound(bound) => bound.with_who(&moved_meta(from, to, BOUND, &bound.who)?),
            _ => value.clone(),
        };
        out.fields.push((name, value, new));
    }
    Ok(out)
}
