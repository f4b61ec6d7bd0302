//! What a save sends and what it leaves: the pending changes as a delta, the whole session as a
//! new packed record when a save should compact, the view of what was read that a checked save
//! or a compaction shows Redis, and the session as stored once the script reports what it did.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::mem;

use super::{check_name, Session};
use crate::format::packed::{fresh_id, Packed, LOOSE_MAX, MAX_NAME_BYTES};
use crate::seal;
use crate::seal::moved::Moved;

/// In a view of a partial load sent to the save script: the attribute was not set (`META`
/// alone is never valid MessagePack, so no stored value can equal it).
const NOT_SET: &[u8] = &[crate::format::META];

impl Session {
    /// The pending delta: values to set, names to delete.
    pub(crate) fn delta(&self) -> (Vec<(&str, &[u8])>, Vec<&str>) {
        let mut set = Vec::new();
        let mut deleted = Vec::new();
        for (name, value) in &self.pending {
            match value {
                Some(value) => set.push((name.as_str(), value.as_slice())),
                None => deleted.push(name.as_str()),
            }
        }
        (set, deleted)
    }

    /// The whole session as a new packed record, when this save should compact: the session
    /// was loaded whole, and the save would leave more than [`LOOSE_MAX`] loose fields, must
    /// remove an attribute that sits in the record (which a loose field could only hide), or
    /// finds a value not sealed under the current key (a rotation: the record
    /// seals them all anew, and a compaction writes only if nothing changed since the load).
    pub(crate) fn compaction(&self) -> Option<Vec<u8>> {
        // The cheap checks first: most saves stop here, without scanning the record.
        let read = &self.read;
        if read.only.is_some() || read.stale {
            return None;
        }
        let new_loose = self.pending.keys().filter(|name| !read.loose.contains_key(*name));
        let due = read.loose.len() + new_loose.count() > LOOSE_MAX
            || self
                .pending
                .iter()
                .any(|(name, value)| value.is_none() && read.packed.get(name).is_some())
            || self.reseal_due();
        let packable = || self.attributes().all(|(name, _)| name.len() <= MAX_NAME_BYTES);
        (due && packable()).then(|| {
            let times = (self.meta.created_ms, self.meta.deadline_ms);
            let seal = self.seal.as_ref();
            let attributes: Vec<(&str, Cow<'_, [u8]>)> = self
                .attributes()
                .map(|(name, value)| (name, seal::resealed(seal, name, value)))
                .collect();
            let attributes = attributes.iter().map(|(name, value)| (*name, &value[..]));
            Packed::encode(times, fresh_id(read.record_id), attributes)
        })
    }

    /// True when a value read is under an older key of the ring (or is unsealed and
    /// accepted), and opens: what a save under the current key would seal anew.
    fn reseal_due(&self) -> bool {
        let Some(binding) = &self.seal else { return false };
        self.read.attributes().any(|(name, value)| seal::reseal_due(binding, name, value))
    }

    /// The id of the packed record this view holds, for the save script to compare;
    /// `None` once a save found it out of date.
    pub(crate) fn view_record_id(&self) -> Option<u32> {
        (!self.read.stale).then_some(self.read.record_id)
    }

    /// What this session read, for a checked save or a compaction to compare with what Redis
    /// holds. Loaded whole: the loose fields as loaded or last saved (an empty value for a
    /// tombstone), which with the record's id pin down the whole session. Loaded in part: each
    /// name it read with the value it read, or [`NOT_SET`].
    pub(crate) fn view(&self) -> Vec<(&str, &[u8])> {
        let read = &self.read;
        let Some(only) = &read.only else {
            let loose = read.loose.iter();
            return loose
                .map(|(name, value)| (name.as_str(), value.as_deref().unwrap_or(b"")))
                .collect();
        };
        // A reserved name (`@p`, `@f`) is never an attribute: nothing to compare.
        let attributes = only.iter().filter(|name| check_name(name).is_ok());
        attributes.map(|name| (name.as_str(), read.value(name).unwrap_or(NOT_SET))).collect()
    }

    /// True when this session was loaded whole (not by `load_only`).
    pub(crate) fn is_whole(&self) -> bool {
        self.read.only.is_none()
    }

    /// Takes in a delta the script wrote: the pending changes are now what was read, each
    /// removed name a tombstone where the script wrote one (`tombstoned`) or where this
    /// session's record holds it, and gone elsewhere.
    /// `record_id` is the stored record's, when the save read it: a new one means another
    /// request compacted since this view was read. (When the save did not read the record, one
    /// may have: the next compaction or checked save sends the id, and the script refuses a
    /// view of another record.)
    pub(crate) fn saved_delta(&mut self, record_id: Option<u32>, tombstoned: &[String]) {
        let read = &mut self.read;
        if let Some(record_id) = record_id {
            read.stale |= record_id != read.record_id;
            read.record_id = record_id;
        }
        let tombstoned: BTreeSet<&str> = tombstoned.iter().map(String::as_str).collect();
        for (name, value) in mem::take(&mut self.pending) {
            // A removed name the script deleted rather than tombstoned is gone from Redis; the
            // record this session read may still hold it (another request compacted it away
            // since), so it stays hidden here as it would be by a tombstone.
            let hidden = value.is_none() && read.packed.get(&name).is_some();
            if value.is_some() || hidden || tombstoned.contains(name.as_str()) {
                read.loose.insert(name, value);
            } else {
                read.loose.remove(&name);
            }
        }
    }

    /// Takes in a compaction the script wrote: `record` holds the whole session now.
    pub(crate) fn compacted(&mut self, record: Vec<u8>) {
        let packed = Packed::encoded(record);
        self.read.record_id = packed.record_id();
        (self.read.packed, self.read.loose) = (packed, Default::default());
        self.pending.clear();
    }

    /// Notes that a compaction was refused: Redis no longer holds what this session read, so
    /// the session must not be folded into a record until it is loaded again.
    pub(crate) fn compaction_refused(&mut self) {
        self.read.stale = true;
    }

    /// The pending changes, by name (`None` removes the attribute).
    pub(crate) fn pending(&self) -> &BTreeMap<String, Option<Vec<u8>>> {
        &self.pending
    }

    /// Moves the session to a new token (after regenerate). Under encryption, `moved` is the
    /// hash as the script sealed it anew: the pending values are sealed anew too, and what was
    /// read becomes the hash as moved if this session had read it as it was (else a compaction
    /// or a checked save must wait for a new load).
    pub(crate) fn rekey(&mut self, token: crate::token::Token, key: String, moved: Option<Moved>) {
        if let Some(moved) = moved {
            let to = self.seal.as_ref().map(|from| from.for_key(&key));
            self.pending = moved.pending;
            let read = &mut self.read;
            let as_read = (read.record_id, std::mem::take(&mut read.loose)) == moved.read;
            match as_read && read.only.is_none() && !read.stale {
                true => {
                    read.record_id = moved.packed.record_id();
                    (read.packed, read.loose) = (moved.packed, moved.loose);
                }
                false => (read.packed, read.loose, read.stale) = (moved.packed, moved.loose, true),
            }
            self.seal = to;
        }
        self.token = token;
        self.key = key;
    }
}
