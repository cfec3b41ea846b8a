//! Queries over capture files and the index: grep, search, calls, streams, quality, stats.
//! Each takes a validated plan and returns rows (`rows`), which `output` renders; nothing here prints.
use std::path::PathBuf;

pub mod calls;
pub mod db;
pub mod filter;
pub mod grep;
pub mod params;
pub mod quality;
pub mod rows;
pub mod search;
pub mod stats;
pub mod streams;

/// Why a DB query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Param(#[from] params::ParamError),
    /// No DB at the path: the message says how to build one.
    #[error(
        "{}: {}; build one with `sipidx index --db {} CAPTURES...` \
         (or point --db / $SIPIDX_DB at one)",
        path.display(),
        if *is_dir { "is not a sipidx database (no catalog.json)" } else { "does not exist" },
        path.display()
    )]
    NoDb { path: PathBuf, is_dir: bool },
    #[error("{}", path.display())]
    Catalog {
        path: PathBuf,
        #[source]
        source: crate::index::IndexError,
    },
    #[error("{}: text index", path.display())]
    TextIndex {
        path: PathBuf,
        #[source]
        source: crate::store::StoreError,
    },
}
