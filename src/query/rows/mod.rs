//! The rows the queries return: the documented JSON contract of `search`, `calls`, `streams`,
//! `quality`, `stats` and `grep --json`, shared by the CLI and the HTTP layer. Never formats text.
//! Each row type names its `type` tag and its fields in order; tests hold the two together.
use serde::ser::Error as _;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::store::{DialogKind, EndedBy};
use crate::text::rfc3339;

mod calls;
mod quality;
mod search;
mod stats;
mod streams;
#[cfg(test)]
mod tests;

pub use self::calls::CallRow;
pub use self::quality::{QosReportRow, QualityRow, ReportedRow, RtcpReportRow};
pub use self::search::{MessageRow, MirrorJson, SearchRow};
pub use self::stats::{Counted, TallyRow};
pub use self::streams::StreamRow;

/// A documented row: its `"type"` value and its field names in order (the CSV header, also when
/// no row matched).
pub trait Row: Serialize {
    const TYPE: &'static str;
    const FIELDS: &'static [&'static str];
    /// The CSV columns: every field unless the row nests values (then a flat subset).
    const CSV_FIELDS: &'static [&'static str] = Self::FIELDS;
}

fn ser_time<S: Serializer>(ns: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ns))
}

fn ser_opt_time<S: Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ns {
        Some(ns) => s.serialize_str(&rfc3339(*ns)),
        None => s.serialize_none(),
    }
}

fn ser_kind<S: Serializer>(k: &DialogKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

fn ser_ended_by<S: Serializer>(e: &Option<EndedBy>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_str(e.as_str()),
        None => s.serialize_none(),
    }
}

/// The stored record as a JSON object with `type` set and the named string columns (JSON text in
/// the table) parsed; keys in name order, as these rows have always been printed. A column that
/// holds no valid JSON is `null`.
fn object_with<T: Serialize, S: Serializer>(
    record: &T,
    row_type: &str,
    parsed: &[&str],
    extra: impl FnOnce(&mut serde_json::Map<String, Value>) -> Result<(), serde_json::Error>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut v = serde_json::to_value(record).map_err(S::Error::custom)?;
    let Value::Object(m) = &mut v else {
        return Err(S::Error::custom("a record is not a JSON object"));
    };
    m.insert("type".into(), Value::from(row_type));
    for key in parsed {
        if let Some(Value::String(t)) = m.get(*key) {
            let value: Value = serde_json::from_str(t).unwrap_or(Value::Null);
            m.insert((*key).into(), value);
        }
    }
    extra(m).map_err(S::Error::custom)?;
    v.serialize(s)
}
