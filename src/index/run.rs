//! One indexing run: pick the new files, scan them in parallel, write rows, commit.
//! Commit protocol (crash-safe at any instant, see schemas/db.md):
//! 1. `pending.json` names the run and the file ids it will use;
//! 2. message parts and text documents are written, the text index committed;
//! 3. the media pass (`media`, on its own thread beside the scan) writes `rtcp_reports` and
//!    `qos_reports` parts, rewrites `rtp_streams` day partitions, and saves its carried state as
//!    `state/media-<run>.json.zst`;
//! 4. dialog day partitions are rewritten (old parts superseded, not yet deleted);
//! 5. the catalog is saved with the files and `last_run` — the commit point;
//! 6. `pending.json` is removed, superseded parts and older media states are deleted.
//!
//! A run that dies before 5 is rolled back by the next run: its parts, documents and media state
//! are removed, and the superseded dialog and stream parts become live again.
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::catalog::{self, Catalog, CatalogFile};
use super::dialogs::{dialog_record, save_parts, summary_of};
use super::media::{self, CallMedia, MediaConfig, MediaOutcome, MediaPass, MediaState};
use super::scan::{scan_file, FileScan, Predecessor, ScanConfig};
use super::IndexError;
use crate::sip::correlate::correlate_dialogs;
use crate::sip::dialog::DialogSummary;
use crate::store::parquet::{self as pq, DialogFilter, TableWriter, WriterOptions};
use crate::store::record::MessageRecord;
use crate::store::text_index::TextIndex;
use crate::store::{self, StoreError};

#[derive(Clone, Debug)]
pub struct IndexPlan {
    pub db: PathBuf,
    pub inputs: Vec<PathBuf>,
    /// Files modified more recently than this are still being written: left for the next run.
    pub settle: Duration,
    /// Worker threads (0: one per core).
    pub threads: usize,
    pub scan: ScanConfig,
    /// Files scanned at once; bounds memory (each file's rows are held until written).
    pub batch_files: usize,
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

#[derive(Serialize, Deserialize)]
pub(super) struct Pending {
    pub(super) run: u64,
    pub(super) first_file_id: u32,
    pub(super) end_file_id: u32,
}

/// A dialog extended by a run is looked up among dialogs that started within a day of it.
pub(super) const DAY_NS: i64 = 86_400_000_000_000;
pub(super) const PENDING: &str = "pending.json";
const LOCK: &str = "LOCK";

/// The database lock: one writer at a time; released when dropped.
pub struct DbLock {
    _file: File,
}

pub fn lock_db(db: &Path) -> Result<DbLock, IndexError> {
    std::fs::create_dir_all(db).map_err(|e| IndexError::io(db, e))?;
    let path = db.join(LOCK);
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| IndexError::io(&path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(DbLock { _file: f }),
        Err(std::fs::TryLockError::WouldBlock) => Err(IndexError::Locked {
            path: db.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(IndexError::io(&path, e)),
    }
}

fn store_err(db: &Path, e: StoreError) -> IndexError {
    IndexError::Store {
        path: db.to_path_buf(),
        source: e,
    }
}

/// Undo an uncommitted run (see the module doc); called with the lock held.
pub fn recover(db: &Path, catalog: &Catalog) -> Result<(), IndexError> {
    let pending_path = db.join(PENDING);
    if let Ok(bytes) = std::fs::read(&pending_path) {
        if let Ok(p) = serde_json::from_slice::<Pending>(&bytes) {
            if p.run > catalog.last_run {
                for table in [
                    "messages",
                    "dialogs",
                    "rtp_streams",
                    "rtcp_reports",
                    "qos_reports",
                ] {
                    pq::remove_parts(db, table, p.run).map_err(|e| store_err(db, e))?;
                }
                let text = TextIndex::open_or_create(&store::text_dir(db))
                    .map_err(|e| store_err(db, e))?;
                let mut w = text.writer(1, 50_000_000).map_err(|e| store_err(db, e))?;
                for id in p.first_file_id.min(catalog.next_file_id)..p.end_file_id {
                    w.delete_file(id);
                }
                w.commit().map_err(|e| store_err(db, e))?;
                w.finish().map_err(|e| store_err(db, e))?;
            }
        }
        std::fs::remove_file(&pending_path).map_err(|e| IndexError::io(&pending_path, e))?;
    }
    media::prune_states(db, catalog.last_run, true);
    super::dialogs::prune_parts(db, catalog.last_run, true);
    pq::recover(db).map_err(|e| store_err(db, e))?;
    Ok(())
}

fn call_media_of(r: &crate::store::record::DialogRecord) -> CallMedia {
    CallMedia {
        worst_mos: r.worst_mos,
        max_loss_pct: r.max_loss_pct,
        max_jitter_ms: r.max_jitter_ms,
    }
}

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
    catalog::write_atomic(
        &db.join(format!("{PENDING}.tmp")),
        &db.join(PENDING),
        &serde_json::to_vec(&Pending {
            run,
            first_file_id: first_id,
            end_file_id: end_id,
        })
        .expect("pending serialises"),
    )?;
    progress.start(new_files.len(), new_files.iter().map(|c| c.size).sum());

    // 3. scan in parallel, batch by batch; write rows in file order so output is deterministic
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.threads)
        .build()
        .map_err(|e| IndexError::io(db, std::io::Error::other(e)))?;
    let text = TextIndex::open_or_create(&store::text_dir(db)).map_err(|e| store_err(db, e))?;
    let mut text_writer = text.writer(1, 200_000_000).map_err(|e| store_err(db, e))?;
    let mut messages = TableWriter::<MessageRecord>::create(db, run, WriterOptions::default())
        .map_err(|e| store_err(db, e))?;
    let mut dialogs: HashMap<String, DialogSummary> = HashMap::new();
    let mut rate: HashMap<(std::net::IpAddr, i64), u32> = HashMap::new();
    let mut entries: Vec<CatalogFile> = Vec::new();
    // each new file's predecessor in its ring: the previous file of its directory, known or new
    let predecessors: Vec<Option<Predecessor>> = {
        let mut all: Vec<(PathBuf, u32)> = catalog
            .files
            .iter()
            .filter(|f| f.error.is_none())
            .map(|f| (PathBuf::from(&f.path), f.id))
            .collect();
        all.extend(
            new_files
                .iter()
                .enumerate()
                .map(|(i, c)| (c.path.clone(), first_id + i as u32)),
        );
        all.sort();
        new_files
            .iter()
            .map(|c| {
                let pos = all.partition_point(|(p, _)| p < &c.path);
                let (prev, id) = all.get(pos.checked_sub(1)?)?;
                (prev.parent() == c.path.parent() && prev.exists()).then(|| Predecessor {
                    path: prev.clone(),
                    file_id: *id,
                })
            })
            .collect()
    };
    let batch = plan.batch_files.max(1);
    let media_state = MediaState::load(db, catalog.last_run)?;
    let media_files: Vec<(PathBuf, u32)> = new_files
        .iter()
        .enumerate()
        .map(|(i, c)| (c.path.clone(), first_id + i as u32))
        .collect();
    std::thread::scope(|scope| -> Result<(), IndexError> {
        // The media pass is sequential over the files in order; it overlaps the parallel SIP scan.
        let media_thread = scope.spawn(|| -> Result<MediaOutcome, IndexError> {
            let mut pass = MediaPass::new(db, run, &plan.media, media_state)?;
            for (path, id) in &media_files {
                pass.file(path, *id)?;
            }
            pass.finish()
        });
        for (chunk_no, chunk) in new_files.chunks(batch).enumerate() {
            let base = first_id + (chunk_no * batch) as u32;
            let scans: Vec<FileScan> = pool.install(|| {
                chunk
                    .par_iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let k = (base - first_id) as usize + i;
                        scan_file(
                            &c.path,
                            base + i as u32,
                            predecessors[k].as_ref(),
                            &plan.scan,
                        )
                    })
                    .collect()
            });
            for (c, scan) in chunk.iter().zip(scans) {
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
                for m in scan.messages {
                    text_writer.add(&m).map_err(|e| store_err(db, e))?;
                    messages.push(m).map_err(|e| store_err(db, e))?;
                }
                // what this file gave each dialog, for a later window reindex (dialogs.rs)
                save_parts(
                    db,
                    scan.file_id,
                    run,
                    &plan.scan.correlate.headers,
                    &scan.dialogs,
                )?;
                for (id, d) in scan.dialogs {
                    match dialogs.get_mut(&id) {
                        Some(x) => x.merge(d),
                        None => {
                            dialogs.insert(id, d);
                        }
                    }
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
        }
        progress.phase("writing tables");
        messages.finish().map_err(|e| store_err(db, e))?;
        progress.phase("media analysis");
        let media_out = media_thread
            .join()
            .map_err(|_| IndexError::io(db, std::io::Error::other("media pass panicked")))??;
        report.rtp_streams = media_out.streams_written;
        report.rtp_packets = media_out.rtp_packets;
        report.rtcp_reports = media_out.rtcp_rows;
        report.qos_reports = media_out.qos_rows;
        text_writer.commit().map_err(|e| store_err(db, e))?;
        text_writer.finish().map_err(|e| store_err(db, e))?;

        // 4. dialogs: merge with what earlier runs stored, correlate, rewrite the days touched
        report.dialogs = dialogs.len() as u64;
        let touched: Vec<String> = {
            let mut v: Vec<String> = dialogs.keys().cloned().collect();
            v.sort();
            v
        };
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for d in dialogs.values() {
            if let Some(s) = d.start_ns {
                lo = lo.min(s);
                hi = hi.max(s);
            }
        }
        // calls whose media changed need their row even when no new SIP message touched them
        if let Some((a, b)) = media_out.span {
            lo = lo.min(a);
            hi = hi.max(b);
        }
        let mut old_media: HashMap<String, CallMedia> = HashMap::new();
        let mut media_only = Vec::new();
        let mut previous_days = BTreeSet::new();
        if lo <= hi {
            // a call extended by this run started at most a day before its first message here
            let filter = DialogFilter {
                since_ns: Some(lo.saturating_sub(DAY_NS)),
                until_ns: Some(hi.saturating_add(DAY_NS)),
                ..Default::default()
            };
            let old = pq::read_dialogs(db, &filter).map_err(|e| store_err(db, e))?;
            for rec in old {
                if let Some(d) = dialogs.get_mut(&rec.call_id) {
                    previous_days.insert(pq::day_of(rec.start_ns));
                    old_media.insert(rec.call_id.clone(), call_media_of(&rec));
                    if let Some(prev) = summary_of(&rec) {
                        d.merge(prev);
                    }
                } else if media_out.calls.contains_key(&rec.call_id) {
                    media_only.push(rec);
                }
            }
        }
        let summaries: Vec<DialogSummary> = touched.iter().map(|id| dialogs[id].clone()).collect();
        // A flood is a high request rate from a source whose calls and registrations almost all fail:
        // a busy SBC sends as many INVITEs per minute as a scanner, but its calls get answered.
        let mut outcome: HashMap<std::net::IpAddr, (u64, u64)> = HashMap::new();
        for d in &summaries {
            if let Some(f) = &d.first {
                let e = outcome.entry(f.src_ip).or_default();
                e.0 += 1;
                let ok = matches!(
                    d.state(),
                    crate::sip::dialog::DialogState::Answered
                        | crate::sip::dialog::DialogState::Registered
                        | crate::sip::dialog::DialogState::Unregistered
                );
                e.1 += ok as u64;
            }
        }
        let flooders: BTreeSet<std::net::IpAddr> = rate
            .iter()
            .filter(|(_, n)| **n >= plan.scan.flood_per_minute)
            .map(|((ip, _), _)| *ip)
            .filter(|ip| outcome.get(ip).is_some_and(|(n, ok)| *ok * 10 < *n))
            .collect();
        let correlation = correlate_dialogs(&summaries, &plan.scan.correlate);
        let with_media = |mut r: crate::store::record::DialogRecord| {
            let m = media_out
                .calls
                .get(&r.call_id)
                .or_else(|| old_media.get(&r.call_id));
            if let Some(m) = m {
                r.worst_mos = m.worst_mos;
                r.max_loss_pct = m.max_loss_pct;
                r.max_jitter_ms = m.max_jitter_ms;
            }
            r
        };
        let records: Vec<_> = summaries
            .iter()
            .zip(correlation)
            .map(|(d, corr)| with_media(dialog_record(d, corr, &flooders)))
            .chain(media_only.into_iter().map(with_media))
            .collect();
        let previous: Vec<_> = previous_days.into_iter().collect();
        pq::upsert_dialogs_with(db, run, records, &previous, false)
            .map_err(|e| store_err(db, e))?;
        Ok(())
    })?;

    // 5. commit
    progress.phase("committing");
    catalog.files.extend(entries);
    catalog.next_file_id = end_id;
    catalog.last_run = run;
    catalog.save(db)?;
    let _ = std::fs::remove_file(db.join(PENDING));
    media::prune_states(db, run, false);
    super::dialogs::prune_parts(db, run, false);
    pq::recover(db).map_err(|e| store_err(db, e))?;
    report.files_indexed = new_files.len();
    report.elapsed = started.elapsed();
    Ok(report)
}

pub(super) const REINDEX: &str = "reindex.json";

/// Rebuild the tables and the text index from the captures in the catalog (e.g. after new leg
/// correlation rules): the file list is saved first, so a rebuild killed half-way resumes from it.
pub fn reindex(plan: &IndexPlan, progress: &mut dyn Progress) -> Result<IndexReport, IndexError> {
    let db = &plan.db;
    let list_path = db.join(REINDEX);
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
                    &db.join(format!("{REINDEX}.tmp")),
                    &list_path,
                    &serde_json::to_vec(&paths).expect("paths serialise"),
                )?;
                for dir in ["text", "tables", "state"] {
                    let p = db.join(dir);
                    if p.exists() {
                        std::fs::remove_dir_all(&p).map_err(|e| IndexError::io(&p, e))?;
                    }
                }
                for f in [catalog::CATALOG_FILE, PENDING] {
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
