//! Per-stream RTP analysis keyed by (src, src port, dst, dst port, SSRC): tshark's `rtp,streams`
//! columns computed as Wireshark 4.0 does, RFC 3550 A.1/A.8 metrics beside them, and extras.
//!
//! Wireshark-exact points (learnt from ui/tap-rtp-analysis.c, ui/tap-rtp-common.c, packet-rtp.c):
//! - the extended RTP timestamp is kept per *conversation*, not per stream: heuristic flows share
//!   one chain for both directions of a port pair, SDP flows have one per announced address;
//! - expected = last seq (not highest) + 65536·cycles − first seq + 1, lost = expected − packets
//!   (negative with duplicates); cycles counted when seq drops below the first seq;
//! - ms per tick uses the integer `clock_rate / 1000` (44100 Hz counts as 44 ticks per ms);
//! - packets with the marker bit, CN (PT 13/19) or following CN, or with a timestamp older than
//!   the last in-order one, are left out of delta/jitter min/max/mean; means divide by
//!   packets − 1 even though skipped packets gave no sample;
//! - clock rate 0 (telephone-event, unknown dynamic PT) leaves jitter at its "−1 / 0 / 0".
//!
//! Time is kept in integer ns relative to the stream's first packet, so the state is exact and
//! independent of how the capture was split; it derives serde so the pipeline can carry it
//! from one file to the next. (Two independently built states cannot be merged exactly: the
//! Wireshark algorithm is sequential. Carry the state over instead.)

use std::collections::HashMap;

/// Seeded (HashDoS-resistant) and several times faster than SipHash on these small keys; the
/// per-packet path does one lookup per packet.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::header::RtpHeader;
use crate::decode::Datagram;

/// One RTP stream: the 5-tuple plus SSRC, as tshark keys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamKey {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub ssrc: u32,
}

/// The Wireshark RTP conversation a packet belongs to (it carries the extended seq/timestamp).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConvKey {
    /// Found by the heuristic: both directions of an address/port pair, lower endpoint first.
    Pair { a: (IpAddr, u16), b: (IpAddr, u16) },
    /// Announced in SDP: every packet sent to (or from) this media address.
    Announced { addr: IpAddr, port: u16 },
}

impl ConvKey {
    pub fn heuristic(src: IpAddr, src_port: u16, dst: IpAddr, dst_port: u16) -> ConvKey {
        let (x, y) = ((src, src_port), (dst, dst_port));
        if x <= y {
            ConvKey::Pair { a: x, b: y }
        } else {
            ConvKey::Pair { a: y, b: x }
        }
    }
    pub fn announced(addr: IpAddr, port: u16) -> ConvKey {
        ConvKey::Announced { addr, port }
    }
    fn is_announced(&self) -> bool {
        matches!(self, ConvKey::Announced { .. })
    }
}

/// An SDP `a=rtpmap` entry for the packet's payload type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadFormat<'a> {
    pub encoding_name: &'a str,
    pub clock_rate: u32,
}

/// Which definitions `StreamState::summary` reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metrics {
    /// Byte-for-byte what tshark 4.0 prints.
    #[default]
    Wireshark,
    /// RFC 3550: A.1 extended highest seq, A.3 expected/lost, A.8 interarrival jitter.
    Rfc3550,
}

const PT_CN: u8 = 13;
const PT_CN_OLD: u8 = 19;

/// RFC 3551 clock rates as Wireshark 4.0 tabulates them (PT 12 QCELP and 19 CN included).
pub fn static_clock_rate(pt: u8) -> u32 {
    match pt {
        0..=5 | 7..=9 | 12 | 13 | 15 | 18 | 19 => 8000,
        6 => 16000,
        10 | 11 => 44100,
        14 | 25 | 26 | 28 | 31..=34 => 90000,
        16 => 11025,
        17 => 22050,
        _ => 0,
    }
}

/// The short names tshark prints in its Payload column for static and unmapped dynamic types.
pub fn short_payload_name(pt: u8) -> &'static str {
    const NAMES: [&str; 35] = [
        "g711U",
        "fs-1016",
        "g721",
        "GSM",
        "g723",
        "DVI4 8k",
        "DVI4 16k",
        "Exp. from Xerox PARC",
        "g711A",
        "g722",
        "16-bit audio, stereo",
        "16-bit audio, monaural",
        "Qualcomm",
        "CN",
        "MPEG-I/II Audio",
        "g728",
        "DVI4 11k",
        "DVI4 22k",
        "g729",
        "CN(old)",
        "Unassigned",
        "Unassigned",
        "Unassigned",
        "Unassigned",
        "Unassigned",
        "CellB",
        "JPEG",
        "Unassigned",
        "NV",
        "Unassigned",
        "Unassigned",
        "h261",
        "MPEG-I/II Video",
        "MPEG-II streams",
        "h263",
    ];
    const DYN: [&str; 32] = [
        "RTPType-96",
        "RTPType-97",
        "RTPType-98",
        "RTPType-99",
        "RTPType-100",
        "RTPType-101",
        "RTPType-102",
        "RTPType-103",
        "RTPType-104",
        "RTPType-105",
        "RTPType-106",
        "RTPType-107",
        "RTPType-108",
        "RTPType-109",
        "RTPType-110",
        "RTPType-111",
        "RTPType-112",
        "RTPType-113",
        "RTPType-114",
        "RTPType-115",
        "RTPType-116",
        "RTPType-117",
        "RTPType-118",
        "RTPType-119",
        "RTPType-120",
        "RTPType-121",
        "RTPType-122",
        "RTPType-123",
        "RTPType-124",
        "RTPType-125",
        "RTPType-126",
        "RTPType-127",
    ];
    match pt {
        0..=34 => NAMES[usize::from(pt)],
        72..=76 => "Reserved for RTCP conflict avoidance",
        96..=127 => DYN[usize::from(pt - 96)],
        _ => "Unassigned",
    }
}

/// Dynamic payload types that tshark 4.0's default preferences bind without SDP: 99 to the
/// RFC 2198 redundancy dissector and 100/101 to RFC 2833 events ("rtpevent").
fn default_dynamic_name(pt: u8) -> Option<&'static str> {
    match pt {
        99 => Some("rtp.rfc2198"),
        100 | 101 => Some("rtpevent"),
        _ => None,
    }
}

/// Wireshark's IANA media-subtype clock table, matched as a case-insensitive prefix of the name
/// and scanned from the end (so "AMR-WB" is found before "AMR").
fn dynamic_clock_rate(name: &str) -> u32 {
    const TABLE: [(&str, u32); 37] = [
        ("AMR", 8000),
        ("AMR-WB", 16000),
        ("BMPEG", 90000),
        ("BT656", 90000),
        ("DV", 90000),
        ("EVRC", 8000),
        ("EVRC0", 8000),
        ("EVRC1", 8000),
        ("EVRCB", 8000),
        ("EVRCB0", 8000),
        ("EVRCB1", 8000),
        ("EVRCWB", 16000),
        ("EVRCWB0", 16000),
        ("EVRCWB1", 16000),
        ("EVS", 16000),
        ("G7221", 16000),
        ("G726-16", 8000),
        ("G726-24", 8000),
        ("G726-32", 8000),
        ("G726-40", 8000),
        ("G729D", 8000),
        ("G729E", 8000),
        ("GSM-EFR", 8000),
        ("H263-1998", 90000),
        ("H263-2000", 90000),
        ("H264", 90000),
        ("MP1S", 90000),
        ("MP2P", 90000),
        ("MP4V-ES", 90000),
        ("mpa-robust", 90000),
        ("pointer", 90000),
        ("raw", 90000),
        ("red", 1000),
        ("SMV", 8000),
        ("SMV0", 8000),
        ("t140", 1000),
        ("telephone-event", 8000),
    ];
    TABLE
        .iter()
        .rev()
        .find(|(p, _)| starts_with_ci(name, p))
        .map_or(0, |&(_, r)| r)
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// RFC 4733 event codes 0..=16 as characters.
pub fn dtmf_char(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        16 => Some('!'), // flash
        _ => None,
    }
}

/// One RFC 4733 telephone event as seen on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DtmfEvent {
    pub event: u8,
    pub digit: Option<char>,
    pub volume: u8,
    /// RTP timestamp of the event start (shared by all its packets).
    pub rtp_timestamp: u32,
    pub start_ns: i64,
    /// Capture time of the first packet with the E bit.
    pub end_ns: Option<i64>,
    /// Largest duration field seen, in timestamp units, and in ms at the event clock.
    pub duration: u16,
    pub duration_ms: f64,
    pub packets: u32,
}

/// Wireshark's `tap_rtp_stat_t`, the part `rtp,streams` reads; time in ms since stream start.
/// Laid out in declaration order, widest first, then the two fields only a new largest delta
/// writes (see `StreamState`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[repr(C)]
struct WiresharkStat {
    start_time: f64,
    time: f64,
    lastnominaltime: f64,
    delta: f64,
    jitter: f64,
    diff: f64,
    skew: f64,
    max_skew: f64,
    min_delta: f64,
    max_delta: f64,
    mean_delta: f64,
    min_jitter: f64,
    max_jitter: f64,
    mean_jitter: f64,
    seq_cycles: u32,
    first_timestamp: u32,
    timestamp: u32,
    sequence: u32,
    total_nr: u32,
    clock_rate: u32,
    start_seq_nr: u16,
    stop_seq_nr: u16,
    seq_num: u16,
    pt: u8,
    reg_pt: u8,
    under: bool,
    problem: bool,
    /// Packet index (0-based in the stream) and capture time of the largest delta.
    max_nr: u64,
    max_delta_ns: i64,
}

/// RFC 3550 appendix A.1 source state and A.8 jitter, in timestamp units.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[repr(C)]
struct Rfc3550Stat {
    received: u64,
    transit: Option<f64>,
    jitter: f64,
    max_jitter: f64,
    sum_jitter: f64,
    jitter_samples: u64,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    clock_rate: u32,
    max_seq: u16,
}

const MAX_DROPOUT: u32 = 3000;
const MAX_MISORDER: u32 = 100;
const MIN_SEQUENTIAL: u32 = 2;
const RTP_SEQ_MOD: u32 = 1 << 16;

impl Rfc3550Stat {
    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
    }
    /// A.1 `update_seq`; false while on probation or for a rejected jump.
    fn update_seq(&mut self, seq: u16, first: bool) -> bool {
        if first {
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let udelta = u32::from(seq.wrapping_sub(self.max_seq));
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return true;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return false;
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD;
            }
            self.max_seq = seq;
        } else if udelta <= RTP_SEQ_MOD - MAX_MISORDER {
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return false;
            }
        }
        self.received += 1;
        true
    }
    fn extended_max(&self) -> u32 {
        self.cycles + u32::from(self.max_seq)
    }
}

/// Extended-sequence bookkeeping for duplicates, reordering, losses and the jitter buffer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SeqWindow {
    started: bool,
    ext_max: u64,
    /// Bit i set: ext seq ≡ i (mod 512) seen, for the 512 seqs up to ext_max.
    seen: [u64; 8],
}

const WINDOW: u64 = 512;

enum SeqEvent {
    /// New highest; the number of seqs skipped before it.
    Advance(u64),
    Duplicate,
    OutOfOrder,
}

impl SeqWindow {
    fn extend(&self, seq: u16) -> u64 {
        if !self.started {
            return (1 << 16) | u64::from(seq);
        }
        let mut e = (self.ext_max & !0xffff) | u64::from(seq);
        if e + 0x8000 < self.ext_max {
            e += 0x10000;
        } else if self.ext_max + 0x8000 < e && e >= 0x10000 {
            e -= 0x10000;
        }
        e
    }
    fn bit(&mut self, e: u64) -> (usize, u64) {
        let i = (e % WINDOW) as usize;
        (i / 64, 1u64 << (i % 64))
    }
    fn push(&mut self, seq: u16) -> SeqEvent {
        let e = self.extend(seq);
        if !self.started {
            self.started = true;
            self.ext_max = e;
            let (w, m) = self.bit(e);
            self.seen[w] |= m;
            return SeqEvent::Advance(0);
        }
        if e > self.ext_max {
            let skipped = e - self.ext_max - 1;
            if e - self.ext_max >= WINDOW {
                self.seen = [0; 8];
            } else {
                for x in self.ext_max + 1..=e {
                    let (w, m) = self.bit(x);
                    self.seen[w] &= !m;
                }
            }
            self.ext_max = e;
            let (w, m) = self.bit(e);
            self.seen[w] |= m;
            return SeqEvent::Advance(skipped);
        }
        if self.ext_max - e >= WINDOW {
            return SeqEvent::OutOfOrder;
        }
        let (w, m) = self.bit(e);
        if self.seen[w] & m != 0 {
            SeqEvent::Duplicate
        } else {
            self.seen[w] |= m;
            SeqEvent::OutOfOrder
        }
    }
}

/// Loss pattern as a two-state Markov chain (for the E-model burst ratio) and a fixed jitter
/// buffer that counts late packets as lost.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LossModel {
    /// Transitions from a received packet, and how many of them went to a lost one (p).
    pub from_received: u64,
    pub received_to_lost: u64,
    /// Transitions from a lost packet, and how many of them went to a received one (q).
    pub from_lost: u64,
    pub lost_to_received: u64,
    /// Packets that arrived after their playout time in the simulated buffer.
    pub late: u64,
    prev_lost: bool,
    started: bool,
    /// Smallest (arrival − media time) seen so far, ns: the buffer's anchor.
    base_offset_ns: Option<i64>,
    last_ext_ts: u64,
    first_ext_ts: u64,
}

impl LossModel {
    fn step(&mut self, lost: bool) {
        if self.started {
            if self.prev_lost {
                self.from_lost += 1;
                self.lost_to_received += u64::from(!lost);
            } else {
                self.from_received += 1;
                self.received_to_lost += u64::from(lost);
            }
        }
        self.started = true;
        self.prev_lost = lost;
    }
    /// ITU-T G.113 burst ratio 1/(p+q); 1.0 for random loss or no loss at all.
    pub fn burst_ratio(&self) -> f64 {
        if self.from_received == 0 || self.from_lost == 0 {
            return 1.0;
        }
        let p = self.received_to_lost as f64 / self.from_received as f64;
        let q = self.lost_to_received as f64 / self.from_lost as f64;
        if p + q > 0.0 {
            1.0 / (p + q)
        } else {
            1.0
        }
    }
}

/// Received, lost and worst jitter per time bucket since the stream's first packet. Buckets start
/// one second wide and double (pairs merged) past `TIMELINE_BUCKETS`, so memory stays per
/// stream whatever the call's length; it depends only on packet times, so it is split-proof.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[repr(C)]
pub struct Timeline {
    /// The current bucket's counts, kept inline: on a trunk, consecutive packets belong to
    /// different streams, and a store into each stream's heap-allocated `buckets` was a cache miss
    /// per packet (16% of the stream update's time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    open: Option<OpenBucket>,
    /// Bucket width in seconds (0 before the first packet).
    pub width_s: u32,
    /// (packets received, packets lost by sequence gap, max Wireshark jitter in ms). The bucket
    /// being filled is in `open` until the stream leaves it: read through [`Timeline::settled`].
    pub buckets: Vec<(u32, u32, f32)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct OpenBucket {
    index: u32,
    /// Seconds since the first packet that fall in this bucket: `first_s..end_s`.
    first_s: u64,
    end_s: u64,
    add: (u32, u32, f32),
}

pub const TIMELINE_BUCKETS: usize = 512;

impl Timeline {
    fn slot(&mut self, rel_ns: i64) -> &mut (u32, u32, f32) {
        if self.width_s == 0 {
            self.width_s = 1;
        }
        let sec = (rel_ns.max(0) / 1_000_000_000) as u64;
        let mut i = (sec / u64::from(self.width_s)) as usize;
        while i >= TIMELINE_BUCKETS {
            let merged: Vec<(u32, u32, f32)> = self
                .buckets
                .chunks(2)
                .map(|c| {
                    c.iter()
                        .fold((0, 0, 0.0f32), |a, b| (a.0 + b.0, a.1 + b.1, a.2.max(b.2)))
                })
                .collect();
            self.buckets = merged;
            self.width_s *= 2;
            i = (sec / u64::from(self.width_s)) as usize;
        }
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, (0, 0, 0.0));
        }
        &mut self.buckets[i]
    }
    fn note_packet(&mut self, rel_ns: i64, jitter_ms: f32) {
        self.note(rel_ns, 1, 0, jitter_ms);
    }
    fn note_lost(&mut self, rel_ns: i64, lost: u32) {
        if lost > 0 {
            self.note(rel_ns, 0, lost, 0.0);
        }
    }
    fn note(&mut self, rel_ns: i64, received: u32, lost: u32, jitter_ms: f32) {
        let sec = (rel_ns.max(0) / 1_000_000_000) as u64;
        if let Some(o) = self
            .open
            .as_mut()
            .filter(|o| (o.first_s..o.end_s).contains(&sec))
        {
            o.add.0 += received;
            o.add.1 += lost;
            o.add.2 = o.add.2.max(jitter_ms);
            return;
        }
        // Flushed before `slot` may merge buckets, so the open index is still the one it had.
        self.flush();
        let _ = self.slot(rel_ns);
        let width = u64::from(self.width_s);
        let index = sec / width;
        self.open = Some(OpenBucket {
            index: index as u32,
            first_s: index * width,
            end_s: (index + 1) * width,
            add: (received, lost, jitter_ms),
        });
    }
    fn flush(&mut self) {
        if let Some(o) = self.open.take() {
            let b = &mut self.buckets[o.index as usize];
            b.0 += o.add.0;
            b.1 += o.add.1;
            b.2 = b.2.max(o.add.2);
        }
    }
    /// Packets lost by sequence gap (counted when the packet after the gap arrived) in the
    /// buckets that overlap `from_s..=to_s`, seconds since the stream's first packet: to the
    /// bucket's width, at least a second.
    pub fn lost_between(&self, from_s: u64, to_s: u64) -> u64 {
        let t = self.settled();
        let width = u64::from(t.width_s.max(1));
        t.buckets
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                let (start, end) = (*i as u64 * width, (*i as u64 + 1) * width);
                start <= to_s && from_s < end
            })
            .map(|(_, b)| u64::from(b.1))
            .sum()
    }

    /// The timeline with the bucket being filled folded in.
    pub fn settled(&self) -> Timeline {
        let mut t = self.clone();
        t.flush();
        t
    }
}

/// Everything known about one stream. Serde-able so the pipeline can carry it across files.
///
/// Laid out in declaration order (`repr(C)`) from a cache line's start: what every packet
/// reads or writes first, up to the timeline's bucket vector (`HOT_BYTES`, ten lines), then
/// what only rare events touch. On a trunk
/// each packet's stream is cold in cache and the batch prefetches it (`StreamTable::locate`);
/// the prefetches then waited on the line-fill buffers, so every line left out counts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[repr(C, align(64))]
pub struct StreamState {
    pub packets: u64,
    pub last_ns: i64,
    pub first_ns: i64,
    /// Wireshark's time base for delta/jitter arithmetic (see `StreamTable::with_time_origin`).
    time_origin_ns: i64,
    pub payload_bytes: u64,
    pub marker_packets: u64,
    /// PT numbers seen (bit set), and their display names in PT order.
    pub payload_types: [u64; 2],
    /// Positions of this stream's last conversation and its 5-tuple in the table's vectors, so a
    /// packet costs one hash lookup; rebuilt with the maps.
    #[serde(skip)]
    conv_slot: u32,
    #[serde(skip)]
    tuple_slot: u32,
    /// The last payload type's meaning, so that a packet does not look its SDP format up.
    #[serde(skip)]
    pt_meaning: Option<PtMeaning>,
    pub key: StreamKey,
    pub conv: ConvKey,
    ws: WiresharkStat,
    rfc: Rfc3550Stat,
    window: SeqWindow,
    pub loss: LossModel,
    /// Per-second received/lost/jitter, for the quality timeline (its open bucket is hot, its
    /// vector last).
    #[serde(default)]
    pub timeline: Timeline,
    pub comfort_noise_packets: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub payload_names: Vec<(u8, String)>,
    pub dtmf: Vec<DtmfEvent>,
    /// The dialog whose SDP announced this stream's address, when one did.
    #[serde(default)]
    pub call_id: Option<String>,
}

/// The part of a `StreamState` that every packet touches (see there).
const HOT_BYTES: usize =
    std::mem::offset_of!(StreamState, timeline) + std::mem::offset_of!(Timeline, buckets);
// Checked when building: the per-packet part stays within ten cache lines, and something is
// left out of it.
const _: () = assert!(HOT_BYTES <= 640 && HOT_BYTES < std::mem::size_of::<StreamState>());

/// What a payload type means to the analysis under one SDP format version (see
/// [`StreamTable::push_versioned`]).
#[derive(Clone, Copy, Debug)]
struct PtMeaning {
    pt: u8,
    format_version: u64,
    clock_rate: u32,
    is_event: bool,
    /// RFC 4733 event durations are in this clock's ticks.
    event_clock: u32,
}

/// A format version that is never cached: the caller passes the format it has at hand.
pub const UNVERSIONED_FORMAT: u64 = u64::MAX;

/// The numbers one row of `rtp,streams` shows, under either metric set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamSummary {
    pub key: StreamKey,
    pub start_ns: i64,
    pub end_ns: i64,
    pub payload: String,
    pub packets: u64,
    pub expected: i64,
    pub lost: i64,
    pub lost_percent: f64,
    /// −1 when no delta was sampled, as tshark prints it.
    pub min_delta_ms: f64,
    pub mean_delta_ms: f64,
    pub max_delta_ms: f64,
    /// −1 when no jitter was sampled (no clock rate), as tshark prints it.
    pub min_jitter_ms: f64,
    pub mean_jitter_ms: f64,
    pub max_jitter_ms: f64,
    pub max_skew_ms: f64,
    pub sequence_errors: u32,
    /// Packet index within the stream and capture time of the largest delta.
    pub max_delta_index: u64,
    pub max_delta_ns: i64,
    pub problem: bool,
}

/// Per-packet facts the analysis needs, independent of how the packet was found.
struct PacketFacts {
    ts_ns: i64,
    seq: u16,
    timestamp: u32,
    ext_timestamp: u64,
    marker: bool,
    pt: u8,
    payload_len: u32,
    /// The first four payload octets (an RFC 4733 event's fixed part) when there are four.
    payload_head: [u8; 4],
}

/// The header fields of one RTP packet the analysis uses, copied out of the capture (20 bytes,
/// so that a reader thread can hand millions of them over cheaply).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtpFields {
    pub ssrc: u32,
    timestamp: u32,
    payload_len: u32,
    payload_head: [u8; 4],
    seq: u16,
    marker: bool,
    pt: u8,
}

impl RtpFields {
    // Always: called from another codegen unit it stayed a call, whose result went through the
    // stack in narrow stores and came back in one wide load (a store-forwarding stall, 15% of
    // the reading thread's `reduce`).
    #[inline(always)]
    pub fn of(h: &RtpHeader<'_>) -> RtpFields {
        let payload = h.payload();
        let mut payload_head = [0; 4];
        if let Some(head) = payload.get(..4) {
            payload_head.copy_from_slice(head);
        }
        RtpFields {
            ssrc: h.ssrc(),
            timestamp: h.timestamp(),
            payload_len: payload.len() as u32,
            payload_head,
            seq: h.sequence_number(),
            marker: h.marker(),
            pt: h.payload_type(),
        }
    }
}

/// One RTP packet as the analysis reads it: its stream, conversation and header fields, copied
/// out of the capture so that a caller can queue packets (see [`StreamTable::locate`]).
#[derive(Clone, Copy, Debug)]
pub struct RtpPacket {
    pub key: StreamKey,
    pub conv: ConvKey,
    pub ts_ns: i64,
    fields: RtpFields,
}

impl RtpPacket {
    pub fn new(key: StreamKey, conv: ConvKey, ts_ns: i64, h: &RtpHeader<'_>) -> RtpPacket {
        RtpPacket::of_fields(key, conv, ts_ns, RtpFields::of(h))
    }

    pub fn of_fields(key: StreamKey, conv: ConvKey, ts_ns: i64, fields: RtpFields) -> RtpPacket {
        RtpPacket {
            key,
            conv,
            ts_ns,
            fields,
        }
    }

    pub fn payload_type(&self) -> u8 {
        self.fields.pt
    }
}

impl StreamState {
    fn new(key: StreamKey, conv: ConvKey, ts_ns: i64, origin: Option<i64>) -> StreamState {
        StreamState {
            key,
            conv,
            first_ns: ts_ns,
            last_ns: ts_ns,
            time_origin_ns: origin.unwrap_or(ts_ns),
            packets: 0,
            payload_bytes: 0,
            marker_packets: 0,
            comfort_noise_packets: 0,
            duplicates: 0,
            out_of_order: 0,
            payload_types: [0; 2],
            payload_names: Vec::new(),
            dtmf: Vec::new(),
            loss: LossModel::default(),
            call_id: None,
            timeline: Timeline::default(),
            ws: WiresharkStat::default(),
            rfc: Rfc3550Stat::default(),
            window: SeqWindow::default(),
            conv_slot: u32::MAX,
            tuple_slot: u32::MAX,
            pt_meaning: None,
        }
    }

    /// Payload type name (as tshark would print it) and clock rate for this packet; the name is
    /// borrowed, so the per-packet path allocates nothing.
    fn payload_info<'f>(
        &self,
        pt: u8,
        format: Option<PayloadFormat<'f>>,
    ) -> (Option<&'f str>, u32) {
        if pt < 96 {
            return (None, static_clock_rate(pt));
        }
        let (name, rate): (Option<&str>, u32) = match format {
            Some(f) => (Some(f.encoding_name), f.clock_rate),
            // An SDP conversation without this PT gives no name; tshark then uses "RTPType-N".
            None if self.conv.is_announced() => (None, 0),
            None => (default_dynamic_name(pt), 0),
        };
        match name {
            None => (None, 0),
            Some(n) if starts_with_ci(n, "telephone-event") => (Some(n), 0),
            Some(n) if rate != 0 => (Some(n), rate),
            Some(n) => (Some(n), dynamic_clock_rate(n)),
        }
    }

    fn is_event_pt(&self, pt: u8, format: Option<PayloadFormat<'_>>) -> bool {
        match format {
            Some(f) => starts_with_ci(f.encoding_name, "telephone-event"),
            None => !self.conv.is_announced() && matches!(pt, 100 | 101),
        }
    }

    fn note_payload_type(&mut self, pt: u8, name: Option<String>) {
        let (w, m) = (usize::from(pt / 64), 1u64 << (pt % 64));
        if self.payload_types[w & 1] & m != 0 {
            return;
        }
        self.payload_types[w & 1] |= m;
        let name = name.unwrap_or_else(|| short_payload_name(pt).to_owned());
        let at = self.payload_names.partition_point(|(p, _)| *p < pt);
        self.payload_names.insert(at, (pt, name));
    }

    fn push<'f>(
        &mut self,
        f: &PacketFacts,
        format_version: u64,
        format: &impl Fn() -> Option<PayloadFormat<'f>>,
    ) {
        let first = self.packets == 0;
        let name = if first || !self.has_pt(f.pt) {
            self.payload_info(f.pt, format()).0.map(str::to_owned)
        } else {
            None
        };
        let meaning = self.meaning(f.pt, format_version, format);
        let clock_rate = meaning.clock_rate;
        self.wireshark(f, clock_rate);
        self.note_payload_type(f.pt, name);
        self.rfc3550(f, clock_rate, first);
        self.extras(f, clock_rate, meaning);
        let jitter = if clock_rate != 0 { self.ws.jitter } else { 0.0 };
        self.timeline
            .note_packet(f.ts_ns - self.first_ns, jitter as f32);
        self.packets += 1;
        self.last_ns = f.ts_ns;
        self.payload_bytes += u64::from(f.payload_len);
    }

    /// The payload type's clock rate and event nature, from the cache while the type and the
    /// format version stay the same: looking the SDP format up was a cache miss per packet.
    #[inline]
    fn meaning<'f>(
        &mut self,
        pt: u8,
        format_version: u64,
        format: &impl Fn() -> Option<PayloadFormat<'f>>,
    ) -> PtMeaning {
        if let Some(m) = self.pt_meaning {
            if m.pt == pt && m.format_version == format_version {
                return m;
            }
        }
        let fmt = format();
        let (_, clock_rate) = self.payload_info(pt, fmt);
        let m = PtMeaning {
            pt,
            format_version,
            clock_rate,
            is_event: self.is_event_pt(pt, fmt),
            event_clock: fmt
                .map(|p| p.clock_rate)
                .filter(|&r| r != 0)
                .unwrap_or(8000),
        };
        if format_version != UNVERSIONED_FORMAT {
            self.pt_meaning = Some(m);
        }
        m
    }

    fn has_pt(&self, pt: u8) -> bool {
        self.payload_types[usize::from(pt / 64) & 1] & (1u64 << (pt % 64)) != 0
    }

    /// Port of Wireshark 4.0 `rtppacket_analyse` (behaviour, not code).
    fn wireshark(&mut self, f: &PacketFacts, clock_rate: u32) {
        let s = &mut self.ws;
        let current_time = msec(f.ts_ns - self.time_origin_ns);
        if self.packets == 0 {
            s.start_seq_nr = f.seq;
            s.stop_seq_nr = f.seq;
            s.seq_num = f.seq;
            s.first_timestamp = f.timestamp;
            s.timestamp = f.timestamp;
            s.time = current_time;
            s.start_time = current_time;
            s.pt = f.pt;
            s.reg_pt = f.pt;
            s.min_delta = -1.0;
            s.min_jitter = -1.0;
            s.total_nr = 1;
            return;
        }

        // A new cycle when seq drops below the first seq, or (first seq 0) on 65535 -> 0.
        if !s.under && (f.seq < s.start_seq_nr || (f.seq == 0 && s.stop_seq_nr == 65535)) {
            s.seq_cycles += 1;
            s.under = true;
        } else if f.seq > s.start_seq_nr && s.under {
            s.under = false;
        }

        // Wireshark compares in int after promotion: seq_num + 1 may be 65536.
        let (last, cur) = (u32::from(s.seq_num), u32::from(f.seq));
        let mut wrong_seq = false;
        if last + 1 == cur || (last == 65535 && cur == 0) {
            s.seq_num = f.seq;
        } else if last + 1 < cur || last.wrapping_sub(cur) > 0xff00 {
            s.seq_num = f.seq;
            s.sequence += 1;
            wrong_seq = true;
        } else if last + 1 > cur {
            s.sequence += 1;
            wrong_seq = true;
        }

        let pt_cn = f.pt == PT_CN || f.pt == PT_CN_OLD;
        let follow_cn = s.pt == PT_CN || s.pt == PT_CN_OLD;
        s.pt = f.pt;

        // In time sequence: less than half the 32-bit timestamp range after the first packet.
        let first = u64::from(s.first_timestamp);
        let ts = u64::from(f.timestamp);
        let in_time_sequence = if first <= ts {
            ts - first < 0x8000_0000
        } else {
            (0xffff_ffff - first) + ts < 0x8000_0000
        };
        let wrong_timestamp = !in_time_sequence;

        let mut current_jitter = 0.0;
        if in_time_sequence {
            let arrivaltime = current_time - s.start_time;
            let nominaltime_ticks = f64::from(f.timestamp.wrapping_sub(s.first_timestamp));
            if clock_rate != 0 {
                s.clock_rate = clock_rate;
                // Integer ticks per ms, as Wireshark divides: 44100 Hz gives 44.
                let nominaltime = nominaltime_ticks / f64::from(clock_rate / 1000);
                let expected_time = s.time + (nominaltime - s.lastnominaltime);
                let current_diff = (current_time - expected_time).abs();
                current_jitter = (15.0 * s.jitter + current_diff) / 16.0;
                s.delta = current_time - s.time;
                s.jitter = current_jitter;
                s.diff = current_diff;
                s.lastnominaltime = nominaltime;
                s.skew = nominaltime - arrivaltime;
                if s.skew.abs() > s.max_skew.abs() {
                    s.max_skew = s.skew;
                }
            } else {
                s.delta = current_time - s.time;
            }
        }

        if !f.marker && !pt_cn && !wrong_timestamp && !follow_cn {
            if s.delta > s.max_delta {
                s.max_delta = s.delta;
                s.max_nr = self.packets;
                s.max_delta_ns = f.ts_ns;
            }
            if s.min_delta == -1.0 || s.delta < s.min_delta {
                s.min_delta = s.delta;
            }
            let n = f64::from(s.total_nr);
            s.mean_delta = (s.mean_delta * (n - 1.0) + s.delta) / n;
            if clock_rate != 0 {
                if s.jitter > s.max_jitter {
                    s.max_jitter = s.jitter;
                }
                s.mean_jitter = (s.mean_jitter * (n - 1.0) + current_jitter) / n;
                if s.min_jitter == -1.0 || s.jitter < s.min_jitter {
                    s.min_jitter = s.jitter;
                }
            }
        }
        if !pt_cn {
            s.reg_pt = s.pt;
        }
        if in_time_sequence {
            s.time = current_time;
        }
        s.timestamp = f.timestamp;
        s.stop_seq_nr = f.seq;
        s.total_nr += 1;
        if wrong_timestamp || wrong_seq {
            s.problem = true;
        }
    }

    fn rfc3550(&mut self, f: &PacketFacts, clock_rate: u32, first: bool) {
        let r = &mut self.rfc;
        let accepted = r.update_seq(f.seq, first);
        // A.8 needs the media clock; CN and events do not advance it like audio does.
        if !accepted || clock_rate == 0 || f.pt == PT_CN || f.pt == PT_CN_OLD {
            return;
        }
        r.clock_rate = clock_rate;
        let arrival = (f.ts_ns - self.first_ns) as f64 * f64::from(clock_rate) / 1e9;
        let transit = arrival - f.timestamp as f64;
        if let Some(prev) = r.transit {
            let mut d = transit - prev;
            // The RTP timestamp may have wrapped between the two packets.
            if d > 2_147_483_648.0 {
                d -= 4_294_967_296.0;
            } else if d < -2_147_483_648.0 {
                d += 4_294_967_296.0;
            }
            r.jitter += (d.abs() - r.jitter) / 16.0;
            r.max_jitter = r.max_jitter.max(r.jitter);
            r.sum_jitter += r.jitter;
            r.jitter_samples += 1;
        }
        r.transit = Some(transit);
    }

    fn extras(&mut self, f: &PacketFacts, clock_rate: u32, meaning: PtMeaning) {
        self.marker_packets += u64::from(f.marker);
        if f.pt == PT_CN || f.pt == PT_CN_OLD {
            self.comfort_noise_packets += 1;
        }
        let is_event = meaning.is_event;
        match self.window.push(f.seq) {
            SeqEvent::Duplicate => self.duplicates += 1,
            SeqEvent::OutOfOrder => self.out_of_order += 1,
            SeqEvent::Advance(skipped) => {
                self.timeline
                    .note_lost(f.ts_ns - self.first_ns, skipped.min(1 << 16) as u32);
                for _ in 0..skipped.min(1 << 16) {
                    self.loss.step(true);
                }
                let late = !is_event && clock_rate != 0 && self.late(f, clock_rate);
                self.loss.late += u64::from(late);
                self.loss.step(late);
            }
        }
        if is_event && f.payload_len >= 4 {
            self.event(f, meaning.event_clock);
        }
    }

    /// Fixed jitter buffer of `JITTER_BUFFER_MS` anchored on the earliest packet (relative to
    /// its media time): a packet later than that is discarded by a real receiver.
    fn late(&mut self, f: &PacketFacts, clock_rate: u32) -> bool {
        let l = &mut self.loss;
        if l.base_offset_ns.is_none() {
            l.first_ext_ts = f.ext_timestamp;
        }
        l.last_ext_ts = f.ext_timestamp;
        let ticks = f.ext_timestamp as i128 - l.first_ext_ts as i128;
        // The same quotient in 64 bits when it fits (a 128-bit division was 2% of the pass):
        // |ticks| < 2^33 keeps ticks * 1e9 below 2^63.
        let media_ns = match i64::try_from(ticks) {
            Ok(t) if t.unsigned_abs() < 1 << 33 => {
                i128::from(t * 1_000_000_000 / i64::from(clock_rate))
            }
            _ => ticks * 1_000_000_000 / i128::from(clock_rate),
        };
        let offset = (i128::from(f.ts_ns - self.first_ns) - media_ns) as i64;
        let base = *l.base_offset_ns.get_or_insert(offset);
        if offset < base {
            l.base_offset_ns = Some(offset);
            return false;
        }
        offset - base > JITTER_BUFFER_MS * 1_000_000
    }

    fn event(&mut self, f: &PacketFacts, clock: u32) {
        let (code, flags, duration) = (
            f.payload_head[0],
            f.payload_head[1],
            u16::from_be_bytes([f.payload_head[2], f.payload_head[3]]),
        );
        let end = flags & 0x80 != 0;
        let ms = f64::from(duration) * 1000.0 / f64::from(clock);
        match self.dtmf.last_mut() {
            Some(e) if e.rtp_timestamp == f.timestamp && e.event == code => {
                e.packets += 1;
                if duration > e.duration {
                    e.duration = duration;
                    e.duration_ms = ms;
                }
                if end && e.end_ns.is_none() {
                    e.end_ns = Some(f.ts_ns);
                }
            }
            _ => self.dtmf.push(DtmfEvent {
                event: code,
                digit: dtmf_char(code),
                volume: flags & 0x3f,
                rtp_timestamp: f.timestamp,
                start_ns: f.ts_ns,
                end_ns: end.then_some(f.ts_ns),
                duration,
                duration_ms: ms,
                packets: 1,
            }),
        }
    }

    /// Payload column: the names of all payload types seen, in PT order, comma-joined.
    pub fn payload_label(&self) -> String {
        let names: Vec<&str> = self.payload_names.iter().map(|(_, n)| n.as_str()).collect();
        names.join(", ")
    }

    pub fn summary(&self, metrics: Metrics) -> StreamSummary {
        let s = &self.ws;
        match metrics {
            Metrics::Wireshark => {
                let expected = (u32::from(s.stop_seq_nr) + s.seq_cycles.wrapping_mul(0x10000))
                    .wrapping_sub(u32::from(s.start_seq_nr))
                    .wrapping_add(1);
                let lost = expected.wrapping_sub(s.total_nr) as i32;
                let lost_percent = if expected != 0 {
                    f64::from(lost.wrapping_mul(100)) / f64::from(expected)
                } else {
                    0.0
                };
                StreamSummary {
                    key: self.key,
                    start_ns: self.first_ns,
                    end_ns: self.last_ns,
                    payload: self.payload_label(),
                    packets: self.packets,
                    expected: i64::from(expected),
                    lost: i64::from(lost),
                    lost_percent,
                    min_delta_ms: s.min_delta,
                    mean_delta_ms: s.mean_delta,
                    max_delta_ms: s.max_delta,
                    min_jitter_ms: s.min_jitter,
                    mean_jitter_ms: s.mean_jitter,
                    max_jitter_ms: s.max_jitter,
                    max_skew_ms: s.max_skew,
                    sequence_errors: s.sequence,
                    max_delta_index: s.max_nr,
                    max_delta_ns: s.max_delta_ns,
                    problem: s.problem,
                }
            }
            Metrics::Rfc3550 => {
                let r = &self.rfc;
                let expected = i64::from(r.extended_max()) - i64::from(r.base_seq) + 1;
                let lost = expected - r.received as i64;
                let to_ms = |j: f64| {
                    if r.clock_rate == 0 {
                        -1.0
                    } else {
                        j * 1000.0 / f64::from(r.clock_rate)
                    }
                };
                let mean = if r.jitter_samples == 0 {
                    0.0
                } else {
                    r.sum_jitter / r.jitter_samples as f64
                };
                StreamSummary {
                    key: self.key,
                    start_ns: self.first_ns,
                    end_ns: self.last_ns,
                    payload: self.payload_label(),
                    packets: self.packets,
                    expected,
                    lost,
                    lost_percent: if expected > 0 {
                        lost as f64 * 100.0 / expected as f64
                    } else {
                        0.0
                    },
                    min_delta_ms: s.min_delta,
                    mean_delta_ms: s.mean_delta,
                    max_delta_ms: s.max_delta,
                    min_jitter_ms: if r.clock_rate == 0 { -1.0 } else { 0.0 },
                    mean_jitter_ms: to_ms(mean),
                    max_jitter_ms: to_ms(r.max_jitter),
                    max_skew_ms: s.max_skew,
                    sequence_errors: s.sequence,
                    max_delta_index: s.max_nr,
                    max_delta_ns: s.max_delta_ns,
                    problem: s.problem,
                }
            }
        }
    }

    /// The media clock rate the analysis used (0: none known, e.g. events only).
    pub fn clock_rate(&self) -> u32 {
        if self.ws.clock_rate != 0 {
            self.ws.clock_rate
        } else {
            self.rfc.clock_rate
        }
    }

    /// The payload type carrying the media: the first seen that is neither comfort noise nor
    /// an RFC 4733 event; else the first at all.
    pub fn media_payload_type(&self) -> Option<(u8, &str)> {
        let media = self.payload_names.iter().find(|(pt, name)| {
            *pt != PT_CN
                && *pt != PT_CN_OLD
                && !starts_with_ci(name, "telephone-event")
                && name != "rtpevent"
        });
        media
            .or(self.payload_names.first())
            .map(|(pt, n)| (*pt, n.as_str()))
    }

    /// The DTMF digits in order (`?` for events that are not digits).
    pub fn dtmf_digits(&self) -> String {
        self.dtmf.iter().map(|e| e.digit.unwrap_or('?')).collect()
    }

    /// RFC 3550 A.8 interarrival jitter now, in ms (None without a clock rate).
    pub fn rfc3550_jitter_ms(&self) -> Option<f64> {
        (self.rfc.clock_rate != 0)
            .then(|| self.rfc.jitter * 1000.0 / f64::from(self.rfc.clock_rate))
    }
}

/// Wireshark's `nstime_to_msec` of a relative time: seconds and nanoseconds converted apart.
fn msec(rel_ns: i64) -> f64 {
    let (secs, nsecs) = (
        rel_ns.div_euclid(1_000_000_000),
        rel_ns.rem_euclid(1_000_000_000),
    );
    secs as f64 * 1000.0 + nsecs as f64 / 1_000_000.0
}

/// Jitter buffer depth of the late-packet simulation (a common fixed default for G.711 phones).
pub const JITTER_BUFFER_MS: i64 = 60;

impl StreamSummary {
    /// One data row exactly as tshark 4.0 `-z rtp,streams` prints it; `origin_ns` is the capture
    /// time of the first packet of the capture (tshark prints times relative to it).
    pub fn tshark_row(&self, origin_ns: i64) -> String {
        let rel = |ns: i64| (ns - origin_ns) as f64 / 1e9;
        format!(
            "{:13.6} {:13.6} {:>15} {:5} {:>15} {:5} 0x{:08X} {:>16} {:5} {:5} ({:.1}%) {:15.3} {:15.3} {:15.3} {:15.3} {:15.3} {:15.3} {}",
            rel(self.start_ns),
            rel(self.end_ns),
            self.key.src.to_string(),
            self.key.src_port,
            self.key.dst.to_string(),
            self.key.dst_port,
            self.key.ssrc,
            self.payload,
            self.packets,
            self.lost,
            self.lost_percent,
            self.min_delta_ms,
            self.mean_delta_ms,
            self.max_delta_ms,
            self.min_jitter_ms,
            self.mean_jitter_ms,
            self.max_jitter_ms,
            if self.problem { "X" } else { "" },
        )
    }
}

/// Asks the CPU to start loading `x` into its caches (a no-op off x86-64).
#[inline]
#[allow(unsafe_code)]
pub(crate) fn prefetch<T>(x: &T) {
    prefetch_prefix(x, std::mem::size_of::<T>());
}

/// [`prefetch`] of the first `len` bytes of `x` only.
#[inline]
#[allow(unsafe_code)]
pub(crate) fn prefetch_prefix<T>(x: &T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let base = (x as *const T).cast::<i8>();
        let len = len.min(std::mem::size_of::<T>());
        let mut off = 0;
        while off < len {
            // SAFETY: the address lies inside `x`; a prefetch never faults or writes.
            unsafe { _mm_prefetch(base.add(off), _MM_HINT_T0) };
            off += 64;
        }
        // the last line, when `x` does not start on a line boundary
        // SAFETY: as above.
        unsafe { _mm_prefetch(base.add(len.saturating_sub(1)), _MM_HINT_T0) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, len);
}

/// Extended sequence number and timestamp of one Wireshark RTP conversation.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct ConvState {
    extended_timestamp: u64,
}

/// A conversation's entry in the table, one cache line each (see `StreamState`'s layout: each
/// packet loads its conversation, and a 48-byte entry straddled two lines two times in three).
/// Serialised as the `(key, state)` pair it was before.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(from = "(ConvKey, ConvState)", into = "(ConvKey, ConvState)")]
#[repr(align(64))]
struct ConvEntry(ConvKey, ConvState);

impl From<(ConvKey, ConvState)> for ConvEntry {
    fn from((k, s): (ConvKey, ConvState)) -> ConvEntry {
        ConvEntry(k, s)
    }
}

impl From<ConvEntry> for (ConvKey, ConvState) {
    fn from(e: ConvEntry) -> (ConvKey, ConvState) {
        (e.0, e.1)
    }
}

/// Same-5-tuple bookkeeping: the SSRC last seen and how often it changed. One cache line each,
/// as `ConvEntry`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[repr(align(64))]
pub struct SsrcHistory {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub last_ssrc: u32,
    pub changes: u32,
}

/// All streams of a capture (or of a run of captures processed in order).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StreamTable {
    streams: Vec<StreamState>,
    convs: Vec<ConvEntry>,
    tuples: Vec<SsrcHistory>,
    time_origin_ns: Option<i64>,
    #[serde(skip)]
    stream_index: FastMap<StreamKey, usize>,
    #[serde(skip)]
    conv_index: FastMap<ConvKey, usize>,
    #[serde(skip)]
    tuple_index: FastMap<(IpAddr, u16, IpAddr, u16), usize>,
}

impl StreamTable {
    /// Delta and jitter arithmetic relative to each stream's first packet: exact, and the same
    /// however the captures are split.
    pub fn new() -> StreamTable {
        StreamTable::default()
    }

    /// Arithmetic in ms relative to `origin_ns`, as tshark does relative to the first packet of
    /// its capture: needed only to reproduce tshark's last printed digit when a mean falls on a
    /// rounding tie (the float rounding differs at ~1e-12 ms otherwise).
    pub fn with_time_origin(origin_ns: i64) -> StreamTable {
        StreamTable {
            time_origin_ns: Some(origin_ns),
            ..StreamTable::default()
        }
    }

    /// Rebuild the lookup maps after deserialising or evicting, and the streams' slots with them.
    fn reindex(&mut self) {
        let mut rebuilt = false;
        if self.stream_index.len() != self.streams.len() {
            self.stream_index = self
                .streams
                .iter()
                .enumerate()
                .map(|(i, s)| (s.key, i))
                .collect();
            rebuilt = true;
        }
        if self.conv_index.len() != self.convs.len() {
            self.conv_index = self
                .convs
                .iter()
                .enumerate()
                .map(|(i, c)| (c.0, i))
                .collect();
            rebuilt = true;
        }
        if self.tuple_index.len() != self.tuples.len() {
            self.tuple_index = self
                .tuples
                .iter()
                .enumerate()
                .map(|(i, t)| ((t.src, t.src_port, t.dst, t.dst_port), i))
                .collect();
            rebuilt = true;
        }
        if rebuilt {
            for s in &mut self.streams {
                let slot = |i: Option<&usize>| i.map_or(u32::MAX, |&i| i as u32);
                s.conv_slot = slot(self.conv_index.get(&s.conv));
                let k = &s.key;
                s.tuple_slot = slot(
                    self.tuple_index
                        .get(&(k.src, k.src_port, k.dst, k.dst_port)),
                );
            }
        }
    }

    /// Feed one RTP datagram (already classified as RTP). Returns the stream's index.
    pub fn push_datagram(
        &mut self,
        dg: &Datagram<'_>,
        conv: ConvKey,
        header: &RtpHeader<'_>,
        format: Option<PayloadFormat<'_>>,
    ) -> usize {
        let key = StreamKey {
            src: dg.src,
            src_port: dg.src_port,
            dst: dg.dst,
            dst_port: dg.dst_port,
            ssrc: header.ssrc(),
        };
        self.push(key, conv, dg.ts_ns, header, format)
    }

    pub fn push(
        &mut self,
        key: StreamKey,
        conv: ConvKey,
        ts_ns: i64,
        header: &RtpHeader<'_>,
        format: Option<PayloadFormat<'_>>,
    ) -> usize {
        self.push_packet(&RtpPacket::new(key, conv, ts_ns, header), None, format)
    }

    /// The index of a known stream, whose state starts loading into the cache.
    ///
    /// Why: on a trunk, consecutive packets belong to different streams among thousands, and the
    /// state of each (~750 bytes) is a chain of cache misses: map probe, stream, conversation,
    /// 5-tuple (60% of the update's time). A caller that queues packets can `locate` them all,
    /// then [`StreamTable::prefetch_slots`], then push them in order with the index as a hint,
    /// so the misses of a whole batch overlap.
    pub fn locate(&mut self, key: &StreamKey) -> Option<usize> {
        self.reindex();
        let i = self.stream_index.get(key).copied()?;
        prefetch_prefix(&self.streams[i], HOT_BYTES);
        Some(i)
    }

    /// A stream index the caller remembers (e.g. its flow's last stream): starts loading it,
    /// as [`StreamTable::locate`] does, without a map probe. It may name another stream by now;
    /// `push_packet` checks the hint.
    pub fn prefetch_stream(&self, i: usize) -> Option<usize> {
        prefetch_prefix(self.streams.get(i)?, HOT_BYTES);
        Some(i)
    }

    /// The second step of a batch: the conversation and 5-tuple records of a located stream.
    pub fn prefetch_slots(&self, i: usize) {
        if let Some(s) = self.streams.get(i) {
            if let Some(c) = self.convs.get(s.conv_slot as usize) {
                prefetch(c);
            }
            if let Some(t) = self.tuples.get(s.tuple_slot as usize) {
                prefetch(t);
            }
        }
    }

    /// Feed one packet. `hint` is what [`StreamTable::locate`] returned for its key; it is
    /// checked, so a stale hint costs a lookup, never a wrong stream.
    pub fn push_packet(
        &mut self,
        p: &RtpPacket,
        hint: Option<usize>,
        format: Option<PayloadFormat<'_>>,
    ) -> usize {
        self.push_versioned(p, hint, UNVERSIONED_FORMAT, &|| format)
    }

    /// [`StreamTable::push_packet`] with the SDP format looked up only when needed: `format`
    /// answers for the packet's payload type, and `format_version` names what it reads (the
    /// same version must always give the same answer; 0 for no SDP at all), so a stream keeps
    /// the answer while its payload type and the version stay.
    pub fn push_versioned<'f>(
        &mut self,
        p: &RtpPacket,
        hint: Option<usize>,
        format_version: u64,
        format: &impl Fn() -> Option<PayloadFormat<'f>>,
    ) -> usize {
        self.reindex();
        let (key, conv, ts_ns) = (p.key, p.conv, p.ts_ns);
        let known = match hint {
            Some(i) if self.streams.get(i).is_some_and(|s| s.key == key) => Some(i),
            _ => self.stream_index.get(&key).copied(),
        };
        // Fast path: the stream's own conversation and 5-tuple, by position.
        let conv_i = match known {
            Some(i)
                if self
                    .convs
                    .get(self.streams[i].conv_slot as usize)
                    .is_some_and(|c| c.0 == conv) =>
            {
                self.streams[i].conv_slot as usize
            }
            _ => self.conv_slot(conv),
        };
        let f = &p.fields;
        let ext_timestamp = self.extend_timestamp_at(conv_i, f.timestamp);
        let tuple_i = match known {
            Some(i) if (self.streams[i].tuple_slot as usize) < self.tuples.len() => {
                self.streams[i].tuple_slot as usize
            }
            _ => self.tuple_slot(&key),
        };
        let t = &mut self.tuples[tuple_i];
        if t.last_ssrc != key.ssrc {
            t.changes += 1;
            t.last_ssrc = key.ssrc;
        }
        let idx = match known {
            Some(i) => i,
            None => {
                self.streams
                    .push(StreamState::new(key, conv, ts_ns, self.time_origin_ns));
                self.stream_index.insert(key, self.streams.len() - 1);
                self.streams.len() - 1
            }
        };
        // positions fit: a table of 4 G conversations would not fit in memory first
        self.streams[idx].conv_slot = conv_i as u32;
        self.streams[idx].tuple_slot = tuple_i as u32;
        let facts = PacketFacts {
            ts_ns,
            seq: f.seq,
            timestamp: f.timestamp,
            ext_timestamp,
            marker: f.marker,
            pt: f.pt,
            payload_len: f.payload_len,
            payload_head: f.payload_head,
        };
        self.streams[idx].push(&facts, format_version, format);
        idx
    }

    /// The position of a conversation, created on first use.
    fn conv_slot(&mut self, conv: ConvKey) -> usize {
        match self.conv_index.get(&conv) {
            Some(&i) => i,
            None => {
                self.convs.push(ConvEntry(
                    conv,
                    ConvState {
                        extended_timestamp: 0x1_0000_0000,
                    },
                ));
                self.conv_index.insert(conv, self.convs.len() - 1);
                self.convs.len() - 1
            }
        }
    }

    /// The position of a 5-tuple's SSRC history, created on first use.
    fn tuple_slot(&mut self, key: &StreamKey) -> usize {
        let tk = (key.src, key.src_port, key.dst, key.dst_port);
        match self.tuple_index.get(&tk) {
            Some(&i) => i,
            None => {
                self.tuples.push(SsrcHistory {
                    src: key.src,
                    src_port: key.src_port,
                    dst: key.dst,
                    dst_port: key.dst_port,
                    last_ssrc: key.ssrc,
                    changes: 0,
                });
                self.tuple_index.insert(tk, self.tuples.len() - 1);
                self.tuples.len() - 1
            }
        }
    }

    /// packet-rtp.c `calculate_extended_timestamp`: nearest 2^32 cycle to the conversation's last.
    fn extend_timestamp_at(&mut self, i: usize, ts: u32) -> u64 {
        let prev = self.convs[i].1.extended_timestamp;
        let mut t = (prev & 0xffff_ffff_0000_0000) | u64::from(ts);
        if t.wrapping_add(0x8000_0000) < prev {
            t = t.wrapping_add(0x1_0000_0000);
        } else if prev.wrapping_add(0x8000_0000) < t {
            t = t.wrapping_sub(0x1_0000_0000);
        }
        self.convs[i].1.extended_timestamp = t;
        t
    }

    /// Mutable view, to label streams (e.g. with their dialog's Call-ID).
    pub fn stream_mut(&mut self, idx: usize) -> Option<&mut StreamState> {
        self.streams.get_mut(idx)
    }

    /// Removes and returns the streams whose last packet is before `before_ns`, with the
    /// conversations and 5-tuples no remaining stream uses. Memory stays per live stream; a
    /// stream that resumes later starts a new row (its first packet is its new start).
    pub fn evict_idle(&mut self, before_ns: i64) -> Vec<StreamState> {
        if self.streams.iter().all(|s| s.last_ns >= before_ns) {
            return Vec::new();
        }
        let (gone, kept): (Vec<StreamState>, Vec<StreamState>) = std::mem::take(&mut self.streams)
            .into_iter()
            .partition(|s| s.last_ns < before_ns);
        self.streams = kept;
        let live_convs: std::collections::HashSet<ConvKey> =
            self.streams.iter().map(|s| s.conv).collect();
        self.convs.retain(|e| live_convs.contains(&e.0));
        let live_tuples: std::collections::HashSet<(IpAddr, u16, IpAddr, u16)> = self
            .streams
            .iter()
            .map(|s| (s.key.src, s.key.src_port, s.key.dst, s.key.dst_port))
            .collect();
        self.tuples
            .retain(|t| live_tuples.contains(&(t.src, t.src_port, t.dst, t.dst_port)));
        self.stream_index.clear();
        self.conv_index.clear();
        self.tuple_index.clear();
        self.reindex();
        gone
    }

    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Streams in order of first packet.
    pub fn streams(&self) -> &[StreamState] {
        &self.streams
    }

    /// SSRC changes per 5-tuple, in order of first packet.
    pub fn ssrc_histories(&self) -> &[SsrcHistory] {
        &self.tuples
    }

    /// The rows tshark prints, in its order (newest stream first).
    pub fn tshark_rows(&self, origin_ns: i64) -> Vec<String> {
        self.streams
            .iter()
            .rev()
            .map(|s| s.summary(Metrics::Wireshark).tshark_row(origin_ns))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// The timeline's definition, bucket by bucket with no open bucket: what `Timeline` must equal.
    fn timeline_by_definition(events: &[(i64, u32, u32, f32)]) -> Timeline {
        let mut width = 1u64;
        let mut b: Vec<(u32, u32, f32)> = Vec::new();
        for &(rel_ns, recv, lost, jit) in events {
            let sec = (rel_ns.max(0) / 1_000_000_000) as u64;
            while sec / width >= TIMELINE_BUCKETS as u64 {
                b = b
                    .chunks(2)
                    .map(|c| {
                        c.iter()
                            .fold((0, 0, 0.0f32), |a, x| (a.0 + x.0, a.1 + x.1, a.2.max(x.2)))
                    })
                    .collect();
                width *= 2;
            }
            let i = (sec / width) as usize;
            if b.len() <= i {
                b.resize(i + 1, (0, 0, 0.0));
            }
            b[i].0 += recv;
            b[i].1 += lost;
            b[i].2 = b[i].2.max(jit);
        }
        Timeline {
            width_s: width as u32,
            buckets: b,
            open: None,
        }
    }

    #[test]
    fn timeline_with_its_open_bucket_equals_the_definition() {
        // 50 packets/s over 40 min (past 512 buckets, so buckets merge three times), a loss burst, a
        // few packets out of time order, and a serde round trip half-way as between two runs.
        let mut events = Vec::new();
        let mut x = 12345u64;
        for n in 0..120_000i64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let back = if x.is_multiple_of(997) {
                3_000_000_000
            } else {
                0
            };
            let t = n * 20_000_000 - back;
            let lost = if x.is_multiple_of(101) {
                (x >> 40) as u32 % 7
            } else {
                0
            };
            events.push((t, 1, lost, (x >> 50) as f32 / 1000.0));
        }
        let mut t = Timeline::default();
        for (i, &(rel, recv, lost, jit)) in events.iter().enumerate() {
            if i == 60_000 {
                t = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
            }
            t.note_lost(rel, lost);
            if recv > 0 {
                t.note_packet(rel, jit);
            }
        }
        let want = timeline_by_definition(
            &events
                .iter()
                .flat_map(|&(r, _, l, j)| [(r, 0, l, 0.0), (r, 1, 0, j)])
                .filter(|e| e.1 > 0 || e.2 > 0)
                .collect::<Vec<_>>(),
        );
        let got = t.settled();
        assert_eq!(got.width_s, 8);
        assert_eq!(got, want);
    }

    fn pkt(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut v = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&ts.to_be_bytes());
        v.extend_from_slice(&ssrc.to_be_bytes());
        v.extend_from_slice(&[0xff; 160]);
        v
    }

    fn key(ssrc: u32) -> StreamKey {
        StreamKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            src_port: 4000,
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            dst_port: 5000,
            ssrc,
        }
    }

    fn feed(t: &mut StreamTable, ts_ns: i64, bytes: &[u8]) {
        let h = RtpHeader::parse(bytes).unwrap();
        let k = key(h.ssrc());
        let conv = ConvKey::heuristic(k.src, k.src_port, k.dst, k.dst_port);
        t.push(k, conv, ts_ns, &h, None);
    }

    #[test]
    fn perfect_stream_has_zero_jitter_and_loss() {
        let mut t = StreamTable::new();
        for i in 0..50u16 {
            feed(
                &mut t,
                i64::from(i) * 20_000_000,
                &pkt(0, i == 0, 100 + i, u32::from(i) * 160, 1),
            );
        }
        let s = t.streams()[0].summary(Metrics::Wireshark);
        assert_eq!((s.packets, s.lost, s.expected), (50, 0, 50));
        assert!((s.mean_delta_ms - 20.0).abs() < 1e-9);
        assert_eq!(s.max_jitter_ms, 0.0);
        assert!(!s.problem);
    }

    #[test]
    fn duplicates_make_lost_negative_and_are_counted() {
        let mut t = StreamTable::new();
        for (n, seq) in [0u16, 1, 2, 2, 3, 5, 4, 6].iter().enumerate() {
            feed(
                &mut t,
                n as i64 * 20_000_000,
                &pkt(0, false, *seq, u32::from(*seq) * 160, 9),
            );
        }
        let st = &t.streams()[0];
        let s = st.summary(Metrics::Wireshark);
        assert_eq!(s.lost, -1); // expected 7 (0..=6), 8 packets
        assert!(s.problem);
        assert_eq!(st.duplicates, 1);
        assert_eq!(st.out_of_order, 1);
        // A.1 validates the source on its second in-order packet and counts from there.
        let r = st.summary(Metrics::Rfc3550);
        assert_eq!((r.expected, r.lost), (6, -1));
    }

    #[test]
    fn sequence_wrap_counts_a_cycle() {
        let mut t = StreamTable::new();
        for i in 0..20u32 {
            let seq = (65530 + i) as u16;
            feed(
                &mut t,
                i64::from(i) * 20_000_000,
                &pkt(8, false, seq, 0xffff_ff00u32.wrapping_add(i * 160), 3),
            );
        }
        let s = t.streams()[0].summary(Metrics::Wireshark);
        assert_eq!((s.expected, s.lost), (20, 0));
        assert_eq!(
            s.max_jitter_ms, 0.0,
            "timestamp wrap must not look like jitter"
        );
        assert_eq!(t.streams()[0].summary(Metrics::Rfc3550).lost, 0);
    }

    #[test]
    fn telephone_events_become_dtmf_digits() {
        let mut t = StreamTable::new();
        for i in 0..5u16 {
            let mut p = pkt(101, i == 0, i, 8000, 4);
            p.truncate(12);
            let end = i >= 3;
            p.extend_from_slice(&[5, if end { 0x8a } else { 0x0a }]);
            p.extend_from_slice(&((u16::min(i, 3) + 1) * 160).to_be_bytes());
            feed(&mut t, i64::from(i) * 20_000_000, &p);
        }
        let st = &t.streams()[0];
        assert_eq!(st.dtmf.len(), 1);
        let e = &st.dtmf[0];
        assert_eq!(e.digit, Some('5'));
        assert_eq!(e.duration, 640);
        assert_eq!(e.end_ns, Some(60_000_000));
        assert!((e.duration_ms - 80.0).abs() < 1e-9);
        assert_eq!(st.payload_label(), "rtpevent");
        let s = st.summary(Metrics::Wireshark);
        assert_eq!(s.min_jitter_ms, -1.0);
    }

    #[test]
    fn state_round_trips_through_serde_mid_stream() {
        let pkts: Vec<Vec<u8>> = (0..40u16)
            .map(|i| pkt(0, false, i, u32::from(i) * 160, 7))
            .collect();
        let when = |i: usize| i as i64 * 20_000_000 + ((i * 7919) % 13) as i64 * 100_000;
        let mut whole = StreamTable::new();
        for (i, p) in pkts.iter().enumerate() {
            feed(&mut whole, when(i), p);
        }
        let mut first = StreamTable::new();
        for (i, p) in pkts.iter().enumerate().take(17) {
            feed(&mut first, when(i), p);
        }
        let json = serde_json::to_string(&first).unwrap();
        let mut second: StreamTable = serde_json::from_str(&json).unwrap();
        for (i, p) in pkts.iter().enumerate().skip(17) {
            feed(&mut second, when(i), p);
        }
        assert_eq!(
            whole.streams()[0].summary(Metrics::Wireshark),
            second.streams()[0].summary(Metrics::Wireshark)
        );
        assert_eq!(whole.tshark_rows(0), second.tshark_rows(0));
    }

    #[test]
    fn batched_pushes_with_located_hints_equal_one_by_one_pushes() {
        // Several streams interleaved, some starting inside a batch and twice in the same batch
        // (their `locate` says None both times), with loss, reordering and an SSRC change.
        let mut packets = Vec::new();
        for i in 0..300u16 {
            for ssrc in 1..=4u32 {
                if ssrc == 4 && i < 37 {
                    continue; // starts mid-batch
                }
                if (ssrc == 2 && i % 17 == 5) || (ssrc == 3 && i == 100) {
                    continue;
                }
                let seq = if ssrc == 3 && i == 101 { 100 } else { i };
                let ts_ns = i64::from(i) * 20_000_000 + i64::from(ssrc) * 1_000 + i64::from(i % 7);
                packets.push((ts_ns, pkt(0, i == 0, seq, u32::from(seq) * 160, ssrc)));
            }
        }
        let mut one = StreamTable::new();
        for (ts, b) in &packets {
            feed(&mut one, *ts, b);
        }
        let mut batched = StreamTable::new();
        for chunk in packets.chunks(32) {
            let queued: Vec<RtpPacket> = chunk
                .iter()
                .map(|(ts, b)| {
                    let h = RtpHeader::parse(b).unwrap();
                    let k = key(h.ssrc());
                    let conv = ConvKey::heuristic(k.src, k.src_port, k.dst, k.dst_port);
                    RtpPacket::new(k, conv, *ts, &h)
                })
                .collect();
            let hints: Vec<Option<usize>> = queued.iter().map(|p| batched.locate(&p.key)).collect();
            for h in hints.iter().flatten() {
                batched.prefetch_slots(*h);
            }
            for (p, h) in queued.iter().zip(hints) {
                batched.push_packet(p, h, None);
            }
        }
        let summaries = |t: &StreamTable| -> Vec<StreamSummary> {
            t.streams()
                .iter()
                .map(|s| s.summary(Metrics::Wireshark))
                .collect()
        };
        assert_eq!(one.streams().len(), 4);
        assert_eq!(summaries(&batched), summaries(&one));
        assert_eq!(
            serde_json::to_string(&batched).unwrap(),
            serde_json::to_string(&one).unwrap()
        );
        // a stale hint (another stream's index) is checked, not trusted
        let p = {
            let b = pkt(0, false, 300, 300 * 160, 1);
            let h = RtpHeader::parse(&b).unwrap();
            let k = key(1);
            RtpPacket::new(
                k,
                ConvKey::heuristic(k.src, k.src_port, k.dst, k.dst_port),
                6_000_000_000,
                &h,
            )
        };
        let i = batched.push_packet(&p, Some(2), None);
        assert_eq!(batched.streams()[i].key.ssrc, 1);
        assert_eq!(batched.streams()[i].packets, 301);
    }

    /// The cached payload-type meaning must give what looking the format up for every packet
    /// gives: the same version always names the same format, and a new version (a re-INVITE
    /// remapping PT 96 from 8 kHz to 16 kHz, then to telephone-event) is looked up again.
    #[test]
    fn versioned_formats_equal_a_lookup_for_every_packet() {
        let narrow = PayloadFormat {
            encoding_name: "L16",
            clock_rate: 8000,
        };
        let wide = PayloadFormat {
            encoding_name: "L16",
            clock_rate: 16000,
        };
        let event = PayloadFormat {
            encoding_name: "telephone-event",
            clock_rate: 8000,
        };
        let conv = ConvKey::announced(key(7).dst, key(7).dst_port);
        let mut packets = Vec::new();
        for i in 0..300u16 {
            // versions 1, 2, 3 over the stream, with PT 0 packets in between
            let (version, format) = match i {
                0..=99 => (1, Some(narrow)),
                100..=199 => (2, Some(wide)),
                _ => (3, Some(event)),
            };
            let pt = if i % 10 == 3 { 0 } else { 96 };
            let ts = u32::from(i) * if version == 2 { 320 } else { 160 };
            let jitter_ns = i64::from(i % 5) * 1_300_000;
            let mut b = pkt(pt, false, i, ts, 7);
            if version == 3 {
                b[12..16].copy_from_slice(&[5, if i % 3 == 0 { 0x80 } else { 0 }, 0x01, 0x40]);
            }
            packets.push((i64::from(i) * 20_000_000 + jitter_ns, b, version, format));
        }
        let mut looked_up = StreamTable::new();
        let mut cached = StreamTable::new();
        let lookups = std::cell::Cell::new(0);
        for (ts, b, version, format) in &packets {
            let h = RtpHeader::parse(b).unwrap();
            let p = RtpPacket::new(key(7), conv, *ts, &h);
            looked_up.push_packet(&p, None, *format);
            cached.push_versioned(&p, None, *version, &|| {
                lookups.set(lookups.get() + 1);
                *format
            });
        }
        let a = looked_up.streams()[0].summary(Metrics::Wireshark);
        let b = cached.streams()[0].summary(Metrics::Wireshark);
        assert_eq!(a, b);
        assert_eq!(
            serde_json::to_string(&looked_up).unwrap(),
            serde_json::to_string(&cached).unwrap()
        );
        assert!(
            !cached.streams()[0].dtmf.is_empty(),
            "the remapped PT is read as events"
        );
        // looked up on PT changes and version changes only, not for each of the 300 packets
        assert!(lookups.get() < 100, "{} lookups", lookups.get());
    }

    #[test]
    fn ssrc_change_on_one_five_tuple_is_counted() {
        let mut t = StreamTable::new();
        for i in 0..4u16 {
            feed(
                &mut t,
                i64::from(i),
                &pkt(0, false, i, 0, if i < 2 { 1 } else { 2 }),
            );
        }
        assert_eq!(t.streams().len(), 2);
        assert_eq!(t.ssrc_histories()[0].changes, 1);
    }

    #[test]
    fn clock_table_matches_wireshark() {
        assert_eq!(static_clock_rate(0), 8000);
        assert_eq!(static_clock_rate(10), 44100);
        assert_eq!(static_clock_rate(34), 90000);
        assert_eq!(static_clock_rate(96), 0);
        assert_eq!(dynamic_clock_rate("AMR-WB"), 16000);
        assert_eq!(dynamic_clock_rate("amr"), 8000);
        // Wireshark 4.0 has no opus entry (later versions do).
        assert_eq!(dynamic_clock_rate("OPUS"), 0);
        assert_eq!(dynamic_clock_rate("speex"), 0);
    }
}
