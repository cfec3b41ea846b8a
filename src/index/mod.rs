//! The indexing pipeline: catalog of capture files, parallel scan, merge, atomic commit.
//! A run's rows become visible only when the catalog names its files (see `catalog`).

pub mod catalog;
pub mod dialog_stage;
pub mod dialogs;
pub mod layout;
pub mod media;
pub mod run;
pub mod scan;
pub mod scan_stage;
pub mod spill;
pub mod txn;
pub mod verify;
pub mod window;

pub use run::{run, IndexPlan, IndexReport, Progress};

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: corrupt: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error("{path}: another sipidx index run holds the lock on this DB; wait for it to finish")]
    Locked { path: PathBuf },
    #[error("{path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: crate::store::StoreError,
    },
}

impl IndexError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        IndexError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
