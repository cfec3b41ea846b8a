//! The commit protocol's moving parts shared by a run (`run`) and a window rebuild (`window`): the
//! DB lock, the `pending.json` announcement and the roll-back of a run that died before its commit.
//! The protocol itself is described in `run`'s module doc and schemas/db.md.
use std::fs::File;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::catalog::{self, Catalog};
use super::layout::{DbPaths, PENDING};
use super::{media, spill, IndexError};
use crate::store::parquet as pq;
use crate::store::text_index::TextIndex;
use crate::store::{self, StoreError};

/// The run a `pending.json` announces: its number and the file ids it takes.
#[derive(Serialize, Deserialize)]
pub(super) struct Pending {
    pub(super) run: u64,
    pub(super) first_file_id: u32,
    pub(super) end_file_id: u32,
}

impl Pending {
    /// Step 1 of the protocol: `pending.json` names the run before anything of it is written.
    pub(super) fn announce(&self, db: &Path) -> Result<(), IndexError> {
        let paths = DbPaths(db);
        catalog::write_atomic(
            &paths.tmp(PENDING),
            &paths.pending(),
            &serde_json::to_vec(self).expect("pending serialises"),
        )
    }
}

/// The database lock: one writer at a time; released when dropped.
pub struct DbLock {
    _file: File,
}

pub fn lock_db(db: &Path) -> Result<DbLock, IndexError> {
    std::fs::create_dir_all(db).map_err(|e| IndexError::io(db, e))?;
    let path = DbPaths(db).lock();
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| IndexError::io(&path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(DbLock { _file: f }),
        Err(std::fs::TryLockError::WouldBlock) => Err(IndexError::Locked {
            path: db.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(IndexError::io(&path, e)),
    }
}

pub(super) fn store_err(db: &Path, e: StoreError) -> IndexError {
    IndexError::Store {
        path: db.to_path_buf(),
        source: e,
    }
}

/// Undo an uncommitted run (see the module doc); called with the lock held.
pub fn recover(db: &Path, catalog: &Catalog) -> Result<(), IndexError> {
    let pending_path = DbPaths(db).pending();
    if let Ok(bytes) = std::fs::read(&pending_path) {
        if let Ok(p) = serde_json::from_slice::<Pending>(&bytes) {
            if p.run > catalog.last_run {
                for table in [
                    "messages",
                    "dialogs",
                    "rtp_streams",
                    "rtcp_reports",
                    "qos_reports",
                ] {
                    pq::remove_parts(db, table, p.run).map_err(|e| store_err(db, e))?;
                }
                let text = TextIndex::open_or_create(&store::text_dir(db))
                    .map_err(|e| store_err(db, e))?;
                let mut w = text.writer(1, 50_000_000).map_err(|e| store_err(db, e))?;
                for id in p.first_file_id.min(catalog.next_file_id)..p.end_file_id {
                    w.delete_file(id);
                }
                w.commit().map_err(|e| store_err(db, e))?;
                w.finish().map_err(|e| store_err(db, e))?;
            }
        }
        std::fs::remove_file(&pending_path).map_err(|e| IndexError::io(&pending_path, e))?;
    }
    media::prune_states(db, catalog.last_run, true);
    super::dialogs::prune_parts(db, catalog.last_run, true);
    spill::remove_all(db)?;
    pq::recover(db).map_err(|e| store_err(db, e))?;
    Ok(())
}
