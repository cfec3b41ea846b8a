//! Dialog summaries (sip::dialog) to and from the `dialogs` table rows (store::record), and the
//! per-file dialog parts (`state/dialogs/`) that let a window reindex re-merge a dialog exactly.
//!
//! The row keeps the full summary as JSON so a later run can extend the dialog exactly. That merge
//! cannot be undone, so every run also keeps what each file contributed to each dialog: one
//! `<file_id>-<run>.json.zst` per file (zstd JSON lines: a header, then the summaries its scan
//! produced sorted by Call-ID, written and read as a stream; see schemas/db.md). A
//! window reindex replaces the parts of the files it rescans and re-merges each touched dialog
//! from all its parts. Parts are written without fsync: a part lost or damaged by a crash reads
//! as missing, and a missing part is made again by rescanning its file.
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spill::{RunReader, RunWriter};
use super::IndexError;

use crate::sip::correlate::{Leg, Legs};
use crate::sip::dialog::DialogSummary;
use crate::sip::scanner::is_scanner_user_agent;
use crate::store::record::DialogRecord;

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
        kind: d.kind(),
        state: d.state(),
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
        ended_by: d.ended_by(),
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
pub use super::layout::DIALOG_PARTS_DIR as PARTS_DIR;

/// What one file contributed to every dialog it holds messages of.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FileParts {
    pub file_id: u32,
    /// The `--correlate-header` names the scan kept values of: a part made with other names
    /// lacks values the current rules may need.
    pub correlate_headers: Vec<String>,
    /// Sorted by Call-ID, so identical content gives identical bytes.
    #[serde(default)]
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
    let mut w = PartsWriter::create(db, file_id, run, correlate_headers)?;
    for d in list {
        w.push(d)?;
    }
    w.finish()
}

#[derive(Serialize, Deserialize)]
struct PartsHeader {
    file_id: u32,
    correlate_headers: Vec<String>,
}

/// Writes one file's parts as they come (sorted by Call-ID): a header line, then one summary per
/// line, zstd-compressed, so that a file with millions of dialogs is never held whole.
pub struct PartsWriter {
    w: RunWriter,
    path: PathBuf,
    last: Option<String>,
}

impl PartsWriter {
    pub fn create(
        db: &Path,
        file_id: u32,
        run: u64,
        correlate_headers: &[String],
    ) -> Result<Self, IndexError> {
        let path = parts_path(db, file_id, run);
        let mut w = RunWriter::create(&path.with_extension("zst.tmp"))?;
        w.push(&PartsHeader {
            file_id,
            correlate_headers: correlate_headers.to_vec(),
        })?;
        Ok(PartsWriter {
            w,
            path,
            last: None,
        })
    }

    /// The next summary; Call-IDs must come in increasing order (identical content, same bytes).
    pub fn push(&mut self, d: &DialogSummary) -> Result<(), IndexError> {
        if self
            .last
            .as_deref()
            .is_some_and(|l| l >= d.call_id.as_str())
        {
            return Err(IndexError::Corrupt {
                path: self.path.clone(),
                what: format!("dialog parts out of order at {:?}", d.call_id),
            });
        }
        self.last = Some(d.call_id.clone());
        self.w.push(d)
    }

    pub fn finish(self) -> Result<(), IndexError> {
        let tmp = self.w.finish()?;
        std::fs::rename(&tmp, &self.path).map_err(|e| IndexError::io(&self.path, e))
    }
}

/// The summaries of one file's parts as a stream, sorted by Call-ID.
pub fn read_parts(
    db: &Path,
    file_id: u32,
    run: u64,
) -> Result<impl Iterator<Item = Result<DialogSummary, IndexError>> + Send + 'static, IndexError> {
    let path = parts_path(db, file_id, run);
    let mut r = RunReader::<DialogSummary>::open(&path)?;
    let header = r.next_line()?.ok_or_else(|| IndexError::Corrupt {
        path: path.clone(),
        what: "empty dialog parts".into(),
    })?;
    let h: PartsHeader = serde_json::from_str(header).map_err(|e| IndexError::Corrupt {
        path: path.clone(),
        what: e.to_string(),
    })?;
    if h.file_id != file_id {
        return Err(IndexError::Corrupt {
            path,
            what: format!("parts of file {} under the name of {file_id}", h.file_id),
        });
    }
    Ok(r)
}

/// Merges consecutive summaries of one Call-ID (a merge of sorted runs) into one.
pub fn merge_by_call_id<I>(it: I) -> impl Iterator<Item = Result<DialogSummary, IndexError>>
where
    I: Iterator<Item = Result<DialogSummary, IndexError>>,
{
    let mut it = it.peekable();
    std::iter::from_fn(move || {
        let mut d = match it.next()? {
            Ok(d) => d,
            Err(e) => return Some(Err(e)),
        };
        while let Some(Ok(n)) = it.peek() {
            if n.call_id != d.call_id {
                break;
            }
            let Some(Ok(n)) = it.next() else { break };
            d.merge(n);
        }
        Some(Ok(d))
    })
}

/// What a heap block of `len` bytes costs: the allocator rounds to 16 and adds a header.
fn block(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        len.next_multiple_of(16) + 16
    }
}

fn opt_len(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, |s| block(s.len()))
}

/// Heap bytes a summary holds (strings and vectors as allocator blocks): the measure of the
/// `--dialog-memory` budget. Calibrated on OPTIONS floods (`scripts/peak_rss.py`); slack of hash
/// tables and vectors that grow by doubling comes on top, so the budget is a target, not a cap.
pub fn approx_bytes(d: &DialogSummary) -> usize {
    use crate::sip::dialog::{FinalResponse, RegisterOk, RegisterRequest, Timed};
    use std::mem::size_of;
    let strings = |v: &[String]| {
        block(std::mem::size_of_val(v)) + v.iter().map(|s| block(s.len())).sum::<usize>()
    };
    let first = d.first.as_ref().map_or(0, |f| {
        block(f.method.len())
            + opt_len(&f.from_user)
            + opt_len(&f.from_host)
            + opt_len(&f.from_display)
            + opt_len(&f.from_tag)
            + opt_len(&f.to_user)
            + opt_len(&f.to_host)
            + opt_len(&f.ruri_user)
            + opt_len(&f.ruri_host)
            + opt_len(&f.user_agent)
            + opt_len(&f.contact)
            + opt_len(&f.x_call_id)
    });
    let finals = |v: &[FinalResponse]| {
        block(std::mem::size_of_val(v))
            + v.iter()
                .map(|f| block(f.method.len()) + block(f.reason.len()))
                .sum::<usize>()
    };
    size_of::<DialogSummary>()
        + block(d.call_id.len())
        + first
        + block(d.initial_invites.len() * size_of::<Timed>())
        + block(d.provisionals.len() * size_of::<Timed>())
        + block(d.acks.len() * size_of::<Timed>())
        + block(d.cancels.len() * size_of::<Timed>())
        + block(d.reinvite_cseqs.len() * 4)
        + finals(&d.invite_finals)
        + finals(&d.other_finals)
        + d.bye.as_ref().map_or(0, |b| opt_len(&b.from_tag))
        + d.caller.as_ref().map_or(0, |c| block(c.tag.len()))
        + block(d.challenges.len() * 8)
        + block(d.register_requests.len() * size_of::<RegisterRequest>())
        + d.register_requests
            .iter()
            .map(|r| opt_len(&r.contact) + opt_len(&r.contact_uri))
            .sum::<usize>()
        + block(d.register_oks.len() * size_of::<RegisterOk>())
        + d.register_oks
            .iter()
            .map(|r| {
                block(r.bindings.len() * 40)
                    + r.bindings.iter().map(|b| block(b.0.len())).sum::<usize>()
            })
            .sum::<usize>()
        + strings(&d.user_agents)
        + strings(&d.x_call_ids)
        + strings(&d.correlation_values)
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
/// Parts written before the line format (one JSON document) are still read.
pub fn load_parts(db: &Path, file_id: u32, run: u64) -> Option<FileParts> {
    let f = std::fs::File::open(parts_path(db, file_id, run)).ok()?;
    let mut json = Vec::new();
    zstd::Decoder::new(f).ok()?.read_to_end(&mut json).ok()?;
    let mut lines = json.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let mut parts = serde_json::from_slice::<FileParts>(lines.next()?).ok()?;
    for line in lines {
        parts.dialogs.push(serde_json::from_slice(line).ok()?);
    }
    Some(parts).filter(|p| p.file_id == file_id)
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

/// What leg correlation (`sip::correlate`) needs of every dialog of a run, packed: the Call-IDs
/// in one string, and the other keys only for dialogs that have any (calls, dialogs carrying
/// X-Call-ID-style values). A registration or OPTIONS flood costs its Call-IDs and 8 bytes each.
#[derive(Default)]
pub struct LegKeys {
    ids: String,
    ends: Vec<usize>,
    /// Sorted by dialog index.
    extra: Vec<(u32, ExtraKeys)>,
}

struct ExtraKeys {
    x_call_ids: Vec<String>,
    values: Vec<String>,
    is_call: bool,
    from_user: Option<Box<str>>,
    to_user: Option<Box<str>>,
    ruri_user: Option<Box<str>>,
    start_ns: Option<i64>,
}

impl LegKeys {
    /// Adds the next dialog; its index is the number of dialogs added before it.
    pub fn push(&mut self, d: &DialogSummary) {
        let i = self.ends.len() as u32;
        self.ids.push_str(&d.call_id);
        self.ends.push(self.ids.len());
        let leg = Leg::from(d);
        if leg.is_call || !leg.x_call_ids.is_empty() || !leg.values.is_empty() {
            let b = |s: Option<&str>| s.map(Box::from);
            self.extra.push((
                i,
                ExtraKeys {
                    x_call_ids: leg.x_call_ids.to_vec(),
                    values: leg.values.to_vec(),
                    is_call: leg.is_call,
                    from_user: b(leg.from_user),
                    to_user: b(leg.to_user),
                    ruri_user: b(leg.ruri_user),
                    start_ns: leg.start_ns,
                },
            ));
        }
    }

    pub fn call_id(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.ids[start..self.ends[i]]
    }
}

impl<'a> Legs<'a> for &'a LegKeys {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn leg(&self, i: usize) -> Leg<'a> {
        let call_id = self.call_id(i);
        match self.extra.binary_search_by_key(&(i as u32), |e| e.0) {
            Ok(k) => {
                let e = &self.extra[k].1;
                Leg {
                    call_id,
                    x_call_ids: &e.x_call_ids,
                    values: &e.values,
                    is_call: e.is_call,
                    from_user: e.from_user.as_deref(),
                    to_user: e.to_user.as_deref(),
                    ruri_user: e.ruri_user.as_deref(),
                    start_ns: e.start_ns,
                }
            }
            Err(_) => Leg {
                call_id,
                x_call_ids: &[],
                values: &[],
                is_call: false,
                from_user: None,
                to_user: None,
                ruri_user: None,
                start_ns: None,
            },
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
    fn parts_stream_back_sorted_and_the_older_single_document_form_still_loads() {
        let db = tempfile::tempdir().unwrap();
        let mut d = HashMap::new();
        for id in ["c", "a", "b"] {
            d.insert(id.to_string(), summary(id, 1));
        }
        save_parts(db.path(), 4, 2, &[], &d).unwrap();
        let ids: Vec<String> = read_parts(db.path(), 4, 2)
            .unwrap()
            .map(|d| d.unwrap().call_id)
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert!(read_parts(db.path(), 5, 2).is_err(), "missing parts");
        let old = serde_json::json!({
            "file_id": 9, "correlate_headers": ["X-Leg-ID"], "dialogs": [summary("a", 3)]
        });
        let bytes = zstd::encode_all(&serde_json::to_vec(&old).unwrap()[..], 3).unwrap();
        std::fs::write(parts_path(db.path(), 9, 1), bytes).unwrap();
        let p = load_parts(db.path(), 9, 1).unwrap();
        assert_eq!(p.correlate_headers, ["X-Leg-ID"]);
        assert_eq!(p.dialogs, [summary("a", 3)]);
        // a writer refuses Call-IDs out of order (parts must merge by Call-ID)
        let mut w = PartsWriter::create(db.path(), 1, 1, &[]).unwrap();
        w.push(&summary("b", 1)).unwrap();
        assert!(w.push(&summary("a", 1)).is_err());
    }

    #[test]
    fn packed_leg_keys_correlate_exactly_like_the_summaries() {
        use crate::sip::correlate::{correlate_dialogs, correlate_groups, CorrelateConfig};
        use crate::sip::dialog::Seen;
        let observe = |call_id: &str, method: &str, from: &str, to: &str, x: &str, ms: i64| {
            let text = format!(
                "{method} sip:{to}@b SIP/2.0\r\nFrom: <sip:{from}@a>;tag=1\r\nTo: <sip:{to}@b>\r\n\
                 Call-ID: {call_id}\r\nCSeq: 1 {method}\r\n{x}Content-Length: 0\r\n\r\n"
            );
            let msg = crate::sip::parse(text.as_bytes()).unwrap();
            let ip = "10.0.0.1".parse().unwrap();
            let seen = Seen {
                ts_ns: ms * 1_000_000,
                src_ip: ip,
                src_port: 5060,
                dst_ip: ip,
                dst_port: 5060,
            };
            let mut d = DialogSummary::new(call_id);
            d.observe(seen, &msg);
            d
        };
        let mut v = vec![
            observe(
                "b-leg",
                "INVITE",
                "+493011112222",
                "+493033334444",
                "X-Call-ID: a-leg\r\n",
                0,
            ),
            observe("a-leg", "INVITE", "03011112222", "03033334444", "", 10),
            observe("c-leg", "INVITE", "493011112222", "493033334444", "", 900),
            observe("opt1", "OPTIONS", "scan", "100", "", 5),
            observe("opt0", "OPTIONS", "scan", "100", "X-CID: opt1\r\n", 6),
            observe(
                "far",
                "INVITE",
                "+493011112222",
                "+493033334444",
                "",
                60_000,
            ),
        ];
        v.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        let cfg = CorrelateConfig::default();
        let want = correlate_dialogs(&v, &cfg);
        let mut keys = LegKeys::default();
        for d in &v {
            keys.push(d);
        }
        let got: Vec<String> = correlate_groups(&keys, &cfg)
            .into_iter()
            .map(|j| keys.call_id(j as usize).to_string())
            .collect();
        assert_eq!(got, want);
        let ids: Vec<&str> = v.iter().map(|d| d.call_id.as_str()).collect();
        assert_eq!(ids, ["a-leg", "b-leg", "c-leg", "far", "opt0", "opt1"]);
        assert_eq!(want, ["a-leg", "a-leg", "a-leg", "far", "opt0", "opt0"]);
        assert_eq!(
            keys.extra.len(),
            5,
            "the OPTIONS without values keep only their Call-ID"
        );
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
