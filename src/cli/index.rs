//! `index` arguments → `index::IndexPlan`, with a progress bar on a terminal.
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use super::args::{IndexArgs, MetricsMode};
use super::grep::dedup_config;
use super::{EXIT_ERROR, EXIT_MATCH};
use crate::decode::DecodeConfig;
use crate::index::media::MediaConfig;
use crate::index::scan::ScanConfig;
use crate::index::window::{reindex_window, TimeWindow, WindowReport};
use crate::index::{self, IndexPlan, IndexReport, Progress};
use crate::query::params::{parse_duration, parse_size, parse_time};
use crate::rtp::Metrics;
use crate::sip::correlate::{CorrelateConfig, NumberMatch};

struct Bar {
    bar: ProgressBar,
    packets: u64,
}

impl Progress for Bar {
    fn start(&mut self, files: usize, bytes: u64) {
        self.bar.set_length(bytes);
        self.bar.set_message(format!("0/{files} files"));
    }
    fn file_done(&mut self, _path: &Path, bytes: u64, packets: u64) {
        self.packets += packets;
        self.bar.inc(bytes);
        let secs = self.bar.elapsed().as_secs_f64().max(1e-3);
        self.bar
            .set_message(format!("{:.0} packets/s", self.packets as f64 / secs));
    }
    fn phase(&mut self, what: &str) {
        self.bar.set_message(what.to_string());
    }
}

pub fn run(a: IndexArgs, rebuild: bool) -> Result<u8> {
    if !rebuild && a.paths.is_empty() {
        anyhow::bail!("index needs at least one PATH (file, directory or glob)");
    }
    if rebuild && !a.paths.is_empty() {
        anyhow::bail!("reindex takes no PATH: it rebuilds from the captures in the catalog");
    }
    let time_window = time_window(&a, rebuild)?;
    let plan = plan(&a)?;
    if a.follow {
        if rebuild {
            anyhow::bail!("--follow belongs to index");
        }
        return follow(&plan, &a);
    }
    if let Some(w) = time_window {
        return run_window(&plan, w, &a);
    }
    let report = index_with_bar(&plan, &a, rebuild)?;
    warn_problem_files(&report);
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    if a.json {
        print_json(&report, secs);
    }
    if !a.quiet {
        print_notes(&report, &a, secs);
    }
    Ok(if report.files_failed.is_empty() {
        EXIT_MATCH
    } else {
        EXIT_ERROR
    })
}

/// `--since`/`--until` as the window `reindex` rebuilds (`None`: the whole catalog).
fn time_window(a: &IndexArgs, rebuild: bool) -> Result<Option<TimeWindow>> {
    if a.since.is_some() || a.until.is_some() {
        if !rebuild {
            anyhow::bail!("--since/--until belong to reindex (rebuild a time window)");
        }
        let w = TimeWindow {
            since_ns: a.since.as_deref().map(parse_time).transpose()?,
            until_ns: a.until.as_deref().map(parse_time).transpose()?,
        };
        if let (Some(s), Some(u)) = (w.since_ns, w.until_ns) {
            if s > u {
                anyhow::bail!("--since is after --until");
            }
        }
        Ok(Some(w))
    } else {
        Ok(None)
    }
}

/// The arguments as the plan `index::run` takes.
fn plan(a: &IndexArgs) -> Result<IndexPlan> {
    let window = parse_duration(&a.correlate_window)?;
    Ok(IndexPlan {
        db: a.db.db.clone(),
        inputs: a.paths.clone(),
        settle: Duration::from_nanos(parse_duration(&a.settle)?.max(0) as u64),
        threads: a.threads,
        batch_files: a.batch_files,
        dialog_memory: usize::try_from(
            parse_size(&a.dialog_memory, 1 << 20).context("--dialog-memory")?,
        )
        .unwrap_or(usize::MAX),
        text_memory: usize::try_from(parse_size(&a.text_memory, 1 << 20).context("--text-memory")?)
            .unwrap_or(usize::MAX),
        scan: ScanConfig {
            decode: DecodeConfig {
                hep: !a.no_hep,
                ..DecodeConfig::new(crate::sip::stream_start)
            },
            correlate: CorrelateConfig {
                headers: a.correlate_headers.clone(),
                fallback: (window > 0).then_some(NumberMatch {
                    window_ns: window,
                    ..NumberMatch::default()
                }),
            },
            dedup: dedup_config(&a.dedup, !a.no_hep)?,
            ..ScanConfig::default()
        },
        media: MediaConfig {
            metrics: match a.metrics {
                MetricsMode::Wireshark => Metrics::Wireshark,
                MetricsMode::Rfc3550 => Metrics::Rfc3550,
            },
            decode: DecodeConfig {
                hep: !a.no_hep,
                ..DecodeConfig::new(crate::sip::stream_start)
            },
            dedup: dedup_config(&a.dedup, !a.no_hep)?,
            analyse: !a.no_media,
        },
    })
}

/// A whole run or a rebuild, with the progress bar on a terminal.
fn index_with_bar(plan: &IndexPlan, a: &IndexArgs, rebuild: bool) -> Result<IndexReport> {
    let show_bar = !a.quiet && std::io::stderr().is_terminal();
    Ok(if show_bar {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        let mut p = Bar { bar, packets: 0 };
        let r = if rebuild {
            index::run::reindex(plan, &mut p)
        } else {
            index::run(plan, &mut p)
        };
        p.bar.finish_and_clear();
        r?
    } else {
        let mut quiet = index::run::NoProgress;
        if rebuild {
            index::run::reindex(plan, &mut quiet)?
        } else {
            index::run(plan, &mut quiet)?
        }
    })
}

/// One line on stderr per file that failed, was truncated or holds a corrupt record.
fn warn_problem_files(report: &IndexReport) {
    for (path, err) in &report.files_failed {
        // source errors already name the file
        if err.contains(&*path.to_string_lossy()) {
            eprintln!("sipidx: error: {err}");
        } else {
            eprintln!("sipidx: error: {}: {err}", path.display());
        }
    }
    for (path, off) in &report.files_truncated {
        eprintln!(
            "sipidx: warning: {}: file ends inside a record at byte offset {off}; indexed up to it",
            path.display()
        );
    }
    for (path, off) in &report.files_corrupt {
        eprintln!(
            "sipidx: warning: {}: corrupt record at byte offset {off}; indexed up to it, the rest is unreadable",
            path.display()
        );
    }
}

/// The `index_run` JSON line of `--json`.
fn print_json(report: &IndexReport, secs: f64) {
    let v = serde_json::json!({
        "type": "index_run",
        "run": report.run,
        "files_indexed": report.files_indexed,
        "files_known": report.files_known,
        "files_waiting": report.files_waiting.len(),
        "settle_wait_seconds": report.settle_wait.as_secs_f64(),
        "files_failed": report.files_failed.len(),
        "files_truncated": report.files_truncated.len(),
        "files_corrupt": report.files_corrupt.len(),
        "packets": report.packets,
        "bytes": report.bytes,
        "sip_messages": report.messages,
        "malformed_sip": report.malformed_sip,
        "dialogs": report.dialogs,
        "rtp_streams": report.rtp_streams,
        "rtp_packets": report.rtp_packets,
        "rtcp_reports": report.rtcp_reports,
        "qos_reports": report.qos_reports,
        "media_files_out_of_order": report.media_files_out_of_order,
        "media_files_reanalysed": report.media_files_reanalysed,
        "media_refold_missing": report.media_refold_missing.len(),
        "files_rescanned": report.files_rescanned,
        "seconds": secs,
    });
    println!("{v}");
}

/// The notes and the summary line on stderr (not with `--quiet`).
fn print_notes(report: &IndexReport, a: &IndexArgs, secs: f64) {
    if !report.media_refold_missing.is_empty() {
        eprintln!(
            "sipidx: warning: some new files are older than media already analysed, which would \
             be analysed again with them, but {} of those indexed files are gone or rewritten \
             (e.g. {}): the new files' media was analysed on its own (its RTP streams end with \
             each file)",
            report.media_refold_missing.len(),
            report.media_refold_missing[0].display()
        );
    } else if report.media_files_out_of_order > 0 {
        eprintln!(
            "sipidx: {} files start before the end of the files before them in capture time \
             (overlapping captures, e.g. two capture points), so each was analysed on its own \
             (its RTP streams end with it)",
            report.media_files_out_of_order
        );
    }
    if !report.settle_wait.is_zero() {
        let settling = report
            .files_waiting
            .iter()
            .filter(|p| p.extension().is_none_or(|e| e != "part"))
            .count();
        eprintln!(
            "sipidx: {settling} files found in a directory or glob were modified less than \
             --settle {} ago and may still be being written: not indexed; run again in {}s, or \
             name them (a file named on the command line is indexed whatever its age)",
            a.settle,
            report.settle_wait.as_secs_f64().ceil()
        );
    }
    eprintln!(
        "sipidx: indexed {} new files ({} already indexed, {} still being written, {} failed): \
         {} packets, {:.1} MB, {} SIP messages, {} dialogs, {} RTP streams in {:.2}s ({:.0} MB/s)",
        report.files_indexed,
        report.files_known,
        report.files_waiting.len(),
        report.files_failed.len(),
        report.packets,
        report.bytes as f64 / 1e6,
        report.messages,
        report.dialogs,
        report.rtp_streams,
        secs,
        report.bytes as f64 / 1e6 / secs
    );
}

fn with_bar<T>(quiet: bool, f: impl FnOnce(&mut dyn Progress) -> T) -> T {
    if quiet || !std::io::stderr().is_terminal() {
        return f(&mut index::run::NoProgress);
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} ETA {eta} {msg}",
        )
        .expect("valid template"),
    );
    let mut p = Bar { bar, packets: 0 };
    let r = f(&mut p);
    p.bar.finish_and_clear();
    r
}

/// `reindex --since/--until`: rebuild the window's files and the dialogs they touch.
fn run_window(plan: &IndexPlan, w: TimeWindow, a: &IndexArgs) -> Result<u8> {
    let r: WindowReport = with_bar(a.quiet, |p| reindex_window(plan, w, p))?;
    if let Some(full) = &r.full {
        if !a.quiet {
            eprintln!(
                "sipidx: an interrupted full reindex was pending and is now complete: {} files, \
                 {} SIP messages, {} dialogs; run the window reindex again if still wanted",
                full.files_indexed, full.messages, full.dialogs
            );
        }
        return Ok(if full.files_failed.is_empty() {
            EXIT_MATCH
        } else {
            EXIT_ERROR
        });
    }
    for (path, err) in &r.files_failed {
        eprintln!("sipidx: error: {}: {err}", path.display());
    }
    for path in &r.files_missing {
        eprintln!(
            "sipidx: warning: {}: gone or rewritten since it was indexed; its rows are kept",
            path.display()
        );
    }
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    if a.json {
        let v = serde_json::json!({
            "type": "reindex_window",
            "run": r.run,
            "resumed": r.resumed,
            "files": r.files,
            "files_missing": r.files_missing.len(),
            "files_failed": r.files_failed.len(),
            "neighbours_rescanned": r.neighbours_rescanned,
            "neighbours_loaded": r.neighbours_loaded,
            "packets": r.packets,
            "bytes": r.bytes,
            "sip_messages_removed": r.messages_removed,
            "sip_messages": r.messages,
            "dialogs": r.dialogs,
            "dialogs_removed": r.dialogs_removed,
            "media_files": r.media_files,
            "rtp_streams_removed": r.rtp_streams_removed,
            "rtp_streams": r.rtp_streams,
            "rtp_streams_continuing": r.rtp_streams_continuing,
            "rtcp_reports_removed": r.rtcp_reports_removed,
            "rtcp_reports": r.rtcp_reports,
            "qos_reports_removed": r.qos_reports_removed,
            "qos_reports": r.qos_reports,
            "seconds": secs,
        });
        println!("{v}");
    }
    if !a.quiet {
        eprintln!(
            "sipidx: reindexed {} files of the window{} ({} more rescanned and {} read for their \
             dialogs): {} SIP messages (were {}), {} dialogs rewritten, {} removed in {:.2}s",
            r.files,
            if r.resumed {
                ", resuming the interrupted run"
            } else {
                ""
            },
            r.neighbours_rescanned,
            r.neighbours_loaded,
            r.messages,
            r.messages_removed,
            r.dialogs,
            r.dialogs_removed,
            secs
        );
    }
    Ok(if r.files_failed.is_empty() {
        EXIT_MATCH
    } else {
        EXIT_ERROR
    })
}

/// `--follow`: rounds of incremental indexing until SIGINT (exit 130) or SIGTERM (exit 0).
fn follow(plan: &IndexPlan, a: &IndexArgs) -> Result<u8> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let interrupted = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, interrupted.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    let interval = Duration::from_nanos(parse_duration(&a.interval)?.max(1_000_000) as u64);
    if !a.quiet {
        eprintln!(
            "sipidx index: following {} into {} every {:?}",
            a.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            plan.db.display(),
            interval
        );
    }
    let quiet = a.quiet;
    let json = a.json;
    index::run::follow(plan, interval, &stop, &mut |r| {
        for (path, err) in &r.files_failed {
            eprintln!("sipidx: error: {}: {err}", path.display());
        }
        if r.files_indexed > 0 {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"type": "index_run", "run": r.run,
                        "files_indexed": r.files_indexed, "sip_messages": r.messages,
                        "dialogs": r.dialogs, "packets": r.packets, "bytes": r.bytes})
                );
            }
            if !quiet {
                eprintln!(
                    "sipidx: indexed {} files: {} SIP messages, {} dialogs",
                    r.files_indexed, r.messages, r.dialogs
                );
            }
        }
    })?;
    Ok(if interrupted.load(Ordering::Relaxed) {
        130
    } else {
        EXIT_MATCH
    })
}
