//! `sipidx verify`: checks that a database directory is sound — the catalog, every Parquet part,
//! the text index and the capture files — and lists what is wrong, each finding naming its file.
//!
//! Read-only: it takes the DB lock so that no `index` run changes the directory under it, and
//! fixes nothing (the next `sipidx index` finishes or rolls back an interrupted run). It judges the
//! *committed* view, what the DB holds once an interrupted run is rolled back: parts of runs after
//! the catalog's `last_run` are reported and left out of the counts, and only committed parts
//! retire the parts they supersede. Memory grows with the number of message rows (one 16-byte key
//! each) and of Call-IDs (one count each); the rows themselves are streamed part by part.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::catalog::{self, Catalog};
use super::layout::{CATALOG_FILE, PENDING, REINDEX};
use super::IndexError;
use crate::store::parquet::{self as pq, PartFile};
use crate::store::record::{
    DialogRecord, MessageRecord, QosReportRecord, RtcpReportRecord, RtpStreamRecord,
};
use crate::store::{self, StoreError, TableRow, TextIndex};

/// Examples named per finding: enough to find the rows, short enough to read.
const EXAMPLES: usize = 3;

/// How bad a finding is: a problem makes `verify` fail; a warning (a capture file moved away,
/// a harmless leftover) does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Problem,
    Warning,
}

/// What a finding is about; the names are stable (they appear in `verify --json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// catalog.json does not parse, or its ids are not unique / not below `next_file_id`.
    Catalog,
    /// pending.json or reindex.json: a run stopped before it finished.
    UnfinishedRun,
    /// A `.tmp` file left by an interrupted write (ignored by every reader).
    Leftover,
    /// A Parquet part that cannot be read, or whose footer or schema is not the writer's.
    Part,
    /// A part written by a run the catalog does not name (`run` > `last_run`).
    UncommittedPart,
    /// A part that a committed part supersedes, still on disk: outside readers count it twice.
    SupersededPart,
    /// The same message row twice (same packet location and message).
    DuplicateMessage,
    /// A message row whose `file_id` is not in the catalog.
    OrphanMessage,
    /// Message rows do not add up to the catalog's `sip_messages`.
    MessageCount,
    /// The same Call-ID in two dialog rows.
    DuplicateDialog,
    /// A dialog's `messages` differs from its message rows, or messages have no dialog.
    DialogMessages,
    /// The text index is missing, does not open, or its document count differs from the rows.
    TextIndex,
    /// A capture file in the catalog is missing or changed since it was indexed.
    CaptureFile,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Catalog => "catalog",
            Check::UnfinishedRun => "unfinished_run",
            Check::Leftover => "leftover",
            Check::Part => "part",
            Check::UncommittedPart => "uncommitted_part",
            Check::SupersededPart => "superseded_part",
            Check::DuplicateMessage => "duplicate_message",
            Check::OrphanMessage => "orphan_message",
            Check::MessageCount => "message_count",
            Check::DuplicateDialog => "duplicate_dialog",
            Check::DialogMessages => "dialog_messages",
            Check::TextIndex => "text_index",
            Check::CaptureFile => "capture_file",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing found wrong, with the file it concerns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub check: Check,
    pub path: PathBuf,
    pub message: String,
}

/// What `verify` looked at and found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub findings: Vec<Finding>,
    /// Capture files in the catalog.
    pub files: usize,
    /// Parquet parts examined, in all tables.
    pub parts: usize,
    /// Committed, live message rows.
    pub messages: u64,
    /// Committed, live dialog rows.
    pub dialogs: u64,
    /// Documents in the text index; `None` when it has none or did not open.
    pub text_documents: Option<u64>,
}

impl VerifyReport {
    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Problem)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.findings.len() - self.problems()
    }

    /// True when nothing is wrong (warnings allowed).
    pub fn is_sound(&self) -> bool {
        self.problems() == 0
    }

    fn problem(&mut self, check: Check, path: &Path, message: impl Into<String>) {
        self.push(Severity::Problem, check, path, message);
    }

    fn warning(&mut self, check: Check, path: &Path, message: impl Into<String>) {
        self.push(Severity::Warning, check, path, message);
    }

    fn push(&mut self, severity: Severity, check: Check, path: &Path, message: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            check,
            path: path.to_owned(),
            message: message.into(),
        });
    }
}

/// Whether `db` is a sipidx DB: it has a catalog, or a first run that stopped before its commit
/// left its pending.json (or a reindex its list).
pub fn is_db(db: &Path) -> bool {
    [CATALOG_FILE, PENDING, REINDEX]
        .iter()
        .any(|f| db.join(f).is_file())
}

/// Checks the DB at `db`. `Err` only when it cannot be checked at all: not a DB, locked by a
/// running `index`, or unreadable; everything else is a finding in the report.
pub fn verify(db: &Path) -> Result<VerifyReport, IndexError> {
    if !is_db(db) {
        let what = if db.is_dir() {
            "not a sipidx database (no catalog.json)"
        } else {
            "no such database directory"
        };
        return Err(IndexError::io(
            db,
            std::io::Error::new(std::io::ErrorKind::NotFound, what),
        ));
    }
    let mut report = VerifyReport::default();
    // The lock keeps an `index` run from changing the directory while we read it. A DB we may not
    // write (a read-only mount) cannot have a writer either, so it is checked without.
    let _lock = match super::txn::lock_db(db) {
        Ok(l) => Some(l),
        Err(e @ IndexError::Locked { .. }) => return Err(e),
        Err(_) => None,
    };
    let catalog_path = db.join(CATALOG_FILE);
    let catalog = match Catalog::load(db) {
        Ok(c) => Some(c),
        Err(e) => {
            report.problem(Check::Catalog, &catalog_path, e.to_string());
            None
        }
    };
    if let Some(c) = &catalog {
        check_catalog(c, &catalog_path, &mut report);
        report.files = c.files.len();
    }
    let last_run = catalog.as_ref().map(|c| c.last_run);
    let unfinished = check_unfinished(db, last_run, &mut report);

    let mut tables = Tables::default();
    scan_table::<MessageRecord>(db, last_run, &mut report, &mut tables)?;
    scan_table::<DialogRecord>(db, last_run, &mut report, &mut tables)?;
    scan_table::<RtpStreamRecord>(db, last_run, &mut report, &mut tables)?;
    scan_table::<RtcpReportRecord>(db, last_run, &mut report, &mut tables)?;
    scan_table::<QosReportRecord>(db, last_run, &mut report, &mut tables)?;
    report.messages = tables.messages;
    report.dialogs = tables.dialogs.len() as u64;

    if let Some(c) = &catalog {
        check_messages_against_catalog(db, c, &catalog_path, &tables, &mut report);
        check_capture_files(c, &mut report);
    }
    check_dialog_messages(db, &tables, &mut report);
    check_text_index(db, &tables, unfinished, &mut report);
    Ok(report)
}

fn check_catalog(c: &Catalog, path: &Path, report: &mut VerifyReport) {
    let mut seen = HashSet::new();
    for f in &c.files {
        if !seen.insert(f.id) {
            report.problem(
                Check::Catalog,
                path,
                format!("file id {} appears more than once", f.id),
            );
        }
        if f.id >= c.next_file_id {
            report.problem(
                Check::Catalog,
                path,
                format!(
                    "file id {} ({}) is not below next_file_id {}",
                    f.id, f.path, c.next_file_id
                ),
            );
        }
        if f.run > c.last_run {
            report.problem(
                Check::Catalog,
                path,
                format!(
                    "file id {} was indexed by run {}, after last_run {}",
                    f.id, f.run, c.last_run
                ),
            );
        }
    }
}

/// Reports pending.json / reindex.json; true when a run is unfinished (the text index then holds
/// documents of it that the next run deletes, so its count is not comparable).
fn check_unfinished(db: &Path, last_run: Option<u64>, report: &mut VerifyReport) -> bool {
    let mut unfinished = false;
    let pending = db.join(PENDING);
    if let Ok(bytes) = std::fs::read(&pending) {
        unfinished = true;
        let run = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["run"].as_u64());
        let msg = match (run, last_run) {
            (Some(r), Some(last)) if r <= last => format!(
                "run {r} committed but its clean-up did not finish; the next `sipidx index` \
                 finishes it"
            ),
            (Some(r), _) => format!(
                "run {r} stopped before its commit; the next `sipidx index` rolls it back and \
                 indexes its files again"
            ),
            (None, _) => "unreadable; the next `sipidx index` removes it".to_owned(),
        };
        report.problem(Check::UnfinishedRun, &pending, msg);
    }
    let reindex = db.join(REINDEX);
    if reindex.exists() {
        unfinished = true;
        report.problem(
            Check::UnfinishedRun,
            &reindex,
            "a reindex stopped before it finished; `sipidx reindex` resumes it",
        );
    }
    for name in [format!("{CATALOG_FILE}.tmp"), format!("{PENDING}.tmp")] {
        let p = db.join(name);
        if p.exists() {
            report.warning(
                Check::Leftover,
                &p,
                "left by an interrupted write; ignored, and removed by the next `sipidx index`",
            );
        }
    }
    unfinished
}

/// What the table scans collect for the cross-checks.
#[derive(Default)]
struct Tables {
    /// Committed live message rows.
    messages: u64,
    /// Message rows per file id, and per Call-ID.
    messages_by_file: HashMap<u32, u64>,
    messages_by_call: HashMap<String, u64>,
    /// Dialog `messages` per Call-ID (the first row of each).
    dialogs: HashMap<String, u64>,
}

/// The part files of a table, by day directory, in (run, n) order; `.tmp` leftovers are warned of.
fn list_parts(table: &Path, report: &mut VerifyReport) -> Result<Vec<Vec<PartFile>>, IndexError> {
    let days = pq::list_parts(table).map_err(|e| IndexError::Store {
        path: table.to_path_buf(),
        source: e,
    })?;
    Ok(days
        .into_iter()
        .map(|day| {
            for path in &day.leftovers {
                report.warning(
                    Check::Leftover,
                    path,
                    "left by an interrupted write; ignored, and removed by the next `sipidx index`",
                );
            }
            day.parts
        })
        .collect())
}

/// The footer of a part: whether its schema is the writer's, and the parts it supersedes.
fn read_footer<R: TableRow>(path: &Path) -> Result<Vec<String>, String> {
    let footer = pq::read_footer::<R>(path).map_err(|e| match e {
        StoreError::Io { source, .. } => source.to_string(),
        StoreError::Parquet { msg, .. } => format!("unreadable Parquet: {msg}"),
        other => other.to_string(),
    })?;
    if let Some(differ) = footer.schema_differs {
        return Err(format!(
            "schema differs from schemas/{}.md (e.g. {})",
            R::TABLE,
            if differ.is_empty() {
                "nullability or order".to_owned()
            } else {
                differ[..differ.len().min(EXAMPLES)].join(", ")
            }
        ));
    }
    if footer.table.as_deref() != Some(R::TABLE) {
        return Err(format!(
            "footer says table {:?}, it lies in tables/{}",
            footer.table.unwrap_or_default(),
            R::TABLE
        ));
    }
    if footer.schema_version.as_deref() != Some(pq::SCHEMA_VERSION) {
        return Err(format!(
            "footer schema version {:?}, expected {}",
            footer.schema_version.unwrap_or_default(),
            pq::SCHEMA_VERSION
        ));
    }
    Ok(footer.supersedes)
}

/// A message row's identity: its packet location and the message's own fields, so that two
/// messages framed from one TCP segment (same location) stay distinct.
fn message_key(m: &MessageRecord) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&m.file_id.to_le_bytes());
    h.update(&m.offset.to_le_bytes());
    h.update(&m.record_len.to_le_bytes());
    h.update(&m.ts_ns.to_le_bytes());
    h.update(&m.size.to_le_bytes());
    h.update(&m.src_port.to_le_bytes());
    h.update(&m.dst_port.to_le_bytes());
    h.update(m.src_ip.as_bytes());
    h.update(&[0]);
    h.update(m.dst_ip.as_bytes());
    h.update(&[0]);
    h.update(m.call_id.as_bytes());
    h.update(&[0]);
    h.update(&m.cseq_num.unwrap_or(u32::MAX).to_le_bytes());
    h.update(m.cseq_method.as_deref().unwrap_or("").as_bytes());
    h.update(&[0]);
    h.update(m.method.as_deref().unwrap_or("").as_bytes());
    h.update(&m.status.unwrap_or(0).to_le_bytes());
    h.digest128()
}

/// Reads every part of one table: readability, footer, schema, commit status, supersession;
/// messages and dialogs are collected for the cross-checks.
fn scan_table<R: TableRow + Inspect>(
    db: &Path,
    last_run: Option<u64>,
    report: &mut VerifyReport,
    tables: &mut Tables,
) -> Result<(), IndexError> {
    let dir = pq::table_dir(db, R::TABLE);
    let mut keys: HashMap<u128, usize> = HashMap::new();
    let mut part_paths: Vec<PathBuf> = Vec::new();
    // duplicates by (part, part of the first copy): count and an example
    let mut dups: BTreeMap<(usize, usize), (u64, String)> = BTreeMap::new();
    for day in list_parts(&dir, report)? {
        report.parts += day.len();
        let mut footers: Vec<Option<Vec<String>>> = Vec::with_capacity(day.len());
        for p in &day {
            match read_footer::<R>(&p.path) {
                Ok(s) => footers.push(Some(s)),
                Err(msg) => {
                    report.problem(Check::Part, &p.path, msg);
                    footers.push(None);
                }
            }
        }
        // only committed parts retire others: a rolled-back run's rewrite must not hide the
        // parts the DB falls back to
        let committed = |p: &PartFile| last_run.is_some_and(|l| p.run <= l);
        let mut superseded: HashMap<&str, &str> = HashMap::new();
        for (p, f) in day.iter().zip(&footers) {
            if let (true, Some(names)) = (committed(p), f) {
                for n in names {
                    superseded.insert(n, &p.name);
                }
            }
        }
        for (p, footer) in day.iter().zip(&footers) {
            if !committed(p) {
                report.problem(
                    Check::UncommittedPart,
                    &p.path,
                    format!(
                        "written by run {}, which the catalog does not name (last_run {}); the \
                         next `sipidx index` deletes it",
                        p.run,
                        last_run.map_or("unknown".to_owned(), |l| l.to_string())
                    ),
                );
                continue;
            }
            if let Some(by) = superseded.get(p.name.as_str()) {
                report.problem(
                    Check::SupersededPart,
                    &p.path,
                    format!(
                        "superseded by {by} but still on disk (a run's clean-up was cut short): \
                         outside readers (DuckDB, pyarrow) count its rows twice; the next \
                         `sipidx index` deletes it"
                    ),
                );
                continue;
            }
            if footer.is_none() {
                continue;
            }
            let me = part_paths.len();
            part_paths.push(p.path.clone());
            let read = pq::read_part::<R>(&p.path, &mut |row: R| {
                row.inspect(tables, &mut |key, example| match keys.get(&key) {
                    Some(&first) => {
                        let e = dups.entry((me, first)).or_insert_with(|| (0, example()));
                        e.0 += 1;
                    }
                    None => {
                        keys.insert(key, me);
                    }
                });
                Ok(())
            });
            if let Err(e) = read {
                let msg = match e {
                    StoreError::Corrupt { msg, .. } | StoreError::Parquet { msg, .. } => msg,
                    other => other.to_string(),
                };
                report.problem(Check::Part, &p.path, format!("rows unreadable: {msg}"));
            }
        }
    }
    for ((me, first), (n, example)) in dups {
        let (check, what) = R::DUPLICATE;
        let other = if me == first {
            "earlier rows of the same part".to_owned()
        } else {
            part_paths[first].display().to_string()
        };
        report.problem(
            check,
            &part_paths[me],
            format!("{n} {what} also in {other} (e.g. {example})"),
        );
    }
    Ok(())
}

/// Per-table hooks of [`scan_table`]: what a row contributes and how a duplicate is named.
trait Inspect {
    const DUPLICATE: (Check, &'static str);
    /// Adds the row to `tables` and reports its identity (`dup`) when duplicates matter.
    fn inspect(self, tables: &mut Tables, dup: &mut dyn FnMut(u128, &dyn Fn() -> String));
}

impl Inspect for MessageRecord {
    const DUPLICATE: (Check, &'static str) = (Check::DuplicateMessage, "message rows");
    fn inspect(self, tables: &mut Tables, dup: &mut dyn FnMut(u128, &dyn Fn() -> String)) {
        tables.messages += 1;
        *tables.messages_by_file.entry(self.file_id).or_default() += 1;
        dup(message_key(&self), &|| {
            format!(
                "file_id {} offset {} Call-ID {}",
                self.file_id,
                self.offset,
                crate::text::sanitize(self.call_id.as_bytes(), false)
            )
        });
        match tables.messages_by_call.get_mut(&self.call_id) {
            Some(n) => *n += 1,
            None => {
                tables.messages_by_call.insert(self.call_id, 1);
            }
        }
    }
}

impl Inspect for DialogRecord {
    const DUPLICATE: (Check, &'static str) = (Check::DuplicateDialog, "dialog rows (Call-IDs)");
    fn inspect(self, tables: &mut Tables, dup: &mut dyn FnMut(u128, &dyn Fn() -> String)) {
        let key = xxhash_rust::xxh3::xxh3_128(self.call_id.as_bytes());
        dup(key, &|| {
            format!(
                "Call-ID {}",
                crate::text::sanitize(self.call_id.as_bytes(), false)
            )
        });
        tables
            .dialogs
            .entry(self.call_id)
            .or_insert(u64::from(self.messages));
    }
}

macro_rules! read_only {
    ($($t:ty),*) => {$(
        impl Inspect for $t {
            const DUPLICATE: (Check, &'static str) = (Check::Part, "rows");
            fn inspect(self, _: &mut Tables, _: &mut dyn FnMut(u128, &dyn Fn() -> String)) {}
        }
    )*};
}
read_only!(RtpStreamRecord, RtcpReportRecord, QosReportRecord);

fn check_messages_against_catalog(
    db: &Path,
    c: &Catalog,
    catalog_path: &Path,
    tables: &Tables,
    report: &mut VerifyReport,
) {
    let known: HashSet<u32> = c.files.iter().map(|f| f.id).collect();
    let mut orphans: Vec<(u32, u64)> = tables
        .messages_by_file
        .iter()
        .filter(|(id, _)| !known.contains(id))
        .map(|(id, n)| (*id, *n))
        .collect();
    orphans.sort();
    for (id, n) in orphans {
        report.problem(
            Check::OrphanMessage,
            &pq::table_dir(db, "messages"),
            format!("{n} message rows have file_id {id}, which the catalog does not list"),
        );
    }
    // each file's scan wrote exactly its `sip_messages` rows (some may carry the file id of its
    // ring predecessor, where a message cut by the rotation began), so only the sums must agree
    let cataloged: u64 = c.files.iter().map(|f| f.sip_messages).sum();
    if cataloged != tables.messages {
        report.problem(
            Check::MessageCount,
            catalog_path,
            format!(
                "the catalog counts {cataloged} SIP messages, the messages table holds {} rows",
                tables.messages
            ),
        );
    }
}

fn check_dialog_messages(db: &Path, tables: &Tables, report: &mut VerifyReport) {
    let dir = pq::table_dir(db, "dialogs");
    let mut wrong = Vec::new();
    for (call_id, n) in &tables.dialogs {
        let rows = tables.messages_by_call.get(call_id).copied().unwrap_or(0);
        if rows != *n {
            wrong.push((call_id.as_str(), *n, rows));
        }
    }
    if !wrong.is_empty() {
        wrong.sort();
        let examples: Vec<String> = wrong
            .iter()
            .take(EXAMPLES)
            .map(|(id, n, rows)| {
                format!(
                    "{} says {n}, {rows} rows",
                    crate::text::sanitize(id.as_bytes(), false)
                )
            })
            .collect();
        report.problem(
            Check::DialogMessages,
            &dir,
            format!(
                "{} dialogs' message counts differ from their message rows (e.g. {})",
                wrong.len(),
                examples.join("; ")
            ),
        );
    }
    let mut lonely: Vec<&str> = tables
        .messages_by_call
        .keys()
        .filter(|id| !tables.dialogs.contains_key(*id))
        .map(String::as_str)
        .collect();
    if !lonely.is_empty() {
        lonely.sort();
        let examples: Vec<String> = lonely
            .iter()
            .take(EXAMPLES)
            .map(|id| crate::text::sanitize(id.as_bytes(), false).into_owned())
            .collect();
        report.problem(
            Check::DialogMessages,
            &dir,
            format!(
                "{} Call-IDs have message rows but no dialog row (e.g. {})",
                lonely.len(),
                examples.join(", ")
            ),
        );
    }
}

fn check_text_index(db: &Path, tables: &Tables, unfinished: bool, report: &mut VerifyReport) {
    let dir = store::text_dir(db);
    if !dir.join("meta.json").is_file() {
        if tables.messages > 0 {
            report.problem(
                Check::TextIndex,
                &dir,
                format!(
                    "missing (no meta.json) while the messages table holds {} rows",
                    tables.messages
                ),
            );
        }
        return;
    }
    // tantivy opens segment files lazily and names the one it misses in its error
    let opened = std::panic::catch_unwind(|| TextIndex::open_or_create(&dir));
    let index = match opened {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => {
            report.problem(Check::TextIndex, &dir, format!("does not open: {e}"));
            return;
        }
        Err(_) => {
            report.problem(Check::TextIndex, &dir, "does not open (tantivy panicked)");
            return;
        }
    };
    let docs = index.num_docs();
    report.text_documents = Some(docs);
    if unfinished {
        // the interrupted run's documents may be committed; the next run deletes them
        return;
    }
    if docs != tables.messages {
        report.problem(
            Check::TextIndex,
            &dir,
            format!(
                "{docs} documents, but the messages table holds {} rows",
                tables.messages
            ),
        );
    }
}

fn check_capture_files(c: &Catalog, report: &mut VerifyReport) {
    // a ring name reused for new content is a new catalog entry; the old one then no longer
    // matches the file, which is no fault of the DB
    let mut current: HashMap<&str, Option<(u64, String)>> = HashMap::new();
    for f in &c.files {
        let path = Path::new(&f.path);
        let now = current.entry(&f.path).or_insert_with(|| {
            let size = std::fs::metadata(path).ok()?.len();
            Some((size, catalog::fingerprint(path, size).ok()?))
        });
        let Some((size, fp)) = now else {
            report.warning(
                Check::CaptureFile,
                path,
                format!(
                    "missing (file id {}): its rows stay searchable, but the packets cannot be \
                     read again",
                    f.id
                ),
            );
            continue;
        };
        if *size == f.size && *fp == f.fingerprint {
            continue;
        }
        let reused = c
            .files
            .iter()
            .any(|g| g.path == f.path && g.size == *size && g.fingerprint == *fp);
        if reused {
            continue;
        }
        report.problem(
            Check::CaptureFile,
            path,
            format!(
                "changed since it was indexed as file id {} ({} bytes then, {size} now, or other \
                 content): its rows point at bytes that are gone; `sipidx reindex` rebuilds",
                f.id, f.size
            ),
        );
    }
}

#[cfg(test)]
mod tests;
