//! The media pass's reading half: decodes a run's files in order and reduces each datagram to the
//! facts the analysis needs, so that reading and analysing can run on two threads.
//!
//! Why the split sits here: on an RTP-heavy trunk the pass is the run's critical path, and a
//! quarter of it was reading, decoding and looking at payload bytes, none of which depends on the
//! analysis state. Everything that does (SDP announcements, which classification applies, the
//! streams) stays in `MediaPass`, which takes these events in capture order, so the result is the
//! same as reading and analysing on one thread. Events are plain values in reused chunks (no
//! allocation per packet); payload bytes are copied only for the rare datagrams whose payload the
//! analysis parses (SIP, MEGACO, RTCP candidates).
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;

use super::{Flow5, MediaConfig, EVICT_EVERY_NS, IDLE_NS};
use crate::decode::{Datagram, Decoder, DedupConfig, Deduplicator, Transport, Verdict};
use crate::rtp::{self, Classification, RtpFields, RtpHeader};
use crate::sip;
use crate::source::{open_capture, CaptureReader, PacketLocation};

/// Where and when a datagram was captured: what the report rows cite.
#[derive(Clone, Copy, Debug)]
pub(super) struct Origin {
    pub ts_ns: i64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub location: PacketLocation,
}

impl Origin {
    pub fn of(dg: &Datagram<'_>) -> Origin {
        Origin {
            ts_ns: dg.ts_ns,
            src: dg.src,
            dst: dg.dst,
            src_port: dg.src_port,
            dst_port: dg.dst_port,
            location: dg.locations.first().copied().unwrap_or_default(),
        }
    }
}

/// A UDP datagram that may be media: its payload-only classifications are computed here; which
/// one applies depends on the SDP seen before it, which the analysis knows. Kept small (88
/// bytes): millions of them cross from the reading thread's cache to the analysing one's.
#[derive(Clone, Copy, Debug)]
pub(super) struct UdpFacts {
    pub ts_ns: i64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// The RTP header fields, when either classification says RTP and the header parses.
    pub rtp: Option<RtpFields>,
    pub looks_like_rtcp: bool,
    /// `rtp::classify_known_flow` of the payload (for a flow announced in SDP).
    pub known: Classification,
    /// `rtp::classify_heuristic` of the payload (for any other flow).
    pub heuristic: Classification,
    /// The payload and location in the chunk's `kept`, only when it may be RTCP.
    pub kept: Option<u32>,
    /// The reader's id of the 5-tuple (see `FlowIds`).
    pub flow: u32,
}

/// Small ids for the UDP flows (5-tuples) being read, so that the analysis keeps what it knows
/// of a flow in a vector instead of hashing its addresses again for every packet (see
/// `MediaPass::udp`). An id is reused once its flow has been idle as long as a stream may be;
/// the analysis checks the 5-tuple, so an id is only ever a hint.
///
/// An open-addressing table of its own rather than a `HashMap`: on a trunk the lookup was a
/// cache miss per datagram (the table goes cold behind the stream of packet bytes), 8% of the
/// run's CPU. Here a flow's slot is known from its hash, so the reader prefetches it when the
/// datagram is reduced and gives the id a few datagrams later (`defer`, `resolve`), in the
/// same order; `HashMap` offers no way to do that.
#[derive(Debug, Default)]
struct FlowIds {
    /// Linear probing, a power of two long (or empty), at most half full.
    slots: Vec<Option<FlowEntry>>,
    len: usize,
    free: Vec<u32>,
    hasher: foldhash::fast::RandomState,
    /// Datagrams whose id is still to be given, oldest first: their event's index in the chunk
    /// and their flow's hash. The flow and time are read back from the event (in L1 by then):
    /// queuing them too cost a store-forwarding stall per datagram, 4.6% of the run's samples.
    pending: std::collections::VecDeque<(usize, u64)>,
}

#[derive(Clone, Copy, Debug)]
struct FlowEntry {
    key: FlowKey,
    id: u32,
    last_ns: i64,
}

/// Datagrams between a flow's prefetch and its lookup: enough for the slot to arrive from a
/// far cache level, few enough that the pending events are still in L1.
const FLOW_LAG: usize = 8;

/// A 5-tuple hashed in one or three words: the derived hash of two `IpAddr`s and two ports
/// feeds the hasher ten times, which made this map 40% of the reading thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FlowKey(Flow5);

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let (src, src_port, dst, dst_port) = self.0;
        let ports = u32::from(src_port) << 16 | u32::from(dst_port);
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => h.write_u128(
                u128::from(s.to_bits()) << 64 | u128::from(d.to_bits()) << 32 | u128::from(ports),
            ),
            (s, d) => {
                let bits = |a: IpAddr| match a {
                    IpAddr::V4(a) => u128::from(a.to_bits()),
                    IpAddr::V6(a) => a.to_bits(),
                };
                h.write_u128(bits(s));
                h.write_u128(bits(d));
                h.write_u32(ports);
            }
        }
    }
}

impl FlowIds {
    fn hash(&self, key: &FlowKey) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    /// The flow's id now (its last time set to `ts_ns`), a new one for a new flow.
    #[cfg(test)]
    fn id(&mut self, flow: Flow5, ts_ns: i64) -> u32 {
        let key = FlowKey(flow);
        let hash = self.hash(&key);
        self.id_hashed(key, hash, ts_ns)
    }

    fn id_hashed(&mut self, key: FlowKey, hash: u64, ts_ns: i64) -> u32 {
        if (self.len + 1) * 2 > self.slots.len() {
            self.rebuild((self.slots.len() * 2).max(1024));
        }
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            match &mut self.slots[i] {
                Some(e) if e.key == key => {
                    e.last_ns = ts_ns;
                    return e.id;
                }
                Some(_) => i = (i + 1) & mask,
                empty @ None => {
                    let id = self.free.pop().unwrap_or(self.len as u32);
                    *empty = Some(FlowEntry {
                        key,
                        id,
                        last_ns: ts_ns,
                    });
                    self.len += 1;
                    return id;
                }
            }
        }
    }

    /// Re-lays the live entries into `capacity` slots (a power of two).
    fn rebuild(&mut self, capacity: usize) {
        let old = std::mem::replace(&mut self.slots, vec![None; capacity]);
        let mask = capacity - 1;
        for e in old.into_iter().flatten() {
            let mut i = self.hash(&e.key) as usize & mask;
            while self.slots[i].is_some() {
                i = (i + 1) & mask;
            }
            self.slots[i] = Some(e);
        }
    }

    fn forget_idle(&mut self, before_ns: i64) {
        if self.slots.is_empty() {
            return; // nothing read yet (e.g. housekeeping due at a file's first packet)
        }
        let mut kept = 0;
        for slot in &mut self.slots {
            match slot {
                Some(e) if e.last_ns < before_ns => {
                    self.free.push(e.id);
                    *slot = None;
                }
                Some(_) => kept += 1,
                None => {}
            }
        }
        self.len = kept;
        // removal leaves holes in probe chains: lay the survivors out again
        self.rebuild(self.slots.len());
    }

    /// Queues a datagram's flow for an id (see `resolve`), its slot starting to load.
    fn defer(&mut self, event: usize, flow: Flow5) {
        let key = FlowKey(flow);
        let hash = self.hash(&key);
        if let Some(slot) = self
            .slots
            .get(hash as usize & self.slots.len().wrapping_sub(1))
        {
            crate::rtp::stream::prefetch(slot);
        }
        self.pending.push_back((event, hash));
    }

    /// Gives the queued datagrams beyond `keep` their ids, oldest first, in their events.
    fn resolve(&mut self, events: &mut [Event], keep: usize) {
        while self.pending.len() > keep {
            let Some((event, hash)) = self.pending.pop_front() else {
                break;
            };
            if let Some(Event::Udp(f)) = events.get_mut(event) {
                let key = FlowKey((f.src, f.src_port, f.dst, f.dst_port));
                f.flow = self.id_hashed(key, hash, f.ts_ns);
            }
        }
    }
}

/// A payload the analysis parses, copied into the chunk, and where it was captured.
#[derive(Clone, Debug)]
pub(super) struct Kept {
    pub location: PacketLocation,
    pub payload: Range<u32>,
}

#[derive(Clone, Debug)]
pub(super) enum Event {
    /// A file begins; `isolated` when it starts before the latest capture time already read
    /// (see `MediaPass::file`).
    FileStart {
        isolated: bool,
    },
    /// Capture-time housekeeping is due at this time (idle streams and announcements).
    Evict(i64),
    /// A SPAN duplicate was dropped.
    SpanDuplicate(Flow5),
    /// A SIP message (it parses), payload in the chunk's bytes.
    Sip {
        origin: Origin,
        payload: Range<u32>,
    },
    /// A MEGACO message, payload in the chunk's bytes.
    Megaco {
        origin: Origin,
        payload: Range<u32>,
    },
    Udp(UdpFacts),
    /// A file ends: the capturer's drops it reports, and its capture time span.
    FileEnd {
        drops: u64,
        first_ts: Option<i64>,
        last_ts: i64,
    },
}

/// Events in capture order, with the payload bytes they refer to.
#[derive(Debug, Default)]
pub(super) struct Chunk {
    pub events: Vec<Event>,
    pub kept: Vec<Kept>,
    pub bytes: Vec<u8>,
}

impl Chunk {
    pub fn payload(&self, r: &Range<u32>) -> &[u8] {
        &self.bytes[r.start as usize..r.end as usize]
    }

    /// A UDP datagram's kept payload and origin.
    pub fn kept(&self, f: &UdpFacts) -> Option<(Origin, &[u8])> {
        let k = &self.kept[f.kept? as usize];
        let origin = Origin {
            ts_ns: f.ts_ns,
            src: f.src,
            dst: f.dst,
            src_port: f.src_port,
            dst_port: f.dst_port,
            location: k.location,
        };
        Some((origin, self.payload(&k.payload)))
    }

    fn keep(&mut self, payload: &[u8]) -> Range<u32> {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(payload);
        start..self.bytes.len() as u32
    }

    fn full(&self) -> bool {
        self.events.len() >= CHUNK_EVENTS || self.bytes.len() >= CHUNK_BYTES
    }
}

/// Events per chunk: a chunk (~90 bytes an event) stays within a core's L2 cache as it passes
/// from the reading thread to the analysing one.
const CHUNK_EVENTS: usize = 1024;
const CHUNK_BYTES: usize = 256 * 1024;

/// The capture clock the reading half keeps for the pass: the latest time read (out-of-order
/// files) and when the next housekeeping is due. Carried in `MediaState` between runs.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Clock {
    pub clock_ns: Option<i64>,
    pub next_evict_ns: Option<i64>,
}

impl Clock {
    /// Advances to a packet's time; true when housekeeping is due before it.
    fn tick(&mut self, ts_ns: i64) -> bool {
        self.clock_ns = Some(self.clock_ns.map_or(ts_ns, |c| c.max(ts_ns)));
        let next = *self.next_evict_ns.get_or_insert(ts_ns + EVICT_EVERY_NS);
        if ts_ns < next {
            return false;
        }
        self.next_evict_ns = Some(ts_ns + EVICT_EVERY_NS);
        true
    }
}

/// Reads files in order and hands their events, a chunk at a time, to `sink`, which returns an
/// empty chunk to fill next, or None to stop (the analysis failed).
pub(super) struct Reader<'c> {
    cfg: &'c MediaConfig,
    pub clock: Clock,
    chunk: Chunk,
    flows: FlowIds,
}

impl<'c> Reader<'c> {
    pub fn new(cfg: &'c MediaConfig, clock: Clock) -> Reader<'c> {
        Reader {
            cfg,
            clock,
            chunk: Chunk::default(),
            flows: FlowIds::default(),
        }
    }

    /// One file's events, the last of them handed over before returning. False when the sink
    /// stopped.
    pub fn file(
        &mut self,
        path: &Path,
        file_id: u32,
        sink: &mut dyn FnMut(Chunk) -> Option<Chunk>,
    ) -> bool {
        // the clock carried past a file read out of order (see `read`)
        let mut carried = None;
        let go_on = match open_capture(path, file_id) {
            Ok(reader) => self.read(reader, &mut carried, sink),
            // reported by the SIP scan; the file still starts and ends
            Err(_) => {
                self.chunk.events.push(Event::FileStart { isolated: false });
                self.chunk.events.push(Event::FileEnd {
                    drops: 0,
                    first_ts: None,
                    last_ts: i64::MIN,
                });
                true
            }
        };
        if let Some(c) = carried {
            self.clock = c;
        }
        go_on && self.hand_over(sink)
    }

    fn hand_over(&mut self, sink: &mut dyn FnMut(Chunk) -> Option<Chunk>) -> bool {
        self.flows.resolve(&mut self.chunk.events, 0);
        let full = std::mem::take(&mut self.chunk);
        match sink(full) {
            Some(mut empty) => {
                empty.events.clear();
                empty.kept.clear();
                empty.bytes.clear();
                self.chunk = empty;
                true
            }
            None => false,
        }
    }

    /// A read error ends the file here (the SIP scan reports it). A file whose first packet is
    /// older than the clock is isolated: analysed with fresh state, its clock included, while
    /// the carried clock waits in `carried`.
    fn read(
        &mut self,
        mut reader: CaptureReader,
        carried: &mut Option<Clock>,
        sink: &mut dyn FnMut(Chunk) -> Option<Chunk>,
    ) -> bool {
        let mut decoder = Decoder::new(self.cfg.decode.clone());
        let mut dedup = self.cfg.dedup.span.then(|| {
            Deduplicator::new(DedupConfig {
                hep_mirrors: false,
                ..self.cfg.dedup.clone()
            })
        });
        let mut first_ts: Option<i64> = None;
        let mut last_ts = i64::MIN;
        loop {
            // Borrowed where it was built: moving the packet out of the result copied it with
            // wide loads over its narrow stores (a store-forwarding stall per packet).
            let next = reader.next_packet();
            let Ok(Some(p)) = &next else { break };
            if first_ts.is_none() {
                first_ts = Some(p.ts_ns);
                let isolated = self.clock.clock_ns.is_some_and(|c| p.ts_ns < c);
                if isolated {
                    *carried = Some(std::mem::take(&mut self.clock));
                }
                self.chunk.events.push(Event::FileStart { isolated });
            }
            last_ts = last_ts.max(p.ts_ns);
            if self.clock.tick(p.ts_ns) {
                self.chunk.events.push(Event::Evict(p.ts_ns));
                self.flows.resolve(&mut self.chunk.events, 0);
                self.flows.forget_idle(p.ts_ns - IDLE_NS);
            }
            let now = p.ts_ns;
            let chunk = &mut self.chunk;
            let flows = &mut self.flows;
            decoder.decode(p, |dg| {
                if let Some(d) = dedup.as_mut() {
                    if let Verdict::Duplicate { .. } = d.push(dg, now) {
                        let flow = (dg.src, dg.src_port, dg.dst, dg.dst_port);
                        chunk.events.push(Event::SpanDuplicate(flow));
                        return;
                    }
                }
                reduce(dg, chunk, flows);
            });
            if self.chunk.full() && !self.hand_over(sink) {
                return false;
            }
        }
        if first_ts.is_none() {
            self.chunk.events.push(Event::FileStart { isolated: false });
        }
        let (chunk, flows) = (&mut self.chunk, &mut self.flows);
        decoder.finish(|dg| reduce(dg, chunk, flows));
        let drops: u64 = reader.stats().interface_drops.iter().map(|d| d.1).sum();
        self.chunk.events.push(Event::FileEnd {
            drops,
            first_ts,
            last_ts,
        });
        true
    }
}

/// The event of one datagram, if the analysis has any use for it: the payload-only half of
/// `MediaPass::udp`, in the same order of tests.
fn reduce(dg: &Datagram<'_>, chunk: &mut Chunk, flows: &mut FlowIds) {
    // tshark does not look for RTP inside HEP either; HEP copies of SIP are the scan's job.
    if dg.hep.is_some() {
        return;
    }
    let origin = Origin::of(dg);
    if sip::looks_like_sip(dg.payload) && sip::parse(dg.payload).is_ok() {
        let payload = chunk.keep(dg.payload);
        chunk.events.push(Event::Sip { origin, payload });
        return;
    }
    if dg.transport == Transport::Udp && sip::megaco::looks_like_megaco(dg.payload) {
        let payload = chunk.keep(dg.payload);
        chunk.events.push(Event::Megaco { origin, payload });
        return;
    }
    if dg.transport != Transport::Udp
        || rtp::tshark_claims_port(dg.src_port)
        || rtp::tshark_claims_port(dg.dst_port)
    {
        return;
    }
    let looks_like_rtcp = rtp::looks_like_rtcp(dg.payload);
    let known = rtp::classify_known_flow(dg.payload);
    let heuristic = rtp::classify_heuristic(dg.payload);
    let rtp = if known == Classification::Rtp || heuristic == Classification::Rtp {
        RtpHeader::parse(dg.payload).ok().map(|h| RtpFields::of(&h))
    } else {
        None
    };
    let kept =
        (looks_like_rtcp || known == Classification::Rtcp || heuristic == Classification::Rtcp)
            .then(|| {
                let payload = chunk.keep(dg.payload);
                chunk.kept.push(Kept {
                    location: origin.location,
                    payload,
                });
                chunk.kept.len() as u32 - 1
            });
    chunk.events.push(Event::Udp(UdpFacts {
        flow: u32::MAX, // given by `FlowIds::resolve` a few datagrams later
        ts_ns: dg.ts_ns,
        src: dg.src,
        dst: dg.dst,
        src_port: dg.src_port,
        dst_port: dg.dst_port,
        rtp,
        looks_like_rtcp,
        known,
        heuristic,
        kept,
    }));
    let flow = (dg.src, dg.src_port, dg.dst, dg.dst_port);
    flows.defer(chunk.events.len() - 1, flow);
    flows.resolve(&mut chunk.events, FLOW_LAG);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Millions of events cross cores per second of trunk: their size is the price of the split
    /// (at 200 bytes the split gained nothing; see benches/JOURNAL.md, fourth session).
    #[test]
    fn events_stay_small() {
        let (facts, event) = (size_of::<UdpFacts>(), size_of::<Event>());
        assert!(
            facts <= 88 && event <= 96,
            "UdpFacts {facts} B, Event {event} B"
        );
    }

    /// Thousands of flows through growth, idle eviction and the deferred path, against a plain
    /// model: a live flow keeps its id and live flows never share one, whether the ids are
    /// given at once (`id`) or a few datagrams later (`defer`, `resolve`).
    #[test]
    fn flow_ids_hold_through_growth_eviction_and_deferral() {
        const IDLE: i64 = 2_000;
        let flow = |n: u32| -> Flow5 {
            let a = IpAddr::from(n.to_be_bytes());
            (a, (n % 7) as u16, IpAddr::from([10, 0, 0, 1]), 4000)
        };
        // the model's check of one id given to flow n at time t
        fn check(model: &mut HashMap<u32, (u32, i64)>, n: u32, id: u32, t: i64) {
            if t % 5_000 == 4_999 {
                model.retain(|_, v| v.1 >= t - IDLE);
            }
            match model.get(&n) {
                Some(&(known, _)) => assert_eq!(id, known, "a live flow keeps its id"),
                None => assert!(model.values().all(|v| v.0 != id), "id {id} shared"),
            }
            model.insert(n, (id, t));
        }
        use std::collections::HashMap;
        let (mut deferred, mut at_once) = (FlowIds::default(), FlowIds::default());
        let mut model = HashMap::new();
        let mut events: Vec<Event> = Vec::new();
        let mut x: u64 = 7;
        for t in 0..60_000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if t % 5_000 == 4_999 {
                deferred.resolve(&mut events, 0);
                deferred.forget_idle(t - IDLE);
                at_once.forget_idle(t - IDLE);
            }
            // a working set that drifts, so flows go idle and new ones arrive
            let n = (t as u32 / 10) + (x % 3_000) as u32;
            check(&mut model, n, at_once.id(flow(n), t), t);
            events.push(Event::Evict(i64::from(n)));
            let (src, src_port, dst, dst_port) = flow(n);
            events.push(Event::Udp(UdpFacts {
                ts_ns: t,
                src,
                dst,
                src_port,
                dst_port,
                rtp: None,
                looks_like_rtcp: false,
                known: Classification::Neither,
                heuristic: Classification::Neither,
                kept: None,
                flow: u32::MAX,
            }));
            deferred.defer(events.len() - 1, flow(n));
            deferred.resolve(&mut events, FLOW_LAG);
        }
        deferred.resolve(&mut events, 0);
        assert!(at_once.slots.len() >= 4096, "the table grew");
        let mut model = HashMap::new();
        for pair in events.chunks(2) {
            let (Event::Evict(n), Event::Udp(f)) = (&pair[0], &pair[1]) else {
                panic!("events out of order");
            };
            assert_ne!(f.flow, u32::MAX, "an event left without its id");
            check(&mut model, *n as u32, f.flow, f.ts_ns);
        }
    }

    #[test]
    fn flow_ids_are_reused_only_after_their_flow_went_idle() {
        let flow = |n: u16| -> Flow5 {
            let a = IpAddr::from([10, 0, 0, 1]);
            (a, n, a, 9)
        };
        let mut ids = FlowIds::default();
        ids.forget_idle(0); // before any flow: housekeeping may come first
        assert_eq!(ids.id(flow(1), 0), 0);
        assert_eq!(ids.id(flow(2), 0), 1);
        assert_eq!(ids.id(flow(1), 5), 0, "a known flow keeps its id");
        ids.forget_idle(3); // flow 2 was last seen at 0
        assert_eq!(ids.id(flow(3), 6), 1, "the idle flow's id is reused");
        assert_eq!(ids.id(flow(2), 7), 2, "a returning flow gets a fresh id");
        let live: std::collections::HashSet<u32> =
            ids.slots.iter().flatten().map(|e| e.id).collect();
        assert_eq!(live.len(), 3, "ids of live flows stay distinct");
        // IPv6 and mixed flows are keyed apart from the IPv4 ones with the same ports
        let v6 = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
        let a = IpAddr::from([10, 0, 0, 1]);
        assert_eq!(ids.id((v6, 1, v6, 9), 8), 3);
        assert_eq!(ids.id((a, 1, v6, 9), 8), 4);
        assert_eq!(ids.id((v6, 1, v6, 9), 9), 3);
        assert_eq!(ids.id(flow(1), 9), 0);
    }
}
