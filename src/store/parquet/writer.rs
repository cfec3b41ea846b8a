//! The streaming, day-partitioned writer: rows buffered a batch at a time, at most one row group
//! per open day, parts published by write-fsync-rename when a day closes or the run finishes.

use super::*;
use crate::store::columns::{schema_of, TableRow};
use crate::store::StoreError;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// One part being written for one day.
pub(super) struct OpenPart<R> {
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
    pub(super) open: BTreeMap<NaiveDate, OpenPart<R>>,
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

    pub(super) fn start_part(&mut self, day: NaiveDate) -> Result<OpenPart<R>, StoreError> {
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

impl<R: TableRow> TableWriter<R> {
    pub(super) fn create_at(
        table: PathBuf,
        run: u64,
        next_n: u32,
        supersedes: Vec<String>,
    ) -> Self {
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
