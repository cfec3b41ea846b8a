//! Steps 3 and 4 of an index run: the parallel SIP scan, writing messages and text documents in
//! file order, beside the sequential media pass; then the dialog stage.
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::catalog::CatalogFile;
use super::dialog_stage::{dialog_stage, merge_new_dialogs};
use super::media::{MediaOutcome, MediaPass, MediaState, Refold};
use super::run::{
    lower_thread_priority, predecessors, time_order, Candidate, IndexPlan, IndexReport, Progress,
    RefoldPlan, RingFile, RunCtx, DAY_NS, MIN_TEXT_MEMORY,
};
use super::scan::Preroll;
use super::scan::{preroll_start, scan_file_streaming, FileScan, Predecessor, RingLinks, StreamTo};
use super::txn::store_err;
use super::IndexError;
use crate::store;
use crate::store::parquet::{self as pq, DayRange, TableWriter, WriterOptions};
use crate::store::record::{MessageRecord, QosReportRecord, RtcpReportRecord};
use crate::store::text_index::TextIndex;

/// Message rows per chunk sent from a scanning thread to the writer.
const CHUNK_ROWS: usize = 1024;
/// Chunks a scanning thread may have queued before it waits for the writer.
const CHUNKS_AHEAD: usize = 2;

enum ScanEvent {
    Rows(Vec<MessageRecord>),
    Done(Box<Result<FileScan, IndexError>>),
}

/// Steps 3 and 4 of a run: the parallel SIP scan (messages and text documents written in file
/// order) beside the media pass, then the dialogs. Returns the new files' catalog entries.
pub(super) fn scan_stage(
    ctx: RunCtx<'_>,
    refold: Option<RefoldPlan>,
    progress: &mut dyn Progress,
    report: &mut IndexReport,
) -> Result<Vec<CatalogFile>, IndexError> {
    let RunCtx {
        plan,
        run,
        first_id,
        catalog,
        new_files,
    } = ctx;
    let db = &plan.db;
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
    let predecessors = predecessors(catalog, &ring, &ring);
    let (media_feed, media_state) = media_inputs(ctx, &ring, refold.as_ref(), report)?;
    let workers = scan_workers(plan, new_files.len());
    let worker_budget = plan.dialog_memory / workers;
    let mut receivers = Vec::with_capacity(new_files.len());
    let mut senders = Vec::with_capacity(new_files.len());
    for _ in new_files {
        let (tx, rx) = std::sync::mpsc::sync_channel::<ScanEvent>(CHUNKS_AHEAD);
        senders.push(std::sync::Mutex::new(Some(tx)));
        receivers.push(rx);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| -> Result<(), IndexError> {
        // The media pass is sequential over the files in order; it overlaps the parallel SIP scan.
        let media_thread =
            scope.spawn(|| media_pass(ctx, media_state, refold.as_ref(), &media_feed));
        // Workers take files in order and stream each file's rows through its own bounded
        // channel; this thread writes the channels in file order, so output is deterministic.
        // Deadlock-free: the lowest file not yet written is always claimed by a worker (files are
        // claimed in order) and that worker's channel is the one being drained.
        let shared = Workers {
            ctx,
            workers,
            worker_budget,
            predecessors: &predecessors,
            senders: &senders,
            next: &next,
        };
        for _ in 0..workers {
            // a copy per worker: `Workers` is a handful of references
            scope.spawn(move || scan_worker(&shared));
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
            entries.push(file_scanned(report, &mut rate, c, scan, run));
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
    Ok(entries)
}

/// The media pass's files and starting state: this run's files, after the stored ones a refold
/// analyses again (their stored reports removed, to be written again), from a fresh state.
fn media_inputs(
    ctx: RunCtx<'_>,
    ring: &[RingFile],
    refold: Option<&RefoldPlan>,
    report: &mut IndexReport,
) -> Result<(Vec<(PathBuf, u32)>, MediaState), IndexError> {
    let RunCtx {
        plan, run, catalog, ..
    } = ctx;
    let db = &plan.db;
    // The media pass's files: this run's, after the stored ones it analyses again (a refold's).
    let mut media_feed: Vec<(PathBuf, u32, Option<i64>)> = ring
        .iter()
        .map(|f| (f.path.clone(), f.id, f.first_ns))
        .collect();
    let media_state = match refold {
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
    Ok((media_feed, media_state))
}

/// Files scanned at once.
fn scan_workers(plan: &IndexPlan, files: usize) -> usize {
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
    threads.min(plan.batch_files.max(1)).min(files).max(1)
}

/// The media pass of a run (on a thread of its own beside the scan), with a refold's pre-roll.
fn media_pass(
    ctx: RunCtx<'_>,
    media_state: MediaState,
    refold: Option<&RefoldPlan>,
    media_feed: &[(PathBuf, u32)],
) -> Result<MediaOutcome, IndexError> {
    let RunCtx {
        plan, run, catalog, ..
    } = ctx;
    let db = &plan.db;
    let mut pass = MediaPass::new(db, run, &plan.media, media_state)?;
    if let Some(r) = refold {
        let (replaced, earlier) = super::window::stored_streams_around(db, r.from_ns, None)?;
        let fed: HashSet<u32> = media_feed.iter().map(|f| f.1).collect();
        super::window::media_preroll(plan, catalog, &mut pass, r.from_ns, &earlier, &fed)?;
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
    pass.files(media_feed)?;
    pass.finish()
}

/// What the scan workers share (see `scan_worker`).
#[derive(Clone, Copy)]
struct Workers<'a> {
    ctx: RunCtx<'a>,
    workers: usize,
    worker_budget: usize,
    predecessors: &'a [Option<Predecessor>],
    senders: &'a [std::sync::Mutex<Option<std::sync::mpsc::SyncSender<ScanEvent>>>],
    next: &'a std::sync::atomic::AtomicUsize,
}

/// One scan worker: takes the next file not yet claimed and streams its rows through the
/// file's channel, until no file is left or the writer stops listening.
fn scan_worker(w: &Workers<'_>) {
    let Workers {
        ctx,
        workers,
        worker_budget,
        predecessors,
        senders,
        next,
    } = *w;
    let RunCtx {
        plan,
        run,
        first_id,
        new_files,
        ..
    } = ctx;
    let db = &plan.db;
    if plan.media.analyse {
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
        let scan = scan_file_streaming(&new_files[k].path, file_id, ring, &plan.scan, &mut to).map(
            |(scan, tail)| {
                carried = tail.map(|t| (k + 1, t));
                scan
            },
        );
        let failed = scan.is_err();
        if tx.send(ScanEvent::Done(Box::new(scan))).is_err() || failed {
            break;
        }
    }
}

/// A scanned file's figures added to the run's report and request rates; its catalog entry.
fn file_scanned(
    report: &mut IndexReport,
    rate: &mut HashMap<(std::net::IpAddr, i64), u32>,
    c: &Candidate,
    scan: FileScan,
    run: u64,
) -> CatalogFile {
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
    CatalogFile {
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
    }
}
