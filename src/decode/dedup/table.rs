//! The bounded digest tables behind [`Deduplicator`](super::Deduplicator): payload digest, length
//! and flow as the key, up to `SLOTS` copies per key, expired by capture time and capped in size.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::IpAddr;

use xxhash_rust::xxh3::xxh3_64;

use super::Flow;
use crate::source::PacketLocation;

/// Copies of one payload on one flow remembered at once; a further copy pushes out the oldest.
pub(super) const SLOTS: usize = 4;

/// Passes the key's precomputed xxh3 digest through: it is already well mixed.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Key {
    digest: u64,
    len: usize,
    flow: Flow,
    hep: bool,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.digest);
    }
}

impl Key {
    #[inline]
    pub(super) fn new(payload_digest: u64, len: usize, flow: Flow, hep: bool) -> Key {
        let mut buf = [0u8; 8 + 16 + 16 + 2 + 2 + 2];
        buf[..8].copy_from_slice(&payload_digest.to_le_bytes());
        buf[8..24].copy_from_slice(&octets(flow.src));
        buf[24..40].copy_from_slice(&octets(flow.dst));
        buf[40..42].copy_from_slice(&flow.src_port.to_le_bytes());
        buf[42..44].copy_from_slice(&flow.dst_port.to_le_bytes());
        buf[44] = flow.transport as u8;
        buf[45] = u8::from(hep);
        Key {
            digest: xxh3_64(&buf),
            len,
            flow,
            hep,
        }
    }
}

fn octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) now_ns: i64,
    /// Unique per push: tells a live entry from the stale record of it in `order`.
    pub(super) id: u64,
    pub(super) seq: u64,
    pub(super) capture_id: Option<u32>,
    pub(super) location: Option<PacketLocation>,
}

/// Up to `SLOTS` entries of one key, oldest first.
#[derive(Clone, Copy, Default)]
struct Slots {
    len: usize,
    e: [Entry; SLOTS],
}

impl Slots {
    fn live(&self) -> &[Entry] {
        &self.e[..self.len]
    }
    /// `i` comes from a search of `live()`, so it is in range.
    fn remove_at(&mut self, i: usize) -> Entry {
        let out = self.e[i];
        self.e.copy_within(i + 1..self.len, i);
        self.len -= 1;
        out
    }
    /// Appends; when full, drops the oldest and returns it.
    fn push(&mut self, e: Entry) -> Option<Entry> {
        let dropped = if self.len >= SLOTS {
            Some(self.remove_at(0))
        } else {
            None
        };
        self.e[self.len] = e;
        self.len += 1;
        dropped
    }
}

/// Digests seen within one window, with their insertion order for expiry and the size bound.
pub(super) struct Table {
    window_ns: i64,
    max: usize,
    map: HashMap<Key, Slots, BuildHasherDefault<DigestHasher>>,
    pub(super) order: VecDeque<(Key, i64, u64)>,
    pub(super) live: usize,
}

impl Table {
    pub(super) fn new(window_ns: i64, max: usize) -> Table {
        Table {
            // An unvalidated negative window would wrap in the unsigned comparisons below.
            window_ns: window_ns.max(0),
            max: max.max(1),
            map: HashMap::default(),
            order: VecDeque::new(),
            live: 0,
        }
    }

    fn within(&self, e: &Entry, now_ns: i64) -> bool {
        now_ns.abs_diff(e.now_ns) <= self.window_ns as u64
    }

    /// Forgets what is older than the window.
    #[inline]
    pub(super) fn expire(&mut self, now_ns: i64) {
        while let Some(&(key, t, id)) = self.order.front() {
            if now_ns.saturating_sub(t) <= self.window_ns {
                break;
            }
            self.order.pop_front();
            self.forget(&key, id);
        }
    }

    /// Forgets the oldest while beyond the bound (counted). Stale records count towards the
    /// bound too, which keeps `order` itself bounded.
    fn trim(&mut self, evicted: &mut u64) {
        while self.order.len() > self.max {
            let Some((key, _, id)) = self.order.pop_front() else {
                break;
            };
            if self.forget(&key, id) {
                *evicted += 1;
            }
        }
    }

    fn forget(&mut self, key: &Key, id: u64) -> bool {
        let Some(slots) = self.map.get_mut(key) else {
            return false;
        };
        let Some(i) = slots.live().iter().position(|e| e.id == id) else {
            return false;
        };
        slots.remove_at(i);
        self.live -= 1;
        if slots.len == 0 {
            self.map.remove(key);
        }
        true
    }

    #[inline]
    pub(super) fn contains(&self, key: &Key, now_ns: i64) -> bool {
        self.map
            .get(key)
            .is_some_and(|s| s.live().iter().any(|e| self.within(e, now_ns)))
    }

    /// Removes and returns the oldest entry of `key` within the window.
    #[inline]
    pub(super) fn take(&mut self, key: &Key, now_ns: i64) -> Option<Entry> {
        let window = self.window_ns as u64;
        let slots = self.map.get_mut(key)?;
        let i = slots
            .live()
            .iter()
            .position(|e| now_ns.abs_diff(e.now_ns) <= window)?;
        let e = slots.remove_at(i);
        self.live -= 1;
        if slots.len == 0 {
            self.map.remove(key);
        }
        Some(e)
    }

    #[inline]
    pub(super) fn insert(&mut self, key: Key, e: Entry, evicted: &mut u64) {
        let slots = self.map.entry(key).or_default();
        if slots.push(e).is_some() {
            *evicted += 1;
        } else {
            self.live += 1;
        }
        self.order.push_back((key, e.now_ns, e.id));
        self.trim(evicted);
    }
}
