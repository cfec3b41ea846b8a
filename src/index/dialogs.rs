//! Dialog summaries (sip::dialog) to and from the `dialogs` table rows (store::record), and the
//! per-file dialog parts (`state/dialogs/`) that let a window reindex re-merge a dialog exactly.
//!
//! The row keeps the full summary as JSON so a later run can extend the dialog exactly. That merge
//! cannot be undone, so every run also keeps what each file contributed to each dialog: one
//! `<file_id>-<run>.json.zst` per file (the summaries its scan produced, sorted by Call-ID). A
//! window reindex replaces the parts of the files it rescans and re-merges each touched dialog
//! from all its parts. Parts are written without fsync: a part lost or damaged by a crash reads
//! as missing, and a missing part is made again by rescanning its file.
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::IndexError;

use crate::sip::dialog::{DialogKind as SipKind, DialogSummary};
use crate::sip::scanner::is_scanner_user_agent;
use crate::store::record::{DialogKind, DialogRecord, DialogState, EndedBy};

/// Build the table row. `flooders` are sources over the request-rate threshold in this run.
pub fn dialog_record(
    d: &DialogSummary,
    correlation_id: String,
    flooders: &BTreeSet<IpAddr>,
) -> DialogRecord {
    let first = d.first.as_ref();
    let fin = d.final_response();
    let scanner = d
        .user_agents
        .iter()
        .any(|ua| is_scanner_user_agent(ua.as_bytes()))
        || first.is_some_and(|f| flooders.contains(&f.src_ip));
    DialogRecord {
        call_id: d.call_id.clone(),
        kind: match d.kind() {
            SipKind::Call => DialogKind::Call,
            SipKind::Registration => DialogKind::Registration,
            SipKind::Other => DialogKind::Other,
        },
        state: d
            .state()
            .to_string()
            .parse::<DialogState>()
            .unwrap_or(DialogState::InProgress),
        final_status: fin.map(|f| f.code),
        final_reason: fin.map(|f| f.reason.clone()),
        start_ns: d.start_ns.unwrap_or(0),
        end_ns: d.end_ns.unwrap_or(0),
        invite_ns: d.invite_ns(),
        first_provisional_ns: d.first_provisional_ns(),
        answer_ns: d.answer_ns(),
        ack_ns: d.ack_ns(),
        bye_ns: d.bye_ns(),
        cancel_ns: d.cancel_ns(),
        pdd_ms: d.pdd_ms(),
        setup_ms: d.setup_ms(),
        duration_s: d.duration_s(),
        ended_by: d.ended_by().map(|e| {
            if e == "caller" {
                EndedBy::Caller
            } else {
                EndedBy::Callee
            }
        }),
        reinvites: d.reinvites(),
        auth_challenges: d.auth_challenges(),
        from_user: first.and_then(|f| f.from_user.clone()),
        to_user: first.and_then(|f| f.to_user.clone()),
        ruri_user: first.and_then(|f| f.ruri_user.clone()),
        from_host: first.and_then(|f| f.from_host.clone()),
        to_host: first.and_then(|f| f.to_host.clone()),
        src_ip: first.map(|f| f.src_ip.to_string()).unwrap_or_default(),
        dst_ip: first.map(|f| f.dst_ip.to_string()).unwrap_or_default(),
        src_port: first.map(|f| f.src_port).unwrap_or(0),
        dst_port: first.map(|f| f.dst_port).unwrap_or(0),
        user_agent: first
            .and_then(|f| f.user_agent.clone())
            .or_else(|| d.user_agents.first().cloned()),
        contact: d
            .register_contact()
            .map(str::to_string)
            .or_else(|| first.and_then(|f| f.contact.clone())),
        expires: d.register_expires(),
        messages: d.messages,
        correlation_id,
        scanner,
        worst_mos: None,
        max_loss_pct: None,
        max_jitter_ms: None,
        summary: serde_json::to_string(d).ok(),
    }
}

/// Where the per-file dialog parts live, under the database directory.
pub const PARTS_DIR: &str = "state/dialogs";

/// What one file contributed to every dialog it holds messages of.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FileParts {
    pub file_id: u32,
    /// The `--correlate-header` names the scan kept values of: a part made with other names
    /// lacks values the current rules may need.
    pub correlate_headers: Vec<String>,
    /// Sorted by Call-ID, so identical content gives identical bytes.
    pub dialogs: Vec<DialogSummary>,
}

fn parts_path(db: &Path, file_id: u32, run: u64) -> PathBuf {
    db.join(PARTS_DIR).join(format!("{file_id}-{run}.json.zst"))
}

/// `<file_id>-<run>.json.zst` → (file_id, run); `.tmp` leftovers and other names are not parts.
fn parse_parts_name(name: &str) -> Option<(u32, u64)> {
    let (id, run) = name.strip_suffix(".json.zst")?.split_once('-')?;
    Some((id.parse().ok()?, run.parse().ok()?))
}

/// Save the dialog parts of one file as written by `run`.
pub fn save_parts(
    db: &Path,
    file_id: u32,
    run: u64,
    correlate_headers: &[String],
    dialogs: &HashMap<String, DialogSummary>,
) -> Result<(), IndexError> {
    let mut list: Vec<&DialogSummary> = dialogs.values().collect();
    list.sort_by(|a, b| a.call_id.cmp(&b.call_id));
    #[derive(Serialize)]
    struct Out<'a> {
        file_id: u32,
        correlate_headers: &'a [String],
        dialogs: Vec<&'a DialogSummary>,
    }
    let json = serde_json::to_vec(&Out {
        file_id,
        correlate_headers,
        dialogs: list,
    })
    .expect("dialog parts serialise");
    let dir = db.join(PARTS_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| IndexError::io(&dir, e))?;
    let bytes = zstd::encode_all(&json[..], 3).map_err(|e| IndexError::io(&dir, e))?;
    let path = parts_path(db, file_id, run);
    let tmp = path.with_extension("zst.tmp");
    std::fs::write(&tmp, &bytes).map_err(|e| IndexError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| IndexError::io(&path, e))
}

/// The newest committed part version of every file: file id → run.
pub fn list_parts(db: &Path, last_run: u64) -> HashMap<u32, u64> {
    let mut out: HashMap<u32, u64> = HashMap::new();
    let Ok(entries) = std::fs::read_dir(db.join(PARTS_DIR)) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some((id, run)) = name.to_str().and_then(parse_parts_name) else {
            continue;
        };
        if run <= last_run {
            let v = out.entry(id).or_insert(run);
            *v = (*v).max(run);
        }
    }
    out
}

/// Read one file's parts; `None` when missing or unreadable (the caller rescans the file).
pub fn load_parts(db: &Path, file_id: u32, run: u64) -> Option<FileParts> {
    let f = std::fs::File::open(parts_path(db, file_id, run)).ok()?;
    let mut json = Vec::new();
    zstd::Decoder::new(f).ok()?.read_to_end(&mut json).ok()?;
    serde_json::from_slice::<FileParts>(&json)
        .ok()
        .filter(|p| p.file_id == file_id)
}

/// After a commit (`only_newer` false): keep only each file's newest version up to `last_run`.
/// In recovery (`only_newer` true): delete the versions of runs after `last_run`, which never
/// committed. `.tmp` leftovers go in both cases.
pub fn prune_parts(db: &Path, last_run: u64, only_newer: bool) {
    let dir = db.join(PARTS_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let newest = list_parts(db, last_run);
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let doomed = match parse_parts_name(name) {
            Some((id, run)) => {
                run > last_run || (!only_newer && newest.get(&id).is_some_and(|n| *n != run))
            }
            None => name.ends_with(".tmp"),
        };
        if doomed {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The mergeable summary stored in a row, if the row has one this version can read.
pub fn summary_of(rec: &DialogRecord) -> Option<DialogSummary> {
    rec.summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(call_id: &str, messages: u32) -> DialogSummary {
        DialogSummary {
            call_id: call_id.into(),
            messages,
            ..Default::default()
        }
    }

    #[test]
    fn parts_round_trip_and_prune_keeps_the_newest_committed_version() {
        let db = tempfile::tempdir().unwrap();
        let mut d = HashMap::new();
        d.insert("b".to_string(), summary("b", 2));
        d.insert("a".to_string(), summary("a", 1));
        save_parts(db.path(), 7, 1, &["X-Leg-ID".into()], &d).unwrap();
        d.insert("c".to_string(), summary("c", 3));
        save_parts(db.path(), 7, 3, &[], &d).unwrap();
        save_parts(db.path(), 8, 4, &[], &d).unwrap(); // an uncommitted run
        assert_eq!(list_parts(db.path(), 3), HashMap::from([(7, 3)]));
        let p = load_parts(db.path(), 7, 1).unwrap();
        assert_eq!(p.correlate_headers, ["X-Leg-ID"]);
        let ids: Vec<_> = p.dialogs.iter().map(|d| d.call_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"], "sorted by Call-ID");
        assert_eq!(load_parts(db.path(), 7, 3).unwrap().dialogs.len(), 3);
        prune_parts(db.path(), 3, true);
        assert!(
            load_parts(db.path(), 8, 4).is_none(),
            "uncommitted run removed"
        );
        assert!(
            load_parts(db.path(), 7, 1).is_some(),
            "recovery keeps old versions"
        );
        prune_parts(db.path(), 3, false);
        assert!(load_parts(db.path(), 7, 1).is_none());
        assert!(load_parts(db.path(), 7, 3).is_some());
    }

    #[test]
    fn a_damaged_part_reads_as_missing() {
        let db = tempfile::tempdir().unwrap();
        save_parts(db.path(), 1, 1, &[], &HashMap::new()).unwrap();
        std::fs::write(parts_path(db.path(), 1, 1), b"\x28\xb5\x2f\xfd garbage").unwrap();
        assert!(load_parts(db.path(), 1, 1).is_none());
        assert!(load_parts(db.path(), 2, 1).is_none());
    }
}
