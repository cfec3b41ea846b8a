//! IP fragment reassembly for IPv4 and IPv6, keyed by (src, dst, identification, protocol).
//!
//! Received byte ranges are kept sorted and merged; where fragments overlap, the bytes that arrived
//! first are kept (Linux keeps the first for IPv4 overlaps and Wireshark's default reassembly
//! reads the same way), so the result never depends on later, possibly forged, copies. Memory is
//! bounded by `max_bytes` over all sets (oldest sets evicted first) and by `timeout_ns` of capture
//! time; everything discarded is counted in `fragments_dropped`.
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::DecodeStats;
use crate::source::PacketLocation;

/// An IP datagram's payload can never exceed this (16-bit lengths in both IP versions).
const MAX_DATAGRAM: u32 = 65_535;
/// What one fragment set costs beyond its data, so a flood of tiny fragments is bounded too.
const SET_OVERHEAD: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub identification: u32,
    pub protocol: u8,
}

/// A reassembled payload and the records of its fragments in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Reassembled {
    pub data: Vec<u8>,
    pub locations: Vec<PacketLocation>,
}

struct FragSet {
    parts: Reassembled,
    /// Received [start, end) ranges, sorted, merged, disjoint.
    ranges: Vec<(u32, u32)>,
    /// Known once the last fragment (more-fragments clear) arrived.
    total: Option<u32>,
    first_ts: i64,
    generation: u64,
    fragments: u64,
    charged: usize,
}

pub(crate) struct Defrag {
    sets: HashMap<FragKey, FragSet>,
    /// Creation order, for eviction and timeout.
    order: BTreeMap<u64, FragKey>,
    next_generation: u64,
    bytes: usize,
    max_bytes: usize,
    timeout_ns: i64,
    spare: Option<Reassembled>,
}

/// One fragment as read from its IP header.
pub(crate) struct Fragment<'a> {
    pub key: FragKey,
    pub offset: u32,
    pub more: bool,
    pub data: &'a [u8],
    pub ts_ns: i64,
    pub locations: &'a [PacketLocation],
}

impl Defrag {
    pub fn new(max_bytes: usize, timeout_ns: i64) -> Self {
        Defrag {
            sets: HashMap::new(),
            order: BTreeMap::new(),
            next_generation: 0,
            bytes: 0,
            max_bytes,
            timeout_ns,
            spare: None,
        }
    }

    /// Bytes currently held.
    #[cfg(test)]
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub fn sets(&self) -> usize {
        self.sets.len()
    }

    /// Adds one fragment; returns the payload when this fragment completes its datagram.
    /// Give the result back with `recycle` to reuse its buffers.
    pub fn push(&mut self, f: Fragment<'_>, stats: &mut DecodeStats) -> Option<Reassembled> {
        self.expire(f.ts_ns, stats);
        let len = u32::try_from(f.data.len()).unwrap_or(u32::MAX);
        let end = f.offset.saturating_add(len);
        if end > MAX_DATAGRAM || (f.more && len == 0) {
            stats.fragments_dropped += 1;
            return None;
        }
        if !self.sets.contains_key(&f.key) {
            if !self.make_room(SET_OVERHEAD, None, stats) {
                stats.fragments_dropped += 1;
                return None;
            }
            let generation = self.next_generation;
            self.next_generation += 1;
            let mut parts = self.spare.take().unwrap_or_default();
            parts.data.clear();
            parts.locations.clear();
            self.order.insert(generation, f.key);
            self.bytes += SET_OVERHEAD;
            self.sets.insert(
                f.key,
                FragSet {
                    parts,
                    ranges: Vec::new(),
                    total: None,
                    first_ts: f.ts_ns,
                    generation,
                    fragments: 0,
                    charged: SET_OVERHEAD,
                },
            );
        }
        let (generation, have) = match self.sets.get(&f.key) {
            Some(s) => (s.generation, s.parts.data.len()),
            None => return None,
        };
        let growth = (end as usize).saturating_sub(have);
        if !self.make_room(growth, Some(generation), stats) {
            self.drop_set(&f.key, stats);
            stats.fragments_dropped += 1;
            return None;
        }
        let set = self.sets.get_mut(&f.key)?;
        set.fragments += 1;
        set.parts.locations.extend_from_slice(f.locations);
        let start = f.offset;
        let mut stop = end;
        if !f.more {
            let max_seen = set.ranges.last().map_or(0, |r| r.1);
            match set.total {
                // A second, different "last" fragment, or one that ends before data already held:
                // the first-arrived view of the datagram stands.
                Some(t) if t != end => return None,
                None if max_seen > end => return None,
                _ => set.total = Some(end),
            }
        }
        if let Some(t) = set.total {
            stop = stop.min(t);
        }
        if start < stop {
            if (set.parts.data.len() as u32) < stop {
                let grow = stop as usize - set.parts.data.len();
                set.parts.data.resize(stop as usize, 0);
                set.charged += grow;
                self.bytes += grow;
            }
            copy_uncovered(&mut set.parts.data, &set.ranges, start, stop, f.data);
            insert_range(&mut set.ranges, start, stop);
        }
        let complete = matches!(set.total, Some(t) if set.ranges.as_slice() == [(0, t)]);
        if !complete {
            return None;
        }
        let set = self.sets.remove(&f.key)?;
        self.order.remove(&set.generation);
        self.bytes -= set.charged;
        stats.fragments_reassembled += 1;
        let mut parts = set.parts;
        parts.data.truncate(set.total.unwrap_or(0) as usize);
        Some(parts)
    }

    /// Returns a finished `Reassembled` so its allocations serve the next set.
    pub fn recycle(&mut self, r: Reassembled) {
        self.spare = Some(r);
    }

    /// Drops sets whose first fragment is older than the timeout.
    pub fn expire(&mut self, now_ns: i64, stats: &mut DecodeStats) {
        while let Some((_, key)) = self.order.first_key_value() {
            let key = *key;
            let expired = self
                .sets
                .get(&key)
                .is_none_or(|s| s.first_ts.saturating_add(self.timeout_ns) < now_ns);
            if !expired {
                break;
            }
            self.drop_set(&key, stats);
        }
    }

    /// End of input: every incomplete set is dropped and counted.
    pub fn finish(&mut self, stats: &mut DecodeStats) {
        while let Some((_, key)) = self.order.pop_first() {
            if let Some(s) = self.sets.remove(&key) {
                stats.fragments_dropped += s.fragments;
            }
        }
        self.sets.clear();
        self.bytes = 0;
    }

    fn drop_set(&mut self, key: &FragKey, stats: &mut DecodeStats) {
        if let Some(s) = self.sets.remove(key) {
            self.order.remove(&s.generation);
            self.bytes -= s.charged;
            stats.fragments_dropped += s.fragments;
        } else {
            self.order.retain(|_, k| k != key);
        }
    }

    /// Evicts the oldest sets (never `keep`) until `need` more bytes fit; false if they cannot.
    fn make_room(&mut self, need: usize, keep: Option<u64>, stats: &mut DecodeStats) -> bool {
        while self.bytes + need > self.max_bytes {
            let victim = self
                .order
                .iter()
                .find(|(g, _)| Some(**g) != keep)
                .map(|(_, k)| *k);
            match victim {
                Some(k) => self.drop_set(&k, stats),
                None => return false,
            }
        }
        true
    }
}

/// Copies the parts of `[start, stop)` not yet covered by `ranges` from `src`, which holds the
/// bytes from offset `start` on, into `dst`.
fn copy_uncovered(dst: &mut [u8], ranges: &[(u32, u32)], start: u32, stop: u32, src: &[u8]) {
    let src_offset = start;
    let mut pos = start;
    for &(a, b) in ranges {
        if b <= pos {
            continue;
        }
        if a >= stop {
            break;
        }
        if a > pos {
            copy_span(dst, src, src_offset, pos, a);
        }
        pos = pos.max(b);
        if pos >= stop {
            return;
        }
    }
    if pos < stop {
        copy_span(dst, src, src_offset, pos, stop);
    }
}

fn copy_span(dst: &mut [u8], src: &[u8], src_offset: u32, from: u32, to: u32) {
    let (f, t) = (from as usize, to as usize);
    let (sf, st) = (f - src_offset as usize, t - src_offset as usize);
    if let (Some(d), Some(s)) = (dst.get_mut(f..t), src.get(sf..st)) {
        d.copy_from_slice(s);
    }
}

fn insert_range(ranges: &mut Vec<(u32, u32)>, start: u32, stop: u32) {
    if start >= stop {
        return;
    }
    let mut merged = (start, stop);
    ranges.retain(|&(a, b)| {
        if b < merged.0 || a > merged.1 {
            true
        } else {
            merged = (merged.0.min(a), merged.1.max(b));
            false
        }
    });
    let at = ranges.partition_point(|r| r.0 < merged.0);
    ranges.insert(at, merged);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            identification: id,
            protocol: 17,
        }
    }

    fn loc(n: u64) -> PacketLocation {
        PacketLocation {
            file_id: 0,
            offset: n,
            record_len: 1,
        }
    }

    fn push(
        d: &mut Defrag,
        st: &mut DecodeStats,
        id: u32,
        off: u32,
        more: bool,
        data: &[u8],
        ts: i64,
    ) -> Option<Reassembled> {
        let l = [loc(u64::from(off) + ts as u64 * 1000)];
        d.push(
            Fragment {
                key: key(id),
                offset: off,
                more,
                data,
                ts_ns: ts,
                locations: &l,
            },
            st,
        )
    }

    #[test]
    fn in_order_and_out_of_order() {
        let mut d = Defrag::new(1 << 20, 1_000);
        let mut st = DecodeStats::default();
        assert!(push(&mut d, &mut st, 1, 0, true, b"01234567", 0).is_none());
        let r = push(&mut d, &mut st, 1, 8, false, b"89", 1).unwrap();
        assert_eq!(r.data, b"0123456789");
        assert_eq!(r.locations, vec![loc(0), loc(1008)]);
        d.recycle(r);
        assert!(push(&mut d, &mut st, 2, 16, false, b"GH", 2).is_none());
        assert!(push(&mut d, &mut st, 2, 0, true, b"ABCDEFGH", 3).is_none());
        let r = push(&mut d, &mut st, 2, 8, true, b"abcdefgh", 4).unwrap();
        assert_eq!(r.data, b"ABCDEFGHabcdefghGH");
        // arrival order, not offset order
        assert_eq!(r.locations, vec![loc(2016), loc(3000), loc(4008)]);
        assert_eq!((st.fragments_reassembled, st.fragments_dropped), (2, 0));
        assert_eq!((d.sets(), d.held_bytes()), (0, 0));
    }

    #[test]
    fn overlaps_keep_first_arrived_bytes() {
        let mut d = Defrag::new(1 << 20, 1_000);
        let mut st = DecodeStats::default();
        assert!(push(&mut d, &mut st, 1, 8, true, b"11111111", 0).is_none());
        // covers 0..16: only 0..8 is new
        assert!(push(&mut d, &mut st, 1, 0, true, b"2222222222222222", 0).is_none());
        let r = push(&mut d, &mut st, 1, 8, false, b"33333333333", 0).unwrap();
        assert_eq!(r.data, b"2222222211111111333");
        // a conflicting second "last" fragment is ignored
        assert!(push(&mut d, &mut st, 3, 0, true, b"aaaaaaaa", 0).is_none());
        assert!(push(&mut d, &mut st, 3, 16, false, b"bb", 0).is_none());
        assert!(push(&mut d, &mut st, 3, 8, false, b"cccc", 0).is_none());
        assert_eq!(d.sets(), 1);
        let r = push(&mut d, &mut st, 3, 8, true, b"dddddddd", 0).unwrap();
        assert_eq!(r.data, b"aaaaaaaaddddddddbb");
    }

    #[test]
    fn timeout_drops_and_counts() {
        let mut d = Defrag::new(1 << 20, 1_000);
        let mut st = DecodeStats::default();
        assert!(push(&mut d, &mut st, 1, 0, true, b"01234567", 0).is_none());
        assert!(push(&mut d, &mut st, 1, 8, true, b"01234567", 10).is_none());
        // another datagram long after: the first set has expired, its late tail cannot complete it
        assert!(push(&mut d, &mut st, 2, 0, true, b"x0000000", 5_000).is_none());
        assert_eq!(st.fragments_dropped, 2);
        assert!(push(&mut d, &mut st, 1, 16, false, b"end", 5_001).is_none());
        d.finish(&mut st);
        assert_eq!(st.fragments_dropped, 4);
        assert_eq!(d.sets(), 0);
    }

    #[test]
    fn flood_is_bounded_by_bytes() {
        let max = 64 * 1024;
        let mut d = Defrag::new(max, i64::MAX / 2);
        let mut st = DecodeStats::default();
        for id in 0..10_000 {
            assert!(push(&mut d, &mut st, id, 0, true, &[7u8; 1480], 0).is_none());
            assert!(d.held_bytes() <= max);
        }
        assert!(d.sets() < 100);
        assert!(st.fragments_dropped > 9_900);
        // a fragment that alone cannot fit is refused, and the oversize datagram too
        let mut tiny = Defrag::new(100, 1_000);
        assert!(push(&mut tiny, &mut st, 1, 0, true, &[0; 8], 0).is_none());
        assert_eq!(tiny.sets(), 0);
        assert!(push(&mut d, &mut st, 5, 65_528, true, &[0; 16], 0).is_none());
    }

    #[test]
    fn range_merging() {
        let mut r = vec![];
        insert_range(&mut r, 10, 20);
        insert_range(&mut r, 30, 40);
        insert_range(&mut r, 0, 5);
        assert_eq!(r, vec![(0, 5), (10, 20), (30, 40)]);
        insert_range(&mut r, 5, 30);
        assert_eq!(r, vec![(0, 40)]);
    }
}
