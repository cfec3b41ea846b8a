//! The media pass: RTP streams, RTCP reports and endpoint quality reports, computed sequentially
//! over a run's files in capture-time order, with the state carried from run to run.
//!
//! Why a second, sequential pass rather than per-file work in the parallel scan: Wireshark's
//! stream analysis is sequential (extended timestamps, first-packet handling, jitter recurrences)
//! and two partial states cannot be merged, and whether a datagram is RTP at all depends on the
//! SDP seen *before* it, possibly in an earlier file or run. Shipping per-packet summaries from the
//! parallel scan would hold memory per packet; re-reading the (memory-mapped) files costs a second
//! decode but keeps memory per stream. The pass runs beside the parallel SIP scan, itself on two
//! threads in a run (`files`): `feed` reads and decodes, this type analyses (see `feed` for why).
//!
//! Exactness: the pass sees every datagram of the capture in the same order however the capture
//! was split into files or runs, and everything it keeps (`MediaState`: the `StreamTable`, the SDP
//! announcements, the SR times for RTT, idle-eviction clock) is serialised between runs to
//! `<db>/state/media-<run>.json.zst`, written before the catalog commit point; a run loads the
//! state of the catalog's last run. Idle streams and announcements are evicted on capture time
//! only (never on file or run boundaries), so the output does not depend on the split either.
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::IndexError;
use crate::decode::{Datagram, DecodeConfig, DedupConfig, Transport};
use crate::rtp::rtcp::RtcpPacket;
use crate::rtp::Metrics;
use crate::rtp::StreamState;
use crate::sip;
use crate::store::parquet::{self as pq, DayRange, TableWriter, WriterOptions};
use crate::store::record::{QosReportRecord, RtcpReportRecord, RtpStreamRecord};
use crate::store::StoreError;

/// A stream or announcement silent this long (capture time) is closed and forgotten.
pub const IDLE_NS: i64 = 600 * 1_000_000_000;
/// How often (capture time) idle streams are looked for.
pub(super) const EVICT_EVERY_NS: i64 = 60 * 1_000_000_000;

mod announce;
mod feed;
mod flows;
mod rows;
mod rtcp;
mod rtp;
mod state;
#[cfg(test)]
mod tests;

use crate::rtp::stream::prefetch;
use feed::Event;
pub(super) use rows::call_media;
use rows::{fold_call, span_dups};
pub use rows::{stream_record, Refold};
use rtcp::note_sr;
use rtp::{QueuedRtp, RTP_BATCH};
pub use state::{prune_states, MediaState};

#[derive(Clone, Debug)]
pub struct MediaConfig {
    pub metrics: Metrics,
    pub decode: DecodeConfig,
    /// SPAN duplicates are dropped (and counted per stream) when `dedup.span` is on; HEP mirrors
    /// concern signalling only and are left to the SIP scan.
    pub dedup: DedupConfig,
    /// False for a SIP-only run (`index --no-media`): files are not read for media, and the
    /// carried state passes to the next run unchanged.
    pub analyse: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            metrics: Metrics::Wireshark,
            decode: DecodeConfig::new(crate::sip::stream_start),
            dedup: DedupConfig::default(),
            analyse: true,
        }
    }
}

/// Seeded fast hashing: the per-packet path looks addresses up here (see rtp::stream).
pub(super) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub(super) type Flow5 = (IpAddr, u16, IpAddr, u16);

/// Per-call media summary for the dialogs table.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CallMedia {
    pub worst_mos: Option<f64>,
    pub max_loss_pct: Option<f64>,
    pub max_jitter_ms: Option<f64>,
}

#[derive(Debug, Default)]
pub struct MediaOutcome {
    pub streams_written: u64,
    pub rtp_packets: u64,
    pub rtcp_rows: u64,
    pub qos_rows: u64,
    /// Files that started before media already analysed (analysed apart, see `MediaPass::file`).
    pub files_out_of_order: u64,
    /// Calls whose streams changed in this run, with their summary over all their streams.
    pub calls: HashMap<String, CallMedia>,
    /// Earliest and latest stream time among them (to find their dialog rows).
    pub span: Option<(i64, i64)>,
}

/// One run of the pass: feed files in order, then write rows and the state.
pub struct MediaPass<'a> {
    db: &'a Path,
    run: u64,
    cfg: &'a MediaConfig,
    state: MediaState,
    finished: Vec<RtpStreamRecord>,
    rtcp: TableWriter<RtcpReportRecord>,
    qos: TableWriter<QosReportRecord>,
    out: MediaOutcome,
    /// Set by a window reindex: only reports from these files are written (see `keep_reports_of`).
    report_files: Option<std::collections::HashSet<u32>>,
    /// RTP packets classified but not yet applied to their streams (see `flush_rtp`).
    batch: Vec<QueuedRtp>,
    /// The carried state while an out-of-order file is analysed apart (see `file`).
    carried: Option<MediaState>,
    /// Set when the pass re-analyses the archive from a time on (see `Refold`).
    refold: Option<Refold>,
}

pub(super) fn store_err(db: &Path, e: StoreError) -> IndexError {
    IndexError::Store {
        path: db.to_path_buf(),
        source: e,
    }
}

impl<'a> MediaPass<'a> {
    pub fn new(
        db: &'a Path,
        run: u64,
        cfg: &'a MediaConfig,
        mut state: MediaState,
    ) -> Result<Self, IndexError> {
        state.build_maps();
        Ok(MediaPass {
            db,
            run,
            cfg,
            state,
            finished: Vec::new(),
            rtcp: TableWriter::create(db, run, WriterOptions::default())
                .map_err(|e| store_err(db, e))?,
            qos: TableWriter::create(db, run, WriterOptions::default())
                .map_err(|e| store_err(db, e))?,
            out: MediaOutcome::default(),
            report_files: None,
            batch: Vec::with_capacity(RTP_BATCH),
            carried: None,
            refold: None,
        })
    }

    /// Feed one capture file; unreadable parts were already reported by the SIP scan.
    ///
    /// A file that starts before the latest packet already analysed (it overlaps the files
    /// before it in time, e.g. a second capture point; a file found late is not fed here but
    /// folded in by `run`'s refold, unless the files after it are gone) cannot continue the
    /// carried streams exactly: it is analysed on its own, with fresh state, and its streams are
    /// closed at its end. The carried state is left untouched for the files that do follow on.
    pub fn file(&mut self, path: &Path, file_id: u32) -> Result<(), IndexError> {
        if !self.cfg.analyse {
            return Ok(());
        }
        let mut reader = feed::Reader::new(self.cfg, self.clock());
        let mut failed = None;
        reader.file(path, file_id, &mut |chunk| {
            if let Err(e) = self.chunk(&chunk) {
                failed = Some(e);
                return None;
            }
            Some(chunk)
        });
        self.set_clock(reader.clock);
        failed.map_or(Ok(()), Err)
    }

    /// Feed a run's files in order, reading on a second thread while this one analyses (see
    /// `feed`); the same result as `file` for each in turn.
    pub fn files(&mut self, files: &[(PathBuf, u32)]) -> Result<(), IndexError> {
        if !self.cfg.analyse {
            return Ok(());
        }
        // Chunks in flight: enough to absorb the reader's bursts, few enough to stay in cache.
        const CHUNKS_AHEAD: usize = 4;
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<feed::Chunk>(CHUNKS_AHEAD);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<feed::Chunk>();
        let (cfg, clock) = (self.cfg, self.clock());
        std::thread::scope(|scope| {
            let reading = scope.spawn(move || {
                let mut reader = feed::Reader::new(cfg, clock);
                let mut sink = |chunk| {
                    full_tx.send(chunk).ok()?;
                    Some(empty_rx.try_recv().unwrap_or_default())
                };
                for (path, id) in files {
                    if !reader.file(path, *id, &mut sink) {
                        break;
                    }
                }
                reader.clock
            });
            let mut result = Ok(());
            for chunk in full_rx.iter() {
                if let Err(e) = self.chunk(&chunk) {
                    result = Err(e);
                    break;
                }
                let _ = empty_tx.send(chunk);
            }
            // dropping the receiver (on an error) stops the reader at its next chunk
            drop(full_rx);
            let clock = reading.join().map_err(|_| {
                IndexError::io(self.db, std::io::Error::other("the media reader panicked"))
            })?;
            self.set_clock(clock);
            result
        })
    }

    fn clock(&self) -> feed::Clock {
        feed::Clock {
            clock_ns: self.state.clock_ns,
            next_evict_ns: self.state.next_evict_ns,
        }
    }

    fn set_clock(&mut self, c: feed::Clock) {
        self.state.clock_ns = c.clock_ns;
        self.state.next_evict_ns = c.next_evict_ns;
    }

    fn chunk(&mut self, chunk: &feed::Chunk) -> Result<(), IndexError> {
        // The reader wrote these events on another core: reading them was a miss each, which
        // a prefetch a few events ahead hides (the hardware streamer does not cross cores).
        // Then, closer, each datagram's flow slot (see `Maps::flow_slot`), by the id in the
        // event whose line has arrived by now.
        const AHEAD: usize = 16;
        const SLOT_AHEAD: usize = 8;
        for (i, ev) in chunk.events.iter().enumerate() {
            if let Some(next) = chunk.events.get(i + AHEAD) {
                prefetch(next);
            }
            if let Some(Event::Udp(f)) = chunk.events.get(i + SLOT_AHEAD) {
                if let Some(slot) = self.state.maps.flows.get(f.flow as usize) {
                    prefetch(slot);
                }
            }
            self.event(ev, chunk)?;
        }
        Ok(())
    }

    fn event(&mut self, ev: &Event, chunk: &feed::Chunk) -> Result<(), IndexError> {
        let db = self.db;
        match ev {
            Event::FileStart { isolated } => {
                if *isolated {
                    self.flush_rtp();
                    self.out.files_out_of_order += 1;
                    let mut fresh = MediaState::default();
                    fresh.build_maps();
                    self.carried = Some(std::mem::replace(&mut self.state, fresh));
                }
            }
            Event::Evict(ts_ns) => self.evict(*ts_ns),
            Event::SpanDuplicate(flow) => {
                *self.state.maps.span_duplicates.entry(*flow).or_default() += 1;
            }
            Event::Sip { origin, payload } => {
                // the reader only sends messages that parse
                if let Ok(msg) = sip::parse(chunk.payload(payload)) {
                    self.flush_rtp();
                    self.sip(origin, &msg).map_err(|e| store_err(db, e))?;
                }
            }
            Event::Megaco { origin, payload } => {
                self.flush_rtp();
                self.announce_megaco(origin.ts_ns, chunk.payload(payload));
            }
            Event::Udp(facts) => self.udp(facts, chunk).map_err(|e| store_err(db, e))?,
            Event::FileEnd {
                drops,
                first_ts,
                last_ts,
            } => {
                self.flush_rtp();
                self.file_end(*drops, *first_ts, *last_ts);
                if let Some(carried) = self.carried.take() {
                    self.end_isolation(carried);
                }
            }
        }
        Ok(())
    }

    fn file_end(&mut self, drops: u64, first_ts: Option<i64>, last_ts: i64) {
        // Drops are known per file (pcapng ISBs are written at its end): the file's time span is
        // the window in which a stream's sequence gaps may be the capturer's.
        if let (Some(first), true) = (first_ts, drops > 0) {
            let m = &mut self.state.maps;
            for s in self.state.table.streams() {
                if s.last_ns >= first {
                    let id = (s.key, s.first_ns);
                    *m.capture_drops.entry(id).or_default() += drops;
                    let secs = |t: i64| ((t - s.first_ns).max(0) / 1_000_000_000) as u64;
                    *m.capture_window_lost.entry(id).or_default() +=
                        s.timeline.lost_between(secs(first), secs(last_ts));
                }
            }
        }
    }

    /// An out-of-order file's streams close at its end; the carried state comes back.
    fn end_isolation(&mut self, carried: MediaState) {
        let isolated = std::mem::replace(&mut self.state, carried);
        for s in isolated.table.streams() {
            let id = (s.key, s.first_ns);
            let drops = isolated.maps.capture_drops.get(&id).copied().unwrap_or(0);
            let lost = isolated.maps.capture_window_lost.get(&id).copied();
            let rtt = isolated.maps.rtt_ms.get(&s.key.ssrc).copied();
            let mut row = stream_record(s, self.cfg.metrics, (drops, lost.unwrap_or(0)), rtt);
            row.span_duplicates_dropped = span_dups(&isolated.maps, &s.key);
            self.finished.push(row);
        }
    }

    /// Capture-time housekeeping: close idle streams, forget idle announcements.
    fn evict(&mut self, ts_ns: i64) {
        self.flush_rtp();
        let cutoff = ts_ns - IDLE_NS;
        for s in self.state.table.evict_idle(cutoff) {
            let rec = self.record(&s);
            self.state.maps.capture_drops.remove(&(s.key, s.first_ns));
            self.state
                .maps
                .capture_window_lost
                .remove(&(s.key, s.first_ns));
            if s.call_id.is_some() {
                self.state.maps.forget_ssrc_call(s.key.ssrc);
            }
            self.finished.push(rec);
        }
        self.state.maps.announced.retain(|a| a.last_ns >= cutoff);
        self.state.maps.rtcp_addrs.retain(|_, a| a.1 >= cutoff);
        self.state
            .maps
            .sr_seen
            .retain(|_, v| v.last().is_some_and(|x| x.1 >= cutoff));
    }

    /// Window-reindex pre-roll: what a datagram from before the rebuilt files leaves in the state
    /// (SDP media addresses, sender reports for round-trip times), without writing any row.
    pub fn preroll(&mut self, dg: &Datagram<'_>) {
        if dg.hep.is_some() {
            return;
        }
        if sip::looks_like_sip(dg.payload) {
            if let Ok(msg) = sip::parse(dg.payload) {
                self.announce(dg.ts_ns, &msg);
            }
            return;
        }
        if dg.transport == Transport::Udp && sip::megaco::looks_like_megaco(dg.payload) {
            self.announce_megaco(dg.ts_ns, dg.payload);
            return;
        }
        for pkt in crate::rtp::rtcp::packets(dg.payload) {
            let Ok(pkt) = pkt else { break };
            if let RtcpPacket::SenderReport(sr) = pkt {
                note_sr(&mut self.state.maps, sr.ssrc(), sr.ntp_middle(), dg.ts_ns);
            }
        }
    }

    /// Pre-roll: the latest capture time the files before the rebuilt ones reached, so that a
    /// file `run` analysed apart as out of order (see `file`) is analysed apart again.
    pub fn preroll_clock(&mut self, ts_ns: i64) {
        self.state.clock_ns = Some(self.state.clock_ns.map_or(ts_ns, |c| c.max(ts_ns)));
    }

    /// Pre-roll: a round-trip time measured before the rebuilt files (stored `rtcp_reports`).
    pub fn preroll_rtt(&mut self, ssrc: u32, rtt_ms: f64) {
        self.state.maps.rtt_ms.insert(ssrc, rtt_ms);
    }

    /// Pre-roll: a stored stream `src → dst` ran until `ts_ns`. Its packets kept the announcement
    /// of its conversation alive (the destination's, else the source's, as `datagram` picks it),
    /// which the pre-roll, seeing only the SDP, would otherwise let expire early.
    pub fn preroll_touch(&mut self, src: (IpAddr, u16), dst: (IpAddr, u16), ts_ns: i64) {
        let m = &mut self.state.maps.announced;
        let addr = if m.contains_key(&dst) { dst } else { src };
        m.touch_max(&addr, ts_ns);
    }

    /// This pass re-analyses the archive from `refold.from_ns` (see `Refold`); its state must
    /// be fresh, with the pre-roll fed.
    pub fn refold(&mut self, refold: Refold) {
        self.refold = Some(refold);
    }

    /// Window reindex: write only the RTCP and quality reports read from these files (the other
    /// files are fed for the streams' sake; their reports stay as stored).
    pub fn keep_reports_of(&mut self, files: std::collections::HashSet<u32>) {
        self.report_files = Some(files);
    }

    fn keeps(&self, file_id: u32) -> bool {
        self.report_files
            .as_ref()
            .is_none_or(|f| f.contains(&file_id))
    }

    /// Streams still open, in order of first packet.
    pub fn open_streams(&self) -> &[StreamState] {
        self.state.table.streams()
    }

    /// Window reindex: finish the report parts and return every stream row (closed and still
    /// open) for the caller to select; neither the `rtp_streams` table nor the carried state is
    /// written (the latest run's state stays the one the next `index` run continues).
    pub fn finish_rows(mut self) -> Result<(Vec<RtpStreamRecord>, MediaOutcome), IndexError> {
        let db = self.db;
        let mut rows = std::mem::take(&mut self.finished);
        for s in self.state.table.streams() {
            rows.push(self.record(s));
        }
        self.rtcp.finish().map_err(|e| store_err(db, e))?;
        self.qos.finish().map_err(|e| store_err(db, e))?;
        Ok((rows, self.out))
    }

    /// Write the rows and the state; returns what the dialogs need.
    pub fn finish(mut self) -> Result<MediaOutcome, IndexError> {
        let db = self.db;
        if !self.cfg.analyse {
            // nothing was read: the stored rows stand, the state passes on to this run's number
            self.rtcp.finish().map_err(|e| store_err(db, e))?;
            self.qos.finish().map_err(|e| store_err(db, e))?;
            self.state.save(db, self.run)?;
            return Ok(self.out);
        }
        let mut rows = std::mem::take(&mut self.finished);
        for s in self.state.table.streams() {
            rows.push(self.record(s));
        }
        // The state (13 MB of JSON for 6,000 open streams) is written beside the tables: at the
        // end of a run the scan's cores are free, and this is the run's critical path. Scoped, so
        // an error below still waits for it (no state file half-written behind a failed run).
        // A refold replaces every stored row from its start on, and leaves those it continues.
        let removed: Vec<RtpStreamRecord> = match self.refold.take() {
            Some(refold) => {
                rows.retain(|r| !refold.continues(r));
                refold.replaced
            }
            None => Vec::new(),
        };
        let (state, run) = (std::mem::take(&mut self.state), self.run);
        std::thread::scope(|scope| {
            let saved = scope.spawn(move || state.save(db, run));
            self.out.streams_written = rows.len() as u64;
            let mut calls: Vec<String> = rows
                .iter()
                .chain(&removed)
                .filter_map(|r| r.call_id.clone())
                .collect();
            calls.sort();
            calls.dedup();
            let span = rows
                .iter()
                .chain(&removed)
                .fold(None, |acc: Option<(i64, i64)>, r| {
                    Some(match acc {
                        None => (r.start_ns, r.end_ns),
                        Some((a, b)) => (a.min(r.start_ns), b.max(r.end_ns)),
                    })
                });
            // Per-call summary over all the call's streams, earlier runs' included: the stored
            // rows this run does not replace, and this run's rows. Folded before the rows are
            // written rather than read back after: in a first run nothing is stored, and the
            // read-back was a tenth of the run's tail.
            if let Some((lo, hi)) = span {
                let wanted: std::collections::HashSet<&str> =
                    calls.iter().map(String::as_str).collect();
                let replaced: std::collections::HashSet<&str> = rows
                    .iter()
                    .chain(&removed)
                    .map(|r| r.stream_id.as_str())
                    .collect();
                let day = 86_400_000_000_000i64;
                pq::for_each_row::<RtpStreamRecord>(
                    db,
                    DayRange::from_ns(Some(lo - day), Some(hi + day)),
                    |r| {
                        if let Some(c) = r.call_id.as_deref().filter(|c| wanted.contains(c)) {
                            if !replaced.contains(r.stream_id.as_str()) {
                                fold_call(self.out.calls.entry(c.to_owned()).or_default(), &r);
                            }
                        }
                        Ok(())
                    },
                )
                .map_err(|e| store_err(db, e))?;
                for r in &rows {
                    if let Some(c) = r.call_id.as_deref() {
                        fold_call(self.out.calls.entry(c.to_owned()).or_default(), r);
                    }
                }
                self.out.span = Some((lo, hi));
            }
            let previous: Vec<_> = removed
                .iter()
                .map(|r| pq::day_of(r.start_ns))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let removed: std::collections::HashSet<String> =
                removed.into_iter().map(|r| r.stream_id).collect();
            pq::upsert_rows_removing(
                db,
                self.run,
                rows,
                &removed,
                &previous,
                false,
                |r| &r.stream_id,
                |a, b| (a.start_ns, &a.stream_id).cmp(&(b.start_ns, &b.stream_id)),
            )
            .map_err(|e| store_err(db, e))?;
            self.rtcp.finish().map_err(|e| store_err(db, e))?;
            self.qos.finish().map_err(|e| store_err(db, e))?;
            saved.join().map_err(|_| {
                IndexError::io(db, std::io::Error::other("saving the media state panicked"))
            })??;
            Ok(self.out)
        })
    }
}
