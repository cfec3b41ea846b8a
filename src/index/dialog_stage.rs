//! Step 4 of a run, the dialogs: this run's dialog parts merged by Call-ID, merge-joined with the
//! stored dialogs of the days they may extend, correlated, and the touched days rewritten.
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::dialogs::{approx_bytes, dialog_record, merge_by_call_id, read_parts, LegKeys};
use super::media::MediaOutcome;
use super::run::{IndexPlan, DAY_NS};
use super::scan::by_call_id;
use super::spill::{self, RunWriter};
use super::txn::store_err;
use super::IndexError;
use crate::sip::correlate::correlate_groups;
use crate::sip::dialog::DialogSummary;
use crate::sip::scanner::{flooders, SourceOutcomes};
use crate::store::parquet::{self as pq, DayRange};
use crate::store::record::DialogRecord;

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
pub(super) fn merge_new_dialogs(
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
pub(super) fn dialog_stage(
    plan: &IndexPlan,
    run: u64,
    new: NewDialogs,
    rate: &HashMap<(IpAddr, i64), u32>,
    media_out: &MediaOutcome,
) -> Result<u64, IndexError> {
    let dir = spill::spill_dir(&plan.db, run);
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
    let (old_rows, media_recs) = stored_dialogs(plan, &dir, budget, (wlo, whi), media_out)?;
    let joined = merge_join(&dir, budget, &new_path, old_rows, media_recs)?;
    write_dialogs(plan, run, joined, rate, media_out)?;
    Ok(count)
}

/// Step 4b: the stored dialogs of the days this run may touch (`wlo..=whi` ± a day), sorted by
/// Call-ID, and the stored rows of the calls whose media changed.
fn stored_dialogs(
    plan: &IndexPlan,
    dir: &Path,
    budget: usize,
    (wlo, whi): (i64, i64),
    media_out: &MediaOutcome,
) -> Result<(spill::Sorter<OldRow>, HashMap<String, DialogRecord>), IndexError> {
    let db = &plan.db;
    let mut old_rows = spill::Sorter::<OldRow>::new(
        dir,
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
    Ok((old_rows, media_recs))
}

/// What the merge-join (step 4c) leaves for the rows (step 4d).
struct Joined {
    legs: LegKeys,
    /// Per source of a dialog's first request: dialogs, and those answered or registered.
    outcome: SourceOutcomes,
    previous_days: BTreeSet<NaiveDate>,
    /// Call-IDs whose stored rows this run's rows replace.
    replaced: HashSet<String>,
    /// Stored rows rewritten only for their new media summary.
    media_only: Vec<DialogRecord>,
    finals: spill::Sorter<FinalDialog>,
}

/// Step 4c: merge-join; keep the correlation keys and per-source outcomes; spill in table order.
fn merge_join(
    dir: &Path,
    budget: usize,
    new_path: &Path,
    old_rows: spill::Sorter<OldRow>,
    mut media_recs: HashMap<String, DialogRecord>,
) -> Result<Joined, IndexError> {
    let mut old = old_rows.finish()?.peekable();
    let mut legs = LegKeys::default();
    let mut outcome = SourceOutcomes::default();
    let mut previous_days = BTreeSet::new();
    let mut replaced: HashSet<String> = HashSet::new();
    let mut media_only: Vec<DialogRecord> = Vec::new();
    let mut finals = spill::Sorter::<FinalDialog>::new(
        dir,
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
    for (i, d) in spill::RunReader::<DialogSummary>::open(new_path)?.enumerate() {
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
    let _ = std::fs::remove_file(new_path);
    Ok(Joined {
        legs,
        outcome,
        previous_days,
        replaced,
        media_only,
        finals,
    })
}

/// Step 4d: floods, legs; then the rows in table order.
fn write_dialogs(
    plan: &IndexPlan,
    run: u64,
    joined: Joined,
    rate: &HashMap<(IpAddr, i64), u32>,
    media_out: &MediaOutcome,
) -> Result<(), IndexError> {
    let db = &plan.db;
    let Joined {
        legs,
        outcome,
        previous_days,
        replaced,
        mut media_only,
        finals,
    } = joined;
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
    Ok(())
}
