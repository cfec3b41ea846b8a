//! The per-stream quality timeline: received, lost and worst jitter per time bucket, with the
//! bucket being filled kept inline (it is on the per-packet path).

use serde::{Deserialize, Serialize};

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
    #[inline]
    pub(super) fn note_packet(&mut self, rel_ns: i64, jitter_ms: f32) {
        self.note(rel_ns, 1, 0, jitter_ms);
    }
    #[inline]
    pub(super) fn note_lost(&mut self, rel_ns: i64, lost: u32) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
