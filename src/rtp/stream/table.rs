//! `StreamTable`: every stream of a run with its Wireshark conversation and 5-tuple slots, SSRC
//! history, batch prefetching and idle eviction; the per-packet entry points of the analysis.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{
    ConvKey, Metrics, PacketFacts, PayloadFormat, RtpPacket, StreamKey, StreamState, HOT_BYTES,
    UNVERSIONED_FORMAT,
};
use crate::hint::{prefetch, prefetch_prefix};
use crate::rtp::header::RtpHeader;

/// Seeded (HashDoS-resistant) and several times faster than SipHash on these small keys; the
/// per-packet path does one lookup per packet.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

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
