//! What each field of a session's hash holds, told by its value alone.
//!
//! Why the value says it: a load then reads the values only (`HVALS`), not the names too
//! (`HGETALL`). Each field is one more value for Redis to reply and for the client to parse and
//! allocate, and a session mostly holds the packed record and one to four loose fields: reading
//! their names as well nearly doubles the values per load (docs/performance.md has the counts).
//!
//! The first byte of a value tells its field (the bytes are in mod.rs, the one place they
//! are written):
//! - [`format::RECORD`]: the packed record (`@p`, packed.rs), whose header opens with the
//!   creation time as a big-endian u64.
//! - A MessagePack string (fixstr, str8, str16 or str32): a loose attribute. The string is the
//!   attribute's name (the field's own name) and the value's MessagePack follows; nothing
//!   follows for a removed attribute (a tombstone that hides the record's value). This *stamp*
//!   costs a save's AOF entry the name's length and one byte (two from 32 bytes, three from
//!   256; lua/entries.lua writes it for tombstones, `stamped` here for values).
//! - [`format::META`] (never valid MessagePack), then a letter that names the metadata:
//!   [`format::FLASH`] for the pending flash messages (`@f`); [`format::EXPIRY`] for the key's
//!   expiry (`@t`), a big-endian u64 of ms on the server's clock, which the scripts keep equal
//!   to the key's own (server_clock.rs says why); [`format::OWN_TIMEOUTS`] for the session's
//!   own idle timeout and its touch threshold (`@i`, timeouts.rs), two big-endian u64s of ms,
//!   present only in sessions given timeouts of their own. Metadata this version does not
//!   know (a newer one's) is skipped, and so is an expiry of the wrong length: the load then
//!   treats it as missing, and the script that runs because of that rewrites it.
//!
//! Anything else is not a session's field: the load refuses the hash as corrupt.

use rmp::decode::read_str_from_slice;

use crate::error::{Error, Result};
use crate::format;
use crate::format::bound::{Retired, StoredBound};

/// The first bytes of the flash messages' field: metadata, `f`.
pub(crate) const FLASH_TAG: &[u8] = &[format::META, format::FLASH];

/// The first bytes of the expiry's field: metadata, `t`; then 8 bytes (tests write it).
#[cfg(test)]
pub(crate) const EXPIRY_TAG: &[u8] = &[format::META, format::EXPIRY];

/// The first bytes of the own timeouts' field: metadata, `i`; then 16 bytes (tests write it).
#[cfg(test)]
pub(crate) const OWN_TIMEOUTS_TAG: &[u8] = &[format::META, format::OWN_TIMEOUTS];

/// What one value of a session's hash is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// The packed record, as stored.
    Record(Vec<u8>),
    /// A loose attribute: its name and its value's MessagePack, `None` when removed.
    Loose(String, Option<Vec<u8>>),
    /// The pending flash messages, concatenated MessagePack values.
    Flash(Vec<u8>),
    /// When the key expires: ms on the server's clock, as the last script to set its TTL
    /// recorded it.
    Expiry(u64),
    /// The session's own idle timeout and touch threshold, ms, in place of the store's.
    OwnTimeouts { idle: u64, touch_after: u64 },
    /// The session's binding to a user (`@u`; bound.rs).
    Bound(StoredBound),
    /// A retired token's stub (`@r`; bound.rs): the only field of its hash.
    Retired(Retired),
    /// Metadata of a newer version of this crate: not ours to read.
    Unknown,
}

impl Field {
    /// Tells what `value` is by its first bytes, and takes it apart in place (no new buffer).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] for a value no field of a session holds, or a stamp that is cut
    /// short or names no UTF-8 name. The error never quotes the value.
    pub(crate) fn parse(mut value: Vec<u8>) -> Result<Field> {
        match value.first() {
            Some(&format::RECORD) => Ok(Field::Record(value)),
            Some(&format::META) => Ok(match value.get(1) {
                Some(&format::FLASH) => {
                    value.drain(..FLASH_TAG.len());
                    Field::Flash(value)
                }
                Some(&format::EXPIRY) => {
                    numbers(&value).map_or(Field::Unknown, |[at]| Field::Expiry(at))
                }
                Some(&format::OWN_TIMEOUTS) => {
                    numbers(&value).map_or(Field::Unknown, |[idle, touch_after]| {
                        Field::OwnTimeouts { idle, touch_after }
                    })
                }
                Some(&format::BOUND) => {
                    StoredBound::parse(&value).map_or(Field::Unknown, Field::Bound)
                }
                Some(&format::RETIRED) => {
                    Retired::parse(&value).map_or(Field::Unknown, Field::Retired)
                }
                _ => Field::Unknown,
            }),
            Some(_) => {
                let (name, rest) = read_str_from_slice(&value).map_err(|_| not_a_field())?;
                let (name, stamp_length) = (name.to_owned(), value.len() - rest.len());
                value.drain(..stamp_length);
                Ok(Field::Loose(name, (!value.is_empty()).then_some(value)))
            }
            None => Err(not_a_field()),
        }
    }
}

/// `value` stamped with `name`, as a save stores it in the loose field `name`: the name as a
/// MessagePack string (lua/entries.lua's `stamp` writes the same, from the same markers).
pub(crate) fn stamped(name: &str, value: &[u8]) -> Vec<u8> {
    let len = name.len();
    let mut out = Vec::with_capacity(5 + len + value.len());
    match (u8::try_from(len), u16::try_from(len)) {
        (Ok(short), _) if len <= format::FIXSTR_MAX => out.push(format::FIXSTR + short),
        (Ok(short), _) => out.extend_from_slice(&[format::STR8, short]),
        (_, Ok(medium)) => {
            out.push(format::STR16);
            out.extend_from_slice(&medium.to_be_bytes());
        }
        // Names are at most 65,535 bytes (session/mod.rs); a longer one still gets a valid stamp.
        _ => {
            out.push(format::STR32);
            out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        }
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(value);
    out
}

/// The `N` big-endian u64s a metadata value holds after its two tag bytes, when it is of the
/// right length.
fn numbers<const N: usize>(value: &[u8]) -> Option<[u64; N]> {
    let rest = value.get(2..)?;
    if rest.len() != 8 * N {
        return None;
    }
    let mut out = [0; N];
    for (n, bytes) in out.iter_mut().zip(rest.chunks_exact(8)) {
        *n = u64::from_be_bytes(bytes.try_into().ok()?);
    }
    Some(out)
}

fn not_a_field() -> Error {
    Error::Corrupt("a field of the session's hash is neither record, attribute nor flash".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_at_every_length_marker() {
        for len in [1, 31, 32, 255, 256, 65_535, 65_536] {
            let name = "n".repeat(len);
            let field = Field::parse(stamped(&name, b"\x2a")).expect("valid");
            assert_eq!(field, Field::Loose(name.clone(), Some(vec![0x2a])), "length {len}");
            let tombstone = Field::parse(stamped(&name, b"")).expect("valid");
            assert_eq!(tombstone, Field::Loose(name, None), "length {len}");
        }
    }

    #[test]
    fn records_flash_and_newer_metadata_are_told_apart() {
        let record = vec![0, 0, 1, 2];
        assert_eq!(Field::parse(record.clone()).expect("valid"), Field::Record(record));
        let message = [format::FIXSTR + 1, b'x']; // "x", as MessagePack
        let flash = [FLASH_TAG, &message].concat();
        assert_eq!(Field::parse(flash).expect("valid"), Field::Flash(message.to_vec()));
        assert_eq!(Field::parse(FLASH_TAG.to_vec()).expect("valid"), Field::Flash(vec![]));
        assert_eq!(Field::parse(vec![format::META, b'z']).expect("valid"), Field::Unknown);
        let expiry = [EXPIRY_TAG, &1_800_000_000_123u64.to_be_bytes()].concat();
        assert_eq!(Field::parse(expiry.clone()).expect("valid"), Field::Expiry(1_800_000_000_123));
        let cut_short = expiry[..9].to_vec();
        assert_eq!(Field::parse(cut_short).expect("skipped"), Field::Unknown, "as if missing");
        let own = [OWN_TIMEOUTS_TAG, &604_800_000u64.to_be_bytes(), &60_480_000u64.to_be_bytes()];
        let own = own.concat();
        let parsed = Field::parse(own.clone()).expect("valid");
        assert_eq!(parsed, Field::OwnTimeouts { idle: 604_800_000, touch_after: 60_480_000 });
        for cut in [10, 17] {
            let cut_short = Field::parse(own[..cut].to_vec()).expect("skipped");
            assert_eq!(
                cut_short,
                Field::Unknown,
                "the store's timeouts apply (get_and_touch.lua too)"
            );
        }
    }

    #[test]
    fn anything_else_is_corrupt_and_the_error_quotes_nothing() {
        let cut_short = stamped("name", b"")[..4].to_vec();
        let not_utf8 = vec![format::FIXSTR + 2, 0xff, 0xfe];
        for value in [vec![], b"SECRET".to_vec(), cut_short, vec![format::STR8], not_utf8] {
            let err = Field::parse(value).expect_err("corrupt");
            assert!(matches!(&err, Error::Corrupt(why) if !why.contains("SECRET")), "{err:?}");
        }
    }
}
