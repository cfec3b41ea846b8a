//! One renderer for every row type the queries return: the aligned table for people, NDJSON or
//! CSV (the csv crate, a header naming the JSON fields even when no row matched) for scripts.
use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

use super::table::{write_table, Cell, Column};
use super::{Format, Palette};
use crate::query::rows::Row;

/// How a row type shows as a table for people.
pub trait TableView: Sized {
    fn write_table(
        rows: &[Self],
        p: &Palette,
        width: Option<usize>,
        out: &mut dyn Write,
    ) -> io::Result<()>;
}

/// Rows shown in aligned columns that are cut to fit the terminal (`search`, `calls`).
pub trait Columns {
    const COLUMNS: &'static [Column];
    /// The row's cells, sanitised, in `COLUMNS` order.
    fn cells(&self, p: &Palette) -> Vec<Cell>;
}

/// Every [`Columns`] row type shows as the one aligned table; only `streams` has a layout of its own.
impl<R: Columns> TableView for R {
    fn write_table(
        rows: &[Self],
        p: &Palette,
        width: Option<usize>,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        write_columns(rows, p, width, out)
    }
}

/// The aligned table of [`Columns`] rows.
pub fn write_columns<R: Columns>(
    rows: &[R],
    p: &Palette,
    width: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let cells: Vec<Vec<Cell>> = rows.iter().map(|r| r.cells(p)).collect();
    write_table(out, R::COLUMNS, &cells, width, p.header, p.reset)
}

/// Writes `rows` in `format` and flushes.
pub fn write_rows<R: Row + TableView>(
    rows: &[R],
    format: Format,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Json => write_json(rows, out)?,
        Format::Csv => write_csv(rows, out)?,
        Format::Table { color, width } => R::write_table(rows, &Palette::new(color), width, out)?,
    }
    out.flush()
}

/// One JSON object per line.
pub fn write_json<R: Serialize>(rows: &[R], out: &mut dyn Write) -> io::Result<()> {
    for r in rows {
        serde_json::to_writer(&mut *out, r).map_err(io::Error::from)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// RFC 4180 with a header of `R::CSV_FIELDS`: null is an empty cell, a nested value its JSON text.
pub fn write_csv<R: Row>(rows: &[R], out: &mut dyn Write) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(R::CSV_FIELDS)?;
    for r in rows {
        let v = serde_json::to_value(r).map_err(io::Error::from)?;
        w.write_record(R::CSV_FIELDS.iter().map(|f| cell(&v[*f])))?;
    }
    w.flush()
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::rows::{CallRow, StreamRow};
    use crate::store::record::RtpStreamRecord;

    #[test]
    fn csv_has_the_header_without_rows_and_quotes_as_rfc4180() {
        let mut out = Vec::new();
        write_rows::<CallRow>(&[], Format::Csv, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap().trim_end(),
            CallRow::FIELDS.join(",")
        );
        let row = StreamRow {
            stream: RtpStreamRecord {
                call_id: Some("a,\"b\"".into()),
                ..Default::default()
            },
        };
        let mut out = Vec::new();
        write_rows(&[row], Format::Csv, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let second = text.lines().nth(1).unwrap();
        assert!(
            second.starts_with("\"a,\"\"b\"\"\",1970-01-01T"),
            "{second}"
        );
    }

    #[test]
    fn json_is_one_object_per_line() {
        let rows = [CallRow::default(), CallRow::default()];
        let mut out = Vec::new();
        write_rows(&rows, Format::Json, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2);
        for l in text.lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            assert!(v.is_object());
        }
    }
}
