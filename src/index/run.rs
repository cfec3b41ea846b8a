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
use super::media::{self, MediaConfig, MediaOutcome, MediaPass, MediaState, Refold};
use super::scan::{
    by_call_id, first_packet_ns, preroll_start, scan_file_streaming, FileScan, Predecessor,
    Preroll, RingLinks, ScanConfig, StreamTo,
};
use super::spill::{self, RunWriter};
use super::txn::{lock_db, recover, store_err, Pending};
use super::IndexError;
use crate::sip::correlate::correlate_groups;
use crate::sip::dialog::DialogSummary;
use crate::sip::scanner::{flooders, SourceOutcomes};
use crate::store;
use crate::store::parquet::{self as pq, DayRange, TableWriter, WriterOptions};
use crate::store::record::{DialogRecord, MessageRecord, QosReportRecord, RtcpReportRecord};
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
    /// How long until the youngest of `files_waiting` (those found by a walk or a glob, not
    /// `*.part`) is older than `--settle`.
    pub settle_wait: Duration,
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
    /// Files that started before media already analysed, analysed apart, their streams closed
    /// at their end (see `MediaPass::file`): files overlapping in time the ones before them (two
    /// capture points), or found late when `media_refold_missing` says why no refold.
    pub media_files_out_of_order: u64,
    /// Files already indexed whose media was analysed again, with this run's, because this run
    /// had files older than them (found late): see `plan_refold`.
    pub media_files_reanalysed: usize,
    /// Set when that could not be done: the indexed files that are gone or rewritten since. The
    /// late files were then analysed apart, their streams closed at their end.
    pub media_refold_missing: Vec<PathBuf>,
    /// Files indexed before whose ring predecessor came in this run (or a run killed after its
    /// commit): rescanned for their SIP with its tail (see `run`).
    pub files_rescanned: usize,
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
    /// Capture time of the first packet (None: no packet, or unreadable).
    first_ns: Option<i64>,
}

impl Candidate {
    /// A run's order: by first packet, the name breaking ties, files without packets last.
    /// Ring names do not sort by time (`tcpdump -C` names `trunk.pcap10` before `trunk.pcap2`,
    /// and a directory of links or copies can be named anyhow), and the media pass needs time
    /// order: a file out of it cannot continue the streams before it.
    fn order(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
        time_order((a.first_ns, &a.path), (b.first_ns, &b.path))
    }
}

/// Files in capture-time order: first packet, then name; files without a packet last.
pub(super) fn time_order(a: (Option<i64>, &Path), b: (Option<i64>, &Path)) -> std::cmp::Ordering {
    (a.0.is_none(), a.0, a.1).cmp(&(b.0.is_none(), b.0, b.1))
}

/// Run the indexer over the plan's inputs. Stored files whose ring predecessor (in time order)
/// is one of this run's files were scanned without its tail: they are rescanned for their SIP
/// once the run has committed (`window::rescan_owed`, owed in `window::RESCAN` from before the
/// commit, so a run killed in between has the next one do it first).
pub fn run(plan: &IndexPlan, progress: &mut dyn Progress) -> Result<IndexReport, IndexError> {
    let started = Instant::now();
    let resumed = super::window::rescan_owed(plan, progress)?;
    let mut report = run_locked(plan, progress)?;
    report.files_rescanned = resumed + super::window::rescan_owed(plan, progress)?;
    report.elapsed = started.elapsed();
    Ok(report)
}

fn run_locked(plan: &IndexPlan, progress: &mut dyn Progress) -> Result<IndexReport, IndexError> {
    let started = Instant::now();
    let db = &plan.db;
    let _lock = lock_db(db)?;
    let mut catalog = Catalog::load(db)?;
    recover(db, &catalog)?;
    let mut report = IndexReport::default();

    // 1. the new files, in capture-time order (whatever their names: see `Candidate::order`)
    let inputs = catalog::expand_inputs(&plan.inputs)?;
    let now = SystemTime::now();
    let db_real = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
    // A file is known by the name it was indexed under or by the file that name resolves to,
    // so a ring indexed through links and again through its real directory is not doubled.
    let mut known: HashSet<(String, u64, &str)> = HashSet::new();
    for f in &catalog.files {
        known.insert((f.path.clone(), f.size, &f.fingerprint));
        if let Ok(real) = std::fs::canonicalize(&f.path) {
            known.insert((real.to_string_lossy().into_owned(), f.size, &f.fingerprint));
        }
    }
    let mut new_files: Vec<Candidate> = Vec::new();
    for catalog::Input { path, named } in inputs {
        let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if real.starts_with(&db_real) {
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
        let age = now.duration_since(mtime).unwrap_or(Duration::ZERO);
        let is_part = path.extension().is_some_and(|e| e == "part");
        // A file the user named is meant now; only files found by a walk or a glob may still
        // be in the middle of being written.
        if is_part || (!named && age < plan.settle) {
            if !is_part {
                report.settle_wait = report.settle_wait.max(plan.settle - age);
            }
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
        let rpath = real.to_string_lossy().into_owned();
        if known.contains(&(spath, meta.len(), &*fingerprint))
            || known.contains(&(rpath, meta.len(), &*fingerprint))
        {
            report.files_known += 1;
            continue;
        }
        new_files.push(Candidate {
            first_ns: first_packet_ns(&path, 0),
            path,
            size: meta.len(),
            fingerprint,
            mtime_ns: mtime
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0),
        });
    }
    drop(known);
    new_files.sort_by(Candidate::order);
    if new_files.is_empty() {
        // An empty DB is a DB: a run that indexed nothing (every file still settling, say)
        // still leaves its catalog, so a query answers nothing instead of "not a database".
        if !db.join(catalog::CATALOG_FILE).exists() {
            catalog.save(db)?;
        }
        report.elapsed = started.elapsed();
        return Ok(report);
    }

    // Files older than media already analysed (a ring file found after its successors, rsync
    // delivering late): the media from there on is analysed again with them, in time order.
    let refold = match plan_refold(plan, &catalog, &new_files)? {
        Some(r) if r.missing.is_empty() => Some(r),
        Some(r) => {
            report.media_refold_missing = r.missing;
            None
        }
        None => None,
    };

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
    let ring: Vec<RingFile> = new_files
        .iter()
        .zip(&media_files)
        .map(|(c, (path, id))| RingFile {
            path: path.clone(),
            id: *id,
            first_ns: c.first_ns,
        })
        .collect();
    let predecessors = predecessors(&catalog, &ring, &ring);
    // The media pass's files: this run's, after the stored ones it analyses again (a refold's).
    let mut media_feed: Vec<(PathBuf, u32, Option<i64>)> = ring
        .iter()
        .map(|f| (f.path.clone(), f.id, f.first_ns))
        .collect();
    let media_state = match &refold {
        None => MediaState::load(db, catalog.last_run)?,
        Some(r) => {
            report.media_files_reanalysed = r.files.len();
            media_feed.extend(
                r.files
                    .iter()
                    .map(|f| (PathBuf::from(&f.path), f.id, f.first_ts_ns)),
            );
            media_feed.sort_by(|a, b| time_order((a.2, &a.0), (b.2, &b.0)));
            // their reports are written again by the pass; removed before its writers pick
            // their part numbers (as a window reindex does)
            let again: HashSet<u32> = r.files.iter().map(|f| f.id).collect();
            let days = DayRange::from_ns(Some(r.from_ns.saturating_sub(DAY_NS)), None);
            pq::delete_rows::<RtcpReportRecord>(
                db,
                run,
                days,
                |x| again.contains(&x.file_id),
                |_| {},
            )
            .map_err(|e| store_err(db, e))?;
            pq::delete_rows::<QosReportRecord>(
                db,
                run,
                days,
                |x| again.contains(&x.file_id),
                |_| {},
            )
            .map_err(|e| store_err(db, e))?;
            MediaState::default()
        }
    };
    let media_feed: Vec<(PathBuf, u32)> = media_feed.into_iter().map(|f| (f.0, f.1)).collect();
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
            if let Some(r) = &refold {
                let (replaced, earlier) =
                    super::window::stored_streams_around(db, r.from_ns, None)?;
                let fed: HashSet<u32> = media_feed.iter().map(|f| f.1).collect();
                super::window::media_preroll(plan, &catalog, &mut pass, r.from_ns, &earlier, &fed)?;
                let before = catalog.files.iter().filter(|f| f.error.is_none());
                if let Some(c) = before
                    .filter_map(|f| f.last_ts_ns)
                    .filter(|&t| t < r.from_ns)
                    .max()
                {
                    pass.preroll_clock(c);
                }
                pass.refold(Refold::new(r.from_ns, replaced, &earlier));
            }
            pass.files(&media_feed)?;
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

    // 5. commit (the rescans this run makes owed are noted first, see `run`)
    progress.phase("committing");
    let new_ids: HashSet<u32> = entries.iter().map(|e| e.id).collect();
    catalog.files.extend(entries);
    let stored: Vec<RingFile> = catalog
        .files
        .iter()
        .filter(|f| f.error.is_none() && !new_ids.contains(&f.id))
        .map(|f| RingFile {
            path: PathBuf::from(&f.path),
            id: f.id,
            first_ns: f.first_ts_ns,
        })
        .collect();
    // only where the pre-roll window reaches the new predecessor's packets
    let reaches = |p: &Predecessor, f: &RingFile| {
        let last = catalog.by_id(p.file_id).and_then(|p| p.last_ts_ns);
        let from = f
            .first_ns
            .map(|t| t.saturating_sub(super::scan::PREROLL_NS));
        last.zip(from).is_some_and(|(last, from)| last >= from)
    };
    let owed: Vec<u32> = self::predecessors(&catalog, &[], &stored)
        .iter()
        .zip(&stored)
        .filter(|(p, f)| {
            p.as_ref()
                .is_some_and(|p| new_ids.contains(&p.file_id) && reaches(p, f))
        })
        .map(|(_, f)| f.id)
        .collect();
    if !owed.is_empty() {
        let path = db.join(super::window::RESCAN);
        catalog::write_atomic(
            &path.with_extension("json.tmp"),
            &path,
            &serde_json::to_vec(&owed).expect("ids serialise"),
        )?;
    }
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
fn lower_thread_priority() {
    crate::hint::lower_thread_priority();
}

/// A file as ring order sees it: where it is, its id, its first packet's capture time.
pub(super) struct RingFile {
    pub(super) path: PathBuf,
    pub(super) id: u32,
    pub(super) first_ns: Option<i64>,
}

/// Each of `targets`' predecessor in its ring: among the catalog's readable files and `also`
/// (files being indexed now, with their new ids), the one of the same directory whose first
/// packet comes last before the target's (the name breaking ties, as `time_order`). By time, not
/// name: `tcpdump -C` names `trunk.pcap10` before `trunk.pcap2`. A file without packets has no
/// predecessor and is none (nothing to replay, nothing a replay could complete).
pub(super) fn predecessors(
    catalog: &Catalog,
    also: &[RingFile],
    targets: &[RingFile],
) -> Vec<Option<Predecessor>> {
    let mut dirs: HashMap<&Path, Vec<(i64, &Path, u32)>> = HashMap::new();
    let stored = catalog
        .files
        .iter()
        .filter(|f| f.error.is_none())
        .filter_map(|f| Some((f.first_ts_ns?, Path::new(&f.path), f.id)));
    let given = also
        .iter()
        .filter_map(|f| Some((f.first_ns?, f.path.as_path(), f.id)));
    for (t, path, id) in stored.chain(given) {
        if let Some(dir) = path.parent() {
            dirs.entry(dir).or_default().push((t, path, id));
        }
    }
    for v in dirs.values_mut() {
        v.sort_by(|a, b| time_order((Some(a.0), a.1), (Some(b.0), b.1)));
        v.dedup_by_key(|f| f.2);
    }
    targets
        .iter()
        .map(|f| {
            let first = f.first_ns?;
            let ring = dirs.get(f.path.parent()?)?;
            let pos = ring.partition_point(|&(t, p, _)| {
                time_order((Some(t), p), (Some(first), &f.path)).is_lt()
            });
            let &(_, prev, id) = ring[..pos].iter().rev().find(|r| r.2 != f.id)?;
            prev.exists().then(|| Predecessor {
                path: prev.to_path_buf(),
                file_id: id,
            })
        })
        .collect()
}

/// A refold (see `plan_refold`): where the media is analysed again from, and which stored files.
struct RefoldPlan {
    from_ns: i64,
    /// The stored files with packets from `from_ns` on, in time order.
    files: Vec<CatalogFile>,
    /// Those of them gone from their path or rewritten since: then there is no refold.
    missing: Vec<PathBuf>,
}

/// Whether this run's files include some older than files already indexed (in time order, see
/// `time_order`), and if so from when the media must be analysed again for the tables to equal
/// one pass over all files in order: from the earliest late file, or earlier, from the first
/// packet of every stored stream still running then (or idle less than a stream may be, so a
/// late file could continue it), and back to the start of every stored file with packets from
/// then on. A stream started before that ended long enough before the late files not to be
/// changed by them, so the pass may start afresh there, with `window::media_preroll`'s state.
/// The price is analysing the stored files from there to the end again, beside the run; a late
/// file near the archive's end (rsync catching up) costs little, one file per run in random
/// order up to the whole archive each time.
fn plan_refold(
    plan: &IndexPlan,
    catalog: &Catalog,
    new_files: &[Candidate],
) -> Result<Option<RefoldPlan>, IndexError> {
    if !plan.media.analyse {
        // a SIP-only run changes no media row; the media stays as analysed
        return Ok(None);
    }
    let stored: Vec<&CatalogFile> = catalog
        .files
        .iter()
        .filter(|f| f.error.is_none() && f.first_ts_ns.is_some())
        .collect();
    let Some(last) = stored
        .iter()
        .map(|f| f.time_key())
        .max_by(|a, b| time_order(*a, *b))
    else {
        return Ok(None);
    };
    let Some(late_from) = new_files
        .iter()
        .filter(|c| time_order((c.first_ns, &c.path), last).is_lt())
        .filter_map(|c| c.first_ns)
        .min()
    else {
        return Ok(None);
    };
    let (_, running) = super::window::stored_streams_around(&plan.db, late_from, None)?;
    let mut from = running.iter().map(|r| r.start_ns).fold(late_from, i64::min);
    loop {
        let start = stored
            .iter()
            .filter(|f| f.last_ts_ns.is_some_and(|l| l >= from))
            .filter_map(|f| f.first_ts_ns)
            .fold(from, i64::min);
        if start >= from {
            break;
        }
        from = start;
    }
    let mut files: Vec<CatalogFile> = stored
        .into_iter()
        .filter(|f| f.last_ts_ns.is_some_and(|l| l >= from))
        .cloned()
        .collect();
    files.sort_by(|a, b| time_order(a.time_key(), b.time_key()));
    let missing = files
        .iter()
        .filter(|f| {
            let same = std::fs::metadata(&f.path).is_ok_and(|m| m.len() == f.size)
                && catalog::fingerprint(Path::new(&f.path), f.size)
                    .is_ok_and(|fp| fp == f.fingerprint);
            !same
        })
        .map(|f| PathBuf::from(&f.path))
        .collect();
    Ok(Some(RefoldPlan {
        from_ns: from,
        files,
        missing,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: u32, path: &Path, first: Option<i64>) -> CatalogFile {
        CatalogFile {
            id,
            path: path.to_string_lossy().into_owned(),
            size: 0,
            fingerprint: String::new(),
            mtime_ns: 0,
            run: 1,
            packets: 0,
            sip_messages: 0,
            first_ts_ns: first,
            last_ts_ns: first,
            truncated_at: None,
            malformed_sip: 0,
            hep_mirrors: 0,
            span_duplicates: 0,
            error: None,
        }
    }

    #[test]
    fn a_ring_file_follows_the_file_before_it_in_time_not_in_name() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let p = |d: &Path, n: &str| {
            let path = d.join(n);
            std::fs::write(&path, b"").unwrap();
            path
        };
        // tcpdump -C: trunk.pcap9 (t=9) comes before trunk.pcap10 (t=10), which sorts first
        let (p9, p10, p11) = (
            p(dir.path(), "trunk.pcap9"),
            p(dir.path(), "trunk.pcap10"),
            p(dir.path(), "trunk.pcap11"),
        );
        let elsewhere = p(other.path(), "trunk.pcap10");
        let catalog = Catalog {
            files: vec![
                stored(0, &p10, Some(10)),
                stored(1, &elsewhere, Some(10)),
                stored(2, &p9, Some(9)),
            ],
            ..Default::default()
        };
        let new = |path: &Path, id, first| RingFile {
            path: path.to_path_buf(),
            id,
            first_ns: first,
        };
        let also = [
            new(&p11, 3, Some(11)),
            new(&p(dir.path(), "empty"), 4, None),
        ];
        let targets = [
            new(&p10, 0, Some(10)),
            new(&p11, 3, Some(11)),
            new(&p9, 2, Some(9)),
            new(&also[1].path, 4, None),
        ];
        let ids: Vec<Option<u32>> = predecessors(&catalog, &also, &targets)
            .iter()
            .map(|p| p.as_ref().map(|p| p.file_id))
            .collect();
        // the other directory's file of the same time is another ring; a file without packets
        // has no predecessor
        assert_eq!(ids, vec![Some(2), Some(0), None, None]);
        // a run's order: by time, the name breaking ties, files without packets last
        let mut v = [
            (None, &p9),
            (Some(10), &p11),
            (Some(10), &p10),
            (Some(9), &p11),
        ];
        v.sort_by(|a, b| time_order((a.0, a.1), (b.0, b.1)));
        assert_eq!(
            v,
            [
                (Some(9), &p11),
                (Some(10), &p10),
                (Some(10), &p11),
                (None, &p9)
            ]
        );
    }
}
