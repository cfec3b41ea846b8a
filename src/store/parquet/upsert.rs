//! The rewrite path: upserts that replace rows by key in each affected day as one new part naming
//! the parts it supersedes, and deletion of rows by the same rewrite.

use super::*;
use crate::store::columns::TableRow;
use crate::store::record::DialogRecord;
use crate::store::StoreError;
use chrono::NaiveDate;
use std::collections::HashSet;
use std::fs;
use std::path::Path;

/// Inserts or replaces dialogs, rewriting each affected day partition as one new part.
///
/// A dialog's identity is its Call-ID: every stored row whose Call-ID appears in `records` is
/// dropped from the affected days, then `records` are added. Affected days are the days of the new
/// records plus `previous_days`, where the caller names days that may hold an older version
/// whose `start` moved to another day (a capture file read later that begins earlier).
pub fn upsert_dialogs(
    db: &Path,
    run: u64,
    records: Vec<DialogRecord>,
    previous_days: &[NaiveDate],
) -> Result<Vec<PartInfo>, StoreError> {
    upsert_dialogs_with(db, run, records, previous_days, true)
}

/// As [`upsert_dialogs`]; with `delete_superseded` false the replaced parts stay on disk (our
/// readers already ignore them) until [`recover`] runs: an indexing run calls it only after its
/// commit point, so a run that dies before committing can be rolled back by deleting its parts.
pub fn upsert_dialogs_with(
    db: &Path,
    run: u64,
    records: Vec<DialogRecord>,
    previous_days: &[NaiveDate],
    delete_superseded: bool,
) -> Result<Vec<PartInfo>, StoreError> {
    upsert_rows_with(
        db,
        run,
        records,
        previous_days,
        delete_superseded,
        |d| &d.call_id,
        |a, b| (a.start_ns, &a.call_id).cmp(&(b.start_ns, &b.call_id)),
    )
}

/// The generic form of [`upsert_dialogs_with`] for any table whose rows have an identity
/// (`key`): every stored row whose key is among `records` is dropped from the affected days, then
/// `records` are added; each rewritten day is sorted by `order`.
pub fn upsert_rows_with<R: TableRow>(
    db: &Path,
    run: u64,
    records: Vec<R>,
    previous_days: &[NaiveDate],
    delete_superseded: bool,
    key: fn(&R) -> &str,
    order: fn(&R, &R) -> std::cmp::Ordering,
) -> Result<Vec<PartInfo>, StoreError> {
    upsert_rows_removing(
        db,
        run,
        records,
        &HashSet::new(),
        previous_days,
        delete_superseded,
        key,
        order,
    )
}

/// As [`upsert_rows_with`], also dropping the stored rows whose key is in `removed` (rows that no
/// longer exist, e.g. a dialog whose only messages were in files a window reindex rebuilt). The
/// days holding them must be among `previous_days`.
#[allow(clippy::too_many_arguments)]
pub fn upsert_rows_removing<R: TableRow>(
    db: &Path,
    run: u64,
    records: Vec<R>,
    removed: &HashSet<String>,
    previous_days: &[NaiveDate],
    delete_superseded: bool,
    key: fn(&R) -> &str,
    order: fn(&R, &R) -> std::cmp::Ordering,
) -> Result<Vec<PartInfo>, StoreError> {
    let mut replaced: HashSet<String> = records.iter().map(|r| key(r).to_owned()).collect();
    replaced.extend(removed.iter().cloned());
    let mut records = records;
    records.sort_by(|a, b| {
        day_of(a.partition_ts())
            .cmp(&day_of(b.partition_ts()))
            .then_with(|| order(a, b))
    });
    upsert_sorted(
        db,
        run,
        records.into_iter(),
        previous_days,
        &|r: &R| replaced.contains(key(r)),
        delete_superseded,
        order,
    )
}

/// Rows read at a time from an old part while a day is rewritten.
pub(super) const MERGE_BATCH_ROWS: usize = 1024;

/// The streaming core of the upserts: `rows` come sorted by day and, within a day, by `order`;
/// each day they touch, and each of `previous_days`, is rewritten as one new part holding the
/// merge of its old live parts (without the rows `replaced` selects) and its new rows. Memory is a
/// batch per old part plus the writer's row group, whatever the size of a day: old parts are
/// written sorted by `order`, so the merge is a merge, not a sort.
pub fn upsert_sorted<R: TableRow>(
    db: &Path,
    run: u64,
    rows: impl Iterator<Item = R>,
    previous_days: &[NaiveDate],
    replaced: &dyn Fn(&R) -> bool,
    delete_superseded: bool,
    order: fn(&R, &R) -> std::cmp::Ordering,
) -> Result<Vec<PartInfo>, StoreError> {
    let table = table_dir(db, R::TABLE);
    let mut rows = rows.peekable();
    let mut pending: std::collections::BTreeSet<NaiveDate> =
        previous_days.iter().copied().collect();
    let mut next_n = next_part_number(&table, run)?;
    let mut published = Vec::new();
    let mut last_day: Option<NaiveDate> = None;
    loop {
        let row_day = rows.peek().map(|r| day_of(r.partition_ts()));
        let day = match (pending.first().copied(), row_day) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => break,
        };
        pending.remove(&day);
        if last_day.is_some_and(|l| day <= l) {
            return Err(StoreError::Corrupt {
                path: table.clone(),
                msg: format!("upsert rows not in day order at {day}"),
            });
        }
        last_day = Some(day);
        let dir = day_dir(&table, day);
        let old = if dir.is_dir() {
            live_day_parts(day, &dir)?.0
        } else {
            Vec::new()
        };
        let mut sources = Vec::with_capacity(old.len());
        for part in &old {
            let mut src = PartRows::<R>::open(&part.path, MERGE_BATCH_ROWS)?;
            let head = next_kept(&mut src, replaced)?;
            sources.push((src, head));
        }
        let has_new = row_day == Some(day);
        if !has_new && old.is_empty() {
            continue;
        }
        let mut writer = TableWriter::<R>::create_at(
            table.clone(),
            run,
            next_n,
            old.iter()
                .filter_map(|p| p.path.file_name()?.to_str().map(String::from))
                .collect(),
        );
        // An emptied day still gets a (row-less) part first: it is what retires the old parts.
        let part = writer.start_part(day)?;
        writer.open.insert(day, part);
        loop {
            // the smallest head among the old parts (earlier part first on ties) and the new rows
            let mut best: Option<usize> = None;
            for (i, (_, head)) in sources.iter().enumerate() {
                if let Some(h) = head {
                    let better = match best {
                        None => true,
                        Some(b) => {
                            order(h, sources[b].1.as_ref().expect("best has a head"))
                                == std::cmp::Ordering::Less
                        }
                    };
                    if better {
                        best = Some(i);
                    }
                }
            }
            let new_first = match (rows.peek(), best) {
                (Some(r), _) if day_of(r.partition_ts()) != day => false,
                (Some(_), None) => true,
                (Some(r), Some(b)) => {
                    order(r, sources[b].1.as_ref().expect("best has a head"))
                        != std::cmp::Ordering::Greater
                }
                (None, _) => false,
            };
            if new_first {
                writer.push(rows.next().expect("peeked"))?;
            } else if let Some(b) = best {
                let (src, head) = &mut sources[b];
                let next = next_kept(src, replaced)?;
                writer.push(std::mem::replace(head, next).expect("best has a head"))?;
            } else {
                break;
            }
        }
        let mut parts = writer.finish()?;
        next_n += parts.len() as u32;
        if !delete_superseded {
            published.extend(parts);
            continue;
        }
        for p in &old {
            fs::remove_file(&p.path).map_err(io_err(&p.path))?;
        }
        sync_dir(&dir)?;
        if parts.iter().all(|p| p.rows == 0) {
            for p in parts.drain(..) {
                fs::remove_file(&p.path).map_err(io_err(&p.path))?;
            }
            sync_dir(&dir)?;
            let _ = fs::remove_dir(&dir);
        }
        published.extend(parts);
    }
    Ok(published)
}

/// The next row of an old part that the upsert keeps.
fn next_kept<R: TableRow>(
    src: &mut PartRows<R>,
    replaced: &dyn Fn(&R) -> bool,
) -> Result<Option<R>, StoreError> {
    for r in src {
        let r = r?;
        if !replaced(&r) {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// Deletes the rows `doomed` selects from the live parts of a table in `days`. Each part holding
/// such rows is rewritten without them as a new part of `run` naming the old part in its footer
/// (`sipidx.supersedes`); the old part stays on disk until [`recover`], so removing the run's
/// parts ([`remove_parts`]) undoes the deletion, as for dialog rewrites. Parts without doomed
/// rows are not touched. `on_deleted` sees every deleted row once. Returns the rows deleted.
///
/// Each candidate part is read twice (once to look, once to copy) rather than held in memory:
/// a message part can hold millions of rows.
pub fn delete_rows<R: TableRow>(
    db: &Path,
    run: u64,
    days: DayRange,
    doomed: impl Fn(&R) -> bool,
    mut on_deleted: impl FnMut(R),
) -> Result<u64, StoreError> {
    let table = table_dir(db, R::TABLE);
    let mut next_n = next_part_number(&table, run)?;
    let mut deleted = 0;
    for (day, dir) in list_days(&table)? {
        if !days.contains(day) {
            continue;
        }
        let (live, _) = live_day_parts(day, &dir)?;
        for part in live {
            let mut hits = 0u64;
            read_part::<R>(&part.path, &mut |r| {
                hits += u64::from(doomed(&r));
                Ok(())
            })?;
            if hits == 0 {
                continue;
            }
            let name = part
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .map(String::from)
                .unwrap_or_default();
            let mut writer = TableWriter::<R>::create_at(table.clone(), run, next_n, vec![name]);
            // Even an emptied part is published: its footer is what retires the old one.
            let open = writer.start_part(day)?;
            writer.open.insert(day, open);
            read_part::<R>(&part.path, &mut |r| {
                if doomed(&r) {
                    deleted += 1;
                    on_deleted(r);
                    Ok(())
                } else {
                    writer.push(r)
                }
            })?;
            next_n += writer.finish()?.len() as u32;
        }
    }
    Ok(deleted)
}
