//! Parquet tables under `<db>/tables/<table>/date=YYYY-MM-DD/part-<run>-<n>.parquet`: a streaming,
//! day-partitioned writer with bounded memory, crash-safe publication, and an Arrow reader.
//!
//! Publication: a part is written as `*.parquet.tmp`, fsynced, renamed, and its directory fsynced,
//! so a reader sees a part whole or not at all; readers ignore `.tmp` names and [`recover`] deletes
//! them. Memory stays bounded: rows are buffered `batch_rows` at a time, and the Parquet writer
//! holds at most one row group (`row_group_rows`) per open day.
//!
//! Dialogs change after they are written (a later capture file extends a call), and we chose to
//! **rewrite the affected day partitions** ([`upsert_dialogs`]) rather than append versioned rows.
//! Why: the tables are meant to be read directly by DuckDB and pyarrow, and a versioned table makes
//! every outside query carry a "latest version per Call-ID" window or it double-counts calls; a
//! rewrite keeps `SELECT count(*) FROM dialogs` true. The cost is rewriting one day's dialogs
//! (a few MB per million calls) per affected day, which is small next to scanning the captures.
//! A rewritten part names the parts it replaces in its footer (`sipidx.supersedes`), so a crash
//! between publishing it and deleting the old parts never shows a dialog twice to our reader; the
//! next [`recover`] deletes the superseded parts for outside readers too.

use super::columns::{schema_of, TableRow};
use super::record::{DialogKind, DialogRecord, MessageRecord};
use super::StoreError;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Footer key listing (comma-separated) the part file names a rewritten part replaces.
pub const SUPERSEDES_KEY: &str = "sipidx.supersedes";
/// Footer key holding the table name.
pub const TABLE_KEY: &str = "sipidx.table";
/// Bumped when a table's columns change incompatibly; written to every footer.
pub const SCHEMA_VERSION: &str = "1";
const SCHEMA_VERSION_KEY: &str = "sipidx.schema_version";

/// Tuning of the streaming writer.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Rows per Parquet row group; the writer holds at most one group per open day in memory.
    pub row_group_rows: usize,
    /// Rows buffered as owned records before they are turned into an Arrow batch.
    pub batch_rows: usize,
    /// A day's part is closed and a new one started after this many rows.
    pub max_rows_per_part: u64,
    /// More open days than this closes the oldest (captures are mostly in time order).
    pub max_open_days: usize,
    pub zstd_level: i32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            row_group_rows: 64 * 1024,
            batch_rows: 8 * 1024,
            max_rows_per_part: 4 * 1024 * 1024,
            max_open_days: 4,
            zstd_level: 3,
        }
    }
}

/// A published part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub path: PathBuf,
    pub day: NaiveDate,
    pub run: u64,
    pub n: u32,
    pub rows: u64,
}

/// Directory of a table inside the database directory.
pub fn table_dir(db: &Path, table: &str) -> PathBuf {
    db.join("tables").join(table)
}

/// UTC day of a nanosecond timestamp.
pub fn day_of(ts_ns: i64) -> NaiveDate {
    DateTime::from_timestamp_nanos(ts_ns).date_naive()
}

fn day_dir(table: &Path, day: NaiveDate) -> PathBuf {
    table.join(format!("date={}", day.format("%Y-%m-%d")))
}

fn part_name(run: u64, n: u32) -> String {
    format!("part-{run:06}-{n:05}.parquet")
}

/// Parses `part-<run>-<n>.parquet` into (run, n); anything else (including `.tmp`) is not a part.
pub fn parse_part_name(name: &str) -> Option<(u64, u32)> {
    let stem = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (run, n) = stem.split_once('-')?;
    Some((run.parse().ok()?, n.parse().ok()?))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// The day directories of a table, oldest first.
fn list_days(table: &Path) -> Result<Vec<(NaiveDate, PathBuf)>, StoreError> {
    let mut days = Vec::new();
    let entries = match fs::read_dir(table) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(days),
        Err(e) => return Err(io_err(table)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(table))?;
        let name = entry.file_name();
        let Some(date) = name.to_str().and_then(|n| n.strip_prefix("date=")) else {
            continue;
        };
        if let Ok(day) = NaiveDate::parse_from_str(date, "%Y-%m-%d") {
            days.push((day, entry.path()));
        }
    }
    days.sort();
    Ok(days)
}

/// Published parts of one day directory in (run, n) order, superseded ones included.
fn list_day_parts(day: NaiveDate, dir: &Path) -> Result<Vec<PartInfo>, StoreError> {
    let mut parts = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        if let Some((run, n)) = name.to_str().and_then(parse_part_name) {
            parts.push(PartInfo {
                path: entry.path(),
                day,
                run,
                n,
                rows: 0,
            });
        }
    }
    parts.sort_by_key(|p| (p.run, p.n));
    Ok(parts)
}

fn open_reader(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, StoreError> {
    let file = File::open(path).map_err(io_err(path))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| StoreError::parquet(path, e))
}

/// Parts of a day that are not replaced by another part, with their row counts.
fn live_day_parts(
    day: NaiveDate,
    dir: &Path,
) -> Result<(Vec<PartInfo>, Vec<PartInfo>), StoreError> {
    let mut parts = list_day_parts(day, dir)?;
    let mut superseded = HashSet::new();
    for p in &mut parts {
        let builder = open_reader(&p.path)?;
        let meta = builder.metadata().file_metadata();
        p.rows = meta.num_rows().max(0) as u64;
        for kv in meta.key_value_metadata().into_iter().flatten() {
            if kv.key == SUPERSEDES_KEY {
                let names = kv.value.as_deref().unwrap_or("");
                superseded.extend(names.split(',').filter(|s| !s.is_empty()).map(String::from));
            }
        }
    }
    Ok(parts.into_iter().partition(|p| {
        let name = p.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        !superseded.contains(name)
    }))
}

/// Highest part number a run already used in a table, so new parts never overwrite old ones.
fn next_part_number(table: &Path, run: u64) -> Result<u32, StoreError> {
    let mut next = 0;
    for (day, dir) in list_days(table)? {
        for p in list_day_parts(day, &dir)? {
            if p.run == run {
                next = next.max(p.n + 1);
            }
        }
    }
    Ok(next)
}

/// One part being written for one day.
struct OpenPart<R> {
    writer: ArrowWriter<File>,
    tmp: PathBuf,
    info: PartInfo,
    buf: Vec<R>,
}

/// Streaming writer of one table for one run. Rows may arrive in any day order.
/// Parts become visible only in [`TableWriter::finish`] (or when a day's part fills up);
/// a writer dropped without `finish` leaves only `.tmp` files, which readers ignore.
pub struct TableWriter<R: TableRow> {
    table: PathBuf,
    run: u64,
    opts: WriterOptions,
    schema: SchemaRef,
    next_n: u32,
    supersedes: Vec<String>,
    open: BTreeMap<NaiveDate, OpenPart<R>>,
    done: Vec<PartInfo>,
}

impl<R: TableRow> TableWriter<R> {
    pub fn create(db: &Path, run: u64, opts: WriterOptions) -> Result<Self, StoreError> {
        let table = table_dir(db, R::TABLE);
        let next_n = next_part_number(&table, run)?;
        Ok(TableWriter {
            table,
            run,
            opts,
            schema: Arc::new(schema_of::<R>()),
            next_n,
            supersedes: Vec::new(),
            open: BTreeMap::new(),
            done: Vec::new(),
        })
    }

    pub fn push(&mut self, row: R) -> Result<(), StoreError> {
        let day = day_of(row.partition_ts());
        if !self.open.contains_key(&day) {
            if self.open.len() >= self.opts.max_open_days.max(1) {
                let oldest = *self.open.keys().next().expect("open is not empty");
                self.close_day(oldest)?;
            }
            let part = self.start_part(day)?;
            self.open.insert(day, part);
        }
        let part = self.open.get_mut(&day).expect("inserted above");
        part.buf.push(row);
        part.info.rows += 1;
        if part.buf.len() >= self.opts.batch_rows.max(1) {
            Self::flush_buf(&self.schema, part)?;
        }
        if part.info.rows >= self.opts.max_rows_per_part {
            self.close_day(day)?;
        }
        Ok(())
    }

    /// Publishes every open part and returns all parts this writer published.
    pub fn finish(mut self) -> Result<Vec<PartInfo>, StoreError> {
        while let Some(&day) = self.open.keys().next() {
            self.close_day(day)?;
        }
        Ok(std::mem::take(&mut self.done))
    }

    fn start_part(&mut self, day: NaiveDate) -> Result<OpenPart<R>, StoreError> {
        let dir = day_dir(&self.table, day);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let n = self.next_n;
        self.next_n += 1;
        let path = dir.join(part_name(self.run, n));
        let tmp = path.with_extension("parquet.tmp");
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        let level =
            ZstdLevel::try_new(self.opts.zstd_level).map_err(|e| StoreError::parquet(&tmp, e))?;
        let mut kv = vec![
            KeyValue::new(TABLE_KEY.to_owned(), R::TABLE.to_owned()),
            KeyValue::new(SCHEMA_VERSION_KEY.to_owned(), SCHEMA_VERSION.to_owned()),
        ];
        if !self.supersedes.is_empty() {
            kv.push(KeyValue::new(
                SUPERSEDES_KEY.to_owned(),
                self.supersedes.join(","),
            ));
        }
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_size(self.opts.row_group_rows.max(1))
            .set_created_by(concat!("sipidx ", env!("CARGO_PKG_VERSION")).to_owned())
            .set_key_value_metadata(Some(kv))
            .build();
        let writer = ArrowWriter::try_new(file, self.schema.clone(), Some(props))
            .map_err(|e| StoreError::parquet(&tmp, e))?;
        Ok(OpenPart {
            writer,
            tmp,
            info: PartInfo {
                path,
                day,
                run: self.run,
                n,
                rows: 0,
            },
            buf: Vec::with_capacity(self.opts.batch_rows.min(64 * 1024)),
        })
    }

    fn flush_buf(schema: &SchemaRef, part: &mut OpenPart<R>) -> Result<(), StoreError> {
        if part.buf.is_empty() {
            return Ok(());
        }
        let arrays = R::columns().iter().map(|c| c.build(&part.buf)).collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays)
            .map_err(|e| StoreError::Arrow(e.to_string()))?;
        part.writer
            .write(&batch)
            .map_err(|e| StoreError::parquet(&part.tmp, e))?;
        part.buf.clear();
        Ok(())
    }

    fn close_day(&mut self, day: NaiveDate) -> Result<(), StoreError> {
        let Some(mut part) = self.open.remove(&day) else {
            return Ok(());
        };
        Self::flush_buf(&self.schema, &mut part)?;
        part.writer
            .finish()
            .map_err(|e| StoreError::parquet(&part.tmp, e))?;
        part.writer.inner().sync_all().map_err(io_err(&part.tmp))?;
        drop(part.writer);
        fs::rename(&part.tmp, &part.info.path).map_err(io_err(&part.info.path))?;
        sync_dir(part.info.path.parent().expect("part has a day dir"))?;
        self.done.push(part.info);
        Ok(())
    }
}

/// Deletes every part (and `.tmp` leftover) a run wrote to a table, e.g. before re-indexing the
/// run's files. Empty day directories are removed. Returns the number of files deleted.
pub fn remove_parts(db: &Path, table: &str, run: u64) -> Result<usize, StoreError> {
    let table = table_dir(db, table);
    let mut removed = 0;
    for (_, dir) in list_days(&table)? {
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let published = name.strip_suffix(".tmp").unwrap_or(name);
            if parse_part_name(published).is_some_and(|(r, _)| r == run) {
                fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
                removed += 1;
            }
        }
        sync_dir(&dir)?;
        // Only succeeds when empty, which is exactly when the day should go.
        let _ = fs::remove_dir(&dir);
    }
    Ok(removed)
}

/// Crash recovery for every table: deletes `.tmp` leftovers and parts that a published part
/// supersedes. Call with the database lock held, before writing. Returns files deleted.
pub fn recover(db: &Path) -> Result<usize, StoreError> {
    let tables = db.join("tables");
    let entries = match fs::read_dir(&tables) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(&tables)(e)),
    };
    let mut removed = 0;
    for table in entries {
        let table = table.map_err(io_err(&tables))?.path();
        for (day, dir) in list_days(&table)? {
            for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
                let entry = entry.map_err(io_err(&dir))?;
                if entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.ends_with(".parquet.tmp"))
                {
                    fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
                    removed += 1;
                }
            }
            let (_, dead) = live_day_parts(day, &dir)?;
            for p in &dead {
                fs::remove_file(&p.path).map_err(io_err(&p.path))?;
                removed += 1;
            }
            sync_dir(&dir)?;
        }
    }
    Ok(removed)
}

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

    fn contains(&self, day: NaiveDate) -> bool {
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
struct PartRows<R> {
    path: PathBuf,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    rows: std::vec::IntoIter<R>,
}

impl<R: TableRow> PartRows<R> {
    fn open(path: &Path, batch_rows: usize) -> Result<Self, StoreError> {
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
const MERGE_BATCH_ROWS: usize = 1024;

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

impl<R: TableRow> TableWriter<R> {
    fn create_at(table: PathBuf, run: u64, next_n: u32, supersedes: Vec<String>) -> Self {
        TableWriter {
            table,
            run,
            opts: WriterOptions {
                // A rewrite must land in one part so that one footer retires all old parts.
                max_rows_per_part: u64::MAX,
                ..WriterOptions::default()
            },
            schema: Arc::new(schema_of::<R>()),
            next_n,
            supersedes,
            open: BTreeMap::new(),
            done: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Part listing and footers for checkers (`index::verify`): every file as it lies on disk, so that
// a checker reads parts through the store and never parses Parquet itself.
// ---------------------------------------------------------------------------------------------

/// Subdirectory of the database directory holding the tables (what [`table_dir`] joins).
pub const TABLES_DIR: &str = "tables";

/// A part file in a table's day directory, as a checker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartFile {
    pub path: PathBuf,
    pub name: String,
    pub run: u64,
    pub n: u32,
}

/// One subdirectory of a table: its parts in (run, n) order and its `.tmp` leftovers.
#[derive(Debug, Default)]
pub struct DayParts {
    pub parts: Vec<PartFile>,
    pub leftovers: Vec<PathBuf>,
}

/// Every subdirectory of `table` in name order (a stray one is listed too, for the checker to
/// see), with the part files and `.tmp` leftovers in it; other names are ignored. A missing
/// table is empty.
pub fn list_parts(table: &Path) -> Result<Vec<DayParts>, StoreError> {
    let mut days = Vec::new();
    let entries = match fs::read_dir(table) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(days),
        Err(e) => return Err(io_err(table)(e)),
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut day = DayParts::default();
        let mut names: Vec<_> = fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .flatten()
            .map(|e| e.path())
            .collect();
        names.sort();
        for path in names {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some((run, n)) = parse_part_name(&name) {
                day.parts.push(PartFile { path, name, run, n });
            } else if name.ends_with(".tmp") {
                day.leftovers.push(path);
            }
        }
        day.parts.sort_by_key(|p| (p.run, p.n));
        days.push(day);
    }
    Ok(days)
}

/// What a part's footer says, and whether its schema is the one `R` writes.
#[derive(Debug, Default)]
pub struct Footer {
    /// Columns (`name:type`) in one schema but not the other; empty when only nullability or
    /// order differ. `None` when the schema is the writer's.
    pub schema_differs: Option<Vec<String>>,
    pub table: Option<String>,
    pub schema_version: Option<String>,
    /// Names of the parts this one supersedes.
    pub supersedes: Vec<String>,
}

/// Reads the footer of the part at `path` as a part of table `R` (see [`Footer`]).
pub fn read_footer<R: TableRow>(path: &Path) -> Result<Footer, StoreError> {
    let builder = open_reader(path)?;
    let mut footer = Footer::default();
    let want = schema_of::<R>();
    let have = builder.schema();
    if have.fields() != want.fields() {
        let names = |s: &arrow::datatypes::Schema| {
            s.fields()
                .iter()
                .map(|f| format!("{}:{}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
        };
        let (h, w) = (names(have), names(&want));
        let differ = w
            .iter()
            .filter(|c| !h.contains(c))
            .chain(h.iter().filter(|c| !w.contains(c)))
            .cloned()
            .collect();
        footer.schema_differs = Some(differ);
    }
    let meta = builder.metadata().file_metadata();
    for kv in meta.key_value_metadata().into_iter().flatten() {
        match kv.key.as_str() {
            SUPERSEDES_KEY => footer.supersedes.extend(
                kv.value
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            ),
            TABLE_KEY => footer.table = kv.value.clone(),
            SCHEMA_VERSION_KEY => footer.schema_version = kv.value.clone(),
            _ => {}
        }
    }
    Ok(footer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::{DialogState, EndedBy, Transport};

    const DAY_NS: i64 = 86_400 * 1_000_000_000;
    // 2024-03-01T00:00:00Z
    const T0: i64 = 1_709_251_200 * 1_000_000_000;

    fn msg(i: u32, ts_ns: i64) -> MessageRecord {
        MessageRecord {
            ts_ns,
            src_ip: format!("10.0.0.{}", i % 250),
            dst_ip: "2001:db8::1".into(),
            src_port: 5060,
            dst_port: 5080 + (i % 3) as u16,
            transport: if i.is_multiple_of(2) {
                Transport::Udp
            } else {
                Transport::Tcp
            },
            method: i.is_multiple_of(2).then(|| "INVITE".to_owned()),
            status: (i % 2 == 1).then_some(180),
            call_id: format!("call-{}", i / 2),
            cseq_num: Some(i),
            from_user: Some(format!("+49232312{i:02}")),
            vlan: i.is_multiple_of(5).then_some(42),
            size: 400 + i,
            text: "must not be stored in the table".into(),
            file_id: 7,
            offset: 24 + u64::from(i) * 1000,
            record_len: 500,
            hep_capture_id: None,
            hep_mirror_capture_id: None,
            scanner: i == 3,
            ..Default::default()
        }
    }

    fn dialog(call_id: &str, start_ns: i64, state: DialogState) -> DialogRecord {
        DialogRecord {
            call_id: call_id.into(),
            kind: DialogKind::Call,
            state,
            final_status: Some(200),
            start_ns,
            end_ns: start_ns + 60_000_000_000,
            invite_ns: Some(start_ns),
            answer_ns: Some(start_ns + 2_000_000_000),
            pdd_ms: Some(1234.5),
            duration_s: Some(58.0),
            ended_by: Some(EndedBy::Callee),
            from_user: Some("alice".into()),
            to_user: Some("+4923231234".into()),
            src_ip: "192.0.2.1".into(),
            dst_ip: "192.0.2.2".into(),
            src_port: 5060,
            dst_port: 5060,
            messages: 7,
            correlation_id: call_id.into(),
            ..Default::default()
        }
    }

    fn write_messages(
        db: &Path,
        run: u64,
        rows: Vec<MessageRecord>,
        opts: WriterOptions,
    ) -> Vec<PartInfo> {
        let mut w = TableWriter::<MessageRecord>::create(db, run, opts).unwrap();
        for r in rows {
            w.push(r).unwrap();
        }
        w.finish().unwrap()
    }

    fn files_under(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p.strip_prefix(dir).unwrap().display().to_string());
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn messages_round_trip_across_batches_and_row_groups() {
        let db = tempfile::tempdir().unwrap();
        let rows: Vec<_> = (0..1000)
            .map(|i| msg(i, T0 + i64::from(i) * 1_000_000))
            .collect();
        let opts = WriterOptions {
            batch_rows: 64,
            row_group_rows: 100,
            ..Default::default()
        };
        let parts = write_messages(db.path(), 1, rows.clone(), opts);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].rows, 1000);
        let back = read_messages(db.path(), None, None).unwrap();
        let expect: Vec<_> = rows
            .into_iter()
            .map(|mut r| {
                r.text.clear();
                r
            })
            .collect();
        assert_eq!(back, expect);
        let meta = open_reader(&parts[0].path).unwrap().metadata().clone();
        assert_eq!(meta.num_row_groups(), 10);
    }

    #[test]
    fn rows_land_in_the_utc_day_of_their_timestamp() {
        let db = tempfile::tempdir().unwrap();
        let rows = vec![
            msg(0, T0 - 1),          // 2024-02-29T23:59:59.999999999
            msg(1, T0),              // 2024-03-01
            msg(2, T0 + DAY_NS - 1), // 2024-03-01
            msg(3, T0 + DAY_NS),     // 2024-03-02
            msg(4, T0 - 1),
        ];
        write_messages(db.path(), 12, rows, WriterOptions::default());
        assert_eq!(
            files_under(&db.path().join("tables")),
            [
                "messages/date=2024-02-29/part-000012-00000.parquet",
                "messages/date=2024-03-01/part-000012-00001.parquet",
                "messages/date=2024-03-02/part-000012-00002.parquet",
            ]
        );
        let day1 = read_messages(db.path(), Some(T0), Some(T0 + DAY_NS)).unwrap();
        assert_eq!(
            day1.iter().map(|m| m.ts_ns).collect::<Vec<_>>(),
            [T0, T0 + DAY_NS - 1]
        );
        let first = read_messages(db.path(), None, Some(T0)).unwrap();
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|m| m.ts_ns == T0 - 1));
    }

    #[test]
    fn full_parts_roll_over_and_closing_old_days_bounds_open_writers() {
        let db = tempfile::tempdir().unwrap();
        let opts = WriterOptions {
            max_rows_per_part: 3,
            max_open_days: 1,
            ..Default::default()
        };
        // Day A, day B, then day A again: A must be closed once B opens, then reopened.
        let mut rows: Vec<_> = (0..4).map(|i| msg(i, T0 + i64::from(i))).collect();
        rows.push(msg(4, T0 + DAY_NS));
        rows.push(msg(5, T0 + 5));
        let parts = write_messages(db.path(), 3, rows, opts);
        let shape: Vec<_> = parts
            .iter()
            .map(|p| (p.day.to_string(), p.n, p.rows))
            .collect();
        assert_eq!(
            shape,
            [
                ("2024-03-01".to_owned(), 0, 3),
                ("2024-03-01".to_owned(), 1, 1),
                ("2024-03-02".to_owned(), 2, 1),
                ("2024-03-01".to_owned(), 3, 1),
            ]
        );
        assert_eq!(read_messages(db.path(), None, None).unwrap().len(), 6);
    }

    #[test]
    fn tmp_leftovers_are_ignored_and_recovered() {
        let db = tempfile::tempdir().unwrap();
        write_messages(db.path(), 1, vec![msg(0, T0)], WriterOptions::default());
        // A crashed writer: an unfinished part, plus garbage with the tmp name.
        let mut w =
            TableWriter::<MessageRecord>::create(db.path(), 2, WriterOptions::default()).unwrap();
        w.push(msg(1, T0 + 1)).unwrap();
        drop(w);
        let day = db.path().join("tables/messages/date=2024-03-01");
        fs::write(day.join("part-000003-00000.parquet.tmp"), b"not parquet").unwrap();
        assert!(day.join("part-000002-00000.parquet.tmp").exists());
        assert_eq!(read_messages(db.path(), None, None).unwrap().len(), 1);
        assert_eq!(recover(db.path()).unwrap(), 2);
        assert_eq!(files_under(&day), ["part-000001-00000.parquet"]);
    }

    #[test]
    fn remove_parts_deletes_only_that_run() {
        let db = tempfile::tempdir().unwrap();
        write_messages(
            db.path(),
            1,
            vec![msg(0, T0), msg(1, T0 + DAY_NS)],
            WriterOptions::default(),
        );
        write_messages(
            db.path(),
            2,
            vec![msg(2, T0), msg(3, T0 + 2 * DAY_NS)],
            WriterOptions::default(),
        );
        // A run id reused without removal must not overwrite its earlier parts.
        write_messages(db.path(), 2, vec![msg(4, T0)], WriterOptions::default());
        assert_eq!(read_messages(db.path(), None, None).unwrap().len(), 5);
        assert_eq!(remove_parts(db.path(), "messages", 2).unwrap(), 3);
        let left = read_messages(db.path(), None, None).unwrap();
        assert_eq!(left.iter().map(|m| m.size).collect::<Vec<_>>(), [400, 401]);
        // The day only run 2 used is gone.
        assert!(!db.path().join("tables/messages/date=2024-03-03").exists());
    }

    #[test]
    fn upsert_replaces_dialogs_by_call_id_and_moves_days() {
        let db = tempfile::tempdir().unwrap();
        upsert_dialogs(
            db.path(),
            1,
            vec![
                dialog("a", T0 + 10, DialogState::InProgress),
                dialog("b", T0 + 20, DialogState::Answered),
                dialog("c", T0 + DAY_NS, DialogState::Failed),
            ],
            &[],
        )
        .unwrap();
        // A later file completes "a" and shows "c" really began the day before.
        let mut a = dialog("a", T0 + 10, DialogState::Answered);
        a.messages = 12;
        let c = dialog("c", T0 + 5, DialogState::Canceled);
        upsert_dialogs(
            db.path(),
            2,
            vec![a.clone(), c.clone()],
            &[day_of(T0 + DAY_NS)],
        )
        .unwrap();
        let all = read_dialogs(db.path(), &DialogFilter::default()).unwrap();
        let got: Vec<_> = all
            .iter()
            .map(|d| (d.call_id.as_str(), d.state, d.messages))
            .collect();
        assert_eq!(
            got,
            [
                ("c", DialogState::Canceled, 7),
                ("a", DialogState::Answered, 12),
                ("b", DialogState::Answered, 7)
            ]
        );
        assert_eq!(all[0], c);
        assert_eq!(all[1], a);
        // Day 2 lost its only dialog and is gone; day 1 holds exactly one part.
        assert_eq!(
            files_under(&db.path().join("tables")),
            ["dialogs/date=2024-03-01/part-000002-00000.parquet"]
        );
        let f = DialogFilter {
            to_user: Some("2323".into()),
            since_ns: Some(T0 + 10),
            ..Default::default()
        };
        let ids: Vec<_> = read_dialogs(db.path(), &f)
            .unwrap()
            .into_iter()
            .map(|d| d.call_id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn delete_rows_rewrites_only_parts_holding_them_and_remove_parts_undoes_it() {
        let db = tempfile::tempdir().unwrap();
        let mut a: Vec<_> = (0..6).map(|i| msg(i, T0 + i64::from(i))).collect();
        for (i, m) in a.iter_mut().enumerate() {
            m.file_id = 1 + (i % 2) as u32;
        }
        write_messages(db.path(), 1, a, WriterOptions::default());
        let mut b = msg(10, T0 + DAY_NS);
        b.file_id = 2;
        write_messages(db.path(), 2, vec![b], WriterOptions::default());
        let mut gone = Vec::new();
        let n = delete_rows::<MessageRecord>(
            db.path(),
            3,
            DayRange::from_ns(Some(T0), Some(T0 + 1)),
            |m| m.file_id == 2,
            |m| gone.push(m.cseq_num.unwrap()),
        )
        .unwrap();
        assert_eq!(n, 3);
        assert_eq!(gone, [1, 3, 5], "only the day asked for");
        let left: Vec<_> = read_messages(db.path(), None, None)
            .unwrap()
            .into_iter()
            .map(|m| (m.cseq_num.unwrap(), m.file_id))
            .collect();
        assert_eq!(left, [(0, 1), (2, 1), (4, 1), (10, 2)]);
        // a run that dies before its commit is undone by deleting its parts
        remove_parts(db.path(), "messages", 3).unwrap();
        assert_eq!(read_messages(db.path(), None, None).unwrap().len(), 7);
        // committed: recover deletes the superseded part; nothing matching leaves parts alone
        delete_rows::<MessageRecord>(
            db.path(),
            3,
            DayRange::default(),
            |m| m.file_id == 1,
            |_| {},
        )
        .unwrap();
        assert_eq!(recover(db.path()).unwrap(), 1);
        assert_eq!(
            files_under(&db.path().join("tables")),
            [
                "messages/date=2024-03-01/part-000003-00000.parquet",
                "messages/date=2024-03-02/part-000002-00000.parquet",
            ]
        );
        assert_eq!(read_messages(db.path(), None, None).unwrap().len(), 4);
    }

    #[test]
    fn upsert_can_remove_rows_that_no_longer_exist() {
        let db = tempfile::tempdir().unwrap();
        upsert_dialogs(
            db.path(),
            1,
            vec![
                dialog("a", T0, DialogState::Answered),
                dialog("b", T0 + 5, DialogState::Answered),
            ],
            &[],
        )
        .unwrap();
        upsert_rows_removing(
            db.path(),
            2,
            vec![dialog("a", T0, DialogState::Failed)],
            &HashSet::from(["b".to_string()]),
            &[day_of(T0)],
            true,
            |d: &DialogRecord| &d.call_id,
            |a, b| a.call_id.cmp(&b.call_id),
        )
        .unwrap();
        let all = read_dialogs(db.path(), &DialogFilter::default()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].state, DialogState::Failed);
    }

    #[test]
    fn upsert_merges_several_old_parts_with_sorted_new_rows_batch_by_batch() {
        let db = tempfile::tempdir().unwrap();
        // two live parts in one day (plain appends), each sorted, more rows than a merge batch
        let n = MERGE_BATCH_ROWS as i64 * 2 + 7;
        for (run, parity) in [(1, 0), (2, 1)] {
            let mut w =
                TableWriter::<DialogRecord>::create(db.path(), run, WriterOptions::default())
                    .unwrap();
            for i in (0..n).filter(|i| i % 2 == parity) {
                w.push(dialog(
                    &format!("c{i:05}"),
                    T0 + i * 10,
                    DialogState::Answered,
                ))
                .unwrap();
            }
            w.finish().unwrap();
        }
        // new rows: one replaces c00004 (and moves it), one is new; c00003 is dropped as replaced
        let new = vec![
            dialog("c00004", T0 + 15, DialogState::Failed),
            dialog("zz", T0 + 10 * n, DialogState::Answered),
        ];
        let keys = ["c00004", "c00003"];
        let order = |a: &DialogRecord, b: &DialogRecord| {
            (a.start_ns, &a.call_id).cmp(&(b.start_ns, &b.call_id))
        };
        let parts = upsert_sorted(
            db.path(),
            3,
            new.into_iter(),
            &[],
            &|r: &DialogRecord| keys.contains(&r.call_id.as_str()),
            true,
            order,
        )
        .unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].rows, n as u64);
        let mut got = Vec::new();
        read_part::<DialogRecord>(&parts[0].path, &mut |d| {
            got.push((d.start_ns - T0, d.call_id, d.state));
            Ok(())
        })
        .unwrap();
        assert!(got
            .windows(2)
            .all(|w| (w[0].0, &w[0].1) < (w[1].0, &w[1].1)));
        assert_eq!(
            got[..5].iter().map(|g| g.1.as_str()).collect::<Vec<_>>(),
            ["c00000", "c00001", "c00004", "c00002", "c00005"],
            "c00004 moved between c00001 and c00002, c00003 replaced away"
        );
        assert_eq!(got[2], (15, "c00004".to_string(), DialogState::Failed));
        assert_eq!(got.last().unwrap().1, "zz");
        // rows that go back to an earlier day are refused, not written out of order
        let back = vec![
            dialog("a", T0 + DAY_NS, DialogState::Answered),
            dialog("b", T0, DialogState::Answered),
        ];
        let err = upsert_sorted(db.path(), 4, back.into_iter(), &[], &|_| false, true, order)
            .unwrap_err()
            .to_string();
        assert!(err.contains("day order"), "{err}");
    }

    #[test]
    fn superseded_parts_left_by_a_crash_are_hidden_then_removed() {
        let db = tempfile::tempdir().unwrap();
        upsert_dialogs(
            db.path(),
            1,
            vec![dialog("a", T0, DialogState::InProgress)],
            &[],
        )
        .unwrap();
        let day = db.path().join("tables/dialogs/date=2024-03-01");
        let old = day.join("part-000001-00000.parquet");
        let kept = day.join("kept-old.bin");
        fs::copy(&old, &kept).unwrap();
        upsert_dialogs(
            db.path(),
            2,
            vec![dialog("a", T0, DialogState::Answered)],
            &[],
        )
        .unwrap();
        // Simulate the crash window: the old part is back next to its replacement.
        fs::rename(&kept, &old).unwrap();
        let all = read_dialogs(db.path(), &DialogFilter::default()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].state, DialogState::Answered);
        assert_eq!(recover(db.path()).unwrap(), 1);
        assert!(!old.exists());
        assert_eq!(
            read_dialogs(db.path(), &DialogFilter::default())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn unknown_enum_word_in_a_file_is_reported_not_defaulted() {
        let db = tempfile::tempdir().unwrap();
        let parts = write_messages(db.path(), 1, vec![msg(0, T0)], WriterOptions::default());
        // Rewrite the part with transport = "quic" through plain arrow.
        let batch = {
            let mut b = Vec::new();
            read_part::<MessageRecord>(&parts[0].path, &mut |m| {
                b.push(m);
                Ok(())
            })
            .unwrap();
            let cols: Vec<_> = MessageRecord::columns()
                .iter()
                .map(|c| {
                    if c.name == "transport" {
                        Arc::new(arrow::array::StringArray::from(vec!["quic"])) as _
                    } else {
                        c.build(&b)
                    }
                })
                .collect();
            RecordBatch::try_new(Arc::new(schema_of::<MessageRecord>()), cols).unwrap()
        };
        let mut w =
            ArrowWriter::try_new(File::create(&parts[0].path).unwrap(), batch.schema(), None)
                .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let err = read_messages(db.path(), None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("transport") && err.contains("quic"), "{err}");
    }

    /// Outside readers (pyarrow, DuckDB) see the Hive layout, the types and the values.
    #[test]
    fn tables_are_readable_by_pyarrow_and_duckdb() {
        let probe = std::process::Command::new("python3")
            .args(["-c", "import pyarrow, duckdb"])
            .output();
        if !probe.map(|o| o.status.success()).unwrap_or(false) {
            eprintln!("SKIPPED tables_are_readable_by_pyarrow_and_duckdb: python3 lacks pyarrow or duckdb");
            return;
        }
        let db = tempfile::tempdir().unwrap();
        let rows: Vec<_> = (0..300)
            .map(|i| msg(i, T0 + i64::from(i) * (DAY_NS / 200)))
            .collect();
        write_messages(
            db.path(),
            1,
            rows,
            WriterOptions {
                batch_rows: 50,
                ..Default::default()
            },
        );
        upsert_dialogs(
            db.path(),
            1,
            vec![
                dialog("x", T0, DialogState::Answered),
                dialog("y", T0 + DAY_NS, DialogState::Final(404)),
            ],
            &[],
        )
        .unwrap();
        // A leftover tmp must not break outside readers that glob *.parquet.
        fs::write(
            db.path()
                .join("tables/messages/date=2024-03-01/part-000009-00000.parquet.tmp"),
            b"x",
        )
        .unwrap();
        let script = r#"
import sys, pyarrow.dataset as ds, duckdb
db = sys.argv[1]
m = ds.dataset(db + "/tables/messages", format="parquet", partitioning="hive",
               exclude_invalid_files=True, ignore_prefixes=[".", "_"])
t = m.to_table(filter=ds.field("date") == "2024-03-02")
print("pa_day2", t.num_rows)
print("pa_types", m.schema.field("ts").type, m.schema.field("src_port").type, m.schema.field("vlan").type)
con = duckdb.connect()
glob = db + "/tables/messages/*/*.parquet"
print("dk_count", con.execute(f"select count(*) from read_parquet('{glob}', hive_partitioning=true)").fetchone()[0])
print("dk_invites", con.execute(f"select count(*) from read_parquet('{glob}') where method = 'INVITE'").fetchone()[0])
print("dk_days", con.execute(f"select count(distinct date) from read_parquet('{glob}', hive_partitioning=true)").fetchone()[0])
print("dk_user", con.execute(f"select from_user from read_parquet('{glob}') where cseq_num = 17").fetchone()[0])
dg = db + "/tables/dialogs/*/*.parquet"
r = con.execute(f"""select call_id, state, epoch_ns("end") - epoch_ns(start), pdd_ms, ended_by, worst_mos is null
                    from read_parquet('{dg}') order by start""").fetchall()
print("dk_dialogs", r)
"#;
        let out = std::process::Command::new("python3")
            .args(["-c", script, db.path().to_str().unwrap()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expect_day2 = (0..300)
            .filter(|i| (i * (DAY_NS / 200)) / DAY_NS == 1)
            .count();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines[0], format!("pa_day2 {expect_day2}"));
        assert_eq!(lines[1], "pa_types timestamp[ns, tz=UTC] uint16 uint16");
        assert_eq!(lines[2], "dk_count 300");
        assert_eq!(lines[3], "dk_invites 150");
        assert_eq!(lines[4], "dk_days 2");
        assert_eq!(lines[5], "dk_user +4923231217");
        assert_eq!(
            lines[6],
            "dk_dialogs [('x', 'answered', 60000000000, 1234.5, 'callee', True), \
             ('y', '404', 60000000000, 1234.5, 'callee', True)]"
        );
    }
}
