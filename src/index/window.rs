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
use super::dialogs::{dialog_record, list_parts, load_parts, save_parts, summary_of};
use super::layout::{DbPaths, REINDEX};
use super::media::{self, CallMedia, MediaPass, MediaState};
use super::run::{reindex, time_order, IndexPlan, IndexReport, Progress, DAY_NS};
use super::scan::{scan_file, FileScan, PREROLL_NS};
use super::txn::{lock_db, recover, store_err, Pending};
use super::IndexError;
use crate::decode::Decoder;
use crate::sip::correlate::correlate_dialogs;
use crate::sip::dialog::{DialogKind, DialogSummary};
use crate::sip::scanner::{flooders, SourceOutcomes};
use crate::source::open_capture;
use crate::store;
use crate::store::parquet::{self as pq, DayRange, DialogFilter, TableWriter, WriterOptions};
use crate::store::record::{
    DialogRecord, MessageRecord, QosReportRecord, RtcpReportRecord, RtpStreamRecord,
};
use crate::store::text_index::TextIndex;

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
    if files.is_empty() {
        if window.is_some() {
            let _ = std::fs::remove_file(&job_path);
        }
        report.elapsed = started.elapsed();
        return Ok(report);
    }
    // an owed rescan has its own marker (`RESCAN`), which a user's window job must not replace
    if let Some(window) = window {
        catalog::write_atomic(
            &DbPaths(db).tmp(REINDEX),
            &job_path,
            &serde_json::to_vec(&WindowJob { window }).expect("job serialises"),
        )?;
    }
    let run = catalog.last_run + 1;
    report.run = run;
    Pending {
        run,
        first_file_id: catalog.next_file_id,
        end_file_id: catalog.next_file_id,
    }
    .announce(db)?;
    progress.start(files.len(), files.iter().map(|f| f.size).sum());
    let in_f: HashSet<u32> = files.iter().map(|f| f.id).collect();
    let lo = files
        .iter()
        .filter_map(|f| f.first_ts_ns)
        .min()
        .unwrap_or(0);
    let hi = files.iter().filter_map(|f| f.last_ts_ns).max().unwrap_or(0);

    // 1. the message rows F's scans made go. A message cut by a ring rotation is completed by
    // the scan of the file its last segment is in, but carries the location of its first (the
    // predecessor's id, its time after that file's last packet). So a row of F's id after its
    // file's last packet is taken for its successor's, and stays unless the successor is in F
    // too; the rows of F's predecessors all stay. A rescanned row that is still stored (the
    // same location, time and Call-ID) is not written again: so a row kept by that rule, or a
    // predecessor's row F's scan completes again, is there once.
    progress.phase("removing the window's message rows");
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
    let preds = super::run::predecessors(&catalog, &[], &ring);
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
    for id in &in_f {
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

    // 2. rescan F: messages, text documents, dialog parts
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.threads)
        .build()
        .map_err(|e| IndexError::io(db, std::io::Error::other(e)))?;
    let mut messages = TableWriter::<MessageRecord>::create(db, run, WriterOptions::default())
        .map_err(|e| store_err(db, e))?;
    let headers = &plan.scan.correlate.headers;
    let mut window_parts: HashMap<String, DialogSummary> = HashMap::new();
    let mut rate: HashMap<(std::net::IpAddr, i64), u32> = HashMap::new();
    let mut updated: HashMap<u32, CatalogFile> = HashMap::new();
    scan_files(plan, &pool, &catalog, &files, |f, scan| {
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
    report.files = files.len();
    progress.phase("writing tables");
    messages.finish().map_err(|e| store_err(db, e))?;
    text_writer.commit().map_err(|e| store_err(db, e))?;
    text_writer.finish().map_err(|e| store_err(db, e))?;

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
    let stored = pq::read_dialogs(
        db,
        &DialogFilter {
            since_ns: Some(lo.saturating_sub(DAY_NS)),
            until_ns: Some(hi.saturating_add(DAY_NS)),
            ..Default::default()
        },
    )
    .map_err(|e| store_err(db, e))?;
    let mut old: HashMap<String, DialogRecord> = HashMap::new();
    let mut context: Vec<DialogSummary> = Vec::new();
    let mut media_only: Vec<DialogRecord> = Vec::new();
    for rec in stored {
        if touched.contains(&rec.call_id) {
            old.insert(rec.call_id.clone(), rec);
            continue;
        }
        if media.calls.contains_key(&rec.call_id) {
            media_only.push(rec.clone());
        }
        if rec.start_ns >= lo.saturating_sub(CONTEXT_NS)
            && rec.start_ns <= hi.saturating_add(CONTEXT_NS)
        {
            context.extend(summary_of(&rec));
        }
    }

    // 4. the other files holding parts of touched dialogs
    let mut for_calls: HashSet<u32> = HashSet::new();
    let mut for_others: HashSet<u32> = HashSet::new();
    for t in &touched {
        let mut span = old.get(t).map(|r| (r.start_ns, r.end_ns));
        let part = window_parts.get(t);
        if let Some(d) = part {
            if let (Some(a), Some(b)) = (d.start_ns, d.end_ns) {
                span = Some(span.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
            }
        }
        let Some((a, b)) = span else { continue };
        let is_call = old
            .get(t)
            .map(|r| r.kind == crate::store::record::DialogKind::Call)
            .or(part.map(|d| d.kind() == DialogKind::Call))
            .unwrap_or(false);
        let set = if is_call {
            &mut for_calls
        } else {
            &mut for_others
        };
        for f in &catalog.files {
            let overlaps =
                matches!((f.first_ts_ns, f.last_ts_ns), (Some(x), Some(y)) if x <= b && y >= a);
            if overlaps && f.error.is_none() && !in_f.contains(&f.id) {
                set.insert(f.id);
            }
        }
    }
    let newest = list_parts(db, catalog.last_run);
    let mut rescan: Vec<CatalogFile> = Vec::new();
    let mut neighbour_parts: Vec<DialogSummary> = Vec::new();
    let mut wanted: Vec<u32> = for_calls.union(&for_others).copied().collect();
    wanted.sort();
    for id in wanted {
        let Some(f) = catalog.by_id(id) else { continue };
        let loaded = newest
            .get(&id)
            .and_then(|r| load_parts(db, id, *r))
            .filter(|p| &p.correlate_headers == headers || !for_calls.contains(&id));
        match loaded {
            Some(p) => {
                report.neighbours_loaded += 1;
                neighbour_parts.extend(
                    p.dialogs
                        .into_iter()
                        .filter(|d| touched.contains(&d.call_id)),
                );
            }
            None if Path::new(&f.path).exists() => rescan.push(f.clone()),
            None => report.files_missing.push(PathBuf::from(&f.path)),
        }
    }
    if !rescan.is_empty() {
        progress.phase("rescanning neighbours for dialog parts");
    }
    scan_files(plan, &pool, &catalog, &rescan, |f, scan| {
        report.neighbours_rescanned += 1;
        save_parts(db, f.id, run, headers, &scan.dialogs)?;
        neighbour_parts.extend(
            scan.dialogs
                .into_values()
                .filter(|d| touched.contains(&d.call_id)),
        );
        Ok(())
    })?;
    for d in neighbour_parts {
        merge_into(&mut window_parts, d);
    }

    // 5. rewrite the touched dialogs' rows
    let mut summaries: Vec<DialogSummary> = Vec::new();
    let mut removed: HashSet<String> = HashSet::new();
    for t in &touched {
        match window_parts.remove(t) {
            Some(d) => summaries.push(d),
            None => {
                removed.insert(t.clone());
            }
        }
    }
    let n_touched = summaries.len();
    summaries.extend(context);
    let mut outcomes = SourceOutcomes::default();
    summaries.iter().for_each(|d| outcomes.add(d));
    let flooders = flooders(&outcomes, &rate, plan.scan.flood_per_minute);
    let correlation = correlate_dialogs(&summaries, &plan.scan.correlate);
    // media columns: recomputed for calls whose streams the rebuild replaced, else as stored
    let with_media = |mut r: DialogRecord| {
        let m = media.calls.get(&r.call_id).copied().or_else(|| {
            old.get(&r.call_id).map(|o| CallMedia {
                worst_mos: o.worst_mos,
                max_loss_pct: o.max_loss_pct,
                max_jitter_ms: o.max_jitter_ms,
            })
        });
        if let Some(m) = m {
            r.worst_mos = m.worst_mos;
            r.max_loss_pct = m.max_loss_pct;
            r.max_jitter_ms = m.max_jitter_ms;
        }
        r
    };
    let previous_media: Vec<_> = media_only.iter().map(|r| pq::day_of(r.start_ns)).collect();
    let records: Vec<DialogRecord> = summaries[..n_touched]
        .iter()
        .zip(correlation)
        .map(|(d, corr)| with_media(dialog_record(d, corr, &flooders)))
        .chain(media_only.into_iter().map(with_media))
        .collect();
    report.dialogs = records.len() as u64;
    report.dialogs_removed = removed.iter().filter(|t| old.contains_key(*t)).count() as u64;
    let previous: Vec<_> = old
        .values()
        .map(|r| pq::day_of(r.start_ns))
        .chain(previous_media)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    pq::upsert_rows_removing(
        db,
        run,
        records,
        &removed,
        &previous,
        false,
        |d| &d.call_id,
        |a, b| (a.start_ns, &a.call_id).cmp(&(b.start_ns, &b.call_id)),
    )
    .map_err(|e| store_err(db, e))?;

    // 6. the media state carries over unchanged under this run's number (the next run loads it)
    let media_from = DbPaths(db).media_state(catalog.last_run);
    if media_from.exists() {
        let to = DbPaths(db).media_state(run);
        let bytes = std::fs::read(&media_from).map_err(|e| IndexError::io(&media_from, e))?;
        catalog::write_atomic(&to.with_extension("zst.tmp"), &to, &bytes)?;
    }

    // 7. commit
    progress.phase("committing");
    for f in catalog.files.iter_mut() {
        if let Some(u) = updated.remove(&f.id) {
            *f = u;
        }
    }
    catalog.last_run = run;
    catalog.save(db)?;
    let _ = std::fs::remove_file(DbPaths(db).pending());
    if window.is_some() {
        let _ = std::fs::remove_file(&job_path);
    }
    super::media::prune_states(db, run, false);
    super::dialogs::prune_parts(db, run, false);
    pq::recover(db).map_err(|e| store_err(db, e))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// What the media rebuild did, and the calls whose dialog media columns it changed.
#[derive(Default)]
struct MediaRebuild {
    files_fed: usize,
    streams_removed: u64,
    streams: u64,
    streams_continuing: u64,
    rtcp_removed: u64,
    rtcp: u64,
    qos_removed: u64,
    qos: u64,
    calls: HashMap<String, CallMedia>,
}

/// A stream's identity apart from its first packet: the 5-tuple and SSRC, as rows spell them.
type RowKey = (String, u16, String, u16, u32);

fn row_key(r: &RtpStreamRecord) -> RowKey {
    (
        r.src_ip.clone(),
        r.src_port,
        r.dst_ip.clone(),
        r.dst_port,
        r.ssrc,
    )
}

/// Rebuild the media rows of the window: streams starting in `[lo, hi]` (the span of F), and the
/// RTCP and quality reports read from F's files. See the module doc for the pre-roll.
fn rebuild_media(
    plan: &IndexPlan,
    run: u64,
    catalog: &Catalog,
    in_f: &HashSet<u32>,
    (lo, hi): (i64, i64),
    progress: &mut dyn Progress,
) -> Result<MediaRebuild, IndexError> {
    let db = &plan.db;
    let mut out = MediaRebuild::default();
    if !plan.media.analyse {
        // `--no-media`: the stored media rows stay as they are
        return Ok(out);
    }

    // stored streams: those starting in the span are replaced; those running into it continue
    let (replaced, earlier) = stored_streams_around(db, lo, Some(hi))?;
    let mut running: HashMap<RowKey, Vec<(i64, i64)>> = HashMap::new();
    for r in &earlier {
        running
            .entry(row_key(r))
            .or_default()
            .push((r.start_ns, r.end_ns));
    }

    // F's reports go before the pass's writers pick their part numbers
    progress.phase("removing the window's media rows");
    let days = DayRange::from_ns(
        Some(lo.saturating_sub(PREROLL_NS)),
        Some(hi.saturating_add(1)),
    );
    out.rtcp_removed =
        pq::delete_rows::<RtcpReportRecord>(db, run, days, |r| in_f.contains(&r.file_id), |_| {})
            .map_err(|e| store_err(db, e))?;
    out.qos_removed =
        pq::delete_rows::<QosReportRecord>(db, run, days, |r| in_f.contains(&r.file_id), |_| {})
            .map_err(|e| store_err(db, e))?;

    progress.phase("media analysis");
    let mut pass = MediaPass::new(db, run, &plan.media, MediaState::default())?;
    pass.keep_reports_of(in_f.clone());
    media_preroll(plan, catalog, &mut pass, lo, &earlier, in_f)?;

    // the media order of `run`: catalog files in capture-time order, from the first one the span
    // overlaps, on until the streams starting in the span have closed
    let continuing = |key: RowKey, first_ns: i64| {
        running
            .get(&key)
            .is_some_and(|v| v.iter().any(|&(a, b)| a < lo && b >= first_ns))
    };
    let kept =
        |first_ns: i64, key: RowKey| first_ns >= lo && first_ns <= hi && !continuing(key, first_ns);
    let mut seq: Vec<&CatalogFile> = catalog.files.iter().filter(|f| f.error.is_none()).collect();
    seq.sort_by(|a, b| time_order(a.time_key(), b.time_key()));
    let overlaps = |f: &CatalogFile| matches!((f.first_ts_ns, f.last_ts_ns), (Some(a), Some(b)) if a <= hi && b >= lo);
    let first = seq.iter().position(|f| overlaps(f)).unwrap_or(seq.len());
    let last = seq.iter().rposition(|f| overlaps(f)).unwrap_or(0);
    if let Some(c) = seq[..first].iter().filter_map(|f| f.last_ts_ns).max() {
        pass.preroll_clock(c);
    }
    for (i, f) in seq.iter().enumerate().skip(first) {
        if i > last {
            let open = pass.open_streams().iter().any(|s| {
                let k = &s.key;
                kept(
                    s.first_ns,
                    (
                        k.src.to_string(),
                        k.src_port,
                        k.dst.to_string(),
                        k.dst_port,
                        k.ssrc,
                    ),
                )
            });
            if !open {
                break;
            }
        }
        pass.file(Path::new(&f.path), f.id)?;
        out.files_fed += 1;
    }
    let (rows, outcome) = pass.finish_rows()?;
    out.rtcp = outcome.rtcp_rows;
    out.qos = outcome.qos_rows;
    let mut streams: Vec<RtpStreamRecord> = Vec::new();
    for r in rows {
        if kept(r.start_ns, row_key(&r)) {
            streams.push(r);
        } else if r.start_ns >= lo && r.start_ns <= hi {
            out.streams_continuing += 1;
        }
    }

    // replace the span's stream rows, then summarise their calls again
    out.streams_removed = replaced.len() as u64;
    out.streams = streams.len() as u64;
    let mut calls: HashSet<String> = replaced.iter().filter_map(|r| r.call_id.clone()).collect();
    calls.extend(streams.iter().filter_map(|r| r.call_id.clone()));
    let end = streams.iter().map(|r| r.end_ns).max().unwrap_or(hi).max(hi);
    let removed: HashSet<String> = replaced.iter().map(|r| r.stream_id.clone()).collect();
    let previous: Vec<_> = replaced
        .iter()
        .map(|r| pq::day_of(r.start_ns))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    pq::upsert_rows_removing(
        db,
        run,
        streams,
        &removed,
        &previous,
        false,
        |r| &r.stream_id,
        |a, b| (a.start_ns, &a.stream_id).cmp(&(b.start_ns, &b.stream_id)),
    )
    .map_err(|e| store_err(db, e))?;
    if !calls.is_empty() {
        out.calls = media::call_media(db, &calls, (lo, end))?;
    }
    Ok(out)
}

/// The pre-roll of a media pass that starts at `lo` on a DB holding what came before: what the
/// pass would carry there had it analysed everything before `lo` — the SDP of the calls alive at
/// `lo` (their messages with a body, re-read from the captures at their stored locations), the
/// SRs of the last idle period (RTT), the stored RTTs, and the `earlier` stored streams' last
/// packets keeping their announcements alive. Files in `skip` are the ones being re-analysed.
pub(super) fn media_preroll(
    plan: &IndexPlan,
    catalog: &Catalog,
    pass: &mut MediaPass<'_>,
    lo: i64,
    earlier: &[RtpStreamRecord],
    skip: &HashSet<u32>,
) -> Result<(), IndexError> {
    let db = &plan.db;
    let in_f = skip;
    let reach = media::IDLE_NS + media::EVICT_EVERY_NS;
    // pre-roll sources: SDP of the calls alive at `lo`, SRs and RTTs of the last idle period
    let mut calls_alive: HashSet<String> =
        earlier.iter().filter_map(|r| r.call_id.clone()).collect();
    let mut sdp_from = lo;
    for d in pq::read_dialogs(
        db,
        &DialogFilter {
            since_ns: Some(lo.saturating_sub(DAY_NS)),
            until_ns: Some(lo),
            ..Default::default()
        },
    )
    .map_err(|e| store_err(db, e))?
    {
        if d.end_ns >= lo.saturating_sub(reach) {
            sdp_from = sdp_from.min(d.start_ns);
            calls_alive.insert(d.call_id);
        }
    }
    for r in earlier {
        sdp_from = sdp_from.min(r.start_ns.saturating_sub(DAY_NS));
    }
    let mut wanted: HashMap<u32, HashSet<u64>> = HashMap::new();
    if !calls_alive.is_empty() {
        pq::for_each_row::<MessageRecord>(db, DayRange::from_ns(Some(sdp_from), Some(lo)), |m| {
            let sdp = m.content_type.as_deref().is_some_and(|c| {
                let c = c.to_ascii_lowercase();
                c.contains("sdp") || c.starts_with("multipart/")
            });
            if sdp && m.ts_ns < lo && !in_f.contains(&m.file_id) && calls_alive.contains(&m.call_id)
            {
                wanted.entry(m.file_id).or_default().insert(m.offset);
            }
            Ok(())
        })
        .map_err(|e| store_err(db, e))?;
    }
    let mut rtts: Vec<(i64, u32, f64)> = Vec::new();
    pq::for_each_row::<RtcpReportRecord>(
        db,
        DayRange::from_ns(Some(lo.saturating_sub(reach)), Some(lo)),
        |r| {
            if r.ts_ns >= lo.saturating_sub(reach) && r.ts_ns < lo && !in_f.contains(&r.file_id) {
                if r.packet_type == "SR" {
                    wanted.entry(r.file_id).or_default().insert(r.offset);
                }
                if let (Some(ssrc), Some(rtt)) = (r.source_ssrc, r.rtt_ms) {
                    rtts.push((r.ts_ns, ssrc, rtt));
                }
            }
            Ok(())
        },
    )
    .map_err(|e| store_err(db, e))?;

    let mut pre: Vec<(u32, HashSet<u64>)> = wanted.into_iter().collect();
    pre.sort_by_key(|p| p.0);
    for (id, offsets) in pre {
        let Some(f) = catalog.by_id(id) else { continue };
        let Ok(mut reader) = open_capture(Path::new(&f.path), id) else {
            continue;
        };
        let mut decoder = Decoder::new(plan.media.decode.clone());
        while let Ok(Some(p)) = reader.next_packet() {
            if offsets.contains(&p.location.offset) {
                decoder.decode(&p, |dg| pass.preroll(dg));
            }
        }
    }
    rtts.sort_by_key(|r| r.0);
    for (_, ssrc, rtt) in rtts {
        pass.preroll_rtt(ssrc, rtt);
    }
    for r in earlier {
        if let (Ok(s), Ok(d)) = (r.src_ip.parse(), r.dst_ip.parse()) {
            pass.preroll_touch((s, r.src_port), (d, r.dst_port), r.end_ns.min(lo - 1));
        }
    }

    Ok(())
}

/// Stored streams around `lo`: those starting at or after it (up to `hi`), and those started
/// before it that were still running within `media::IDLE_NS + EVICT_EVERY_NS` of it (a pass
/// starting at `lo` sees their continuation; see the module doc).
pub(super) fn stored_streams_around(
    db: &Path,
    lo: i64,
    hi: Option<i64>,
) -> Result<(Vec<RtpStreamRecord>, Vec<RtpStreamRecord>), IndexError> {
    let reach = media::IDLE_NS + media::EVICT_EVERY_NS;
    let mut from: Vec<RtpStreamRecord> = Vec::new();
    let mut earlier: Vec<RtpStreamRecord> = Vec::new();
    pq::for_each_row::<RtpStreamRecord>(
        db,
        DayRange::from_ns(
            Some(lo.saturating_sub(DAY_NS)),
            hi.map(|h| h.saturating_add(1)),
        ),
        |r| {
            if r.start_ns >= lo && hi.is_none_or(|h| r.start_ns <= h) {
                from.push(r);
            } else if r.start_ns < lo && r.end_ns >= lo.saturating_sub(reach) {
                earlier.push(r);
            }
            Ok(())
        },
    )
    .map_err(|e| store_err(db, e))?;
    Ok((from, earlier))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(first: Option<i64>, last: Option<i64>) -> CatalogFile {
        CatalogFile {
            id: 1,
            path: String::new(),
            size: 0,
            fingerprint: String::new(),
            mtime_ns: 0,
            run: 1,
            packets: 0,
            sip_messages: 0,
            first_ts_ns: first,
            last_ts_ns: last,
            truncated_at: None,
            malformed_sip: 0,
            hep_mirrors: 0,
            span_duplicates: 0,
            error: None,
        }
    }

    #[test]
    fn a_file_belongs_to_the_window_when_its_time_span_overlaps_it() {
        let w = TimeWindow {
            since_ns: Some(100),
            until_ns: Some(200),
        };
        assert!(w.overlaps(&file(Some(50), Some(100))), "touches since");
        assert!(w.overlaps(&file(Some(200), Some(300))), "touches until");
        assert!(w.overlaps(&file(Some(10), Some(900))), "spans the window");
        assert!(!w.overlaps(&file(Some(10), Some(99))));
        assert!(!w.overlaps(&file(Some(201), Some(300))));
        assert!(!w.overlaps(&file(None, None)), "no packets");
        let open = TimeWindow {
            since_ns: Some(100),
            until_ns: None,
        };
        assert!(open.overlaps(&file(Some(1_000_000), Some(2_000_000))));
    }
}
