//! [`DelayBuffer`]: the capture-order re-emitter around a [`Deduplicator`] used by grep and the
//! scan, holding kept items for the HEP window so a mirror can be noted or a copy withdrawn.

use std::collections::VecDeque;

use super::{DedupConfig, Deduplicator, Mirror, Verdict};
use crate::decode::Datagram;

/// A kept item leaving the delay buffer, with the HEP copy that mirrored it, if any.
#[derive(Debug)]
pub struct Released<T> {
    pub item: T,
    pub mirrored_by: Option<Mirror>,
}

/// Bounds of the delay buffer; beyond them the oldest item leaves early (counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelayLimits {
    pub max_items: usize,
    pub max_bytes: usize,
}

impl Default for DelayLimits {
    fn default() -> Self {
        DelayLimits {
            max_items: 65_536,
            max_bytes: 64 << 20,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DelayStats {
    /// Items released before their hold time because the buffer was full.
    pub released_early: u64,
    /// Mirrors whose raw message had already left: dropped without a note on it.
    pub notes_missed: u64,
    /// HEP copies already released when their raw message came: both were emitted.
    pub withdrawals_missed: u64,
    pub peak_items: usize,
}

struct Held<T> {
    now_ns: i64,
    bytes: usize,
    item: Option<T>,
    mirror: Option<Mirror>,
}

/// A [`Deduplicator`] that holds kept items back for the HEP window, so that the raw message leaves
/// with its mirror noted and a HEP copy seen first can still be withdrawn; releases in push order.
pub struct DelayBuffer<T> {
    dedup: Deduplicator,
    limits: DelayLimits,
    hold_ns: i64,
    queue: VecDeque<Held<T>>,
    /// `seq` of `queue[0]`; kept items get consecutive seqs, so `seq - first_seq` indexes the queue.
    first_seq: u64,
    bytes: usize,
    stats: DelayStats,
}

impl<T> DelayBuffer<T> {
    pub fn new(config: DedupConfig, limits: DelayLimits) -> DelayBuffer<T> {
        DelayBuffer::with_dedup(Deduplicator::new(config), limits)
    }

    /// A buffer whose deduplicator has already seen earlier datagrams (a ring file's pre-roll).
    pub fn with_dedup(dedup: Deduplicator, limits: DelayLimits) -> DelayBuffer<T> {
        // Without mirror pairing nothing can change a kept item after the fact: no need to hold.
        let hold_ns = if dedup.config().hep_mirrors {
            dedup.config().hep_window_ns
        } else {
            0
        };
        DelayBuffer {
            dedup,
            limits,
            hold_ns,
            queue: VecDeque::new(),
            first_seq: 0,
            bytes: 0,
            stats: DelayStats::default(),
        }
    }

    pub fn dedup(&self) -> &Deduplicator {
        &self.dedup
    }

    pub fn stats(&self) -> &DelayStats {
        &self.stats
    }

    /// Items held now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Push one datagram; `make` builds the item to hold (and its size in bytes) only if it is kept.
    /// Items whose hold time is up are handed to `out`, oldest first.
    pub fn push<M, F>(&mut self, dg: &Datagram<'_>, now_ns: i64, make: M, mut out: F) -> Verdict
    where
        M: FnOnce() -> (T, usize),
        F: FnMut(Released<T>),
    {
        let verdict = self.dedup.push(dg, now_ns);
        match verdict {
            Verdict::Keep { seq } => self.hold(seq, now_ns, make, None),
            Verdict::KeepMirrored {
                seq,
                mirror,
                withdraw,
            } => {
                match self.slot(withdraw) {
                    Some(h) if h.item.is_some() => {
                        h.item = None;
                        let b = h.bytes;
                        self.bytes -= b;
                    }
                    _ => self.stats.withdrawals_missed += 1,
                }
                self.hold(seq, now_ns, make, Some(mirror));
            }
            Verdict::Mirror { of, mirror } => match self.slot(of) {
                Some(h) if h.item.is_some() => h.mirror = Some(mirror),
                _ => self.stats.notes_missed += 1,
            },
            Verdict::Duplicate { .. } => {}
        }
        self.release(now_ns, &mut out);
        verdict
    }

    /// Release everything held (end of input).
    pub fn finish<F: FnMut(Released<T>)>(&mut self, mut out: F) {
        while let Some(h) = self.queue.pop_front() {
            self.first_seq += 1;
            self.emit(h, &mut out);
        }
    }

    fn slot(&mut self, seq: u64) -> Option<&mut Held<T>> {
        let i = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        self.queue.get_mut(i)
    }

    fn hold<M: FnOnce() -> (T, usize)>(
        &mut self,
        seq: u64,
        now_ns: i64,
        make: M,
        mirror: Option<Mirror>,
    ) {
        if self.queue.is_empty() {
            self.first_seq = seq;
        }
        let (item, bytes) = make();
        self.bytes += bytes;
        self.queue.push_back(Held {
            now_ns,
            bytes,
            item: Some(item),
            mirror,
        });
        self.stats.peak_items = self.stats.peak_items.max(self.queue.len());
    }

    fn release<F: FnMut(Released<T>)>(&mut self, now_ns: i64, out: &mut F) {
        while let Some(front) = self.queue.front() {
            let due = self.hold_ns == 0 || front.now_ns.saturating_add(self.hold_ns) < now_ns;
            let full =
                self.queue.len() > self.limits.max_items || self.bytes > self.limits.max_bytes;
            if !due && !full {
                break;
            }
            if !due && front.item.is_some() {
                self.stats.released_early += 1;
            }
            let Some(h) = self.queue.pop_front() else {
                break;
            };
            self.first_seq += 1;
            self.emit(h, out);
        }
    }

    fn emit<F: FnMut(Released<T>)>(&mut self, h: Held<T>, out: &mut F) {
        if let Some(item) = h.item {
            self.bytes -= h.bytes;
            out(Released {
                item,
                mirrored_by: h.mirror,
            });
        }
    }
}
