//! What the key usage scan counts (store/key_usage.rs walks the sessions): how many stored
//! values each encryption key still seals, read from the key ids in clear beside each sealed
//! value, so that counting needs no key.

use std::collections::BTreeMap;

use redis::Value;

use crate::format::fields::Field;
use crate::format::packed::Packed;
use crate::seal::envelope::{self, Part};

/// What a [`key_usage`](crate::SessionStore::key_usage) scan counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyUsage {
    /// Sessions read.
    pub sessions: u64,
    /// Sealed values and flash frames, by the id of the key they are sealed under.
    pub by_key: BTreeMap<u16, u64>,
    /// Attribute values and flash messages stored unsealed.
    pub unsealed: u64,
    /// Keys under the prefix that are not readable sessions (skipped).
    pub unreadable: u64,
}

impl KeyUsage {
    /// How many stored values key `id` seals: when 0 after a scan that began after the key
    /// stopped being current, the key can be retired.
    pub fn uses(&self, id: u16) -> u64 {
        self.by_key.get(&id).copied().unwrap_or(0)
    }

    fn count(&mut self, stored: &[u8]) {
        match envelope::key_id(stored) {
            Some(id) => *self.by_key.entry(id).or_default() += 1,
            None => self.unsealed += 1,
        }
    }

    /// Counts the values of one session's hash.
    pub(crate) fn add(&mut self, values: Vec<Value>) {
        let mut fields = Vec::with_capacity(values.len());
        for value in values {
            match value {
                Value::BulkString(bytes) => match Field::parse(bytes) {
                    Ok(field) => fields.push(field),
                    Err(_) => return self.unreadable += 1,
                },
                _ => return self.unreadable += 1,
            }
        }
        if let Some(Field::Retired(stub)) = fields.first().filter(|_| fields.len() == 1) {
            return self.count(&stub.who); // a rotated token's stub, no session: its user id
        }
        self.sessions += 1;
        for field in fields {
            match field {
                Field::Record(bytes) => match Packed::parse(bytes) {
                    Ok(packed) => packed.iter().for_each(|(_, value)| self.count(value)),
                    Err(_) => self.unreadable += 1,
                },
                Field::Loose(_, Some(value)) => self.count(&value),
                Field::Bound(bound) => self.count(&bound.who),
                Field::Flash(run) => {
                    let (parts, cut) = envelope::parts(&run);
                    for part in parts {
                        match part {
                            Part::Sealed(sealed) => self.count(sealed),
                            Part::Plain(_) => self.unsealed += 1,
                        }
                    }
                    self.unreadable += u64::from(cut.is_some());
                }
                _ => {}
            }
        }
    }
}
