//! The sessions held in memory, and the reservations that keep a read from filling in a session
//! that changed while it was read.
//!
//! Why reservations: the reply to a read and the report that its key changed travel
//! separately (the reply to the task that sent the read, the report to the connection's push
//! handler), so a read's reply may be handled after a change it did not see was reported. A load
//! therefore reserves the key before it sends the read, and fills the entry only if the
//! reservation is still there: a report of a change, a write through this store and a clear
//! each remove it. So an entry is either filled before the report that drops it is handled, or
//! not filled at all.
//!
//! The map is split into shards, each behind its own lock, held only to look up, insert or
//! remove: a hit clones an `Arc` under the lock and does the rest outside it. When a shard is
//! full it drops an entry picked by the map's hash order, which costs no bookkeeping on the hit
//! path (an LRU would write on every hit).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::cache::settings::{CacheStats, LocalCache};
use crate::store::reply::Loaded;

/// Shards of the map; fewer when the cache holds fewer entries than this.
const SHARDS: usize = 16;

/// What an entry costs besides its key and values: the map's slot, the key's and values'
/// headers, the `Arc`.
const ENTRY_OVERHEAD: usize = 160;

/// What each loose field costs besides its name and value: their headers and the map's node.
const LOOSE_OVERHEAD: usize = 96;

/// One key's slot: a read on its way, or a session read.
enum Slot {
    Reserved(u64),
    Held(Arc<Loaded>),
}

#[derive(Default)]
struct Shard {
    map: HashMap<String, (Slot, usize)>,
    bytes: usize,
    /// Turns the choice of the entry a full shard drops, so it is not always the same slot.
    turn: usize,
}

/// A read's claim on a key, taken before the read is sent over tracking connection
/// `connection`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    number: u64,
    connection: u64,
}

/// The sessions held, bounded in entries and bytes.
pub(crate) struct Entries {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    max_entries: usize,
    max_bytes: usize,
    /// The tracking connection whose reports keep the entries exact; 0 when there is none.
    connection: AtomicU64,
    tickets: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    clears: AtomicU64,
    evictions: AtomicU64,
}

impl Entries {
    pub(crate) fn new(settings: &LocalCache) -> Self {
        let count = SHARDS.min(settings.max_entries).max(1);
        Entries {
            shards: (0..count).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            max_entries: settings.max_entries / count,
            max_bytes: settings.max_bytes / count,
            connection: AtomicU64::new(0),
            tickets: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            clears: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let index = self.hasher.hash_one(key) as usize % self.shards.len();
        // A poisoned lock only means a panic elsewhere mid-update of plain data; the map is
        // still a map, and at worst holds an entry that a later report drops.
        self.shards[index].lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The session held under `key`, if any.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<Loaded>> {
        match self.shard(key).map.get(key) {
            Some((Slot::Held(loaded), _)) => Some(Arc::clone(loaded)),
            _ => None,
        }
    }

    /// Drops everything, then takes `connection` (0: none) as the one whose reports keep the
    /// entries exact: a read over another fills nothing.
    pub(crate) fn follow(&self, connection: u64) {
        self.connection.store(0, Ordering::SeqCst);
        self.clear();
        self.connection.store(connection, Ordering::SeqCst);
    }

    /// Drops everything if `connection` is the one followed, and follows none.
    pub(crate) fn unfollow(&self, connection: u64) {
        let current =
            self.connection.compare_exchange(connection, 0, Ordering::SeqCst, Ordering::SeqCst);
        if current.is_ok() {
            self.clear();
        }
    }

    /// Claims `key` for a read about to be sent over tracking connection `connection`; drops
    /// what was held under it.
    pub(crate) fn reserve(&self, key: &str, connection: u64) -> Ticket {
        let number = self.tickets.fetch_add(1, Ordering::Relaxed);
        let ticket = Ticket { number, connection };
        let size = key.len() + ENTRY_OVERHEAD;
        let mut shard = self.shard(key);
        if let Some((_, old)) = shard.map.remove(key) {
            shard.bytes -= old;
        }
        if self.make_room(&mut shard, size) {
            shard.map.insert(key.to_owned(), (Slot::Reserved(number), size));
            shard.bytes += size;
        }
        ticket
    }

    /// Drops the claim `ticket` on `key`, if it still stands: its read filled nothing.
    pub(crate) fn release(&self, key: &str, ticket: Ticket) {
        let mut shard = self.shard(key);
        if let Some((Slot::Reserved(claim), bytes)) = shard.map.get(key) {
            if *claim == ticket.number {
                let bytes = *bytes;
                shard.map.remove(key);
                shard.bytes -= bytes;
            }
        }
    }

    /// Holds `loaded` under `key` if the read's claim still stands: nothing reported a change
    /// of `key`, and nothing cleared the cache, since [`reserve`](Self::reserve), and the
    /// connection the read went over is still the one followed. (Checked under the shard's
    /// lock, which a clear takes too: a clear that follows drops what this fills.)
    pub(crate) fn fill(&self, key: &str, ticket: Ticket, loaded: Loaded) -> bool {
        let size = key.len() + ENTRY_OVERHEAD + loaded_bytes(&loaded);
        let mut shard = self.shard(key);
        if self.connection.load(Ordering::SeqCst) != ticket.connection {
            return false;
        }
        let Some((Slot::Reserved(claim), claimed)) = shard.map.get(key) else { return false };
        if *claim != ticket.number {
            return false;
        }
        let claimed = *claimed;
        shard.bytes -= claimed;
        shard.map.remove(key);
        if !self.make_room(&mut shard, size) {
            return false;
        }
        shard.map.insert(key.to_owned(), (Slot::Held(Arc::new(loaded)), size));
        shard.bytes += size;
        true
    }

    /// Makes room in `shard` for an entry of `size` bytes, dropping others; false when it
    /// cannot fit at all.
    fn make_room(&self, shard: &mut Shard, size: usize) -> bool {
        if size > self.max_bytes || self.max_entries == 0 {
            return false;
        }
        while shard.map.len() >= self.max_entries || shard.bytes + size > self.max_bytes {
            shard.turn = shard.turn.wrapping_add(1);
            let skip = shard.turn % shard.map.len().clamp(1, 16);
            let Some(victim) = shard.map.keys().nth(skip).cloned() else { return false };
            if let Some((_, bytes)) = shard.map.remove(&victim) {
                shard.bytes -= bytes;
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        true
    }

    /// Drops `key`, held or claimed: Redis reported a change, or this store is writing it.
    pub(crate) fn invalidate(&self, key: &str) {
        let mut shard = self.shard(key);
        if let Some((slot, bytes)) = shard.map.remove(key) {
            shard.bytes -= bytes;
            if matches!(slot, Slot::Held(_)) {
                self.invalidations.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Drops everything, claims included.
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            shard.map.clear();
            shard.bytes = 0;
        }
        self.clears.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let (mut entries, mut bytes) = (0, 0);
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            entries += shard.map.values().filter(|(slot, _)| matches!(slot, Slot::Held(_))).count();
            bytes += shard.bytes;
        }
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
            bytes,
            invalidations: self.invalidations.load(Ordering::Relaxed),
            clears: self.clears.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}

/// The bytes of a session's values, as Redis sent them.
fn loaded_bytes(loaded: &Loaded) -> usize {
    let loose: usize = loaded
        .loose
        .iter()
        .map(|(name, value)| LOOSE_OVERHEAD + name.len() + value.as_ref().map_or(0, Vec::len))
        .sum();
    loaded.packed.byte_len() + loose + loaded.flash.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::packed::Packed;
    use crate::store::reply::Loaded;

    fn loaded(bytes: usize) -> Loaded {
        let mut loaded = Loaded::empty();
        loaded.packed = Packed::encoded(vec![0; bytes]);
        loaded
    }

    /// Entries following tracking connection 1.
    fn following_one(entries: usize, bytes: usize) -> Entries {
        let cache =
            Entries::new(&LocalCache::default().with_max_entries(entries).with_max_bytes(bytes));
        cache.follow(1);
        cache
    }

    #[test]
    fn a_fill_stands_only_on_its_own_claim() {
        let cache = following_one(1000, 1 << 20);
        let first = cache.reserve("k", 1);
        let second = cache.reserve("k", 1);
        assert!(!cache.fill("k", first, loaded(10)), "a claim taken over by a later read");
        assert!(cache.fill("k", second, loaded(10)));
        assert!(cache.get("k").is_some());
        assert!(!cache.fill("k", second, loaded(10)), "a claim is used once");
    }

    #[test]
    fn a_change_or_a_clear_between_claim_and_fill_keeps_the_read_out() {
        let cache = following_one(1000, 1 << 20);
        let ticket = cache.reserve("k", 1);
        cache.invalidate("k");
        assert!(!cache.fill("k", ticket, loaded(10)));
        let ticket = cache.reserve("k", 1);
        cache.clear();
        assert!(!cache.fill("k", ticket, loaded(10)));
        assert!(cache.get("k").is_none());
        let ticket = cache.reserve("k", 1);
        assert!(cache.fill("k", ticket, loaded(10)));
        cache.invalidate("k");
        assert!(cache.get("k").is_none());
        assert_eq!((cache.stats().invalidations, cache.stats().clears), (1, 2));
    }

    #[test]
    fn a_read_over_a_connection_no_longer_followed_fills_nothing() {
        let cache = following_one(1000, 1 << 20);
        let ticket = cache.reserve("k", 1);
        cache.unfollow(1);
        let late = cache.reserve("k", 1); // a task still holding the old connection
        assert!(!cache.fill("k", late, loaded(10)));
        cache.follow(2);
        assert!(!cache.fill("k", ticket, loaded(10)));
        let ticket = cache.reserve("k", 2);
        cache.unfollow(1); // a report of the old connection's loss, late: nothing happens
        assert!(cache.fill("k", ticket, loaded(10)));
        let claim = cache.reserve("j", 2);
        cache.release("j", claim);
        assert_eq!(cache.stats().bytes, "k".len() + ENTRY_OVERHEAD + 10);
    }

    #[test]
    fn entries_and_bytes_stay_within_bounds() {
        let cache = following_one(40, 40 * 1000);
        for i in 0..500 {
            let key = format!("key-{i}");
            let ticket = cache.reserve(&key, 1);
            cache.fill(&key, ticket, loaded(300 + i % 400));
            let stats = cache.stats();
            assert!(stats.entries <= 40, "{} entries", stats.entries);
            assert!(stats.bytes <= 40 * 1000, "{} bytes", stats.bytes);
        }
        let stats = cache.stats();
        assert!(stats.evictions > 400 && stats.entries > 10, "{stats:?}");
        let ticket = cache.reserve("huge", 1);
        assert!(!cache.fill("huge", ticket, loaded(100_000)), "larger than a shard may hold");
    }
}
