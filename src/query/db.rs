//! Opening a DB for the queries: a missing DB is an error that names it and says how to make one;
//! an empty one is not (the query matches nothing). The catalog gives file paths and dedup counts.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::stats::FileCounts;
use super::QueryError;
use crate::index::catalog::{Catalog, CATALOG_FILE};
use crate::store::{self, TextIndex};

pub struct Db {
    pub path: PathBuf,
    pub catalog: Catalog,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, QueryError> {
        if !path.join(CATALOG_FILE).is_file() {
            return Err(QueryError::NoDb {
                path: path.to_owned(),
                is_dir: path.is_dir(),
            });
        }
        let catalog = Catalog::load(path).map_err(|source| QueryError::Catalog {
            path: path.to_owned(),
            source,
        })?;
        Ok(Db {
            path: path.to_owned(),
            catalog,
        })
    }

    /// The text index; `None` when no run has written one yet.
    pub fn text_index(&self) -> Result<Option<TextIndex>, QueryError> {
        let dir = store::text_dir(&self.path);
        if !dir.join("meta.json").is_file() {
            return Ok(None);
        }
        let index = TextIndex::open_or_create(&dir).map_err(|source| QueryError::TextIndex {
            path: self.path.clone(),
            source,
        })?;
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

    /// True when no capture file has been indexed yet: an empty result is then expected.
    pub fn is_empty(&self) -> bool {
        self.catalog.files.is_empty()
    }
}
