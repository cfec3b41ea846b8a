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
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::catalog::{self, Catalog, CatalogFile};
use super::layout::{DbPaths, CATALOG_FILE, PENDING, REINDEX, STATE_DIR, TABLES_DIR, TEXT_DIR};
use super::media::{self, MediaConfig};
use super::scan::{first_packet_ns, Predecessor, ScanConfig};
use super::scan_stage::scan_stage;
use super::spill::{self};
use super::txn::{lock_db, recover, store_err, Pending};
use super::IndexError;
use crate::store::parquet::{self as pq};

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

pub(super) struct Candidate {
    pub(super) path: PathBuf,
    pub(super) size: u64,
    pub(super) fingerprint: String,
    pub(super) mtime_ns: i64,
    /// Capture time of the first packet (None: no packet, or unreadable).
    pub(super) first_ns: Option<i64>,
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
    let new_files = select_files(plan, &catalog, &mut report)?;
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
    let ctx = RunCtx {
        plan,
        run,
        first_id,
        catalog: &catalog,
        new_files: &new_files,
    };
    let entries = scan_stage(ctx, refold, progress, &mut report)?;

    // 5. commit (the rescans this run makes owed are noted first, see `run`)
    progress.phase("committing");
    commit(db, &mut catalog, entries, run, end_id)?;
    report.files_indexed = new_files.len();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Step 1 of a run: the inputs' files not indexed yet (by name or by the file a name resolves
/// to), settled, in capture-time order; the others are counted in `report`.
fn select_files(
    plan: &IndexPlan,
    catalog: &Catalog,
    report: &mut IndexReport,
) -> Result<Vec<Candidate>, IndexError> {
    let db = &plan.db;
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
    Ok(new_files)
}

/// What the phases of one run share once the run is announced.
#[derive(Clone, Copy)]
pub(super) struct RunCtx<'a> {
    pub(super) plan: &'a IndexPlan,
    pub(super) run: u64,
    pub(super) first_id: u32,
    pub(super) catalog: &'a Catalog,
    /// This run's files in time order; file `k` gets id `first_id + k`.
    pub(super) new_files: &'a [Candidate],
}

/// Step 5 of a run: the rescans this run makes owed, then the catalog (the commit point), then
/// the leftovers removed (pending, spill, superseded parts, older media states).
fn commit(
    db: &Path,
    catalog: &mut Catalog,
    entries: Vec<CatalogFile>,
    run: u64,
    end_id: u32,
) -> Result<(), IndexError> {
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
    let owed: Vec<u32> = self::predecessors(catalog, &[], &stored)
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
    Ok(())
}

/// Tantivy refuses a writer heap below 15 MB per thread.
pub const MIN_TEXT_MEMORY: usize = 15 << 20;
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
pub(super) fn lower_thread_priority() {
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
pub(super) struct RefoldPlan {
    pub(super) from_ns: i64,
    /// The stored files with packets from `from_ns` on, in time order.
    pub(super) files: Vec<CatalogFile>,
    /// Those of them gone from their path or rewritten since: then there is no refold.
    pub(super) missing: Vec<PathBuf>,
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
