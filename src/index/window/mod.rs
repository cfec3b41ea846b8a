//! `reindex --since --until`: rebuild the rows of the capture files that overlap a time window
//! with the plan's current rules (e.g. a new `--correlate-header`), leaving the rest as it is.
//!
//! Granularity is the capture file: message rows and text documents carry a `file_id`, so the
//! window's files F (catalog files whose `[first_ts, last_ts]` overlaps `[since, until]`) have
//! their message rows deleted (`store::parquet::delete_rows`) and text documents replaced, and are
//! rescanned exactly as `run` scans them (predecessor pre-roll included). The rows deleted are
//! those F's scans made: a message cut by a ring rotation carries the location (file id) of its
//! first segment, in the predecessor, though the next file's scan completed it.
//!
//! `run` uses the same rebuild, SIP only (`rescan_owed`), for stored files whose ring predecessor
//! it indexed only now: their scan had replayed another file's tail.
//!
//! Dialogs: a dialog summary merges but does not un-merge, so every run keeps each file's
//! contribution (`dialogs::save_parts`). A dialog touched by F (it had or has messages in F) is
//! re-merged from all its parts: F's new ones, and those of the other files its time span
//! overlaps. Those neighbours' stored parts are used when they were made with the same
//! correlation headers; otherwise, or when missing (a DB from before parts were kept), the
//! neighbour is rescanned for its parts only (its message rows stay). A neighbour needed only by
//! non-call dialogs (long-lived registrations can overlap the whole archive) uses its stored parts
//! whatever their headers, so a window never turns into a full rescan; such a registration may then
//! lack values of a newly configured header from outside the window. Correlation is recomputed
//! for the touched dialogs together with the stored dialogs that start within an hour of F
//! (their summaries as stored), and only the touched dialogs' rows are rewritten: dialogs outside
//! keep their correlation ids. As in `run`, a touched dialog is looked for among dialogs that
//! started within a day of F, and the flood rule of the scanner flag counts F's requests only.
//!
//! Media (`rebuild_media`): stream state runs across files, so a stream already running when
//! F's span `[lo, hi]` starts cannot be recomputed without its history. Rebuilt are the
//! `rtp_streams` rows of streams starting in `[lo, hi]` and the `rtcp_reports`/`qos_reports` rows
//! read from F's files (they carry their file id). A fresh `MediaPass` is fed the catalog files in
//! `run`'s media order (capture time) from the first file overlapping the span, and on past it until
//! every stream that started in the span has closed (idle for `media::IDLE_NS`) or the catalog
//! ends; only F's reports are written. A stream seen again in the span whose key has a stored
//! row started before `lo` and still running at its first packet here is that row's
//! continuation: the stored row is kept, the partial re-analysis dropped. The pre-roll replaces
//! the history the pass lacks: the SDP of the calls alive at `lo` (their messages with a body,
//! re-read from the captures at their stored locations), the SRs of the last idle period (RTT),
//! the stored RTTs, the capture clock the earlier files reached (so a file `run` analysed apart
//! as out of order is again), and the stored streams' last packets keeping their announcements
//! alive. Not reproduced: an SDP body split over IP fragments or TCP segments (one record is
//! re-read), the eviction tick phase (a gap of 600–660 s may split a stream differently), the
//! extended-timestamp state a new SSRC inherits from a running stream's conversation. The dialogs
//! whose streams were replaced get their media columns folded again from `rtp_streams`, also
//! when none of their messages is in F. The carried `MediaState` is not touched: a stream of the
//! span still open at the catalog's end is continued by the next `index` run from that state
//! (the analysis it was indexed with).
//!
//! Crash safety: the rebuild is a run (`pending.json` names it, no new file ids) and commits at the
//! catalog save. Killed before, the next run removes its parts, which makes the rewritten message
//! and dialog parts live again; `reindex.json` still names the window, and rerunning the same
//! command redoes it. Until then the text documents of F may already be the rescanned ones.
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::catalog::{self, Catalog, CatalogFile};
use super::dialogs::save_parts;
use super::layout::{DbPaths, REINDEX};
use super::run::{reindex, IndexPlan, IndexReport, Progress, DAY_NS};
use super::scan::{scan_file, FileScan, PREROLL_NS};
use super::txn::{lock_db, recover, store_err, Pending};
use super::IndexError;
use crate::sip::dialog::DialogSummary;
use crate::store;
use crate::store::parquet::{self as pq, DayRange, TableWriter, WriterOptions};
use crate::store::record::MessageRecord;
use crate::store::text_index::{TextIndex, TextIndexWriter};

mod dialogs;
mod media;

use dialogs::{neighbours, rewrite_dialogs, stored_dialogs, Dialogs};
pub(super) use media::{media_preroll, stored_streams_around};
use media::{rebuild_media, MediaRebuild};

/// Stored dialogs starting this close to the window's files join the correlation of its dialogs.
const CONTEXT_NS: i64 = 3_600_000_000_000;

/// A capture-time window; `None` ends are open. Both ends are inclusive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
}

impl TimeWindow {
    fn overlaps(&self, f: &CatalogFile) -> bool {
        match (f.first_ts_ns, f.last_ts_ns) {
            (Some(a), Some(b)) => {
                self.since_ns.is_none_or(|s| b >= s) && self.until_ns.is_none_or(|u| a <= u)
            }
            _ => false,
        }
    }
}

/// `reindex.json` while a window rebuild is owed.
#[derive(Serialize, Deserialize)]
struct WindowJob {
    window: TimeWindow,
}

#[derive(Debug, Default)]
pub struct WindowReport {
    pub run: u64,
    /// Set when an interrupted full rebuild was pending: it was completed instead of the window.
    pub full: Option<IndexReport>,
    /// An interrupted rebuild of this same window was pending.
    pub resumed: bool,
    /// Files of the window rebuilt.
    pub files: usize,
    /// Files of the window gone from disk or replaced by other content: their rows are kept.
    pub files_missing: Vec<PathBuf>,
    pub files_failed: Vec<(PathBuf, String)>,
    /// Other files rescanned only for their dialog parts, and files whose stored parts were used.
    pub neighbours_rescanned: usize,
    pub neighbours_loaded: usize,
    pub packets: u64,
    pub bytes: u64,
    pub messages_removed: u64,
    pub messages: u64,
    /// Dialog rows rewritten, and rows deleted (no message left).
    pub dialogs: u64,
    pub dialogs_removed: u64,
    /// Files fed to the media pass (F, files between, and followers until F's streams closed).
    pub media_files: usize,
    /// `rtp_streams` rows starting in F's span: removed, and written by the rebuild.
    pub rtp_streams_removed: u64,
    pub rtp_streams: u64,
    /// Streams re-seen in the span that had started before it: their stored rows are kept.
    pub rtp_streams_continuing: u64,
    pub rtcp_reports_removed: u64,
    pub rtcp_reports: u64,
    pub qos_reports_removed: u64,
    pub qos_reports: u64,
    pub elapsed: std::time::Duration,
}

/// Whether `reindex.json` holds an interrupted full rebuild (a list of paths).
fn pending_full(db: &Path) -> bool {
    std::fs::read(DbPaths(db).reindex())
        .ok()
        .is_some_and(|b| serde_json::from_slice::<Vec<PathBuf>>(&b).is_ok())
}

/// Scan `files` in parallel batches, handing each scan to `each` in file order.
fn scan_files(
    plan: &IndexPlan,
    pool: &rayon::ThreadPool,
    catalog: &Catalog,
    files: &[CatalogFile],
    mut each: impl FnMut(&CatalogFile, FileScan) -> Result<(), IndexError>,
) -> Result<(), IndexError> {
    let targets: Vec<super::run::RingFile> = files
        .iter()
        .map(|f| super::run::RingFile {
            path: PathBuf::from(&f.path),
            id: f.id,
            first_ns: f.first_ts_ns,
        })
        .collect();
    let preds = super::run::predecessors(catalog, &[], &targets);
    let batch = plan.batch_files.max(1);
    for (chunk, preds) in files.chunks(batch).zip(preds.chunks(batch)) {
        let scans: Vec<FileScan> = pool.install(|| {
            chunk
                .par_iter()
                .zip(preds)
                .map(|(f, p)| scan_file(Path::new(&f.path), f.id, p.as_ref(), &plan.scan))
                .collect()
        });
        for (f, scan) in chunk.iter().zip(scans) {
            each(f, scan)?;
        }
    }
    Ok(())
}

fn merge_into(map: &mut HashMap<String, DialogSummary>, d: DialogSummary) {
    match map.get_mut(&d.call_id) {
        Some(x) => x.merge(d),
        None => {
            map.insert(d.call_id.clone(), d);
        }
    }
}

/// Rebuild the window's files and the dialogs they touch; see the module doc.
pub fn reindex_window(
    plan: &IndexPlan,
    window: TimeWindow,
    progress: &mut dyn Progress,
) -> Result<WindowReport, IndexError> {
    rebuild(plan, Rebuild::Window(window), progress)
}

/// What a rebuild takes: the files of a time window (`reindex --since --until`), or given files
/// for their SIP only (`run`'s owed rescans, see `rescan_owed`).
enum Rebuild<'a> {
    Window(TimeWindow),
    Sip(&'a HashSet<u32>),
}

impl Rebuild<'_> {
    fn takes(&self, f: &CatalogFile) -> bool {
        match self {
            Rebuild::Window(w) => w.overlaps(f),
            Rebuild::Sip(ids) => ids.contains(&f.id),
        }
    }
}

/// Where `run` keeps the stored files it owes a SIP rescan (a JSON list of file ids): files whose
/// ring predecessor, in time order, was indexed after them (a late file), so that their scan
/// replayed another file's tail, or none. Written before the run's commit, so a run killed after
/// it still rescans them at the start of the next one.
pub(super) const RESCAN: &str = "rescan.json";

/// The owed SIP rescans (see `RESCAN`): the files' message rows, text documents and dialog
/// parts are made again with their predecessor's tail, and the dialogs they touch re-merged, as
/// a window rebuild does; their media was already analysed again in time order by the run that
/// found the late file (`run`'s refold), so it is left as it is. Returns the files rescanned.
pub(super) fn rescan_owed(
    plan: &IndexPlan,
    progress: &mut dyn Progress,
) -> Result<usize, IndexError> {
    let path = plan.db.join(RESCAN);
    let Some(ids) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<HashSet<u32>>(&b).ok())
    else {
        return Ok(0);
    };
    let report = rebuild(plan, Rebuild::Sip(&ids), progress)?;
    let _ = std::fs::remove_file(&path);
    Ok(report.files)
}

fn rebuild(
    plan: &IndexPlan,
    what: Rebuild<'_>,
    progress: &mut dyn Progress,
) -> Result<WindowReport, IndexError> {
    let started = Instant::now();
    let db = &plan.db;
    if matches!(what, Rebuild::Window(_)) && pending_full(db) {
        let full = reindex(plan, progress)?;
        return Ok(WindowReport {
            full: Some(full),
            elapsed: started.elapsed(),
            ..Default::default()
        });
    }
    let _lock = lock_db(db)?;
    let mut catalog = Catalog::load(db)?;
    recover(db, &catalog)?;
    let mut report = WindowReport::default();
    let job_path = DbPaths(db).reindex();
    let window = match what {
        Rebuild::Window(w) => Some(w),
        Rebuild::Sip(_) => None,
    };
    report.resumed = window.is_some()
        && std::fs::read(&job_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<WindowJob>(&b).ok())
            .is_some_and(|j| Some(j.window) == window);

    // F: the window's files whose content is still at their path
    let files = window_files(&catalog, &what, &mut report);
    if files.is_empty() {
        if window.is_some() {
            let _ = std::fs::remove_file(&job_path);
        }
        report.elapsed = started.elapsed();
        return Ok(report);
    }
    let run = announce(db, &catalog, window, &files, progress)?;
    report.run = run;
    let in_f: HashSet<u32> = files.iter().map(|f| f.id).collect();
    let lo = files
        .iter()
        .filter_map(|f| f.first_ts_ns)
        .min()
        .unwrap_or(0);
    let hi = files.iter().filter_map(|f| f.last_ts_ns).max().unwrap_or(0);
    let job = Job {
        plan,
        run,
        catalog: &catalog,
        in_f: &in_f,
        lo,
        hi,
    };

    // 1. the message rows F's scans made go. A message cut by a ring rotation is completed by
    // the scan of the file its last segment is in, but carries the location of its first (the
    // predecessor's id, its time after that file's last packet). So a row of F's id after its
    // file's last packet is taken for its successor's, and stays unless the successor is in F
    // too; the rows of F's predecessors all stay. A rescanned row that is still stored (the
    // same location, time and Call-ID) is not written again: so a row kept by that rule, or a
    // predecessor's row F's scan completes again, is there once.
    progress.phase("removing the window's message rows");
    let (text_writer, stored, mut touched) = remove_rows(job, &mut report)?;

    // 2. rescan F: messages, text documents, dialog parts
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.threads)
        .build()
        .map_err(|e| IndexError::io(db, std::io::Error::other(e)))?;
    let rescanned = rescan(
        job,
        &pool,
        &files,
        text_writer,
        &stored,
        &mut touched,
        progress,
        &mut report,
    )?;
    report.files = files.len();
    let Rescanned {
        mut window_parts,
        rate,
        updated,
    } = rescanned;

    // 2b. media: streams starting in F's span, F's reports
    let media = match window {
        Some(_) => rebuild_media(plan, run, &catalog, &in_f, (lo, hi), progress)?,
        None => MediaRebuild::default(),
    };
    report.media_files = media.files_fed;
    report.rtp_streams_removed = media.streams_removed;
    report.rtp_streams = media.streams;
    report.rtp_streams_continuing = media.streams_continuing;
    report.rtcp_reports_removed = media.rtcp_removed;
    report.rtcp_reports = media.rtcp;
    report.qos_reports_removed = media.qos_removed;
    report.qos_reports = media.qos;

    // 3. the touched dialogs' rows as stored, and the context for correlation
    progress.phase("re-merging dialogs");
    let (old, context, media_only) = stored_dialogs(job, &touched, &media)?;

    // 4. the other files holding parts of touched dialogs
    neighbours(
        job,
        &pool,
        &touched,
        &old,
        &mut window_parts,
        progress,
        &mut report,
    )?;

    // 5. rewrite the touched dialogs' rows
    let dialogs = Dialogs {
        touched: &touched,
        window_parts,
        old,
        context,
        media_only,
    };
    rewrite_dialogs(job, dialogs, &rate, &media, &mut report)?;

    // 6. the media state carries over unchanged under this run's number (the next run loads it)
    let media_from = DbPaths(db).media_state(catalog.last_run);
    if media_from.exists() {
        let to = DbPaths(db).media_state(run);
        let bytes = std::fs::read(&media_from).map_err(|e| IndexError::io(&media_from, e))?;
        catalog::write_atomic(&to.with_extension("zst.tmp"), &to, &bytes)?;
    }

    // 7. commit
    progress.phase("committing");
    commit(db, &mut catalog, updated, run, window.is_some())?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// A rebuild's run announced: the window job's marker (a user's window; an owed rescan has its own,
/// `RESCAN`) and `pending.json`, naming no new file ids. Returns the run.
fn announce(
    db: &Path,
    catalog: &Catalog,
    window: Option<TimeWindow>,
    files: &[CatalogFile],
    progress: &mut dyn Progress,
) -> Result<u64, IndexError> {
    // an owed rescan has its own marker (`RESCAN`), which a user's window job must not replace
    if let Some(window) = window {
        catalog::write_atomic(
            &DbPaths(db).tmp(REINDEX),
            &DbPaths(db).reindex(),
            &serde_json::to_vec(&WindowJob { window }).expect("job serialises"),
        )?;
    }
    let run = catalog.last_run + 1;
    Pending {
        run,
        first_file_id: catalog.next_file_id,
        end_file_id: catalog.next_file_id,
    }
    .announce(db)?;
    progress.start(files.len(), files.iter().map(|f| f.size).sum());
    Ok(run)
}

/// Step 7 of a rebuild: F's new catalog entries and the catalog (the commit point), then the
/// leftovers removed (pending, the window job, superseded parts and media states).
fn commit(
    db: &Path,
    catalog: &mut Catalog,
    mut updated: HashMap<u32, CatalogFile>,
    run: u64,
    window: bool,
) -> Result<(), IndexError> {
    for f in catalog.files.iter_mut() {
        if let Some(u) = updated.remove(&f.id) {
            *f = u;
        }
    }
    catalog.last_run = run;
    catalog.save(db)?;
    let _ = std::fs::remove_file(DbPaths(db).pending());
    if window {
        let _ = std::fs::remove_file(DbPaths(db).reindex());
    }
    super::media::prune_states(db, run, false);
    super::dialogs::prune_parts(db, run, false);
    pq::recover(db).map_err(|e| store_err(db, e))?;
    Ok(())
}

/// What the steps of a rebuild share once its run is announced.
#[derive(Clone, Copy)]
struct Job<'a> {
    plan: &'a IndexPlan,
    run: u64,
    catalog: &'a Catalog,
    /// The ids of F, the files rebuilt.
    in_f: &'a HashSet<u32>,
    /// F's span: its first and last packet.
    lo: i64,
    hi: i64,
}

/// F: the files a rebuild takes whose content is still at their path (the others are reported
/// missing).
fn window_files(
    catalog: &Catalog,
    what: &Rebuild<'_>,
    report: &mut WindowReport,
) -> Vec<CatalogFile> {
    let mut files: Vec<CatalogFile> = Vec::new();
    for f in catalog
        .files
        .iter()
        .filter(|f| f.error.is_none() && what.takes(f))
    {
        let same = catalog::fingerprint(Path::new(&f.path), f.size)
            .is_ok_and(|fp| fp == f.fingerprint)
            && std::fs::metadata(&f.path).is_ok_and(|m| m.len() == f.size);
        if same {
            files.push(f.clone());
        } else {
            report.files_missing.push(PathBuf::from(&f.path));
        }
    }
    files
}

/// Step 1 of a rebuild: the message rows F's scans made go (see the step's comment in
/// `rebuild`), and the text documents of F's ids. Returns the text writer (with the kept rows'
/// documents added again), the stored rows a rescan must not write again, and the Call-IDs of
/// the rows removed.
#[allow(clippy::type_complexity)]
fn remove_rows(
    job: Job<'_>,
    report: &mut WindowReport,
) -> Result<
    (
        TextIndexWriter,
        HashSet<(u32, u64, i64, String)>,
        BTreeSet<String>,
    ),
    IndexError,
> {
    let Job {
        plan,
        run,
        catalog,
        in_f,
        lo,
        hi,
    } = job;
    let db = &plan.db;
    let last_of: HashMap<u32, i64> = catalog
        .files
        .iter()
        .filter_map(|f| Some((f.id, f.last_ts_ns?)))
        .collect();
    let ring: Vec<super::run::RingFile> = catalog
        .files
        .iter()
        .filter(|f| f.error.is_none())
        .map(|f| super::run::RingFile {
            path: PathBuf::from(&f.path),
            id: f.id,
            first_ns: f.first_ts_ns,
        })
        .collect();
    let preds = super::run::predecessors(catalog, &[], &ring);
    let successor_in_f: HashSet<u32> = preds
        .iter()
        .zip(&ring)
        .filter(|(_, f)| in_f.contains(&f.id))
        .filter_map(|(p, _)| p.as_ref().map(|p| p.file_id))
        .collect();
    let pred_of_f: HashSet<u32> = preds
        .iter()
        .zip(&ring)
        .filter(|(_, f)| in_f.contains(&f.id))
        .filter_map(|(p, _)| p.as_ref().map(|p| p.file_id))
        .filter(|id| !in_f.contains(id))
        .collect();
    let made_by_f = |m: &MessageRecord| {
        let after = last_of.get(&m.file_id).is_some_and(|&l| m.ts_ns > l);
        in_f.contains(&m.file_id) && (!after || successor_in_f.contains(&m.file_id))
    };
    // Text documents go by file id only: those of F's ids are removed, and the rows of those
    // ids that stay are added again.
    let text = TextIndex::open_or_create(&store::text_dir(db)).map_err(|e| store_err(db, e))?;
    let mut text_writer = text.writer(1, 200_000_000).map_err(|e| store_err(db, e))?;
    for id in in_f {
        text_writer.delete_file(*id);
    }
    let mut kept_docs = Ok(());
    let mut stored: HashSet<(u32, u64, i64, String)> = HashSet::new();
    pq::for_each_row::<MessageRecord>(
        db,
        DayRange::from_ns(
            Some(lo.saturating_sub(DAY_NS)),
            Some(hi.saturating_add(DAY_NS)),
        ),
        |m| {
            let ours = in_f.contains(&m.file_id);
            if (ours || pred_of_f.contains(&m.file_id)) && !made_by_f(&m) {
                stored.insert((m.file_id, m.offset, m.ts_ns, m.call_id.clone()));
                if ours && kept_docs.is_ok() {
                    kept_docs = text_writer.add(&m);
                }
            }
            Ok(())
        },
    )
    .map_err(|e| store_err(db, e))?;
    kept_docs.map_err(|e| store_err(db, e))?;
    let mut touched: BTreeSet<String> = BTreeSet::new();
    report.messages_removed = pq::delete_rows::<MessageRecord>(
        db,
        run,
        DayRange::from_ns(
            Some(lo.saturating_sub(PREROLL_NS)),
            Some(hi.saturating_add(1)),
        ),
        made_by_f,
        |m| {
            touched.insert(m.call_id);
        },
    )
    .map_err(|e| store_err(db, e))?;
    Ok((text_writer, stored, touched))
}

/// What the rescan of F (step 2) leaves for the dialogs and the commit.
struct Rescanned {
    /// The rescanned files' dialog parts, merged by Call-ID.
    window_parts: HashMap<String, DialogSummary>,
    rate: HashMap<(std::net::IpAddr, i64), u32>,
    /// F's catalog entries with their new scan figures.
    updated: HashMap<u32, CatalogFile>,
}

/// Step 2 of a rebuild: rescan F for its messages, text documents and dialog parts.
#[allow(clippy::too_many_arguments)]
fn rescan(
    job: Job<'_>,
    pool: &rayon::ThreadPool,
    files: &[CatalogFile],
    mut text_writer: TextIndexWriter,
    stored: &HashSet<(u32, u64, i64, String)>,
    touched: &mut BTreeSet<String>,
    progress: &mut dyn Progress,
    report: &mut WindowReport,
) -> Result<Rescanned, IndexError> {
    let Job {
        plan, run, catalog, ..
    } = job;
    let db = &plan.db;
    let mut messages = TableWriter::<MessageRecord>::create(db, run, WriterOptions::default())
        .map_err(|e| store_err(db, e))?;
    let headers = &plan.scan.correlate.headers;
    let mut window_parts: HashMap<String, DialogSummary> = HashMap::new();
    let mut rate: HashMap<(std::net::IpAddr, i64), u32> = HashMap::new();
    let mut updated: HashMap<u32, CatalogFile> = HashMap::new();
    scan_files(plan, pool, catalog, files, |f, scan| {
        progress.file_done(Path::new(&f.path), f.size, scan.stats.packets);
        report.packets += scan.stats.packets;
        report.bytes += f.size;
        report.messages += scan.stats.sip_messages;
        if let Some(e) = &scan.error {
            report
                .files_failed
                .push((PathBuf::from(&f.path), e.clone()));
        }
        save_parts(db, f.id, run, headers, &scan.dialogs)?;
        for m in scan.messages {
            if stored.contains(&(m.file_id, m.offset, m.ts_ns, m.call_id.clone())) {
                continue;
            }
            text_writer.add(&m).map_err(|e| store_err(db, e))?;
            messages.push(m).map_err(|e| store_err(db, e))?;
        }
        for (_, d) in scan.dialogs {
            touched.insert(d.call_id.clone());
            merge_into(&mut window_parts, d);
        }
        for (k, n) in scan.request_rate {
            *rate.entry(k).or_default() += n;
        }
        let s = &scan.stats;
        updated.insert(
            f.id,
            CatalogFile {
                run,
                packets: s.packets,
                sip_messages: s.sip_messages,
                first_ts_ns: s.first_ts_ns,
                last_ts_ns: s.last_ts_ns,
                truncated_at: s.truncated_at,
                malformed_sip: s.malformed_sip,
                hep_mirrors: s.hep_mirrors,
                span_duplicates: s.span_duplicates,
                ..f.clone()
            },
        );
        Ok(())
    })?;
    progress.phase("writing tables");
    messages.finish().map_err(|e| store_err(db, e))?;
    text_writer.commit().map_err(|e| store_err(db, e))?;
    text_writer.finish().map_err(|e| store_err(db, e))?;
    Ok(Rescanned {
        window_parts,
        rate,
        updated,
    })
}

#[cfg(test)]
mod tests;
