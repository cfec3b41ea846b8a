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
//!
//! Files: `layout` (directories, part names, recovery), `writer`, `reader`, `upsert` (the rewrite
//! path); the footer keys every part carries are here.

mod layout;
mod reader;
mod upsert;
mod writer;

pub use layout::*;
pub use reader::*;
pub use upsert::*;
pub use writer::*;

/// Footer key listing (comma-separated) the part file names a rewritten part replaces.
pub const SUPERSEDES_KEY: &str = "sipidx.supersedes";
/// Footer key holding the table name.
pub const TABLE_KEY: &str = "sipidx.table";
/// Bumped when a table's columns change incompatibly; written to every footer.
pub const SCHEMA_VERSION: &str = "1";
pub(super) const SCHEMA_VERSION_KEY: &str = "sipidx.schema_version";

#[cfg(test)]
mod tests;
