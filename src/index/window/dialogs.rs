//! The dialog steps of a window rebuild (3-5): the touched dialogs' stored rows and context, their
//! parts in neighbouring files, and their rows rewritten with correlation and flood flags again.
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::index::catalog::CatalogFile;
use crate::index::dialogs::{dialog_record, list_parts, load_parts, save_parts, summary_of};
use crate::index::media::CallMedia;
use crate::index::run::{Progress, DAY_NS};
use crate::index::IndexError;
use crate::sip::correlate::correlate_dialogs;
use crate::sip::dialog::{DialogKind, DialogSummary};
use crate::sip::scanner::{flooders, SourceOutcomes};
use crate::store::parquet::{self as pq, DialogFilter};
use crate::store::record::DialogRecord;

use super::media::MediaRebuild;
use super::WindowReport;
use super::{merge_into, scan_files, store_err, Job, CONTEXT_NS};

/// Step 3 of a rebuild: the touched dialogs' rows as stored, the stored dialogs near F for the
/// correlation's context, and the rows rewritten only for their media columns.
#[allow(clippy::type_complexity)]
pub(super) fn stored_dialogs(
    job: Job<'_>,
    touched: &BTreeSet<String>,
    media: &MediaRebuild,
) -> Result<
    (
        HashMap<String, DialogRecord>,
        Vec<DialogSummary>,
        Vec<DialogRecord>,
    ),
    IndexError,
> {
    let Job { plan, lo, hi, .. } = job;
    let db = &plan.db;
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
    Ok((old, context, media_only))
}

/// Step 4 of a rebuild: the parts of the touched dialogs held by other files, stored or (made
/// with other correlation headers, or missing) rescanned, merged into `window_parts`.
pub(super) fn neighbours(
    job: Job<'_>,
    pool: &rayon::ThreadPool,
    touched: &BTreeSet<String>,
    old: &HashMap<String, DialogRecord>,
    window_parts: &mut HashMap<String, DialogSummary>,
    progress: &mut dyn Progress,
    report: &mut WindowReport,
) -> Result<(), IndexError> {
    let Job {
        plan,
        run,
        catalog,
        in_f,
        ..
    } = job;
    let db = &plan.db;
    let headers = &plan.scan.correlate.headers;
    let mut for_calls: HashSet<u32> = HashSet::new();
    let mut for_others: HashSet<u32> = HashSet::new();
    for t in touched {
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
    scan_files(plan, pool, catalog, &rescan, |f, scan| {
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
        merge_into(window_parts, d);
    }
    Ok(())
}

/// The dialogs step 5 rewrites and what they are made from.
pub(super) struct Dialogs<'a> {
    pub(super) touched: &'a BTreeSet<String>,
    pub(super) window_parts: HashMap<String, DialogSummary>,
    /// The touched dialogs' stored rows.
    pub(super) old: HashMap<String, DialogRecord>,
    pub(super) context: Vec<DialogSummary>,
    pub(super) media_only: Vec<DialogRecord>,
}

/// Step 5 of a rebuild: rewrite the touched dialogs' rows.
pub(super) fn rewrite_dialogs(
    job: Job<'_>,
    dialogs: Dialogs<'_>,
    rate: &HashMap<(std::net::IpAddr, i64), u32>,
    media: &MediaRebuild,
    report: &mut WindowReport,
) -> Result<(), IndexError> {
    let Job { plan, run, .. } = job;
    let db = &plan.db;
    let Dialogs {
        touched,
        mut window_parts,
        old,
        context,
        media_only,
    } = dialogs;
    let mut summaries: Vec<DialogSummary> = Vec::new();
    let mut removed: HashSet<String> = HashSet::new();
    for t in touched {
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
    let flooders = flooders(&outcomes, rate, plan.scan.flood_per_minute);
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
    Ok(())
}
