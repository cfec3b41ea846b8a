//! Reading tables back: rows of the live parts in a day range, batch by batch, and the dialog and
//! message readers with their filter.

use super::*;
use crate::store::columns::TableRow;
use crate::store::record::{DialogKind, DialogRecord, MessageRecord};
use crate::store::StoreError;
use chrono::NaiveDate;
use std::path::{Path, PathBuf};

/// Inclusive range of UTC days to read; `None` ends are open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayRange {
    pub first: Option<NaiveDate>,
    pub last: Option<NaiveDate>,
}

impl DayRange {
    /// The days that can hold partition timestamps in `[since_ns, until_ns)`.
    pub fn from_ns(since_ns: Option<i64>, until_ns: Option<i64>) -> Self {
        DayRange {
            first: since_ns.map(day_of),
            last: until_ns.map(|u| day_of(u.saturating_sub(1))),
        }
    }

    pub(super) fn contains(&self, day: NaiveDate) -> bool {
        self.first.is_none_or(|f| day >= f) && self.last.is_none_or(|l| day <= l)
    }
}

/// Calls `each` with every row of the live parts of a table in the given days, in
/// (day, run, part, row) order. A column missing from an older file reads as null when the
/// schema allows null, otherwise the read fails.
pub fn for_each_row<R: TableRow>(
    db: &Path,
    days: DayRange,
    mut each: impl FnMut(R) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let table = table_dir(db, R::TABLE);
    for (day, dir) in list_days(&table)? {
        if !days.contains(day) {
            continue;
        }
        let (live, _) = live_day_parts(day, &dir)?;
        for part in live {
            read_part::<R>(&part.path, &mut each)?;
        }
    }
    Ok(())
}

/// Every row of one part file, live or not (`index::verify` checks parts one by one).
pub fn read_part<R: TableRow>(
    path: &Path,
    each: &mut impl FnMut(R) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    for rows in PartRows::<R>::open(path, 8192)?.batches() {
        for r in rows? {
            each(r)?;
        }
    }
    Ok(())
}

/// The rows of one part, read a batch at a time (pull-style, for merging parts).
pub(super) struct PartRows<R> {
    path: PathBuf,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    rows: std::vec::IntoIter<R>,
}

impl<R: TableRow> PartRows<R> {
    pub(super) fn open(path: &Path, batch_rows: usize) -> Result<Self, StoreError> {
        let reader = open_reader(path)?
            .with_batch_size(batch_rows)
            .build()
            .map_err(|e| StoreError::parquet(path, e))?;
        Ok(PartRows {
            path: path.to_owned(),
            reader,
            rows: Vec::new().into_iter(),
        })
    }

    /// The next batch as rows; `None` at the end.
    fn next_batch(&mut self) -> Option<Result<Vec<R>, StoreError>> {
        let batch = match self.reader.next()? {
            Ok(b) => b,
            Err(e) => {
                return Some(Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    msg: e.to_string(),
                }))
            }
        };
        let mut rows: Vec<R> = (0..batch.num_rows()).map(|_| R::default()).collect();
        for col in R::columns() {
            let loaded = match batch.column_by_name(col.name) {
                Some(array) => col.load(array.as_ref(), &mut rows),
                None if col.field().is_nullable() => Ok(()),
                None => Err(format!("column {} is missing", col.name)),
            };
            if let Err(msg) = loaded {
                return Some(Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    msg,
                }));
            }
        }
        Some(Ok(rows))
    }

    fn batches(mut self) -> impl Iterator<Item = Result<Vec<R>, StoreError>> {
        std::iter::from_fn(move || self.next_batch())
    }
}

impl<R: TableRow> Iterator for PartRows<R> {
    type Item = Result<R, StoreError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.rows.next() {
                return Some(Ok(r));
            }
            match self.next_batch()? {
                Ok(rows) => self.rows = rows.into_iter(),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Selects dialogs; every set condition must hold. `since_ns`/`until_ns` bound `start` as
/// `[since, until)` and prune day partitions; user filters are case-insensitive substrings.
#[derive(Debug, Clone, Default)]
pub struct DialogFilter {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub call_id: Option<String>,
    pub kinds: Vec<DialogKind>,
    pub from_user: Option<String>,
    pub to_user: Option<String>,
    pub ruri_user: Option<String>,
    pub scanner: Option<bool>,
    /// Calls whose worst stream lost at least this many percent (`max_loss_pct >= x`); dialogs
    /// without measured media never match.
    pub min_loss_pct: Option<f64>,
    /// Calls whose worst stream MOS is at most this (`worst_mos <= x`); no media, no match.
    pub max_mos: Option<f64>,
}

fn contains_ci(hay: Option<&str>, needle: &Option<String>) -> bool {
    match needle {
        None => true,
        Some(n) => hay.is_some_and(|h| h.to_lowercase().contains(&n.to_lowercase())),
    }
}

impl DialogFilter {
    pub fn matches(&self, d: &DialogRecord) -> bool {
        self.since_ns.is_none_or(|s| d.start_ns >= s)
            && self.until_ns.is_none_or(|u| d.start_ns < u)
            && self.call_id.as_ref().is_none_or(|c| *c == d.call_id)
            && (self.kinds.is_empty() || self.kinds.contains(&d.kind))
            && contains_ci(d.from_user.as_deref(), &self.from_user)
            && contains_ci(d.to_user.as_deref(), &self.to_user)
            && contains_ci(d.ruri_user.as_deref(), &self.ruri_user)
            && self.scanner.is_none_or(|s| s == d.scanner)
            && self
                .min_loss_pct
                .is_none_or(|m| d.max_loss_pct.is_some_and(|l| l >= m))
            && self
                .max_mos
                .is_none_or(|m| d.worst_mos.is_some_and(|x| x <= m))
    }
}

/// Dialogs matching `filter`, ordered by (start, call_id) so output is deterministic.
pub fn read_dialogs(db: &Path, filter: &DialogFilter) -> Result<Vec<DialogRecord>, StoreError> {
    let mut out = Vec::new();
    for_each_row::<DialogRecord>(
        db,
        DayRange::from_ns(filter.since_ns, filter.until_ns),
        |d| {
            if filter.matches(&d) {
                out.push(d);
            }
            Ok(())
        },
    )?;
    out.sort_by(|a, b| (a.start_ns, &a.call_id).cmp(&(b.start_ns, &b.call_id)));
    Ok(out)
}

/// Messages with `ts` in `[since_ns, until_ns)`, in storage order (day, run, part, row).
pub fn read_messages(
    db: &Path,
    since_ns: Option<i64>,
    until_ns: Option<i64>,
) -> Result<Vec<MessageRecord>, StoreError> {
    let mut out = Vec::new();
    for_each_row::<MessageRecord>(db, DayRange::from_ns(since_ns, until_ns), |m| {
        if since_ns.is_none_or(|s| m.ts_ns >= s) && until_ns.is_none_or(|u| m.ts_ns < u) {
            out.push(m);
        }
        Ok(())
    })?;
    Ok(out)
}
