//! RFC 3550 appendix A.1 (sequence validation) and A.8 (interarrival jitter), kept beside
//! Wireshark's figures for `--metrics rfc3550`.

use serde::{Deserialize, Serialize};

use super::{PacketFacts, StreamState};
use crate::rtp::payload::{PT_CN, PT_CN_OLD};

/// RFC 3550 appendix A.1 source state and A.8 jitter, in timestamp units.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[repr(C)]
pub(super) struct Rfc3550Stat {
    pub(super) received: u64,
    pub(super) transit: Option<f64>,
    pub(super) jitter: f64,
    pub(super) max_jitter: f64,
    pub(super) sum_jitter: f64,
    pub(super) jitter_samples: u64,
    pub(super) cycles: u32,
    pub(super) base_seq: u32,
    pub(super) bad_seq: u32,
    pub(super) probation: u32,
    pub(super) clock_rate: u32,
    pub(super) max_seq: u16,
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
    pub(super) fn extended_max(&self) -> u32 {
        self.cycles + u32::from(self.max_seq)
    }
}

impl StreamState {
    // Inline: called once per packet from `StreamState::push` (see `wireshark`).
    #[inline]
    pub(super) fn rfc3550(&mut self, f: &PacketFacts, clock_rate: u32, first: bool) {
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

    /// RFC 3550 A.8 interarrival jitter now, in ms (None without a clock rate).
    pub fn rfc3550_jitter_ms(&self) -> Option<f64> {
        (self.rfc.clock_rate != 0)
            .then(|| self.rfc.jitter * 1000.0 / f64::from(self.rfc.clock_rate))
    }
}
