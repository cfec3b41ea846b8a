//! Every name the index gives a path inside a database directory, in one place (schemas/db.md
//! documents them); run, window, verify, spill, media and dialogs take their paths from here.
//!
//! The names must agree across all of them for crash safety: recovery finds a dead run's leftovers
//! by these names, and `verify` judges the directory by them.
use std::path::{Path, PathBuf};

pub use crate::store::parquet::TABLES_DIR;
pub use crate::store::TEXT_DIR;

/// The catalog: the capture files indexed and the last committed run (the commit point).
pub const CATALOG_FILE: &str = "catalog.json";
/// A run's announcement (its number and file ids) until it commits or is rolled back.
pub const PENDING: &str = "pending.json";
/// A rebuild in progress: the path list of a full reindex, or a window job.
pub const REINDEX: &str = "reindex.json";
/// Held locked by the one writer.
pub const LOCK: &str = "LOCK";
/// Sorted runs spilled beyond `--dialog-memory`, one subdirectory per run.
pub const SPILL_DIR: &str = "spill";
/// State carried between runs: the media state and the per-file dialog parts.
pub const STATE_DIR: &str = "state";
/// Per-file dialog parts (`<file_id>-<run>.json.zst`), under [`STATE_DIR`].
pub const DIALOG_PARTS_DIR: &str = "state/dialogs";

/// The paths of one database directory.
#[derive(Clone, Copy, Debug)]
pub struct DbPaths<'a>(pub &'a Path);

impl DbPaths<'_> {
    pub fn catalog(self) -> PathBuf {
        self.0.join(CATALOG_FILE)
    }
    pub fn pending(self) -> PathBuf {
        self.0.join(PENDING)
    }
    pub fn reindex(self) -> PathBuf {
        self.0.join(REINDEX)
    }
    pub fn lock(self) -> PathBuf {
        self.0.join(LOCK)
    }
    /// The sibling a file named `name` is written to before its atomic rename.
    pub fn tmp(self, name: &str) -> PathBuf {
        self.0.join(format!("{name}.tmp"))
    }
    pub fn spill(self) -> PathBuf {
        self.0.join(SPILL_DIR)
    }
    pub fn state(self) -> PathBuf {
        self.0.join(STATE_DIR)
    }
    /// The media state a run leaves for the next.
    pub fn media_state(self, run: u64) -> PathBuf {
        self.state().join(format!("media-{run}.json.zst"))
    }
    pub fn dialog_parts(self) -> PathBuf {
        self.0.join(DIALOG_PARTS_DIR)
    }
    pub fn text(self) -> PathBuf {
        self.0.join(TEXT_DIR)
    }
    pub fn tables(self) -> PathBuf {
        self.0.join(TABLES_DIR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store builds its own paths (it sits below the index); they must be the ones named here.
    #[test]
    fn the_store_uses_the_names_of_the_layout() {
        let db = Path::new("/db");
        let p = DbPaths(db);
        assert_eq!(crate::store::text_dir(db), p.text());
        assert_eq!(
            crate::store::parquet::table_dir(db, "dialogs"),
            p.tables().join("dialogs")
        );
        assert!(p.dialog_parts().starts_with(p.state()));
    }
}
