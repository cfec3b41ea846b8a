//! RTP datagrams: the state-dependent half of classification and the batching of packets into
//! the stream table (see `RTP_BATCH`).
use std::net::IpAddr;

use super::feed::{self, UdpFacts};
use super::MediaPass;
use crate::rtp::{Classification, ConvKey, PayloadFormat};
use crate::rtp::{RtpPacket, StreamKey};
use crate::store::StoreError;

/// Packets applied to the stream table at once: enough for their cache misses to overlap, few
/// enough that the batch stays in L1.
pub(super) const RTP_BATCH: usize = 32;

pub(super) struct QueuedRtp {
    pub(super) packet: RtpPacket,
    /// The SDP address that classified it, if one did (its rtpmap names the payload type).
    conv_addr: Option<(IpAddr, u16)>,
    /// That announcement's version (0 for none).
    format_version: u64,
    /// The reader's id of the packet's flow, and the flow's last stream then.
    pub(super) flow: u32,
    stream_hint: Option<usize>,
}

impl MediaPass<'_> {
    /// The state-dependent half of a datagram's classification (the reader did the rest): an
    /// address announced in SDP decides the conversation, whether the port is RTP at all (T.38
    /// takes it) and which classification applies.
    pub(super) fn udp(&mut self, f: &UdpFacts, chunk: &feed::Chunk) -> Result<(), StoreError> {
        let m = &mut self.state.maps;
        let dst = (f.dst, f.dst_port);
        let src = (f.src, f.src_port);
        let (ann, stream_hint) = m.flow_slot(f);
        let (conv_addr, is_rtp, format_version) = match ann {
            Some((i, _, via_dst)) => {
                let h = m.announced.head_mut(i).expect("a checked handle");
                h.last_ns = f.ts_ns;
                (Some(if via_dst { dst } else { src }), h.rtp, h.version)
            }
            None => (None, true, 0),
        };
        if !is_rtp {
            return Ok(()); // T.38 (UDPTL) took the port
        }
        if f.looks_like_rtcp {
            let rtcp_call = m
                .rtcp_addrs
                .get(&dst)
                .or_else(|| m.rtcp_addrs.get(&src))
                .map(|c| c.0.clone());
            if let (Some(_), Some((o, payload))) = (&rtcp_call, chunk.kept(f)) {
                self.flush_rtp();
                return self.rtcp(&o, payload, rtcp_call);
            }
        }
        let class = if conv_addr.is_some() {
            f.known
        } else {
            f.heuristic
        };
        match class {
            Classification::Rtp => {
                let Some(fields) = f.rtp else {
                    return Ok(());
                };
                let conv = match conv_addr {
                    Some(a) => ConvKey::announced(a.0, a.1),
                    None => ConvKey::heuristic(f.src, f.src_port, f.dst, f.dst_port),
                };
                let key = StreamKey {
                    src: f.src,
                    src_port: f.src_port,
                    dst: f.dst,
                    dst_port: f.dst_port,
                    ssrc: fields.ssrc,
                };
                let packet = RtpPacket::of_fields(key, conv, f.ts_ns, fields);
                self.rtp(QueuedRtp {
                    packet,
                    conv_addr,
                    format_version,
                    flow: f.flow,
                    stream_hint,
                });
                Ok(())
            }
            Classification::Rtcp => {
                let call = conv_addr.and_then(|a| m.announced.get(&a)?.call_id.clone());
                let Some((o, payload)) = chunk.kept(f) else {
                    return Ok(());
                };
                self.flush_rtp();
                self.rtcp(&o, payload, call)
            }
            Classification::Neither => Ok(()),
        }
    }

    pub(super) fn rtp(&mut self, q: QueuedRtp) {
        self.out.rtp_packets += 1;
        self.batch.push(q);
        if self.batch.len() >= RTP_BATCH {
            self.flush_rtp();
        }
    }

    /// Applies the queued RTP packets to their streams, in capture order. Anything else that
    /// reads or changes the streams (SIP, RTCP, eviction, a file's end) flushes first, so the
    /// result is the same as applying each packet as it is read; the batch only lets the
    /// streams' cache misses overlap (see `StreamTable::locate`).
    pub(super) fn flush_rtp(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let mut hints = [None; RTP_BATCH];
        for (q, hint) in batch.iter().zip(hints.iter_mut()) {
            // the flow's last stream, checked by `push_packet`; a map probe only without one
            *hint = match q.stream_hint {
                Some(i) => self.state.table.prefetch_stream(i),
                None => self.state.table.locate(&q.packet.key),
            };
        }
        for hint in hints.iter().flatten() {
            self.state.table.prefetch_slots(*hint);
        }
        for (q, hint) in batch.iter().zip(hints) {
            self.apply_rtp(q, hint);
        }
        self.batch = batch;
        self.batch.clear();
    }

    fn apply_rtp(&mut self, q: &QueuedRtp, hint: Option<usize>) {
        let m = &mut self.state.maps;
        let announced = &m.announced;
        let pt = q.packet.payload_type();
        // Looked up only when the stream's payload type or its announcement changed.
        let format = || {
            let a = announced.get(&q.conv_addr?)?;
            a.rtpmap.iter().find(|x| x.0 == pt).map(|x| PayloadFormat {
                encoding_name: &x.1,
                clock_rate: x.2,
            })
        };
        let table = &mut self.state.table;
        let before = table.len();
        let idx = table.push_versioned(&q.packet, hint, q.format_version, &format);
        let ssrc = q.packet.key.ssrc;
        let k = &q.packet.key;
        m.note_stream(q.flow, (k.src, k.src_port, k.dst, k.dst_port), idx);
        if table.len() != before {
            let ann = q.conv_addr.and_then(|a| m.announced.get(&a));
            if let Some(call) = ann.and_then(|a| a.call_id.clone()) {
                let s = table.stream_mut(idx).expect("just pushed");
                s.call_id = Some(call.clone());
                let rate = s.clock_rate();
                m.set_ssrc_call(ssrc, call, rate);
            }
        } else if m.unknown_rates > 0 {
            // The clock rate becomes known with the first media packet (after e.g. an event).
            if let Some((_, rate @ 0)) = m.ssrc_call.get_mut(&ssrc) {
                *rate = table.streams()[idx].clock_rate();
                if *rate != 0 {
                    m.unknown_rates -= 1;
                }
            }
        }
    }
}
