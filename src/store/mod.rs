//! The storage layer of a database directory: Parquet tables (`tables/`) and the tantivy index of
//! SIP messages (`text/`). It takes owned records and knows nothing of packets, SIP parsing or the CLI.
//!
//! Layout of a database directory (each format is documented in `schemas/`):
//! ```text
//! <db>/tables/messages/date=YYYY-MM-DD/part-<run>-<n>.parquet   one row per SIP message
//! <db>/tables/dialogs/date=YYYY-MM-DD/part-<run>-<n>.parquet    one row per Call-ID
//! <db>/tables/rtp_streams/date=…/part-<run>-<n>.parquet         one row per RTP stream
//! <db>/tables/rtcp_reports/date=…/part-<run>-<n>.parquet        one row per RTCP report block
//! <db>/tables/qos_reports/date=…/part-<run>-<n>.parquet         one row per endpoint quality report
//! <db>/text/                                                    tantivy index of the messages
//! ```
//! The catalog (which files were indexed by which run) belongs to the index pipeline.

mod columns;
pub mod parquet;
pub mod record;
mod status;
pub mod text;
// The module's earlier name, still used by the re-exports below and by code on other branches.
pub use self::text as text_index;

pub use self::columns::{schema_of, TableRow};
pub use self::parquet::{
    read_dialogs, read_messages, recover, remove_parts, upsert_dialogs, DialogFilter, PartInfo,
    TableWriter, WriterOptions,
};
pub use self::record::{
    DialogKind, DialogRecord, DialogState, EndedBy, MessageRecord, QosReportRecord,
    RtcpReportRecord, RtpStreamRecord, Transport,
};
pub use self::status::StatusFilter;
pub use self::text_index::{Hit, SortOrder, TextFilter, TextIndex, TextIndexWriter};

use std::path::{Path, PathBuf};

/// Subdirectory of the database directory holding the tantivy index.
pub const TEXT_DIR: &str = "text";

/// Where the text index of a database directory lives.
pub fn text_dir(db: &Path) -> PathBuf {
    db.join(TEXT_DIR)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: parquet: {msg}")]
    Parquet { path: PathBuf, msg: String },
    #[error("arrow: {0}")]
    Arrow(String),
    #[error("{path}: corrupt table part: {msg}")]
    Corrupt { path: PathBuf, msg: String },
    #[error("text index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("schema: {0}")]
    Schema(String),
    #[error("query: {0}")]
    Query(String),
}

impl StoreError {
    pub(crate) fn parquet(path: &Path, e: impl std::fmt::Display) -> Self {
        StoreError::Parquet {
            path: path.to_owned(),
            msg: e.to_string(),
        }
    }
}

#[cfg(test)]
mod schema_docs {
    //! schemas/*.md must describe exactly what the writers produce (house rule 7).
    use super::*;
    use arrow::datatypes::{DataType, TimeUnit};
    use std::collections::BTreeMap;
    use tantivy::schema::{FieldType, IndexRecordOption};

    /// Rows of the first Markdown table under `## <section>`, keyed by the first cell.
    fn doc_table(file: &str, section: &str) -> BTreeMap<String, Vec<String>> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let body = text
            .split_once(&format!("## {section}\n"))
            .unwrap_or_else(|| panic!("{file} has no '## {section}'"))
            .1;
        let mut rows = BTreeMap::new();
        for line in body
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
        {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect();
            let prev = rows.insert(cells[0].clone(), cells[1..].to_vec());
            assert!(prev.is_none(), "{file}: {} documented twice", cells[0]);
        }
        assert!(!rows.is_empty(), "{file}: empty table");
        rows
    }

    fn arrow_type_name(t: &DataType) -> String {
        match t {
            DataType::Timestamp(TimeUnit::Nanosecond, Some(tz)) => format!("timestamp[ns, {tz}]"),
            DataType::Utf8 => "utf8".into(),
            DataType::UInt16 => "uint16".into(),
            DataType::UInt32 => "uint32".into(),
            DataType::UInt64 => "uint64".into(),
            DataType::Int64 => "int64".into(),
            DataType::Float64 => "float64".into(),
            DataType::Boolean => "bool".into(),
            other => format!("undocumentable {other:?}"),
        }
    }

    fn check_table<R: TableRow>(file: &str) {
        let doc = doc_table(file, "Columns");
        let schema = schema_of::<R>();
        let mut code = BTreeMap::new();
        for f in schema.fields() {
            let nullable = if f.is_nullable() { "yes" } else { "no" };
            code.insert(
                f.name().clone(),
                vec![arrow_type_name(f.data_type()), nullable.to_owned()],
            );
        }
        for (name, cells) in &doc {
            let c = code.get(name).unwrap_or_else(|| {
                panic!("{file} documents {name}, the writer has no such column")
            });
            assert_eq!(
                &cells[..2],
                &c[..],
                "{file}: column {name} (type, nullable)"
            );
            assert!(!cells[2].is_empty(), "{file}: column {name} has no meaning");
        }
        for name in code.keys() {
            assert!(doc.contains_key(name), "{file} lacks column {name}");
        }
    }

    #[test]
    fn messages_md_matches_the_writer() {
        check_table::<MessageRecord>("messages.md");
    }

    #[test]
    fn dialogs_md_matches_the_writer() {
        check_table::<DialogRecord>("dialogs.md");
    }

    #[test]
    fn rtp_streams_md_matches_the_writer() {
        check_table::<record::RtpStreamRecord>("rtp_streams.md");
    }

    #[test]
    fn rtcp_reports_md_matches_the_writer() {
        check_table::<record::RtcpReportRecord>("rtcp_reports.md");
    }

    #[test]
    fn qos_reports_md_matches_the_writer() {
        check_table::<record::QosReportRecord>("qos_reports.md");
    }

    #[test]
    fn text_index_md_matches_the_schema() {
        let doc = doc_table("text_index.md", "Fields");
        let schema = text_index::schema();
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
        let mut code = BTreeMap::new();
        for (_, entry) in schema.fields() {
            let ft = entry.field_type();
            let ty = match ft {
                FieldType::Str(_) => "str",
                FieldType::U64(_) => "u64",
                FieldType::I64(_) => "i64",
                FieldType::Bool(_) => "bool",
                _ => "undocumentable",
            };
            let indexing = match ft {
                FieldType::Str(o) => match o.get_indexing_options() {
                    None => "no".to_owned(),
                    Some(i) => {
                        let rec = match i.index_option() {
                            IndexRecordOption::Basic => "basic",
                            IndexRecordOption::WithFreqs => "freq",
                            IndexRecordOption::WithFreqsAndPositions => "position",
                        };
                        format!("{}/{rec}", i.tokenizer())
                    }
                },
                _ => yes_no(entry.is_indexed()),
            };
            code.insert(
                entry.name().to_owned(),
                vec![
                    ty.to_owned(),
                    indexing,
                    yes_no(entry.is_stored()),
                    yes_no(entry.is_fast()),
                ],
            );
        }
        for (name, cells) in &doc {
            let c = code.get(name).unwrap_or_else(|| {
                panic!("text_index.md documents {name}, the schema has no such field")
            });
            assert_eq!(
                &cells[..4],
                &c[..],
                "text_index.md: field {name} (type, indexing, stored, fast)"
            );
            assert!(
                !cells[4].is_empty(),
                "text_index.md: field {name} has no meaning"
            );
        }
        for name in code.keys() {
            assert!(doc.contains_key(name), "text_index.md lacks field {name}");
        }
    }
}
