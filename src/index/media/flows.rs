//! Per-flow memory between packets (`FlowSlot`) and the pass's lookup maps (`Maps`), so the
//! per-packet path finds a flow's announcement and stream without hashing.
use std::net::IpAddr;

use super::announce::Announcements;
use super::feed::UdpFacts;
use super::{FastMap, Flow5};
use crate::rtp::StreamKey;

/// What the analysis remembers of one UDP flow (5-tuple) between its packets, found by the
/// id the reader gave the flow: its conversation's announcement and its last stream.
#[derive(Clone, Copy, Debug)]
pub(super) struct FlowSlot {
    /// The flow this slot describes (ids are reused once a flow is idle).
    pub(super) flow: Flow5,
    /// The announcement that decides the conversation: its slot, version, and whether it is
    /// the destination's (else the source's); None when neither address is announced.
    pub(super) ann: Option<(usize, u64, bool)>,
    /// The destination's and the source's address buckets and their insert counts when `ann`
    /// was looked up: a negative answer for an address holds while its bucket sees no insert
    /// (see `Announcements::bucket_inserts`).
    pub(super) checked: [(u32, u32); 2],
    /// The flow's last stream, a hint `StreamTable::push_packet` checks.
    pub(super) stream: Option<usize>,
}

#[derive(Debug, Default)]
pub(super) struct Maps {
    pub(super) built: bool,
    pub(super) announced: Announcements,
    /// By the reader's flow id.
    pub(super) flows: Vec<Option<FlowSlot>>,
    pub(super) rtcp_addrs: FastMap<(IpAddr, u16), (String, i64)>,
    pub(super) sr_seen: FastMap<u32, Vec<(u32, i64)>>,
    pub(super) rtt_ms: FastMap<u32, f64>,
    pub(super) capture_drops: FastMap<(StreamKey, i64), u64>,
    pub(super) capture_window_lost: FastMap<(StreamKey, i64), u64>,
    pub(super) span_duplicates: FastMap<Flow5, u64>,
    /// SSRC → Call-ID of streams carrying one (RTCP about a stream inherits its call), with
    /// the stream's clock rate; `unknown_rates` counts the entries whose rate is still 0, so
    /// the per-packet path looks the map up only while one waits for its first media packet.
    pub(super) ssrc_call: FastMap<u32, (String, u32)>,
    pub(super) unknown_rates: usize,
    /// The last announcement version given out (0 stands for no announcement).
    pub(super) last_version: u64,
}

impl Maps {
    /// The flow's announcement handle, checked (looked up again only when it may have
    /// changed), and its last stream: the per-packet path then hashes nothing. The slot is
    /// read and written in place: copied whole through the stack, its odd-sized fields were
    /// read back at other widths than written (a store-forwarding stall, a fifth of the event
    /// handling).
    pub(super) fn flow_slot(
        &mut self,
        f: &UdpFacts,
    ) -> (Option<(usize, u64, bool)>, Option<usize>) {
        let flow = (f.src, f.src_port, f.dst, f.dst_port);
        let id = f.flow as usize;
        if self.flows.len() <= id {
            self.flows.resize(id + 1, None);
        }
        let anns = &self.announced;
        let entry = &mut self.flows[id];
        if entry.as_ref().is_none_or(|s| s.flow != flow) {
            *entry = Some(FlowSlot {
                flow,
                ann: None,
                // never equal to a bucket's count: the first packet looks up
                checked: [(u32::MAX, u32::MAX); 2],
                stream: None,
            });
        }
        let slot = entry.as_mut().expect("just filled");
        let current = |(i, version, _): (usize, u64, bool)| {
            anns.head(i).is_some_and(|h| h.version == version)
        };
        let unchanged = |(bucket, n): (u32, u32)| anns.inserts_in(bucket) == n;
        let valid = match slot.ann {
            Some(h @ (_, _, true)) => current(h),
            Some(h) => unchanged(slot.checked[0]) && current(h),
            None => unchanged(slot.checked[0]) && unchanged(slot.checked[1]),
        };
        if valid {
            return (slot.ann, slot.stream);
        }
        // as `udp` decides: the destination's announcement, else the source's
        let handle = |k: (IpAddr, u16), via_dst: bool| {
            let i = anns.slot_of(&k)?;
            Some((i, anns.head(i)?.version, via_dst))
        };
        let (dst, src) = ((f.dst, f.dst_port), (f.src, f.src_port));
        let ann = handle(dst, true).or_else(|| handle(src, false));
        let counted = |k: &(IpAddr, u16)| {
            let b = anns.bucket(k);
            (b, anns.inserts_in(b))
        };
        slot.ann = ann;
        slot.checked = [counted(&dst), counted(&src)];
        (slot.ann, slot.stream)
    }

    /// After a packet: the stream it went to, the hint for the flow's next packet.
    pub(super) fn note_stream(&mut self, id: u32, flow: Flow5, stream: usize) {
        if let Some(Some(s)) = self.flows.get_mut(id as usize) {
            if s.flow == flow {
                s.stream = Some(stream);
            }
        }
    }

    pub(super) fn set_ssrc_call(&mut self, ssrc: u32, call: String, rate: u32) {
        if let Some((_, 0)) = self.ssrc_call.insert(ssrc, (call, rate)) {
            self.unknown_rates -= 1;
        }
        self.unknown_rates += usize::from(rate == 0);
    }

    pub(super) fn next_version(&mut self) -> u64 {
        self.last_version += 1;
        self.last_version
    }

    pub(super) fn forget_ssrc_call(&mut self, ssrc: u32) {
        if let Some((_, 0)) = self.ssrc_call.remove(&ssrc) {
            self.unknown_rates -= 1;
        }
    }
}
