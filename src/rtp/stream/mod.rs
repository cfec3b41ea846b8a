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
//!
//! Here: the keys, `StreamState` (its layout is the cache design) and the per-packet `push`.
//! Beside it: `wireshark` (tshark's figures), `rfc3550`, `loss` (sequence window, loss model,
//! jitter buffer), `timeline`, and `table` (`StreamTable`, the entry point); the payload-type
//! tables are `rtp::payload`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::header::RtpHeader;
use super::payload::{default_dynamic_name, dynamic_clock_rate, starts_with_ci, PT_CN, PT_CN_OLD};

mod loss;
mod rfc3550;
mod table;
#[cfg(test)]
mod tests;
mod timeline;
mod wireshark;

use loss::{SeqEvent, SeqWindow};
use rfc3550::Rfc3550Stat;
use wireshark::WiresharkStat;

pub use loss::{LossModel, JITTER_BUFFER_MS};
pub use table::{SsrcHistory, StreamTable};
pub use timeline::{Timeline, TIMELINE_BUCKETS};
// The payload tables' earlier home, where the library's users find them.
pub use super::payload::{dtmf_char, short_payload_name, static_clock_rate};
// `index/media` names the prefetch helper by its old path.
#[cfg(feature = "full")]
pub(crate) use crate::hint::prefetch;

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
}
