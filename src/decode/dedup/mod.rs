//! The dedup stage between decode and the protocol layers: drops SPAN duplicates (the same payload
//! on the same flow again within a few ms) and pairs HEP copies with the raw messages they mirror.
//!
//! [`Deduplicator`] decides per datagram (`push` → [`Verdict`]) from bounded tables of payload
//! digests; it never holds payloads. [`DelayBuffer`] wraps it for consumers that emit in capture order
//! with the mirror noted on the raw message: a HEP copy usually arrives after its raw message, but
//! one captured on another interface can arrive before it, so each kept item is held for the HEP
//! window (bounded by count and bytes) in case its copy, or its original, is still to come.
//!
//! Payloads are compared by an xxh3 digest plus their length and the whole flow: two different
//! payloads are taken for one only on a 64-bit digest collision on one flow inside one window.
//! Windows are measured in capture time — the `now_ns` of the record that completed the datagram —
//! not in HEP's inner timestamp, which is the agent's clock. SIP retransmissions (T1 = 500 ms or
//! later) are never duplicates: [`DedupConfig::validate`] refuses a SPAN window that long.
//! Nothing here allocates per datagram once the tables have grown; lookups cannot panic.
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::IpAddr;

use xxhash_rust::xxh3::xxh3_64;

use super::{Datagram, Encap, HepInfo, Transport};
use crate::source::PacketLocation;

/// RFC 3261 T1, the first retransmission interval of SIP over UDP.
pub const SIP_T1_NS: i64 = 500_000_000;

/// Copies of one payload on one flow remembered at once; a further copy pushes out the oldest.
const SLOTS: usize = 4;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupConfig {
    /// Drop HEP copies of raw messages seen in the same capture (and note them on the raw one).
    pub hep_mirrors: bool,
    /// How far apart (capture time) a raw message and its HEP copy may be.
    pub hep_window_ns: i64,
    /// Drop SPAN duplicates. Off by default so that counts match tshark's.
    pub span: bool,
    /// How far apart (capture time) two copies of a datagram on one flow may be to be duplicates.
    pub span_window_ns: i64,
    /// Entries per table (SPAN digests, raw messages awaiting a HEP copy, HEP copies awaiting
    /// their raw message); beyond this the oldest is forgotten and counted in `evicted`.
    pub max_entries: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            hep_mirrors: true,
            hep_window_ns: 1_000_000_000,
            span: false,
            span_window_ns: 5_000_000,
            max_entries: 65_536,
        }
    }
}

impl DedupConfig {
    /// Neither mirrors nor duplicates are looked for: `push` always keeps.
    pub fn is_noop(&self) -> bool {
        !self.hep_mirrors && !self.span
    }

    pub fn validate(&self) -> Result<(), DedupError> {
        if self.hep_window_ns < 0 || self.span_window_ns < 0 {
            return Err(DedupError::NegativeWindow);
        }
        if self.span_window_ns >= SIP_T1_NS {
            return Err(DedupError::SpanWindowNotBelowT1(self.span_window_ns));
        }
        Ok(())
    }
}

#[derive(thiserror::Error, Clone, Debug, PartialEq, Eq)]
pub enum DedupError {
    #[error(
        "dedup window of {}ms is not shorter than SIP T1 (500ms): retransmissions would be \
         taken for duplicates", .0 / 1_000_000
    )]
    SpanWindowNotBelowT1(i64),
    #[error("a dedup window cannot be negative")]
    NegativeWindow,
}

/// One direction of a transport flow, as the datagram states it (for HEP, the original addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub transport: Transport,
}

impl Flow {
    pub fn of(dg: &Datagram<'_>) -> Flow {
        Flow {
            src: dg.src,
            dst: dg.dst,
            src_port: dg.src_port,
            dst_port: dg.dst_port,
            transport: dg.transport,
        }
    }
}

/// The HEP copy of a kept raw message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mirror {
    pub capture_id: Option<u32>,
    /// Capture time of the record that carried the HEP copy.
    pub now_ns: i64,
    /// That record (its first, if several).
    pub location: Option<PacketLocation>,
}

/// What to do with a pushed datagram. `seq` numbers the kept datagrams 0, 1, 2... in push order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A message in its own right.
    Keep { seq: u64 },
    /// A raw message whose HEP copy was kept earlier as `withdraw`: keep this one (noting the
    /// mirror) and withdraw that one.
    KeepMirrored {
        seq: u64,
        mirror: Mirror,
        withdraw: u64,
    },
    /// A SPAN duplicate of a datagram kept earlier on `flow`: drop it.
    Duplicate { flow: Flow },
    /// The HEP copy of raw message `of`, kept earlier: drop it and note `mirror` on `of`.
    Mirror { of: u64, mirror: Mirror },
}

impl Verdict {
    pub fn is_kept(&self) -> bool {
        matches!(self, Verdict::Keep { .. } | Verdict::KeepMirrored { .. })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DedupStats {
    pub datagrams: u64,
    pub kept: u64,
    /// SPAN duplicates dropped.
    pub span_duplicates: u64,
    /// HEP copies of raw messages dropped (both orders).
    pub hep_mirrors: u64,
    /// Of those, copies that arrived before their raw message.
    pub hep_mirrors_before_raw: u64,
    /// Entries forgotten before their window ran out because a table was full.
    pub evicted: u64,
}

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
struct Key {
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
    fn new(payload_digest: u64, len: usize, flow: Flow, hep: bool) -> Key {
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
struct Entry {
    now_ns: i64,
    /// Unique per push: tells a live entry from the stale record of it in `order`.
    id: u64,
    seq: u64,
    capture_id: Option<u32>,
    location: Option<PacketLocation>,
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
struct Table {
    window_ns: i64,
    max: usize,
    map: HashMap<Key, Slots, BuildHasherDefault<DigestHasher>>,
    order: VecDeque<(Key, i64, u64)>,
    live: usize,
}

impl Table {
    fn new(window_ns: i64, max: usize) -> Table {
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
    fn expire(&mut self, now_ns: i64) {
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

    fn contains(&self, key: &Key, now_ns: i64) -> bool {
        self.map
            .get(key)
            .is_some_and(|s| s.live().iter().any(|e| self.within(e, now_ns)))
    }

    /// Removes and returns the oldest entry of `key` within the window.
    fn take(&mut self, key: &Key, now_ns: i64) -> Option<Entry> {
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

    fn insert(&mut self, key: Key, e: Entry, evicted: &mut u64) {
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

/// The decision engine: one per worker, fed datagrams in capture order.
pub struct Deduplicator {
    config: DedupConfig,
    stats: DedupStats,
    span: Table,
    /// Raw messages that no HEP copy has claimed yet.
    raws: Table,
    /// HEP copies that no raw message has claimed yet.
    heps: Table,
    next_seq: u64,
    flow_duplicates: HashMap<Flow, u64>,
}

impl Deduplicator {
    pub fn new(config: DedupConfig) -> Deduplicator {
        Deduplicator {
            span: Table::new(config.span_window_ns, config.max_entries),
            raws: Table::new(config.hep_window_ns, config.max_entries),
            heps: Table::new(config.hep_window_ns, config.max_entries),
            config,
            stats: DedupStats::default(),
            next_seq: 0,
            flow_duplicates: HashMap::new(),
        }
    }

    pub fn config(&self) -> &DedupConfig {
        &self.config
    }

    pub fn stats(&self) -> &DedupStats {
        &self.stats
    }

    /// SPAN duplicates dropped so far, per flow.
    pub fn flow_duplicates(&self) -> &HashMap<Flow, u64> {
        &self.flow_duplicates
    }

    /// Hands over the per-flow duplicate counts and starts afresh (e.g. at a file boundary).
    pub fn take_flow_duplicates(&mut self) -> HashMap<Flow, u64> {
        std::mem::take(&mut self.flow_duplicates)
    }

    /// Decide on one datagram. `now_ns` is the capture time of the record that completed it (for
    /// HEP, the outer packet's time, not the agent's timestamp inside).
    pub fn push(&mut self, dg: &Datagram<'_>, now_ns: i64) -> Verdict {
        self.stats.datagrams += 1;
        if self.config.is_noop() {
            return Verdict::Keep { seq: self.keep() };
        }
        let mirrorable = self.config.hep_mirrors && is_mirrorable(dg.payload);
        if !self.config.span && !mirrorable {
            // Media is the bulk of a trunk capture: without SPAN dedup it can neither be a
            // duplicate nor have a mirror, so it is not worth hashing.
            return Verdict::Keep { seq: self.keep() };
        }
        let id = self.stats.datagrams;
        let is_hep = dg.hep.is_some() || dg.encap.contains(Encap::HEP);
        let flow = Flow::of(dg);
        let digest = xxh3_64(dg.payload);
        let len = dg.payload.len();
        let entry = |seq| Entry {
            now_ns,
            id,
            seq,
            capture_id: dg.hep.and_then(|h| h.capture_id),
            location: dg.locations.first().copied(),
        };

        // The SPAN key keeps HEP copies apart from raw messages: a HEP copy 200 µs after its raw
        // message is a mirror, not a duplicate.
        let span_key = Key::new(digest, len, flow, is_hep);
        if self.config.span {
            self.span.expire(now_ns);
            if self.span.contains(&span_key, now_ns) {
                self.stats.span_duplicates += 1;
                *self.flow_duplicates.entry(flow).or_default() += 1;
                return Verdict::Duplicate { flow };
            }
        }

        let mirror_key = Key::new(digest, len, flow, false);
        if mirrorable {
            self.raws.expire(now_ns);
            self.heps.expire(now_ns);
            if is_hep {
                if let Some(raw) = self.raws.take(&mirror_key, now_ns) {
                    self.stats.hep_mirrors += 1;
                    // Remembered so that a SPAN duplicate of this copy is a duplicate, not a
                    // message of its own.
                    if self.config.span {
                        self.span
                            .insert(span_key, entry(raw.seq), &mut self.stats.evicted);
                    }
                    return Verdict::Mirror {
                        of: raw.seq,
                        mirror: Mirror {
                            capture_id: dg.hep.and_then(|h| h.capture_id),
                            now_ns,
                            location: dg.locations.first().copied(),
                        },
                    };
                }
            } else if let Some(copy) = self.heps.take(&mirror_key, now_ns) {
                self.stats.hep_mirrors += 1;
                self.stats.hep_mirrors_before_raw += 1;
                let seq = self.keep();
                if self.config.span {
                    self.span
                        .insert(span_key, entry(seq), &mut self.stats.evicted);
                }
                return Verdict::KeepMirrored {
                    seq,
                    mirror: Mirror {
                        capture_id: copy.capture_id,
                        now_ns: copy.now_ns,
                        location: copy.location,
                    },
                    withdraw: copy.seq,
                };
            }
        }

        let seq = self.keep();
        if self.config.span {
            self.span
                .insert(span_key, entry(seq), &mut self.stats.evicted);
        }
        if mirrorable {
            let table = if is_hep {
                &mut self.heps
            } else {
                &mut self.raws
            };
            table.insert(mirror_key, entry(seq), &mut self.stats.evicted);
        }
        Verdict::Keep { seq }
    }

    fn keep(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stats.kept += 1;
        seq
    }
}

/// HEP agents forward text signalling verbatim but re-encode media reports (RTCP as JSON), so only
/// payloads that start like a text protocol can have a raw twin; testing the first byte keeps RTP
/// (version bits 10xxxxxx) out of the 1 s mirror tables.
fn is_mirrorable(payload: &[u8]) -> bool {
    payload.first().is_some_and(u8::is_ascii_alphabetic)
}

/// A kept item leaving the delay buffer, with the HEP copy that mirrored it, if any.
#[derive(Debug)]
pub struct Released<T> {
    pub item: T,
    pub mirrored_by: Option<Mirror>,
}

/// Bounds of the delay buffer; beyond them the oldest item leaves early (counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelayLimits {
    pub max_items: usize,
    pub max_bytes: usize,
}

impl Default for DelayLimits {
    fn default() -> Self {
        DelayLimits {
            max_items: 65_536,
            max_bytes: 64 << 20,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DelayStats {
    /// Items released before their hold time because the buffer was full.
    pub released_early: u64,
    /// Mirrors whose raw message had already left: dropped without a note on it.
    pub notes_missed: u64,
    /// HEP copies already released when their raw message came: both were emitted.
    pub withdrawals_missed: u64,
    pub peak_items: usize,
}

struct Held<T> {
    now_ns: i64,
    bytes: usize,
    item: Option<T>,
    mirror: Option<Mirror>,
}

/// A [`Deduplicator`] that holds kept items back for the HEP window, so that the raw message leaves
/// with its mirror noted and a HEP copy seen first can still be withdrawn; releases in push order.
pub struct DelayBuffer<T> {
    dedup: Deduplicator,
    limits: DelayLimits,
    hold_ns: i64,
    queue: VecDeque<Held<T>>,
    /// `seq` of `queue[0]`; kept items get consecutive seqs, so `seq - first_seq` indexes the queue.
    first_seq: u64,
    bytes: usize,
    stats: DelayStats,
}

impl<T> DelayBuffer<T> {
    pub fn new(config: DedupConfig, limits: DelayLimits) -> DelayBuffer<T> {
        DelayBuffer::with_dedup(Deduplicator::new(config), limits)
    }

    /// A buffer whose deduplicator has already seen earlier datagrams (a ring file's pre-roll).
    pub fn with_dedup(dedup: Deduplicator, limits: DelayLimits) -> DelayBuffer<T> {
        // Without mirror pairing nothing can change a kept item after the fact: no need to hold.
        let hold_ns = if dedup.config().hep_mirrors {
            dedup.config().hep_window_ns
        } else {
            0
        };
        DelayBuffer {
            dedup,
            limits,
            hold_ns,
            queue: VecDeque::new(),
            first_seq: 0,
            bytes: 0,
            stats: DelayStats::default(),
        }
    }

    pub fn dedup(&self) -> &Deduplicator {
        &self.dedup
    }

    pub fn stats(&self) -> &DelayStats {
        &self.stats
    }

    /// Items held now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Push one datagram; `make` builds the item to hold (and its size in bytes) only if it is kept.
    /// Items whose hold time is up are handed to `out`, oldest first.
    pub fn push<M, F>(&mut self, dg: &Datagram<'_>, now_ns: i64, make: M, mut out: F) -> Verdict
    where
        M: FnOnce() -> (T, usize),
        F: FnMut(Released<T>),
    {
        let verdict = self.dedup.push(dg, now_ns);
        match verdict {
            Verdict::Keep { seq } => self.hold(seq, now_ns, make, None),
            Verdict::KeepMirrored {
                seq,
                mirror,
                withdraw,
            } => {
                match self.slot(withdraw) {
                    Some(h) if h.item.is_some() => {
                        h.item = None;
                        let b = h.bytes;
                        self.bytes -= b;
                    }
                    _ => self.stats.withdrawals_missed += 1,
                }
                self.hold(seq, now_ns, make, Some(mirror));
            }
            Verdict::Mirror { of, mirror } => match self.slot(of) {
                Some(h) if h.item.is_some() => h.mirror = Some(mirror),
                _ => self.stats.notes_missed += 1,
            },
            Verdict::Duplicate { .. } => {}
        }
        self.release(now_ns, &mut out);
        verdict
    }

    /// Release everything held (end of input).
    pub fn finish<F: FnMut(Released<T>)>(&mut self, mut out: F) {
        while let Some(h) = self.queue.pop_front() {
            self.first_seq += 1;
            self.emit(h, &mut out);
        }
    }

    fn slot(&mut self, seq: u64) -> Option<&mut Held<T>> {
        let i = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        self.queue.get_mut(i)
    }

    fn hold<M: FnOnce() -> (T, usize)>(
        &mut self,
        seq: u64,
        now_ns: i64,
        make: M,
        mirror: Option<Mirror>,
    ) {
        if self.queue.is_empty() {
            self.first_seq = seq;
        }
        let (item, bytes) = make();
        self.bytes += bytes;
        self.queue.push_back(Held {
            now_ns,
            bytes,
            item: Some(item),
            mirror,
        });
        self.stats.peak_items = self.stats.peak_items.max(self.queue.len());
    }

    fn release<F: FnMut(Released<T>)>(&mut self, now_ns: i64, out: &mut F) {
        while let Some(front) = self.queue.front() {
            let due = self.hold_ns == 0 || front.now_ns.saturating_add(self.hold_ns) < now_ns;
            let full =
                self.queue.len() > self.limits.max_items || self.bytes > self.limits.max_bytes;
            if !due && !full {
                break;
            }
            if !due && front.item.is_some() {
                self.stats.released_early += 1;
            }
            let Some(h) = self.queue.pop_front() else {
                break;
            };
            self.first_seq += 1;
            self.emit(h, out);
        }
    }

    fn emit<F: FnMut(Released<T>)>(&mut self, h: Held<T>, out: &mut F) {
        if let Some(item) = h.item {
            self.bytes -= h.bytes;
            out(Released {
                item,
                mirrored_by: h.mirror,
            });
        }
    }
}

/// HEP metadata that owns its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedHepInfo {
    pub version: u8,
    pub capture_id: Option<u32>,
    pub auth_key: Option<Vec<u8>>,
    pub node_name: Option<Vec<u8>>,
    pub payload_type: Option<u8>,
}

/// A [`Datagram`] that owns its bytes, to be held in a [`DelayBuffer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedDatagram {
    pub ts_ns: i64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub transport: Transport,
    pub encap: Encap,
    pub vlan: Option<u16>,
    pub payload: Vec<u8>,
    pub locations: Vec<PacketLocation>,
    pub hep: Option<OwnedHepInfo>,
}

impl OwnedDatagram {
    pub fn new(dg: &Datagram<'_>) -> OwnedDatagram {
        OwnedDatagram {
            ts_ns: dg.ts_ns,
            src: dg.src,
            dst: dg.dst,
            src_port: dg.src_port,
            dst_port: dg.dst_port,
            transport: dg.transport,
            encap: dg.encap,
            vlan: dg.vlan,
            payload: dg.payload.to_vec(),
            locations: dg.locations.to_vec(),
            hep: dg.hep.map(|h| OwnedHepInfo {
                version: h.version,
                capture_id: h.capture_id,
                auth_key: h.auth_key.map(<[u8]>::to_vec),
                node_name: h.node_name.map(<[u8]>::to_vec),
                payload_type: h.payload_type,
            }),
        }
    }

    pub fn as_datagram(&self) -> Datagram<'_> {
        Datagram {
            ts_ns: self.ts_ns,
            src: self.src,
            dst: self.dst,
            src_port: self.src_port,
            dst_port: self.dst_port,
            transport: self.transport,
            encap: self.encap,
            vlan: self.vlan,
            payload: &self.payload,
            locations: &self.locations,
            hep: self.hep.as_ref().map(|h| HepInfo {
                version: h.version,
                capture_id: h.capture_id,
                auth_key: h.auth_key.as_deref(),
                node_name: h.node_name.as_deref(),
                payload_type: h.payload_type,
            }),
        }
    }

    /// Approximate memory held, for the delay buffer's byte bound.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.payload.len()
            + self.locations.len() * std::mem::size_of::<PacketLocation>()
            + self.hep.as_ref().map_or(0, |h| {
                h.auth_key.as_ref().map_or(0, Vec::len) + h.node_name.as_ref().map_or(0, Vec::len)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const MS: i64 = 1_000_000;
    const US: i64 = 1_000;
    const INVITE: &[u8] =
        b"INVITE sip:bob@10.0.0.2 SIP/2.0\r\nCall-ID: a@b\r\nContent-Length: 0\r\n\r\n";
    const OK: &[u8] = b"SIP/2.0 200 OK\r\nCall-ID: a@b\r\nContent-Length: 0\r\n\r\n";
    const RTP: &[u8] = &[
        0x80, 0x00, 0x00, 0x01, 0, 0, 0, 160, 0x11, 0x22, 0x33, 0x44, 0xff, 0xff,
    ];
    const HEP: HepInfo<'static> = HepInfo {
        version: 3,
        capture_id: Some(2001),
        auth_key: None,
        node_name: None,
        payload_type: Some(1),
    };

    fn raw(payload: &'static [u8], ts_ns: i64) -> Datagram<'static> {
        Datagram {
            ts_ns,
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            src_port: 5060,
            dst_port: 5060,
            transport: Transport::Udp,
            encap: Encap::default(),
            vlan: None,
            payload,
            locations: &[],
            hep: None,
        }
    }

    fn hep(payload: &'static [u8], ts_ns: i64) -> Datagram<'static> {
        let mut d = raw(payload, ts_ns);
        d.encap = Encap::HEP;
        d.hep = Some(HEP);
        d
    }

    fn span() -> DedupConfig {
        DedupConfig {
            span: true,
            ..DedupConfig::default()
        }
    }

    #[test]
    fn span_copy_20us_later_on_the_same_flow_is_a_duplicate() {
        let mut d = Deduplicator::new(span());
        assert_eq!(d.push(&raw(INVITE, 0), 0), Verdict::Keep { seq: 0 });
        let v = d.push(&raw(INVITE, 20 * US), 20 * US);
        assert!(matches!(v, Verdict::Duplicate { .. }), "{v:?}");
        assert_eq!(d.stats().span_duplicates, 1);
        assert_eq!(
            d.flow_duplicates().get(&Flow::of(&raw(INVITE, 0))),
            Some(&1)
        );
        // RTP is deduplicated the same way.
        assert!(d.push(&raw(RTP, MS), MS).is_kept());
        assert!(!d.push(&raw(RTP, MS + 20 * US), MS + 20 * US).is_kept());
    }

    #[test]
    fn sip_retransmission_after_t1_is_never_a_duplicate() {
        let mut d = Deduplicator::new(span());
        assert!(d.push(&raw(OK, 0), 0).is_kept());
        assert!(!d.push(&raw(OK, 20 * US), 20 * US).is_kept());
        assert_eq!(
            d.push(&raw(OK, SIP_T1_NS), SIP_T1_NS),
            Verdict::Keep { seq: 1 },
            "a retransmission T1 later is a message of its own"
        );
        // And its own SPAN copy is a duplicate of the retransmission.
        assert!(!d
            .push(&raw(OK, SIP_T1_NS + 20 * US), SIP_T1_NS + 20 * US)
            .is_kept());
        assert_eq!(d.stats().span_duplicates, 2);
        let long = DedupConfig {
            span_window_ns: SIP_T1_NS,
            ..span()
        };
        assert_eq!(
            long.validate(),
            Err(DedupError::SpanWindowNotBelowT1(SIP_T1_NS))
        );
        assert_eq!(span().validate(), Ok(()));
    }

    #[test]
    fn same_payload_on_another_flow_or_outside_the_window_is_kept() {
        let mut d = Deduplicator::new(span());
        assert!(d.push(&raw(INVITE, 0), 0).is_kept());
        let mut other = raw(INVITE, 10 * US);
        other.src_port = 5062;
        assert!(d.push(&other, 10 * US).is_kept());
        assert!(d.push(&raw(INVITE, 6 * MS), 6 * MS).is_kept());
        assert!(d.push(&raw(OK, 6 * MS), 6 * MS).is_kept());
        assert_eq!(d.stats().span_duplicates, 0);
    }

    #[test]
    fn dedup_off_keeps_every_copy() {
        let mut d = Deduplicator::new(DedupConfig::default());
        assert!(d.push(&raw(INVITE, 0), 0).is_kept());
        assert!(d.push(&raw(INVITE, 20 * US), 20 * US).is_kept());
        let mut none = Deduplicator::new(DedupConfig {
            hep_mirrors: false,
            ..DedupConfig::default()
        });
        assert!(none.push(&raw(INVITE, 0), 0).is_kept());
        assert!(none.push(&hep(INVITE, 0), 200 * US).is_kept());
    }

    #[test]
    fn hep_copy_after_its_raw_message_is_a_mirror_of_it() {
        let mut d = Deduplicator::new(DedupConfig::default());
        assert_eq!(d.push(&raw(INVITE, 0), 0), Verdict::Keep { seq: 0 });
        assert_eq!(d.push(&raw(OK, MS), MS), Verdict::Keep { seq: 1 });
        let v = d.push(&hep(INVITE, 0), MS + 200 * US);
        let Verdict::Mirror { of, mirror } = v else {
            panic!("{v:?}")
        };
        assert_eq!((of, mirror.capture_id), (0, Some(2001)));
        assert_eq!(mirror.now_ns, MS + 200 * US);
        // A second HEP copy has no raw message left to mirror: a message of its own.
        assert_eq!(d.push(&hep(INVITE, 0), 2 * MS), Verdict::Keep { seq: 2 });
        assert_eq!(d.stats().hep_mirrors, 1);
    }

    #[test]
    fn hep_copy_before_its_raw_message_is_withdrawn_for_it() {
        let mut d = Deduplicator::new(DedupConfig::default());
        assert_eq!(d.push(&hep(INVITE, 0), 0), Verdict::Keep { seq: 0 });
        let v = d.push(&raw(INVITE, 300 * US), 300 * US);
        assert_eq!(
            v,
            Verdict::KeepMirrored {
                seq: 1,
                mirror: Mirror {
                    capture_id: Some(2001),
                    now_ns: 0,
                    location: None
                },
                withdraw: 0
            }
        );
        assert_eq!(d.stats().hep_mirrors_before_raw, 1);
    }

    #[test]
    fn hep_copy_outside_the_window_or_of_another_flow_is_a_message() {
        let mut d = Deduplicator::new(DedupConfig::default());
        assert!(d.push(&raw(INVITE, 0), 0).is_kept());
        assert!(d.push(&hep(INVITE, 0), 1_001 * MS).is_kept());
        let mut moved = hep(OK, 0);
        moved.dst_port = 5080;
        assert!(d.push(&raw(OK, 0), 1_002 * MS).is_kept());
        assert!(d.push(&moved, 1_003 * MS).is_kept());
        assert_eq!(d.stats().hep_mirrors, 0);
    }

    #[test]
    fn each_retransmission_pairs_with_its_own_hep_copy() {
        let mut d = Deduplicator::new(DedupConfig::default());
        assert!(d.push(&raw(OK, 0), 0).is_kept());
        assert!(d.push(&raw(OK, 500 * MS), 500 * MS).is_kept());
        let a = d.push(&hep(OK, 0), 500 * MS + 200 * US);
        let b = d.push(&hep(OK, 0), 500 * MS + 400 * US);
        assert!(matches!(a, Verdict::Mirror { of: 0, .. }), "{a:?}");
        assert!(matches!(b, Verdict::Mirror { of: 1, .. }), "{b:?}");
    }

    #[test]
    fn span_copy_of_a_hep_mirror_is_a_duplicate_not_a_message() {
        let mut d = Deduplicator::new(span());
        assert!(d.push(&raw(INVITE, 0), 0).is_kept());
        assert!(!d.push(&raw(INVITE, 0), 20 * US).is_kept());
        assert!(matches!(
            d.push(&hep(INVITE, 0), 200 * US),
            Verdict::Mirror { of: 0, .. }
        ));
        assert!(matches!(
            d.push(&hep(INVITE, 0), 220 * US),
            Verdict::Duplicate { .. }
        ));
        assert_eq!((d.stats().hep_mirrors, d.stats().span_duplicates), (1, 2));
    }

    #[test]
    fn rtp_is_never_paired_with_hep() {
        let mut d = Deduplicator::new(DedupConfig::default());
        assert!(d.push(&raw(RTP, 0), 0).is_kept());
        assert!(d.push(&hep(RTP, 0), 100 * US).is_kept());
        assert_eq!(d.stats().hep_mirrors, 0);
    }

    #[test]
    fn tables_stay_within_their_bound_and_count_evictions() {
        let mut d = Deduplicator::new(DedupConfig {
            max_entries: 2,
            ..span()
        });
        let payloads: [&'static [u8]; 3] = [b"A 1", b"B 2", b"C 3"];
        for (i, p) in payloads.iter().enumerate() {
            assert!(d.push(&raw(p, 0), i as i64 * US).is_kept());
        }
        assert!(d.span.live <= 2 && d.raws.live <= 2, "bounded");
        assert!(d.stats().evicted >= 2, "{:?}", d.stats());
        // The first was forgotten: its copy is no longer recognised.
        assert!(d.push(&raw(payloads[0], 0), 4 * US).is_kept());
        assert!(!d.push(&raw(payloads[2], 0), 5 * US).is_kept());
    }

    #[test]
    fn expired_entries_are_forgotten() {
        let mut d = Deduplicator::new(span());
        for i in 0..1000i64 {
            let p: &'static [u8] = if i % 2 == 0 { INVITE } else { OK };
            d.push(&raw(p, 0), i * 10 * MS);
        }
        // SPAN entries live 5 ms: only the latest is left.
        assert_eq!((d.span.live, d.span.order.len()), (1, 1));
        // Raw messages wait 1 s for a HEP copy, at most SLOTS of one payload.
        assert_eq!(d.raws.live, 2 * SLOTS);
        assert!(d.raws.order.len() <= 101, "{}", d.raws.order.len());
    }

    fn collect(
        buf: &mut DelayBuffer<&'static str>,
        dg: &Datagram<'_>,
        now: i64,
        name: &'static str,
        out: &mut Vec<(&'static str, Option<u32>)>,
    ) -> Verdict {
        buf.push(
            dg,
            now,
            || (name, 1),
            |r| out.push((r.item, r.mirrored_by.and_then(|m| m.capture_id))),
        )
    }

    #[test]
    fn delay_buffer_notes_a_later_mirror_on_the_raw_message_in_order() {
        let mut buf = DelayBuffer::new(DedupConfig::default(), DelayLimits::default());
        let mut out = Vec::new();
        collect(&mut buf, &raw(INVITE, 0), 0, "invite", &mut out);
        collect(&mut buf, &hep(INVITE, 0), 200 * US, "invite-hep", &mut out);
        collect(&mut buf, &raw(OK, 0), 10 * MS, "ok", &mut out);
        assert!(out.is_empty(), "held for the window: {out:?}");
        collect(
            &mut buf,
            &hep(OK, 0),
            10 * MS + 200 * US,
            "ok-hep",
            &mut out,
        );
        collect(&mut buf, &raw(b"BYE x", 0), 2_000 * MS, "bye", &mut out);
        assert_eq!(out, [("invite", Some(2001)), ("ok", Some(2001))]);
        buf.finish(|r| out.push((r.item, None)));
        assert_eq!(out.len(), 3);
        assert_eq!(out[2].0, "bye");
    }

    #[test]
    fn delay_buffer_withdraws_a_copy_seen_before_its_raw_message() {
        let mut buf = DelayBuffer::new(DedupConfig::default(), DelayLimits::default());
        let mut out = Vec::new();
        collect(&mut buf, &raw(OK, 0), 0, "earlier", &mut out);
        collect(&mut buf, &hep(INVITE, 0), 10 * US, "invite-hep", &mut out);
        collect(&mut buf, &raw(INVITE, 0), 50 * US, "invite", &mut out);
        buf.finish(|r| out.push((r.item, r.mirrored_by.and_then(|m| m.capture_id))));
        assert_eq!(out, [("earlier", None), ("invite", Some(2001))]);
        assert_eq!(
            buf.stats(),
            &DelayStats {
                peak_items: 3,
                ..DelayStats::default()
            }
        );
    }

    #[test]
    fn delay_buffer_is_bounded_and_counts_early_releases() {
        let limits = DelayLimits {
            max_items: 2,
            max_bytes: usize::MAX,
        };
        let mut buf = DelayBuffer::new(DedupConfig::default(), limits);
        let mut out = Vec::new();
        let payloads: [&'static [u8]; 3] = [b"A 1", b"B 2", b"C 3"];
        let names = ["a", "b", "c"];
        for i in 0..3 {
            collect(&mut buf, &raw(payloads[i], 0), i as i64, names[i], &mut out);
        }
        assert_eq!(out, [("a", None)]);
        assert_eq!(buf.len(), 2);
        // The mirror of the released one is still dropped, without a note.
        let v = collect(&mut buf, &hep(payloads[0], 0), 10, "a-hep", &mut out);
        assert!(matches!(v, Verdict::Mirror { of: 0, .. }));
        assert_eq!(buf.stats().released_early, 1);
        assert_eq!(buf.stats().notes_missed, 1);
    }

    #[test]
    fn without_mirror_pairing_nothing_is_held() {
        let config = DedupConfig {
            hep_mirrors: false,
            span: true,
            ..DedupConfig::default()
        };
        let mut buf = DelayBuffer::new(config, DelayLimits::default());
        let mut out = Vec::new();
        collect(&mut buf, &raw(INVITE, 0), 0, "a", &mut out);
        collect(&mut buf, &raw(INVITE, 0), 20 * US, "a-dup", &mut out);
        assert_eq!(out, [("a", None)]);
        assert!(buf.is_empty());
    }

    #[test]
    fn owned_datagram_round_trips() {
        let locs = [PacketLocation {
            file_id: 1,
            offset: 24,
            record_len: 100,
        }];
        let mut dg = hep(INVITE, 7);
        dg.locations = &locs;
        dg.vlan = Some(100);
        let owned = OwnedDatagram::new(&dg);
        let back = owned.as_datagram();
        assert_eq!(back.payload, INVITE);
        assert_eq!(back.locations, &locs);
        assert_eq!(back.hep, dg.hep);
        assert_eq!(
            (back.ts_ns, back.vlan, back.encap),
            (7, Some(100), Encap::HEP)
        );
        assert!(owned.size() > INVITE.len());
    }
}
