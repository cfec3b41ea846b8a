//! Wireshark 4.0's `tap_rtp_stat_t` and `rtppacket_analyse`: the numbers of `tshark -z rtp,streams`,
//! reproduced to the last printed digit (see the parent module for the points that matter).

use serde::{Deserialize, Serialize};

use super::{PacketFacts, StreamState, StreamSummary};
use crate::rtp::payload::{PT_CN, PT_CN_OLD};

/// Wireshark's `tap_rtp_stat_t`, the part `rtp,streams` reads; time in ms since stream start.
/// Laid out in declaration order, widest first, then the two fields only a new largest delta
/// writes (see `StreamState`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[repr(C)]
pub(super) struct WiresharkStat {
    pub(super) start_time: f64,
    pub(super) time: f64,
    pub(super) lastnominaltime: f64,
    pub(super) delta: f64,
    pub(super) jitter: f64,
    pub(super) diff: f64,
    pub(super) skew: f64,
    pub(super) max_skew: f64,
    pub(super) min_delta: f64,
    pub(super) max_delta: f64,
    pub(super) mean_delta: f64,
    pub(super) min_jitter: f64,
    pub(super) max_jitter: f64,
    pub(super) mean_jitter: f64,
    pub(super) seq_cycles: u32,
    pub(super) first_timestamp: u32,
    pub(super) timestamp: u32,
    pub(super) sequence: u32,
    pub(super) total_nr: u32,
    pub(super) clock_rate: u32,
    pub(super) start_seq_nr: u16,
    pub(super) stop_seq_nr: u16,
    pub(super) seq_num: u16,
    pub(super) pt: u8,
    pub(super) reg_pt: u8,
    pub(super) under: bool,
    pub(super) problem: bool,
    /// Packet index (0-based in the stream) and capture time of the largest delta.
    pub(super) max_nr: u64,
    pub(super) max_delta_ns: i64,
}

impl StreamState {
    // Inline: called once per packet from `StreamState::push`, which used to share its module
    // (and so its codegen unit) with it.
    /// Port of Wireshark 4.0 `rtppacket_analyse` (behaviour, not code).
    #[inline]
    pub(super) fn wireshark(&mut self, f: &PacketFacts, clock_rate: u32) {
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
}

/// Wireshark's `nstime_to_msec` of a relative time: seconds and nanoseconds converted apart.
fn msec(rel_ns: i64) -> f64 {
    let (secs, nsecs) = (
        rel_ns.div_euclid(1_000_000_000),
        rel_ns.rem_euclid(1_000_000_000),
    );
    secs as f64 * 1000.0 + nsecs as f64 / 1_000_000.0
}

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
