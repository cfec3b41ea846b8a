//! Where parts live and how they are published and cleaned up: table and day directories, part
//! names, the live parts of a day (superseded ones left out), crash recovery and run removal.

use super::*;
use crate::store::{schema_of, StoreError, TableRow};
use chrono::{DateTime, NaiveDate};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

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

pub(super) fn day_dir(table: &Path, day: NaiveDate) -> PathBuf {
    table.join(format!("date={}", day.format("%Y-%m-%d")))
}

pub(super) fn part_name(run: u64, n: u32) -> String {
    format!("part-{run:06}-{n:05}.parquet")
}

/// Parses `part-<run>-<n>.parquet` into (run, n); anything else (including `.tmp`) is not a part.
pub fn parse_part_name(name: &str) -> Option<(u64, u32)> {
    let stem = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (run, n) = stem.split_once('-')?;
    Some((run.parse().ok()?, n.parse().ok()?))
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// The day directories of a table, oldest first.
pub(super) fn list_days(table: &Path) -> Result<Vec<(NaiveDate, PathBuf)>, StoreError> {
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

pub(super) fn open_reader(
    path: &Path,
) -> Result<ParquetRecordBatchReaderBuilder<File>, StoreError> {
    let file = File::open(path).map_err(io_err(path))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| StoreError::parquet(path, e))
}

/// Parts of a day that are not replaced by another part, with their row counts.
pub(super) fn live_day_parts(
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
pub(super) fn next_part_number(table: &Path, run: u64) -> Result<u32, StoreError> {
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
