//! The packed record: a session's attributes as of its last compaction, in one hash field.
//!
//! Why one field: every field of a hash costs Redis reply entries (two on `HGETALL`, one on
//! `HVALS`) and costs the client as many parsed values and allocations, so a session of ten
//! attributes read as ten fields cost about three times what one blob costs. Why not only one
//! field: a blob rewritten whole on every save loses concurrent updates and writes the whole
//! session to the AOF. So a session is this packed record (field `@p`) plus *loose* fields, one per
//! attribute changed since the record was packed; a loose field wins over the record, and one that
//! holds only its name (fields.rs) is a removed attribute. Saves write loose fields (a delta); a
//! save that would leave more than [`LOOSE_MAX`] of them, or must remove a packed attribute, folds
//! them into a new record instead, and only if Redis still holds the record and the loose fields it
//! loaded (compact.lua).
//!
//! The record's header also carries the session's creation time and absolute deadline, which
//! never change under one key (new timeouts go with a new token, regenerate.lua), and the
//! record's id, which only a compaction changes: as fields of
//! their own they cost every load three more reply values (parsed and allocated one by one by
//! the client, written one by one by Redis).
//!
//! Format (big-endian), chosen so the scripts can read it with `string.byte` (lua/record.lua):
//! `created: u64` (its first byte is 0 before the year 2,280,000, which tells a load that this
//! value is the record: fields.rs) and `deadline: u64` (ms since the epoch, server clock),
//! `count: u16`, `id: u32` (0 for a new session, then random per compaction), then per
//! attribute `name length: u16, name, value length: u32, value`.

use crate::error::{Error, Result};
use crate::format;

/// Most loose fields a save leaves before it packs them into the record.
pub(crate) const LOOSE_MAX: usize = 4;

/// Longest attribute name the record can hold.
pub(crate) const MAX_NAME_BYTES: usize = u16::MAX as usize;

/// Bytes before the first attribute: created, deadline, count, id.
const HEADER: usize = format::HEADER_LEN;
/// Where the count and the id sit in the header.
const COUNT_AT: usize = format::COUNT_AT;
const RECORD_ID_AT: usize = format::ID_AT;

/// A validated packed record; cheap to hold, read in place. The default is empty: no header,
/// no attributes (a session created here, not yet read back).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Packed(Vec<u8>);

impl Packed {
    /// Validates bytes read from Redis: a whole header, every length in bounds, every name
    /// UTF-8, and exactly as many attributes as the header says.
    pub(crate) fn parse(bytes: Vec<u8>) -> Result<Packed> {
        if bytes.len() < HEADER {
            return corrupt("packed record has no header");
        }
        let mut count = 0;
        let mut reader = Reader { bytes: &bytes, at: HEADER };
        while reader.at < bytes.len() {
            let Some((name, _)) = reader.entry() else { return corrupt("packed record truncated") };
            // Names are nearly always ASCII, which is checked a word at a time.
            if !name.is_ascii() && std::str::from_utf8(name).is_err() {
                return corrupt("packed record has a non-UTF-8 name");
            }
            count += 1;
        }
        let packed = Packed(bytes);
        if count != usize::from(packed.count()) {
            return corrupt("packed record count does not match");
        }
        Ok(packed)
    }

    /// The record as stored.
    #[cfg(feature = "stateless")]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The record's size in bytes.
    pub(crate) fn byte_len(&self) -> usize {
        self.0.len()
    }

    /// Wraps a record [`encode`](Self::encode) built, which needs no validation.
    pub(crate) fn encoded(bytes: Vec<u8>) -> Packed {
        Packed(bytes)
    }

    /// Packs `attributes` behind a header with `times` (created, deadline) and `record_id`;
    /// names must be at most [`MAX_NAME_BYTES`], values under 4 GiB, and at most 65,535 of
    /// them (the limits keep all three far lower).
    pub(crate) fn encode<'a>(
        times: (i64, i64),
        record_id: u32,
        attributes: impl Iterator<Item = (&'a str, &'a [u8])>,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&times.0.to_be_bytes());
        out.extend_from_slice(&times.1.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&record_id.to_be_bytes());
        let mut count: u16 = 0;
        for (name, value) in attributes {
            out.extend_from_slice(&(name.len() as u16).to_be_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(value);
            count = count.wrapping_add(1);
        }
        out[COUNT_AT..COUNT_AT + 2].copy_from_slice(&count.to_be_bytes());
        out
    }

    /// How many attributes the record holds (its header; 0 without one).
    pub(crate) fn count(&self) -> u16 {
        self.header(COUNT_AT).map_or(0, u16::from_be_bytes)
    }

    /// The record's id (its header; 0 without one): see lua/record.lua.
    pub(crate) fn record_id(&self) -> u32 {
        self.header(RECORD_ID_AT).map_or(0, u32::from_be_bytes)
    }

    /// When the session was created and when it dies (ms since the epoch, server clock);
    /// `None` without a header.
    pub(crate) fn times(&self) -> Option<(i64, i64)> {
        let created = i64::from_be_bytes(self.header(format::CREATED_AT)?);
        Some((created, i64::from_be_bytes(self.header(format::DEADLINE_AT)?)))
    }

    fn header<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        self.0.get(at..at + N)?.try_into().ok()
    }

    /// The attributes in the record, in stored order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let mut reader = Reader { bytes: &self.0, at: HEADER };
        std::iter::from_fn(move || {
            let (name, value) = reader.entry()?;
            Some((std::str::from_utf8(name).ok()?, value))
        })
    }

    /// The value of `name`, if the record holds it (a scan: sessions hold a few dozen
    /// attributes, and comparing bytes in place beats building an index on every load).
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        let mut reader = Reader { bytes: &self.0, at: HEADER };
        std::iter::from_fn(|| reader.entry())
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, value)| value)
    }
}

/// A record id other than `old`, for a compaction or a regenerate that seals anew: random, so that
/// an id never repeats even when a failover or a restore loses a compaction (a counter would count
/// up to the lost id again).
pub(crate) fn fresh_id(old: u32) -> u32 {
    let mut id = old;
    while id == old {
        let mut bytes = [0; 4];
        // The OS's random source failing is no reason to fail a save: any other id will do.
        id =
            getrandom::fill(&mut bytes).map_or(old.wrapping_add(1), |()| u32::from_ne_bytes(bytes));
    }
    id
}

/// Walks the entries of a record without trusting any length in it.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn entry(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        let name_len = self.take(format::NAME_LEN_BYTES)?.try_into().ok();
        let name = self.take(usize::from(u16::from_be_bytes(name_len?)))?;
        let value_len = self.take(format::VALUE_LEN_BYTES)?.try_into().ok();
        let value_len = u32::from_be_bytes(value_len?);
        Some((name, self.take(usize::try_from(value_len).ok()?)?))
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(slice)
    }
}

fn corrupt<T>(why: &str) -> Result<T> {
    Err(Error::Corrupt(why.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_order() {
        let attributes = [("user_id", &b"\x2a"[..]), ("", b""), ("cart", &[0x90; 300][..])];
        let packed =
            Packed::parse(Packed::encode((7, 9), 5, attributes.into_iter())).expect("valid");
        assert_eq!(packed.iter().collect::<Vec<_>>(), attributes);
        assert_eq!((packed.times(), packed.count(), packed.record_id()), (Some((7, 9)), 3, 5));
        assert_eq!(packed.get("cart").map(<[u8]>::len), Some(300));
        assert_eq!(packed.get("absent"), None);
        let empty = Packed::parse(Packed::encode((1, 2), 0, std::iter::empty())).expect("valid");
        assert_eq!(empty.iter().count(), 0);
        assert_eq!((Packed::default().times(), Packed::default().count()), (None, 0));
    }

    #[test]
    fn every_truncation_and_bad_count_is_corrupt_not_a_panic() {
        let bytes = Packed::encode((1, 2), 0, [("name", &b"value"[..]), ("x", b"y")].into_iter());
        for len in 0..bytes.len() {
            assert!(Packed::parse(bytes[..len].to_vec()).is_err(), "truncated at {len}");
        }
        let mut wrong_count = bytes.clone();
        wrong_count[COUNT_AT + 1] = 3;
        assert!(Packed::parse(wrong_count).is_err());
        let mut huge_length = bytes;
        huge_length[HEADER] = 0xff;
        assert!(Packed::parse(huge_length).is_err());
        let bad_name = [&[0; 16][..], &[0, 1], &[0; 4], &[0, 1, 0xff], &[0, 0, 0, 0]].concat();
        assert!(Packed::parse(bad_name).is_err());
    }
}
