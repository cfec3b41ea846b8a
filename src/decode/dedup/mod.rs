//! The dedup stage between decode and the protocol layers: drops SPAN duplicates (the same payload
//! on the same flow again within a few ms) and pairs HEP copies with the raw messages they mirror.
//!
//! [`Deduplicator`] decides per datagram (`push` → [`Verdict`]) from bounded tables of payload
//! digests; it never holds payloads. [`DelayBuffer`] wraps it for consumers that emit in capture order
//! with the mirror noted on the raw message: a HEP copy usually arrives after its raw message, but
//! one captured on another interface can arrive before it, so each kept item is held for the HEP
//! window (bounded by count and bytes) in case its copy, or its original, is still to come.
//!
//! Payloads are compared by an xxh3 digest plus their length and the whole flow: two different
//! payloads are taken for one only on a 64-bit digest collision on one flow inside one window.
//! Windows are measured in capture time — the `now_ns` of the record that completed the datagram —
//! not in HEP's inner timestamp, which is the agent's clock. SIP retransmissions (T1 = 500 ms or
//! later) are never duplicates: [`DedupConfig::validate`] refuses a SPAN window that long.
//! Nothing here allocates per datagram once the tables have grown; lookups cannot panic.
//!
//! Here: the config, verdicts and the `Deduplicator`; `table` holds the digest tables, `delay` the
//! `DelayBuffer`. The owned datagram grep queues is `decode::OwnedDatagram`, beside `Datagram`.
use std::collections::HashMap;
use std::net::IpAddr;

use xxhash_rust::xxh3::xxh3_64;

use super::{Datagram, Encap, Transport};
use crate::source::PacketLocation;

mod delay;
mod table;

pub use delay::{DelayBuffer, DelayLimits, DelayStats, Released};
use table::{Entry, Key, Table};

/// RFC 3261 T1, the first retransmission interval of SIP over UDP.
pub const SIP_T1_NS: i64 = 500_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupConfig {
    /// Drop HEP copies of raw messages seen in the same capture (and note them on the raw one).
    pub hep_mirrors: bool,
    /// How far apart (capture time) a raw message and its HEP copy may be.
    pub hep_window_ns: i64,
    /// Drop SPAN duplicates. Off by default so that counts match tshark's.
    pub span: bool,
    /// How far apart (capture time) two copies of a datagram on one flow may be to be duplicates.
    pub span_window_ns: i64,
    /// Entries per table (SPAN digests, raw messages awaiting a HEP copy, HEP copies awaiting
    /// their raw message); beyond this the oldest is forgotten and counted in `evicted`.
    pub max_entries: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            hep_mirrors: true,
            hep_window_ns: 1_000_000_000,
            span: false,
            span_window_ns: 5_000_000,
            max_entries: 65_536,
        }
    }
}

impl DedupConfig {
    /// Neither mirrors nor duplicates are looked for: `push` always keeps.
    pub fn is_noop(&self) -> bool {
        !self.hep_mirrors && !self.span
    }

    pub fn validate(&self) -> Result<(), DedupError> {
        if self.hep_window_ns < 0 || self.span_window_ns < 0 {
            return Err(DedupError::NegativeWindow);
        }
        if self.span_window_ns >= SIP_T1_NS {
            return Err(DedupError::SpanWindowNotBelowT1(self.span_window_ns));
        }
        Ok(())
    }
}

#[derive(thiserror::Error, Clone, Debug, PartialEq, Eq)]
pub enum DedupError {
    #[error(
        "dedup window of {}ms is not shorter than SIP T1 (500ms): retransmissions would be \
         taken for duplicates", .0 / 1_000_000
    )]
    SpanWindowNotBelowT1(i64),
    #[error("a dedup window cannot be negative")]
    NegativeWindow,
}

/// One direction of a transport flow, as the datagram states it (for HEP, the original addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub transport: Transport,
}

impl Flow {
    pub fn of(dg: &Datagram<'_>) -> Flow {
        Flow {
            src: dg.src,
            dst: dg.dst,
            src_port: dg.src_port,
            dst_port: dg.dst_port,
            transport: dg.transport,
        }
    }
}

/// The HEP copy of a kept raw message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mirror {
    pub capture_id: Option<u32>,
    /// Capture time of the record that carried the HEP copy.
    pub now_ns: i64,
    /// That record (its first, if several).
    pub location: Option<PacketLocation>,
}

/// What to do with a pushed datagram. `seq` numbers the kept datagrams 0, 1, 2... in push order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A message in its own right.
    Keep { seq: u64 },
    /// A raw message whose HEP copy was kept earlier as `withdraw`: keep this one (noting the
    /// mirror) and withdraw that one.
    KeepMirrored {
        seq: u64,
        mirror: Mirror,
        withdraw: u64,
    },
    /// A SPAN duplicate of a datagram kept earlier on `flow`: drop it.
    Duplicate { flow: Flow },
    /// The HEP copy of raw message `of`, kept earlier: drop it and note `mirror` on `of`.
    Mirror { of: u64, mirror: Mirror },
}

impl Verdict {
    pub fn is_kept(&self) -> bool {
        matches!(self, Verdict::Keep { .. } | Verdict::KeepMirrored { .. })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DedupStats {
    pub datagrams: u64,
    pub kept: u64,
    /// SPAN duplicates dropped.
    pub span_duplicates: u64,
    /// HEP copies of raw messages dropped (both orders).
    pub hep_mirrors: u64,
    /// Of those, copies that arrived before their raw message.
    pub hep_mirrors_before_raw: u64,
    /// Entries forgotten before their window ran out because a table was full.
    pub evicted: u64,
}

/// The decision engine: one per worker, fed datagrams in capture order.
pub struct Deduplicator {
    config: DedupConfig,
    stats: DedupStats,
    span: Table,
    /// Raw messages that no HEP copy has claimed yet.
    raws: Table,
    /// HEP copies that no raw message has claimed yet.
    heps: Table,
    next_seq: u64,
    flow_duplicates: HashMap<Flow, u64>,
}

impl Deduplicator {
    pub fn new(config: DedupConfig) -> Deduplicator {
        Deduplicator {
            span: Table::new(config.span_window_ns, config.max_entries),
            raws: Table::new(config.hep_window_ns, config.max_entries),
            heps: Table::new(config.hep_window_ns, config.max_entries),
            config,
            stats: DedupStats::default(),
            next_seq: 0,
            flow_duplicates: HashMap::new(),
        }
    }

    pub fn config(&self) -> &DedupConfig {
        &self.config
    }

    pub fn stats(&self) -> &DedupStats {
        &self.stats
    }

    /// SPAN duplicates dropped so far, per flow.
    pub fn flow_duplicates(&self) -> &HashMap<Flow, u64> {
        &self.flow_duplicates
    }

    /// Hands over the per-flow duplicate counts and starts afresh (e.g. at a file boundary).
    pub fn take_flow_duplicates(&mut self) -> HashMap<Flow, u64> {
        std::mem::take(&mut self.flow_duplicates)
    }

    /// Decide on one datagram. `now_ns` is the capture time of the record that completed it (for
    /// HEP, the outer packet's time, not the agent's timestamp inside).
    pub fn push(&mut self, dg: &Datagram<'_>, now_ns: i64) -> Verdict {
        self.stats.datagrams += 1;
        if self.config.is_noop() {
            return Verdict::Keep { seq: self.keep() };
        }
        let mirrorable = self.config.hep_mirrors && is_mirrorable(dg.payload);
        if !self.config.span && !mirrorable {
            // Media is the bulk of a trunk capture: without SPAN dedup it can neither be a
            // duplicate nor have a mirror, so it is not worth hashing.
            return Verdict::Keep { seq: self.keep() };
        }
        let id = self.stats.datagrams;
        let is_hep = dg.hep.is_some() || dg.encap.contains(Encap::HEP);
        let flow = Flow::of(dg);
        let digest = xxh3_64(dg.payload);
        let len = dg.payload.len();
        let entry = |seq| Entry {
            now_ns,
            id,
            seq,
            capture_id: dg.hep.and_then(|h| h.capture_id),
            location: dg.locations.first().copied(),
        };

        // The SPAN key keeps HEP copies apart from raw messages: a HEP copy 200 µs after its raw
        // message is a mirror, not a duplicate.
        let span_key = Key::new(digest, len, flow, is_hep);
        if self.config.span {
            self.span.expire(now_ns);
            if self.span.contains(&span_key, now_ns) {
                self.stats.span_duplicates += 1;
                *self.flow_duplicates.entry(flow).or_default() += 1;
                return Verdict::Duplicate { flow };
            }
        }

        let mirror_key = Key::new(digest, len, flow, false);
        if mirrorable {
            self.raws.expire(now_ns);
            self.heps.expire(now_ns);
            if is_hep {
                if let Some(raw) = self.raws.take(&mirror_key, now_ns) {
                    self.stats.hep_mirrors += 1;
                    // Remembered so that a SPAN duplicate of this copy is a duplicate, not a
                    // message of its own.
                    if self.config.span {
                        self.span
                            .insert(span_key, entry(raw.seq), &mut self.stats.evicted);
                    }
                    return Verdict::Mirror {
                        of: raw.seq,
                        mirror: Mirror {
                            capture_id: dg.hep.and_then(|h| h.capture_id),
                            now_ns,
                            location: dg.locations.first().copied(),
                        },
                    };
                }
            } else if let Some(copy) = self.heps.take(&mirror_key, now_ns) {
                self.stats.hep_mirrors += 1;
                self.stats.hep_mirrors_before_raw += 1;
                let seq = self.keep();
                if self.config.span {
                    self.span
                        .insert(span_key, entry(seq), &mut self.stats.evicted);
                }
                return Verdict::KeepMirrored {
                    seq,
                    mirror: Mirror {
                        capture_id: copy.capture_id,
                        now_ns: copy.now_ns,
                        location: copy.location,
                    },
                    withdraw: copy.seq,
                };
            }
        }

        let seq = self.keep();
        if self.config.span {
            self.span
                .insert(span_key, entry(seq), &mut self.stats.evicted);
        }
        if mirrorable {
            let table = if is_hep {
                &mut self.heps
            } else {
                &mut self.raws
            };
            table.insert(mirror_key, entry(seq), &mut self.stats.evicted);
        }
        Verdict::Keep { seq }
    }

    fn keep(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stats.kept += 1;
        seq
    }
}

/// HEP agents forward text signalling verbatim but re-encode media reports (RTCP as JSON), so only
/// payloads that start like a text protocol can have a raw twin; testing the first byte keeps RTP
/// (version bits 10xxxxxx) out of the 1 s mirror tables.
fn is_mirrorable(payload: &[u8]) -> bool {
    payload.first().is_some_and(u8::is_ascii_alphabetic)
}

#[cfg(test)]
mod tests;
