//! One indexing run: pick the new files, scan them in parallel, write rows, commit.
//! Commit protocol (crash-safe at any instant, see schemas/db.md):
//! 1. `pending.json` names the run and the file ids it will use;
//! 2. message parts and text documents are written, the text index committed;
//! 3. the media pass (`media`, on two threads of its own beside the scan) writes `rtcp_reports` and
//!    `qos_reports` parts, rewrites `rtp_streams` day partitions, and saves its carried state as
//!    `state/media-<run>.json.zst`;
//! 4. dialog day partitions are rewritten (old parts superseded, not yet deleted);
//! 5. the catalog is saved with the files and `last_run` — the commit point;
//! 6. `pending.json` is removed, superseded parts and older media states are deleted.
//!
//! A run that dies before 5 is rolled back by the next run: its parts, documents and media state
//! are removed, and the superseded dialog and stream parts become live again.
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::catalog::{self, Catalog, CatalogFile};
use super::dialogs::{approx_bytes, dialog_record, merge_by_call_id, read_parts, LegKeys};
use super::layout::{DbPaths, CATALOG_FILE, PENDING, REINDEX, STATE_DIR, TABLES_DIR, TEXT_DIR};
use super::media::{self, MediaConfig, MediaOutcome, MediaPass, MediaState};
use super::scan::{
    by_call_id, preroll_start, scan_file_streaming, FileScan, Predecessor, Preroll, RingLinks,
    ScanConfig, StreamTo,
};
use super::spill::{self, RunWriter};
use super::txn::{lock_db, recover, store_err, Pending};
use super::IndexError;
use crate::sip::correlate::correlate_groups;
use crate::sip::dialog::DialogSummary;
use crate::sip::scanner::{flooders, SourceOutcomes};
use crate::store;
use crate::store::parquet::{self as pq, DayRange, TableWriter, WriterOptions};
use crate::store::record::{DialogRecord, MessageRecord};
use crate::store::text_index::TextIndex;

#[derive(Clone, Debug)]
pub struct IndexPlan {
    pub db: PathBuf,
    pub inputs: Vec<PathBuf>,
    /// Files modified more recently than this are still being written: left for the next run.
    pub settle: Duration,
    /// SIP scan threads (0: one per core, less one for the media pass when it runs).
    pub threads: usize,
    pub scan: ScanConfig,
    /// Files scanned at once (at most `threads`); each holds its HEP window, a few chunks of
    /// message rows and its share of `dialog_memory`.
    pub batch_files: usize,
    /// Bytes of dialog summaries held in memory by the run (shared by the files scanned at once,
    /// then by each step of the dialog stage); beyond it sorted runs spill to `<db>/spill/`.
    pub dialog_memory: usize,
    /// Heap of the tantivy writer of the message text index: a segment is flushed when full.
    pub text_memory: usize,
    /// RTP/RTCP analysis settings (metric definitions).
    pub media: MediaConfig,
}

#[derive(Clone, Debug, Default)]
pub struct IndexReport {
    pub run: u64,
    pub files_indexed: usize,
    pub files_known: usize,
    pub files_waiting: Vec<PathBuf>,
    pub files_failed: Vec<(PathBuf, String)>,
    pub files_truncated: Vec<(PathBuf, u64)>,
    /// Files whose reading stopped at a corrupt record (the rest cannot be located), with its offset.
    pub files_corrupt: Vec<(PathBuf, u64)>,
    pub packets: u64,
    pub bytes: u64,
    pub messages: u64,
    pub malformed_sip: u64,
    pub dialogs: u64,
    pub rtp_streams: u64,
    pub rtp_packets: u64,
    pub rtcp_reports: u64,
    pub qos_reports: u64,
    /// Files that started before media already analysed (found late): analysed apart, their
    /// streams closed at their end (see `MediaPass::file`).
    pub media_files_out_of_order: u64,
    pub elapsed: Duration,
}

/// Progress callbacks for the CLI's bar: called from the committing thread only.
pub trait Progress {
    fn start(&mut self, _files: usize, _bytes: u64) {}
    fn file_done(&mut self, _path: &Path, _bytes: u64, _packets: u64) {}
    fn phase(&mut self, _what: &str) {}
}

pub struct NoProgress;
impl Progress for NoProgress {}

/// A dialog extended by a run is looked up among dialogs that started within a day of it.
pub(super) const DAY_NS: i64 = 86_400_000_000_000;

struct Candidate {
    path: PathBuf,
    size: u64,
    fingerprint: String,
    mtime_ns: i64,
}

/// Run the indexer over the plan's inputs.
pub fn run(plan: &IndexPlan, progress: &mut dyn Progress) -> Result<IndexReport, IndexError> {
    let started = Instant::now();
    let db = &plan.db;
    let _lock = lock_db(db)?;
    let mut catalog = Catalog::load(db)?;
    recover(db, &catalog)?;
    let mut report = IndexReport::default();

    // 1. the new files, in path order (ring names sort by time)
    let inputs = catalog::expand_inputs(&plan.inputs)?;
    let now = SystemTime::now();
    let mut new_files: Vec<Candidate> = Vec::new();
    for path in inputs {
        if path.starts_with(db) {
            continue;
        }
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                report.files_failed.push((path, e.to_string()));
                continue;
            }
        };
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let young = now
            .duration_since(mtime)
            .map(|age| age < plan.settle)
            .unwrap_or(true);
        let is_part = path.extension().is_some_and(|e| e == "part");
        if is_part || (young && !plan.settle.is_zero()) {
            report.files_waiting.push(path);
            continue;
        }
        let fingerprint = match catalog::fingerprint(&path, meta.len()) {
            Ok(f) => f,
            Err(e) => {
                report.files_failed.push((path, e.to_string()));
                continue;
            }
        };
        let spath = path.to_string_lossy().into_owned();
        if catalog.find(&spath, meta.len(), &fingerprint).is_some() {
            report.files_known += 1;
            continue;
        }
        new_files.push(Candidate {
            path,
            size: meta.len(),
            fingerprint,
            mtime_ns: mtime
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0),
        });
    }
    if new_files.is_empty() {
        report.elapsed = started.elapsed();
        return Ok(report);
    }

    // 2. announce the run
    let run = catalog.last_run + 1;
    report.run = run;
    let first_id = catalog.next_file_id;
    let end_id = first_id + new_files.len() as u32;
    Pending {
        run,
        first_file_id: first_id,
        end_file_id: end_id,
    }
    .announce(db)?;
    progress.start(new_files.len(), new_files.iter().map(|c| c.size).sum());

    // 3. scan in parallel, batch by batch; write rows in file order so output is deterministic
    let text = TextIndex::open_or_create(&store::text_dir(db)).map_err(|e| store_err(db, e))?;
    // The writer's threads start on a helper thread that steps back for the media pass (see
    // `lower_thread_priority`), so they inherit its priority and this thread keeps its own (it
    // may run again: `index --follow`).
    let mut text_writer = std::thread::scope(|s| {
        s.spawn(|| {
            if plan.media.analyse {
                lower_thread_priority();
            }
            text.writer(1, plan.text_memory.max(MIN_TEXT_MEMORY))
        })
        .join()
    })
    .map_err(|_| IndexError::io(db, std::io::Error::other("opening the text index panicked")))?
    .map_err(|e| store_err(db, e))?;
    let mut messages = TableWriter::<MessageRecord>::create(db, run, WriterOptions::default())
        .map_err(|e| store_err(db, e))?;
    let mut rate: HashMap<(std::net::IpAddr, i64), u32> = HashMap::new();
    let mut entries: Vec<CatalogFile> = Vec::new();
    let media_files: Vec<(PathBuf, u32)> = new_files
        .iter()
        .enumerate()
        .map(|(i, c)| (c.path.clone(), first_id + i as u32))
        .collect();
    let predecessors = predecessors(&catalog, &media_files, media_files.iter().map(|f| &*f.0));
    let media_state = MediaState::load(db, catalog.last_run)?;
    // By default the sequential media pass keeps a core to itself: on an RTP-heavy archive it
    // is the critical path, and a scan worker sharing its core only slowed it (2 cores, 500 MB
    // trunk: 0.76 s mean wall with one scan worker against 0.85 s with two, 6 runs each).
    let threads = match plan.threads {
        0 => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_sub(usize::from(plan.media.analyse))
            .max(1),
        n => n,
    };
    // files scanned at once: each holds a HEP window, a few row chunks and its dialog budget
    let workers = threads
        .min(plan.batch_files.max(1))
        .min(new_files.len())
        .max(1);
    let worker_budget = plan.dialog_memory / workers;
    let mut receivers = Vec::with_capacity(new_files.len());
    let mut senders = Vec::with_capacity(new_files.len());
    for _ in &new_files {
        let (tx, rx) = std::sync::mpsc::sync_channel::<ScanEvent>(CHUNKS_AHEAD);
        senders.push(std::sync::Mutex::new(Some(tx)));
        receivers.push(rx);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| -> Result<(), IndexError> {
        // The media pass is sequential over the files in order; it overlaps the parallel SIP scan.
        let media_thread = scope.spawn(|| -> Result<MediaOutcome, IndexError> {
            let mut pass = MediaPass::new(db, run, &plan.media, media_state)?;
            pass.files(&media_files)?;
            pass.finish()
        });
        // Workers take files in order and stream each file's rows through its own bounded
        // channel; this thread writes the channels in file order, so output is deterministic.
        // Deadlock-free: the lowest file not yet written is always claimed by a worker (files are
        // claimed in order) and that worker's channel is the one being drained.
        for _ in 0..workers {
            let (senders, next, new_files, predecessors) =
                (&senders, &next, &new_files, &predecessors);
            let step_back = plan.media.analyse;
            scope.spawn(move || {
                if step_back {
                    lower_thread_priority();
                }
                // The next file's pre-roll, built during this file's scan: a lone worker scans
                // the files in order, so it is the one to use it (several workers interleave
                // and each replays its file's predecessor instead).
                let mut carried: Option<(usize, Preroll)> = None;
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(slot) = senders.get(k) else { break };
                    let Some(tx) = slot.lock().ok().and_then(|mut s| s.take()) else {
                        break;
                    };
                    let mut send_rows = |rows| tx.send(ScanEvent::Rows(rows)).is_ok();
                    let mut to = StreamTo {
                        db,
                        run,
                        chunk_rows: CHUNK_ROWS,
                        messages: &mut send_rows,
                        dialog_budget: worker_budget,
                    };
                    let file_id = first_id + k as u32;
                    let successor = (workers == 1)
                        .then(|| {
                            let next_file = new_files.get(k + 1)?;
                            predecessors[k + 1]
                                .as_ref()
                                .filter(|p| p.file_id == file_id)?;
                            preroll_start(&next_file.path, file_id + 1)
                        })
                        .flatten();
                    let ring = RingLinks {
                        predecessor: predecessors[k].as_ref(),
                        carried: carried.take().filter(|c| c.0 == k).map(|c| c.1),
                        successor,
                    };
                    let scan =
                        scan_file_streaming(&new_files[k].path, file_id, ring, &plan.scan, &mut to)
                            .map(|(scan, tail)| {
                                carried = tail.map(|t| (k + 1, t));
                                scan
                            });
                    let failed = scan.is_err();
                    if tx.send(ScanEvent::Done(Box::new(scan))).is_err() || failed {
                        break;
                    }
                }
            });
        }
        for (c, rx) in new_files.iter().zip(receivers) {
            let scan = loop {
                match rx.recv() {
                    Ok(ScanEvent::Rows(rows)) => {
                        for m in rows {
                            text_writer.add(&m).map_err(|e| store_err(db, e))?;
                            messages.push(m).map_err(|e| store_err(db, e))?;
                        }
                    }
                    Ok(ScanEvent::Done(scan)) => break (*scan)?,
                    Err(_) => {
                        return Err(IndexError::io(
                            &c.path,
                            std::io::Error::other("a scanning thread died"),
                        ))
                    }
                }
            };
            progress.file_done(&c.path, c.size, scan.stats.packets);
            report.packets += scan.stats.packets;
            report.bytes += c.size;
            report.messages += scan.stats.sip_messages;
            report.malformed_sip += scan.stats.malformed_sip;
            if let Some(off) = scan.stats.truncated_at {
                report.files_truncated.push((c.path.clone(), off));
            }
            if let Some(off) = scan.stats.corrupt_at {
                report.files_corrupt.push((c.path.clone(), off));
            }
            if let Some(e) = &scan.error {
                report.files_failed.push((c.path.clone(), e.clone()));
            }
            for (k, n) in scan.request_rate {
                *rate.entry(k).or_default() += n;
            }
            entries.push(CatalogFile {
                id: scan.file_id,
                path: c.path.to_string_lossy().into_owned(),
                size: c.size,
                fingerprint: c.fingerprint.clone(),
                mtime_ns: c.mtime_ns,
                run,
                packets: scan.stats.packets,
                sip_messages: scan.stats.sip_messages,
                first_ts_ns: scan.stats.first_ts_ns,
                last_ts_ns: scan.stats.last_ts_ns,
                truncated_at: scan.stats.truncated_at,
                malformed_sip: scan.stats.malformed_sip,
                hep_mirrors: scan.stats.hep_mirrors,
                span_duplicates: scan.stats.span_duplicates,
                error: scan.error.clone(),
            });
        }
        progress.phase("writing tables");
        messages.finish().map_err(|e| store_err(db, e))?;
        // Committed (`finish` commits, then waits for merges) before waiting for the media
        // pass, which it does not depend on: on an RTP-heavy archive the pass ends last, and
        // the commit then runs beside its tail instead of after it (step 2 of the protocol
        // still precedes the catalog).
        text_writer.finish().map_err(|e| store_err(db, e))?;
        let ids: Vec<u32> = entries.iter().map(|e| e.id).collect();
        let new_dialogs = merge_new_dialogs(plan, run, &ids)?;
        progress.phase("media analysis");
        let media_out = media_thread
            .join()
            .map_err(|_| IndexError::io(db, std::io::Error::other("media pass panicked")))??;
        report.rtp_streams = media_out.streams_written;
        report.rtp_packets = media_out.rtp_packets;
        report.rtcp_reports = media_out.rtcp_rows;
        report.media_files_out_of_order = media_out.files_out_of_order;
        report.qos_reports = media_out.qos_rows;

        // 4. dialogs: merge with what earlier runs stored, correlate, rewrite the days touched
        progress.phase("dialogs");
        report.dialogs = dialog_stage(plan, run, new_dialogs, &rate, &media_out)?;
        Ok(())
    })?;

    // 5. commit
    progress.phase("committing");
    catalog.files.extend(entries);
    catalog.next_file_id = end_id;
    catalog.last_run = run;
    catalog.save(db)?;
    let _ = std::fs::remove_file(DbPaths(db).pending());
    spill::remove_all(db)?;
    media::prune_states(db, run, false);
    super::dialogs::prune_parts(db, run, false);
    pq::recover(db).map_err(|e| store_err(db, e))?;
    report.files_indexed = new_files.len();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Tantivy refuses a writer heap below 15 MB per thread.
pub const MIN_TEXT_MEMORY: usize = 15 << 20;
/// Message rows per chunk sent from a scanning thread to the writer.
const CHUNK_ROWS: usize = 1024;
/// Chunks a scanning thread may have queued before it waits for the writer.
const CHUNKS_AHEAD: usize = 2;

enum ScanEvent {
    Rows(Vec<MessageRecord>),
    Done(Box<Result<FileScan, IndexError>>),
}

/// What an earlier run stored for a dialog, kept for the merge-join with this run's dialogs.
#[derive(Serialize, Deserialize)]
struct OldRow {
    call_id: String,
    start_ns: i64,
    /// Within a day of this run's dialogs: merged into the new summary (outside, only replaced).
    in_window: bool,
    media: [Option<f64>; 3],
    summary: Option<String>,
}

/// A dialog of this run, final, waiting to be written in table order.
#[derive(Serialize, Deserialize)]
struct FinalDialog {
    /// Its index in Call-ID order: the key of its correlation group.
    leg: u32,
    old_media: Option<[Option<f64>; 3]>,
    summary: DialogSummary,
}

fn dialog_order(a: &DialogRecord, b: &DialogRecord) -> std::cmp::Ordering {
    (a.start_ns, &a.call_id).cmp(&(b.start_ns, &b.call_id))
}

/// This run's dialogs (step 4a), merged across its files by Call-ID into one sorted run: where
/// it is, and the span and number of the dialogs' starts.
pub(super) struct NewDialogs {
    path: PathBuf,
    lo: i64,
    hi: i64,
    count: u64,
}

/// Step 4a: needs only the scan's dialog parts, so a run does it while the media pass is still
/// busy (on an RTP-heavy archive the pass ends last, and everything after it is the run's tail).
fn merge_new_dialogs(
    plan: &IndexPlan,
    run: u64,
    file_ids: &[u32],
) -> Result<NewDialogs, IndexError> {
    let db = &plan.db;
    let dir = spill::spill_dir(db, run);
    let mut groups: Vec<PathBuf> = Vec::new();
    let mut sources = Vec::new();
    for (i, chunk) in file_ids.chunks(spill::FAN_IN).enumerate() {
        let mut readers = Vec::new();
        for id in chunk {
            readers.push(Box::new(read_parts(db, *id, run)?) as Box<dyn Iterator<Item = _> + Send>);
        }
        let merged = merge_by_call_id(spill::Merge::new(readers, by_call_id));
        if file_ids.len() <= spill::FAN_IN {
            sources.push(merged);
            break;
        }
        let path = dir.join(format!("new-g{i}.jsonl.zst"));
        let mut w = RunWriter::create(&path)?;
        for d in merged {
            w.push(&d?)?;
        }
        groups.push(w.finish()?);
    }
    let path = dir.join("new.jsonl.zst");
    let (mut lo, mut hi, mut count) = (i64::MAX, i64::MIN, 0u64);
    {
        let mut w = RunWriter::create(&path)?;
        let mut put = |d: DialogSummary| -> Result<(), IndexError> {
            if let Some(s) = d.start_ns {
                lo = lo.min(s);
                hi = hi.max(s);
            }
            count += 1;
            w.push(&d)
        };
        if groups.is_empty() {
            for src in sources {
                for d in src {
                    put(d?)?;
                }
            }
        } else {
            let readers = spill::merge_runs::<DialogSummary>(&dir, "new", groups, by_call_id)?;
            for d in merge_by_call_id(spill::Merge::new(readers, by_call_id)) {
                put(d?)?;
            }
        }
        w.finish()?;
    }
    Ok(NewDialogs {
        path,
        lo,
        hi,
        count,
    })
}

/// Step 4 of a run, in bounded memory (README "Resource bounds"): merge the new files' dialog
/// parts by Call-ID (`merge_new_dialogs`, done before), merge-join them with the stored dialogs
/// of the days they may extend, keep only the packed correlation keys while the final summaries
/// spill in table order, then rewrite the touched day partitions as a stream. Returns the number
/// of this run's dialogs.
fn dialog_stage(
    plan: &IndexPlan,
    run: u64,
    new: NewDialogs,
    rate: &HashMap<(std::net::IpAddr, i64), u32>,
    media_out: &MediaOutcome,
) -> Result<u64, IndexError> {
    let db = &plan.db;
    let dir = spill::spill_dir(db, run);
    let budget = plan.dialog_memory.max(1);
    let NewDialogs {
        path: new_path,
        lo,
        hi,
        count,
    } = new;
    // calls whose media changed need their row even when no new SIP message touched them
    let (mut wlo, mut whi) = (lo, hi);
    if let Some((a, b)) = media_out.span {
        wlo = wlo.min(a);
        whi = whi.max(b);
    }

    // 4b. the stored dialogs of the days this run may touch, sorted by Call-ID
    let mut old_rows = spill::Sorter::<OldRow>::new(
        &dir,
        "old",
        budget,
        |a, b| a.call_id.cmp(&b.call_id),
        |o| o.call_id.len() + o.summary.as_ref().map_or(0, String::len),
    );
    let mut media_recs: HashMap<String, DialogRecord> = HashMap::new();
    if wlo <= whi {
        // a call extended by this run started at most a day before its first message here
        let (since, until) = (wlo.saturating_sub(DAY_NS), whi.saturating_add(DAY_NS));
        let mut failed = None;
        pq::for_each_row::<DialogRecord>(db, DayRange::from_ns(Some(since), Some(until)), |rec| {
            let in_window = rec.start_ns >= since && rec.start_ns < until;
            if in_window && media_out.calls.contains_key(&rec.call_id) {
                media_recs.insert(rec.call_id.clone(), rec.clone());
            }
            let row = OldRow {
                in_window,
                media: [rec.worst_mos, rec.max_loss_pct, rec.max_jitter_ms],
                start_ns: rec.start_ns,
                summary: rec.summary,
                call_id: rec.call_id,
            };
            if let Err(e) = old_rows.push(row) {
                failed = Some(e);
            }
            Ok(())
        })
        .map_err(|e| store_err(db, e))?;
        if let Some(e) = failed {
            return Err(e);
        }
    }

    // 4c. merge-join; keep the correlation keys and per-source outcomes; spill in table order
    let mut old = old_rows.finish()?.peekable();
    let mut legs = LegKeys::default();
    let mut outcome = SourceOutcomes::default();
    let mut previous_days = BTreeSet::new();
    let mut replaced: HashSet<String> = HashSet::new();
    let mut media_only: Vec<DialogRecord> = Vec::new();
    let mut finals = spill::Sorter::<FinalDialog>::new(
        &dir,
        "final",
        budget,
        |a, b| {
            (a.summary.start_ns.unwrap_or(0), &a.summary.call_id)
                .cmp(&(b.summary.start_ns.unwrap_or(0), &b.summary.call_id))
        },
        |f| approx_bytes(&f.summary),
    );
    let mut unmatched =
        |o: OldRow, media_only: &mut Vec<DialogRecord>, replaced: &mut HashSet<String>| {
            if o.in_window {
                if let Some(rec) = media_recs.remove(&o.call_id) {
                    replaced.insert(o.call_id);
                    media_only.push(rec);
                }
            }
        };
    for (i, d) in spill::RunReader::<DialogSummary>::open(&new_path)?.enumerate() {
        let mut d = d?;
        let mut old_media = None;
        while let Some(o) = old.peek() {
            let o_key = match o {
                Ok(o) => o.call_id.as_str(),
                Err(_) => "",
            };
            if o.is_ok() && o_key > d.call_id.as_str() {
                break;
            }
            let o = old.next().expect("peeked")?;
            if o.call_id < d.call_id {
                unmatched(o, &mut media_only, &mut replaced);
                continue;
            }
            if o.in_window {
                previous_days.insert(pq::day_of(o.start_ns));
                old_media = Some(o.media);
                if let Some(prev) = o
                    .summary
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok())
                {
                    d.merge(prev);
                }
            }
            replaced.insert(o.call_id);
        }
        legs.push(&d);
        outcome.add(&d);
        finals.push(FinalDialog {
            leg: i as u32,
            old_media,
            summary: d,
        })?;
    }
    for o in old {
        unmatched(o?, &mut media_only, &mut replaced);
    }
    let _ = std::fs::remove_file(&new_path);

    // 4d. floods, legs; then the rows in table order
    let flooders = flooders(&outcome, rate, plan.scan.flood_per_minute);
    drop(outcome);
    let groups = correlate_groups(&legs, &plan.scan.correlate);
    let with_media = |mut r: DialogRecord, old: Option<[Option<f64>; 3]>| {
        let m = media_out
            .calls
            .get(&r.call_id)
            .map(|m| [m.worst_mos, m.max_loss_pct, m.max_jitter_ms])
            .or(old);
        if let Some([mos, loss, jitter]) = m {
            r.worst_mos = mos;
            r.max_loss_pct = loss;
            r.max_jitter_ms = jitter;
        }
        r
    };
    media_only.sort_by(dialog_order);
    let mut media_only = media_only
        .into_iter()
        .map(|r| {
            let old = Some([r.worst_mos, r.max_loss_pct, r.max_jitter_ms]);
            with_media(r, old)
        })
        .peekable();
    let mut error: Option<IndexError> = None;
    let mut finals = finals
        .finish()?
        .map_while(|f| match f {
            Ok(f) => {
                let corr = legs.call_id(groups[f.leg as usize] as usize).to_string();
                Some(with_media(
                    dialog_record(&f.summary, corr, &flooders),
                    f.old_media,
                ))
            }
            Err(e) => {
                error = Some(e);
                None
            }
        })
        .peekable();
    let rows = std::iter::from_fn(|| match (finals.peek(), media_only.peek()) {
        (Some(a), Some(b)) if dialog_order(b, a).is_lt() => media_only.next(),
        (Some(_), _) => finals.next(),
        (None, _) => media_only.next(),
    });
    let previous: Vec<_> = previous_days.into_iter().collect();
    pq::upsert_sorted(
        db,
        run,
        rows,
        &previous,
        &|r: &DialogRecord| replaced.contains(&r.call_id),
        false,
        dialog_order,
    )
    .map_err(|e| store_err(db, e))?;
    if let Some(e) = error {
        return Err(e);
    }
    Ok(count)
}

/// Rebuild the tables and the text index from the captures in the catalog (e.g. after new leg
/// correlation rules): the file list is saved first, so a rebuild killed half-way resumes from it.
pub fn reindex(plan: &IndexPlan, progress: &mut dyn Progress) -> Result<IndexReport, IndexError> {
    let db = &plan.db;
    let list_path = DbPaths(db).reindex();
    let paths: Vec<PathBuf> = {
        let _lock = lock_db(db)?;
        // a window job's marker (window.rs) is not a path list: a full rebuild replaces it
        let pending: Option<Vec<PathBuf>> = std::fs::read(&list_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let paths = match pending {
            Some(paths) => paths,
            None => {
                let catalog = Catalog::load(db)?;
                let paths: Vec<PathBuf> = catalog
                    .files
                    .iter()
                    .filter(|f| f.error.is_none())
                    .map(|f| PathBuf::from(&f.path))
                    .collect();
                catalog::write_atomic(
                    &DbPaths(db).tmp(REINDEX),
                    &list_path,
                    &serde_json::to_vec(&paths).expect("paths serialise"),
                )?;
                for dir in [TEXT_DIR, TABLES_DIR, STATE_DIR] {
                    let p = db.join(dir);
                    if p.exists() {
                        std::fs::remove_dir_all(&p).map_err(|e| IndexError::io(&p, e))?;
                    }
                }
                for f in [CATALOG_FILE, PENDING] {
                    let _ = std::fs::remove_file(db.join(f));
                }
                paths
            }
        };
        paths
    };
    let existing: Vec<PathBuf> = paths.into_iter().filter(|p| p.exists()).collect();
    let mut report = if existing.is_empty() {
        IndexReport::default()
    } else {
        let mut p = plan.clone();
        p.inputs = existing;
        p.settle = Duration::ZERO;
        run(&p, progress)?
    };
    let _ = std::fs::remove_file(&list_path);
    report.files_known = 0;
    Ok(report)
}

/// `index --follow`: index whatever became complete every `interval`, until `stop` is set. Each
/// round is an ordinary incremental run, so a restart (of this loop or of the capturer) resumes
/// where it left off. `on_round` sees every round's report.
pub fn follow(
    plan: &IndexPlan,
    interval: Duration,
    stop: &std::sync::atomic::AtomicBool,
    on_round: &mut dyn FnMut(&IndexReport),
) -> Result<(), IndexError> {
    use std::sync::atomic::Ordering;
    while !stop.load(Ordering::Relaxed) {
        let report = run(plan, &mut NoProgress)?;
        on_round(&report);
        let until = Instant::now() + interval;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50).min(interval));
        }
    }
    Ok(())
}

/// The SIP side of a run steps back for the media pass: it is sequential, so on an RTP-heavy
/// archive it is the run's critical path, while the scan's files can go to any core. Without
/// this, on two cores the media thread shared a core with a scan worker for the whole scan (1.03
/// s wall for 0.87 s of work on a 500 MB trunk). The text index's threads step back too, and all
/// the way (nice 19): at +5, or with those threads at the normal priority, the scheduler still
/// put the media pass's two threads on one core while the scan ran (the analysis got ~60% of a
/// core; 2 GB trunk), though the scan had a second to spare before the pass ended; at 19 the
/// analysis has a core from the start (12 alternated runs: median wall 2.43 -> 2.25 s against
/// +5). The run's own thread (writing rows, light) keeps its priority: an unprivileged thread
/// cannot take a lowered one back, and `index --follow` runs again on it. Where the media pass is
/// light (SIP-heavy archives) it mostly sleeps and the scan keeps every core; on a busy host the
/// scan also yields to other work, a capture first. Best effort: failure changes only the speed.
#[allow(unsafe_code)]
fn lower_thread_priority() {
    // SAFETY: plain syscalls on this thread's own id; no memory is passed.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, 19.max(now));
    }
}

/// Each of `paths`' predecessor in its ring: the file before it (by path) in its directory, among
/// the catalog's readable files and `also` (files being indexed now, with their new ids).
pub(super) fn predecessors<'p>(
    catalog: &Catalog,
    also: &[(PathBuf, u32)],
    paths: impl Iterator<Item = &'p Path>,
) -> Vec<Option<Predecessor>> {
    let mut all: Vec<(PathBuf, u32)> = catalog
        .files
        .iter()
        .filter(|f| f.error.is_none())
        .map(|f| (PathBuf::from(&f.path), f.id))
        .chain(also.iter().cloned())
        .collect();
    all.sort();
    paths
        .map(|path| {
            let pos = all.partition_point(|(p, _)| p.as_path() < path);
            let (prev, id) = all.get(pos.checked_sub(1)?)?;
            (prev.parent() == path.parent() && prev.exists()).then(|| Predecessor {
                path: prev.clone(),
                file_id: *id,
            })
        })
        .collect()
}
