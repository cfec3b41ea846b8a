//! RTCP Extended Reports (RFC 3611, PT 207): the block walker and the blocks sipidx reads (loss and
//! duplicate RLE, DLRR, statistics summary, VoIP metrics). Borrowed views, reached through
//! `rtcp::RtcpPacket::ExtendedReport`; after the walker's length check no accessor panics.

use serde::{Deserialize, Serialize};

use super::header::be32;
use super::RtpError;

#[derive(Clone, Copy, Debug)]
pub struct ExtendedReport<'a> {
    pub ssrc: u32,
    /// Set by `rtcp`'s walker, which has checked the packet's length.
    pub(super) blocks: &'a [u8],
}

impl<'a> ExtendedReport<'a> {
    /// The report blocks; a block whose length overruns ends the walk with an error.
    pub fn blocks(&self) -> XrBlocks<'a> {
        XrBlocks {
            buf: self.blocks,
            done: false,
        }
    }
}

pub struct XrBlocks<'a> {
    buf: &'a [u8],
    done: bool,
}

impl<'a> Iterator for XrBlocks<'a> {
    type Item = Result<XrBlock<'a>, RtpError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.buf.is_empty() {
            return None;
        }
        let b = self.buf;
        let len = b
            .get(2..4)
            .map(|l| 4 + 4 * usize::from(u16::from_be_bytes([l[0], l[1]])));
        match len {
            Some(len) if len <= b.len() => {
                self.buf = &b[len..];
                let block = XrBlock::parse(b[0], b[1], &b[4..len]);
                if block.is_err() {
                    self.done = true;
                }
                Some(block)
            }
            _ => {
                self.done = true;
                Some(Err(RtpError::LengthOverrun))
            }
        }
    }
}

/// RFC 3611 §4 block types.
#[derive(Clone, Copy, Debug)]
pub enum XrBlock<'a> {
    /// BT=1 Loss RLE and BT=2 Duplicate RLE: run-length chunks left raw.
    LossRle(RleReport<'a>),
    DuplicateRle(RleReport<'a>),
    /// BT=3: one 32-bit receipt time per sequence number in [begin, end).
    PacketReceiptTimes(RleReport<'a>),
    /// BT=4: the receiver's NTP time.
    ReceiverReferenceTime {
        ntp_timestamp: u64,
    },
    /// BT=5: (SSRC, LRR, DLRR) sub-blocks.
    Dlrr(Dlrr<'a>),
    StatisticsSummary(StatisticsSummary),
    VoipMetrics(VoipMetrics),
    Unknown {
        block_type: u8,
        type_specific: u8,
        body: &'a [u8],
    },
}

impl<'a> XrBlock<'a> {
    fn parse(bt: u8, ts: u8, body: &'a [u8]) -> Result<XrBlock<'a>, RtpError> {
        let need = |n: usize| {
            if body.len() < n {
                Err(RtpError::TooShort)
            } else {
                Ok(())
            }
        };
        Ok(match bt {
            1..=3 => {
                need(8)?;
                let r = RleReport {
                    thinning: ts & 0x0f,
                    ssrc: be32(body, 0),
                    begin_seq: u16::from_be_bytes([body[4], body[5]]),
                    end_seq: u16::from_be_bytes([body[6], body[7]]),
                    chunks: &body[8..],
                };
                match bt {
                    1 => XrBlock::LossRle(r),
                    2 => XrBlock::DuplicateRle(r),
                    _ => XrBlock::PacketReceiptTimes(r),
                }
            }
            4 => {
                need(8)?;
                XrBlock::ReceiverReferenceTime {
                    ntp_timestamp: (u64::from(be32(body, 0)) << 32) | u64::from(be32(body, 4)),
                }
            }
            5 => XrBlock::Dlrr(Dlrr { body }),
            6 => {
                need(36)?;
                XrBlock::StatisticsSummary(StatisticsSummary::parse(ts, body))
            }
            7 => {
                need(32)?;
                XrBlock::VoipMetrics(VoipMetrics::parse(body))
            }
            _ => XrBlock::Unknown {
                block_type: bt,
                type_specific: ts,
                body,
            },
        })
    }
}

#[derive(Clone, Copy, Debug)]
pub struct RleReport<'a> {
    pub thinning: u8,
    pub ssrc: u32,
    pub begin_seq: u16,
    pub end_seq: u16,
    /// 16-bit chunks (BT 1/2) or 32-bit receipt times (BT 3), raw.
    pub chunks: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
pub struct Dlrr<'a> {
    body: &'a [u8],
}

/// One DLRR sub-block: last RR time (middle NTP bits) and the delay since, in 1/65536 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DlrrItem {
    pub ssrc: u32,
    pub lrr: u32,
    pub dlrr: u32,
}

impl Dlrr<'_> {
    pub fn items(&self) -> impl Iterator<Item = DlrrItem> + '_ {
        self.body.chunks_exact(12).map(|c| DlrrItem {
            ssrc: be32(c, 0),
            lrr: be32(c, 4),
            dlrr: be32(c, 8),
        })
    }
}

/// BT=6 (RFC 3611 §4.6). Fields whose flag is clear in the type-specific octet are `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatisticsSummary {
    pub ssrc: u32,
    pub begin_seq: u16,
    pub end_seq: u16,
    pub lost_packets: Option<u32>,
    pub dup_packets: Option<u32>,
    pub min_jitter: Option<u32>,
    pub max_jitter: Option<u32>,
    pub mean_jitter: Option<u32>,
    pub dev_jitter: Option<u32>,
    pub min_ttl_or_hl: Option<u8>,
    pub max_ttl_or_hl: Option<u8>,
    pub mean_ttl_or_hl: Option<u8>,
    pub dev_ttl_or_hl: Option<u8>,
}

impl StatisticsSummary {
    fn parse(ts: u8, b: &[u8]) -> StatisticsSummary {
        let (l, d, j, toh) = (ts & 0x80 != 0, ts & 0x40 != 0, ts & 0x20 != 0, ts & 0x18);
        let w = |at| be32(b, at);
        StatisticsSummary {
            ssrc: w(0),
            begin_seq: u16::from_be_bytes([b[4], b[5]]),
            end_seq: u16::from_be_bytes([b[6], b[7]]),
            lost_packets: l.then(|| w(8)),
            dup_packets: d.then(|| w(12)),
            min_jitter: j.then(|| w(16)),
            max_jitter: j.then(|| w(20)),
            mean_jitter: j.then(|| w(24)),
            dev_jitter: j.then(|| w(28)),
            min_ttl_or_hl: (toh != 0).then_some(b[32]),
            max_ttl_or_hl: (toh != 0).then_some(b[33]),
            mean_ttl_or_hl: (toh != 0).then_some(b[34]),
            dev_ttl_or_hl: (toh != 0).then_some(b[35]),
        }
    }
}

/// BT=7 VoIP Metrics (RFC 3611 §4.7), raw wire values; helpers scale them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoipMetrics {
    pub ssrc: u32,
    /// Fraction of packets lost, ×256.
    pub loss_rate: u8,
    /// Fraction discarded (late/early), ×256.
    pub discard_rate: u8,
    pub burst_density: u8,
    pub gap_density: u8,
    /// Milliseconds.
    pub burst_duration: u16,
    pub gap_duration: u16,
    pub round_trip_delay: u16,
    pub end_system_delay: u16,
    /// dBm0, signed; 127 = unavailable.
    pub signal_level: i8,
    pub noise_level: i8,
    /// Residual echo return loss, dB; 127 = unavailable.
    pub rerl: u8,
    pub gmin: u8,
    /// 0..100; 127 = unavailable.
    pub r_factor: u8,
    pub ext_r_factor: u8,
    /// MOS ×10; 127 = unavailable.
    pub mos_lq: u8,
    pub mos_cq: u8,
    /// PLC (2 bits), JBA (2 bits), JB rate (4 bits).
    pub rx_config: u8,
    pub jb_nominal: u16,
    pub jb_maximum: u16,
    pub jb_abs_max: u16,
}

/// RFC 3611 §4.7.6 packet loss concealment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Plc {
    Unspecified,
    Disabled,
    Enhanced,
    Standard,
}

/// RFC 3611 §4.7.6 jitter buffer adaptive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JitterBufferMode {
    Unknown,
    Reserved,
    NonAdaptive,
    Adaptive,
}

impl VoipMetrics {
    fn parse(b: &[u8]) -> VoipMetrics {
        let h = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
        VoipMetrics {
            ssrc: be32(b, 0),
            loss_rate: b[4],
            discard_rate: b[5],
            burst_density: b[6],
            gap_density: b[7],
            burst_duration: h(8),
            gap_duration: h(10),
            round_trip_delay: h(12),
            end_system_delay: h(14),
            signal_level: b[16] as i8,
            noise_level: b[17] as i8,
            rerl: b[18],
            gmin: b[19],
            r_factor: b[20],
            ext_r_factor: b[21],
            mos_lq: b[22],
            mos_cq: b[23],
            rx_config: b[24],
            jb_nominal: h(26),
            jb_maximum: h(28),
            jb_abs_max: h(30),
        }
    }
    pub fn loss_fraction(&self) -> f64 {
        f64::from(self.loss_rate) / 256.0
    }
    pub fn discard_fraction(&self) -> f64 {
        f64::from(self.discard_rate) / 256.0
    }
    pub fn mos_lq(&self) -> Option<f64> {
        (self.mos_lq != 127).then(|| f64::from(self.mos_lq) / 10.0)
    }
    pub fn mos_cq(&self) -> Option<f64> {
        (self.mos_cq != 127).then(|| f64::from(self.mos_cq) / 10.0)
    }
    pub fn r_factor(&self) -> Option<u8> {
        (self.r_factor != 127).then_some(self.r_factor)
    }
    pub fn ext_r_factor(&self) -> Option<u8> {
        (self.ext_r_factor != 127).then_some(self.ext_r_factor)
    }
    pub fn plc(&self) -> Plc {
        match self.rx_config >> 6 {
            0 => Plc::Unspecified,
            1 => Plc::Disabled,
            2 => Plc::Enhanced,
            _ => Plc::Standard,
        }
    }
    pub fn jitter_buffer_mode(&self) -> JitterBufferMode {
        match (self.rx_config >> 4) & 3 {
            0 => JitterBufferMode::Unknown,
            1 => JitterBufferMode::Reserved,
            2 => JitterBufferMode::NonAdaptive,
            _ => JitterBufferMode::Adaptive,
        }
    }
    pub fn jitter_buffer_rate(&self) -> u8 {
        self.rx_config & 0x0f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::rtcp::{packets, RtcpPacket};

    #[test]
    fn xr_voip_metrics_block() {
        let mut v = vec![0x80, 207, 0, 10];
        v.extend_from_slice(&1u32.to_be_bytes());
        v.extend_from_slice(&[7, 0, 0, 8]);
        v.extend_from_slice(&2u32.to_be_bytes());
        v.extend_from_slice(&[12, 3, 40, 2, 0, 120, 0x13, 0x88, 0, 35, 0, 60]);
        v.extend_from_slice(&[
            0xba, 0xc4, 25, 16, 82, 127, 41, 39, 0xd5, 0, 0, 40, 0, 80, 0, 120,
        ]);
        let pkts: Vec<_> = packets(&v).collect::<Result<_, _>>().unwrap();
        let RtcpPacket::ExtendedReport(xr) = pkts[0] else {
            panic!("not XR")
        };
        let b: Vec<_> = xr.blocks().collect::<Result<_, _>>().unwrap();
        let XrBlock::VoipMetrics(m) = b[0] else {
            panic!("not VoIP metrics")
        };
        assert_eq!(m.ssrc, 2);
        assert_eq!(m.loss_rate, 12);
        assert_eq!(m.gap_duration, 5000);
        assert_eq!(m.signal_level, -70);
        assert_eq!(m.noise_level, -60);
        assert_eq!(m.r_factor(), Some(82));
        assert_eq!(m.ext_r_factor(), None);
        assert_eq!(m.mos_lq(), Some(4.1));
        assert_eq!(m.plc(), Plc::Standard);
        assert_eq!(m.jitter_buffer_mode(), JitterBufferMode::Reserved);
        assert_eq!(m.jitter_buffer_rate(), 5);
        assert_eq!((m.jb_nominal, m.jb_maximum, m.jb_abs_max), (40, 80, 120));
    }
}
