//! Opening a DB for the queries: a missing DB is an error that names it and says how to make one;
//! an empty one is not (the query matches nothing). The catalog gives file paths and dedup counts.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::index::catalog::{Catalog, CATALOG_FILE};
use crate::query::stats::FileCounts;
use crate::store::{self, TextIndex};

pub struct Db {
    pub path: PathBuf,
    pub catalog: Catalog,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        if !path.join(CATALOG_FILE).is_file() {
            let what = if path.is_dir() {
                "is not a sipidx database (no catalog.json)"
            } else {
                "does not exist"
            };
            anyhow::bail!(
                "{}: {what}; build one with `sipidx index --db {} CAPTURES...` \
                 (or point --db / $SIPIDX_DB at one)",
                path.display(),
                path.display()
            );
        }
        let catalog = Catalog::load(path).with_context(|| format!("{}", path.display()))?;
        Ok(Db {
            path: path.to_owned(),
            catalog,
        })
    }

    /// The text index; `None` when no run has written one yet.
    pub fn text_index(&self) -> Result<Option<TextIndex>> {
        let dir = store::text_dir(&self.path);
        if !dir.join("meta.json").is_file() {
            return Ok(None);
        }
        let index = TextIndex::open_or_create(&dir)
            .with_context(|| format!("{}: text index", self.path.display()))?;
        Ok(Some(index))
    }

    /// Paths of the indexed files by id (files that could not be read hold no rows).
    pub fn file_paths(&self) -> HashMap<u32, String> {
        self.catalog
            .files
            .iter()
            .map(|f| (f.id, f.path.clone()))
            .collect()
    }

    pub fn file_counts(&self) -> HashMap<u32, FileCounts> {
        self.catalog
            .files
            .iter()
            .map(|f| {
                (
                    f.id,
                    FileCounts {
                        hep_mirrors: f.hep_mirrors,
                        span_duplicates: f.span_duplicates,
                        first_ts_ns: f.first_ts_ns,
                        last_ts_ns: f.last_ts_ns,
                    },
                )
            })
            .collect()
    }

    /// Says on stderr that the DB holds nothing yet, when so: an empty result is then expected.
    pub fn note_if_empty(&self) {
        if self.catalog.files.is_empty() {
            eprintln!(
                "sipidx: {}: no capture files indexed yet (sipidx index --db {} CAPTURES...)",
                self.path.display(),
                self.path.display()
            );
        }
    }
}
