//! Compound RTCP walker (RFC 3550 §6: SR, RR, SDES, BYE, APP) and RTCP XR (RFC 3611, PT 207,
//! whose blocks are in `rtcp_xr`), with round-trip time from LSR/DLSR against the sender reports
//! seen. Borrowed views; after each packet's length check (done by the iterator) no accessor
//! panics.

use serde::{Deserialize, Serialize};

use super::header::be32;
use super::RtpError;
// XR's blocks live in their own file; their paths under `rtcp` stay.
pub use super::rtcp_xr::{
    Dlrr, DlrrItem, ExtendedReport, JitterBufferMode, Plc, RleReport, StatisticsSummary,
    VoipMetrics, XrBlock, XrBlocks,
};

pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
pub const PT_APP: u8 = 204;
pub const PT_XR: u8 = 207;

/// Walks the packets of a compound RTCP datagram. Yields an error once and stops when a length
/// field overruns the datagram or a version is not 2.
pub fn packets(buf: &[u8]) -> Packets<'_> {
    Packets { buf, done: false }
}

pub struct Packets<'a> {
    buf: &'a [u8],
    done: bool,
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<RtcpPacket<'a>, RtpError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.buf.is_empty() {
            return None;
        }
        let b = self.buf;
        if b.len() < 4 {
            self.done = true;
            return Some(Err(RtpError::TooShort));
        }
        if b[0] >> 6 != 2 {
            self.done = true;
            return Some(Err(RtpError::BadVersion));
        }
        let len = 4 * (usize::from(u16::from_be_bytes([b[2], b[3]])) + 1);
        if len > b.len() {
            self.done = true;
            return Some(Err(RtpError::LengthOverrun));
        }
        self.buf = &b[len..];
        let pkt = RawPacket { buf: &b[..len] };
        Some(pkt.classify().inspect_err(|_| self.done = true))
    }
}

#[derive(Clone, Copy, Debug)]
struct RawPacket<'a> {
    buf: &'a [u8],
}

impl<'a> RawPacket<'a> {
    fn count(&self) -> u8 {
        self.buf[0] & 0x1f
    }
    fn body(&self) -> &'a [u8] {
        let pad = if self.buf[0] & 0x20 != 0 {
            usize::from(self.buf[self.buf.len() - 1]).min(self.buf.len() - 4)
        } else {
            0
        };
        &self.buf[4..self.buf.len() - pad]
    }
    fn classify(self) -> Result<RtcpPacket<'a>, RtpError> {
        let count = usize::from(self.count());
        let body = self.body();
        Ok(match self.buf[1] {
            PT_SR => {
                if body.len() < 24 + 24 * count {
                    return Err(RtpError::TooShort);
                }
                RtcpPacket::SenderReport(SenderReport {
                    body,
                    blocks: &body[24..24 + 24 * count],
                })
            }
            PT_RR => {
                if body.len() < 4 + 24 * count {
                    return Err(RtpError::TooShort);
                }
                RtcpPacket::ReceiverReport(ReceiverReport {
                    ssrc: be32(body, 0),
                    blocks: &body[4..4 + 24 * count],
                })
            }
            PT_SDES => RtcpPacket::SourceDescription(Sdes {
                body,
                count: self.count(),
            }),
            PT_BYE => {
                if body.len() < 4 * count {
                    return Err(RtpError::TooShort);
                }
                RtcpPacket::Goodbye(Bye { body, count })
            }
            PT_APP => {
                if body.len() < 8 {
                    return Err(RtpError::TooShort);
                }
                RtcpPacket::App(App {
                    subtype: self.count(),
                    ssrc: be32(body, 0),
                    name: [body[4], body[5], body[6], body[7]],
                    data: &body[8..],
                })
            }
            PT_XR => {
                if body.len() < 4 {
                    return Err(RtpError::TooShort);
                }
                RtcpPacket::ExtendedReport(ExtendedReport {
                    ssrc: be32(body, 0),
                    blocks: &body[4..],
                })
            }
            pt => RtcpPacket::Other {
                packet_type: pt,
                count: self.count(),
                body,
            },
        })
    }
}

#[derive(Clone, Copy, Debug)]
pub enum RtcpPacket<'a> {
    SenderReport(SenderReport<'a>),
    ReceiverReport(ReceiverReport<'a>),
    SourceDescription(Sdes<'a>),
    Goodbye(Bye<'a>),
    App(App<'a>),
    ExtendedReport(ExtendedReport<'a>),
    /// Feedback (RFC 4585) and others: identified, not parsed.
    Other {
        packet_type: u8,
        count: u8,
        body: &'a [u8],
    },
}

/// One reception report block (RFC 3550 §6.4.1), copied out: it is small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// Signed 24-bit: duplicates can make it negative.
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR from this source (0: none yet).
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8]) -> ReportBlock {
        let raw = (i32::from(b[5]) << 16) | (i32::from(b[6]) << 8) | i32::from(b[7]);
        ReportBlock {
            ssrc: be32(b, 0),
            fraction_lost: b[4],
            cumulative_lost: (raw << 8) >> 8,
            extended_highest_seq: be32(b, 8),
            jitter: be32(b, 12),
            lsr: be32(b, 16),
            dlsr: be32(b, 20),
        }
    }
}

fn blocks(b: &[u8]) -> impl Iterator<Item = ReportBlock> + '_ {
    b.chunks_exact(24).map(ReportBlock::parse)
}

#[derive(Clone, Copy, Debug)]
pub struct SenderReport<'a> {
    body: &'a [u8],
    blocks: &'a [u8],
}

impl<'a> SenderReport<'a> {
    pub fn ssrc(&self) -> u32 {
        be32(self.body, 0)
    }
    /// 64-bit NTP timestamp (seconds since 1900 in the high half).
    pub fn ntp_timestamp(&self) -> u64 {
        (u64::from(be32(self.body, 4)) << 32) | u64::from(be32(self.body, 8))
    }
    /// The middle 32 bits that receivers echo as LSR.
    pub fn ntp_middle(&self) -> u32 {
        (self.ntp_timestamp() >> 16) as u32
    }
    pub fn rtp_timestamp(&self) -> u32 {
        be32(self.body, 12)
    }
    pub fn packet_count(&self) -> u32 {
        be32(self.body, 16)
    }
    pub fn octet_count(&self) -> u32 {
        be32(self.body, 20)
    }
    pub fn report_blocks(&self) -> impl Iterator<Item = ReportBlock> + 'a {
        blocks(self.blocks)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ReceiverReport<'a> {
    pub ssrc: u32,
    blocks: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    pub fn report_blocks(&self) -> impl Iterator<Item = ReportBlock> + 'a {
        blocks(self.blocks)
    }
}

/// SDES item types (RFC 3550 §6.5).
pub const SDES_CNAME: u8 = 1;

#[derive(Clone, Copy, Debug)]
pub struct Sdes<'a> {
    body: &'a [u8],
    count: u8,
}

/// One SDES item: type and raw value (not necessarily UTF-8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdesItem<'a> {
    pub ssrc: u32,
    pub item_type: u8,
    pub value: &'a [u8],
}

impl<'a> Sdes<'a> {
    /// All items of all chunks; stops quietly at the first malformed chunk.
    pub fn items(&self) -> SdesItems<'a> {
        SdesItems {
            body: self.body,
            pos: 0,
            chunks_left: self.count,
            ssrc: None,
        }
    }
    /// The CNAME of the first chunk that has one.
    pub fn cname(&self) -> Option<(u32, &'a [u8])> {
        self.items()
            .find(|i| i.item_type == SDES_CNAME)
            .map(|i| (i.ssrc, i.value))
    }
}

pub struct SdesItems<'a> {
    body: &'a [u8],
    pos: usize,
    chunks_left: u8,
    ssrc: Option<u32>,
}

impl<'a> Iterator for SdesItems<'a> {
    type Item = SdesItem<'a>;
    fn next(&mut self) -> Option<SdesItem<'a>> {
        loop {
            let b = self.body;
            let ssrc = match self.ssrc {
                Some(s) => s,
                None => {
                    if self.chunks_left == 0 || self.pos + 4 > b.len() {
                        return None;
                    }
                    let s = be32(b, self.pos);
                    self.pos += 4;
                    self.ssrc = Some(s);
                    s
                }
            };
            let t = *b.get(self.pos)?;
            if t == 0 {
                // End of chunk: skip to the next 32-bit boundary.
                self.pos = (self.pos + 4) & !3;
                self.ssrc = None;
                self.chunks_left -= 1;
                continue;
            }
            let len = usize::from(*b.get(self.pos + 1)?);
            let value = b.get(self.pos + 2..self.pos + 2 + len)?;
            self.pos += 2 + len;
            return Some(SdesItem {
                ssrc,
                item_type: t,
                value,
            });
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Bye<'a> {
    body: &'a [u8],
    count: usize,
}

impl<'a> Bye<'a> {
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let body = self.body;
        (0..self.count).map(move |i| be32(body, 4 * i))
    }
    pub fn reason(&self) -> Option<&'a [u8]> {
        let at = 4 * self.count;
        let len = usize::from(*self.body.get(at)?);
        self.body.get(at + 1..at + 1 + len)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct App<'a> {
    pub subtype: u8,
    pub ssrc: u32,
    pub name: [u8; 4],
    pub data: &'a [u8],
}

/// Seconds between the NTP era (1900) and the Unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The middle 32 bits of the NTP timestamp for a capture time in Unix nanoseconds.
pub fn ntp_middle_of_ns(ts_ns: i64) -> u32 {
    let secs = ts_ns.div_euclid(1_000_000_000) as u64 + NTP_UNIX_OFFSET;
    let frac = ((ts_ns.rem_euclid(1_000_000_000) as u64) << 32) / 1_000_000_000;
    (((secs & 0xffff) << 16) | (frac >> 16)) as u32
}

/// RFC 3550 §6.4.1 round trip: A − LSR − DLSR in 1/65536 s, A being the middle NTP bits at
/// which the report arrived. `None` when no SR was reported (LSR 0) or the result is negative.
pub fn round_trip_units(arrival_middle: u32, block: &ReportBlock) -> Option<u32> {
    if block.lsr == 0 {
        return None;
    }
    let rtt = arrival_middle
        .wrapping_sub(block.lsr)
        .wrapping_sub(block.dlsr);
    // A wrapped (negative) value means clocks or captures disagree: report nothing.
    (rtt < 0x8000_0000).then_some(rtt)
}

/// Remembers when each sender report was seen, so a later report block echoing its LSR gives
/// the round trip measured on the capture clock alone (no trust in the endpoints' NTP clocks).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RttTracker {
    /// (sender SSRC, NTP middle bits, capture time ns), most recent last; bounded.
    seen: Vec<(u32, u32, i64)>,
}

const RTT_TRACKER_CAP: usize = 256;

impl RttTracker {
    pub fn on_sender_report(&mut self, sr: &SenderReport<'_>, ts_ns: i64) {
        if self.seen.len() == RTT_TRACKER_CAP {
            self.seen.remove(0);
        }
        self.seen.push((sr.ssrc(), sr.ntp_middle(), ts_ns));
    }
    /// Round trip in nanoseconds for a report block about `block.ssrc` arriving at `ts_ns`:
    /// arrival − time the echoed SR was seen − DLSR.
    pub fn on_report_block(&self, block: &ReportBlock, ts_ns: i64) -> Option<i64> {
        if block.lsr == 0 {
            return None;
        }
        let &(_, _, sr_ns) = self
            .seen
            .iter()
            .rev()
            .find(|(ssrc, mid, _)| *ssrc == block.ssrc && *mid == block.lsr)?;
        let dlsr_ns = (i64::from(block.dlsr) * 1_000_000_000) >> 16;
        let rtt = ts_ns - sr_ns - dlsr_ns;
        (rtt >= 0).then_some(rtt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sr_rr_sdes_bye() -> Vec<u8> {
        let mut v = vec![0x82, 200, 0, 18]; // SR, 2 blocks: 4 + 24 + 48 = 76 bytes = 19 words
        v.extend_from_slice(&0x0a0a0a0au32.to_be_bytes());
        v.extend_from_slice(&0xe0000001u32.to_be_bytes()); // NTP secs
        v.extend_from_slice(&0x80000000u32.to_be_bytes()); // NTP frac = 0.5
        v.extend_from_slice(&4000u32.to_be_bytes());
        v.extend_from_slice(&25u32.to_be_bytes());
        v.extend_from_slice(&4000u32.to_be_bytes());
        for (ssrc, lost) in [
            (0x0b0b0b0bu32, [0u8, 0, 3]),
            (0x0c0c0c0c, [0xff, 0xff, 0xfe]),
        ] {
            v.extend_from_slice(&ssrc.to_be_bytes());
            v.push(25);
            v.extend_from_slice(&lost);
            v.extend_from_slice(&70000u32.to_be_bytes());
            v.extend_from_slice(&40u32.to_be_bytes());
            v.extend_from_slice(&0x12345678u32.to_be_bytes());
            v.extend_from_slice(&0x00010000u32.to_be_bytes());
        }
        // SDES: one chunk, CNAME "ab", end, padded to 12 bytes of body
        v.extend_from_slice(&[0x81, 202, 0, 2]);
        v.extend_from_slice(&0x0a0a0a0au32.to_be_bytes());
        v.extend_from_slice(&[1, 2, b'a', b'b']);
        // BYE with reason "x"
        v.extend_from_slice(&[0x81, 203, 0, 2]);
        v.extend_from_slice(&0x0a0a0a0au32.to_be_bytes());
        v.extend_from_slice(&[1, b'x', 0, 0]);
        v
    }

    #[test]
    fn compound_sr_sdes_bye() {
        let buf = sr_rr_sdes_bye();
        let pkts: Vec<_> = packets(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(pkts.len(), 3);
        let RtcpPacket::SenderReport(sr) = pkts[0] else {
            panic!("not an SR")
        };
        assert_eq!(sr.ssrc(), 0x0a0a0a0a);
        assert_eq!(sr.ntp_middle(), 0x0001_8000);
        assert_eq!(sr.packet_count(), 25);
        let rb: Vec<_> = sr.report_blocks().collect();
        assert_eq!(rb.len(), 2);
        assert_eq!(rb[0].cumulative_lost, 3);
        assert_eq!(rb[1].cumulative_lost, -2);
        assert_eq!(rb[1].extended_highest_seq, 70000);
        let RtcpPacket::SourceDescription(sdes) = pkts[1] else {
            panic!("not SDES")
        };
        assert_eq!(sdes.cname(), Some((0x0a0a0a0a, &b"ab"[..])));
        let RtcpPacket::Goodbye(bye) = pkts[2] else {
            panic!("not BYE")
        };
        assert_eq!(bye.ssrcs().collect::<Vec<_>>(), vec![0x0a0a0a0a]);
        assert_eq!(bye.reason(), Some(&b"x"[..]));
    }

    #[test]
    fn overrun_length_stops_the_walk() {
        let mut buf = sr_rr_sdes_bye();
        buf.truncate(buf.len() - 2);
        let res: Vec<_> = packets(&buf).collect();
        assert_eq!(res.len(), 3);
        assert_eq!(res[2].as_ref().err(), Some(&RtpError::LengthOverrun));
        assert!(packets(&[0x40, 200, 0, 0]).next().unwrap().is_err());
    }

    #[test]
    fn rtt_from_lsr_and_dlsr() {
        let block = ReportBlock {
            ssrc: 7,
            fraction_lost: 0,
            cumulative_lost: 0,
            extended_highest_seq: 0,
            jitter: 0,
            lsr: 0x0001_0000,
            dlsr: 0x0000_4000, // 0.25 s
        };
        // arrival 1.3 s after the SR's middle bits
        let a = 0x0001_0000 + (1.3 * 65536.0) as u32;
        let rtt = round_trip_units(a, &block).unwrap();
        assert!((f64::from(rtt) / 65536.0 - 1.05).abs() < 1e-4);
        assert_eq!(round_trip_units(a, &ReportBlock { lsr: 0, ..block }), None);
        // A SR seen at 10 s whose middle bits the block echoes: RTT on the capture clock.
        let sr_bytes = {
            let mut v = vec![0x80, 200, 0, 6];
            v.extend_from_slice(&7u32.to_be_bytes());
            v.extend_from_slice(&1u32.to_be_bytes());
            v.extend_from_slice(&0u32.to_be_bytes());
            v.extend_from_slice(&[0; 12]);
            v
        };
        let Some(Ok(RtcpPacket::SenderReport(sr))) = packets(&sr_bytes).next() else {
            panic!("not SR")
        };
        let mut t = RttTracker::default();
        t.on_sender_report(&sr, 10_000_000_000);
        let rtt = t.on_report_block(&block, 10_300_000_000).unwrap();
        assert_eq!(rtt, 50_000_000);
        assert_eq!(
            t.on_report_block(&ReportBlock { ssrc: 8, ..block }, 10_300_000_000),
            None
        );
    }

    #[test]
    fn ntp_middle_bits_of_unix_time() {
        // 2208988800 + 1 s = NTP 0x83AA7E81; its low 16 bits 0x7E81, frac 0.5 -> 0x8000
        assert_eq!(ntp_middle_of_ns(1_500_000_000), 0x7e81_8000);
    }
}
