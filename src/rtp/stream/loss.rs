//! Loss bookkeeping: the extended-sequence window (duplicates, reordering, gaps), the two-state
//! Markov loss model for the E-model burst ratio, and the fixed jitter buffer that counts late packets.

use serde::{Deserialize, Serialize};

use super::{PacketFacts, StreamState};

/// Extended-sequence bookkeeping for duplicates, reordering, losses and the jitter buffer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct SeqWindow {
    started: bool,
    ext_max: u64,
    /// Bit i set: ext seq ≡ i (mod 512) seen, for the 512 seqs up to ext_max.
    seen: [u64; 8],
}

const WINDOW: u64 = 512;

pub(super) enum SeqEvent {
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
    #[inline]
    pub(super) fn push(&mut self, seq: u16) -> SeqEvent {
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
    #[inline]
    pub(super) fn step(&mut self, lost: bool) {
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

/// Jitter buffer depth of the late-packet simulation (a common fixed default for G.711 phones).
pub const JITTER_BUFFER_MS: i64 = 60;

impl StreamState {
    /// Fixed jitter buffer of `JITTER_BUFFER_MS` anchored on the earliest packet (relative to
    /// its media time): a packet later than that is discarded by a real receiver.
    #[inline]
    pub(super) fn late(&mut self, f: &PacketFacts, clock_rate: u32) -> bool {
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
}
