//! Integration tests of `sipidx index`: idempotence, crash safety under SIGKILL, independence from
//! file splitting and thread count, the lock, and the tables read by an independent reader.
use std::collections::BTreeMap;
mod common;

use common::split;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sipidx::source::{open_capture, PcapWriter};
use sipidx::store::parquet::{read_dialogs, read_messages, DialogFilter};
use sipidx::store::record::DialogRecord;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sipidx"))
}

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

fn index(db: &Path, paths: &[&Path], extra: &[&str]) -> Output {
    let mut c = bin();
    c.arg("index")
        .arg("--db")
        .arg(db)
        .args(["--settle", "0s", "--quiet"]);
    c.args(extra);
    for p in paths {
        c.arg(p);
    }
    let o = c.output().expect("run sipidx index");
    assert!(
        o.status.code() == Some(0),
        "index failed: {:?} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// `sipidx verify --json`: exit status and the (type, check) of every finding.
fn verify(db: &Path) -> (Option<i32>, Vec<(String, String)>) {
    let o = bin()
        .args(["verify", "--json", "--db"])
        .arg(db)
        .output()
        .unwrap();
    let found = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] != "summary")
        .map(|v| {
            (
                v["type"].as_str().unwrap().to_owned(),
                v["check"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (o.status.code(), found)
}

/// Dialog rows without the internal merge state, keyed by Call-ID, for comparisons.
fn dialogs(db: &Path) -> BTreeMap<String, DialogRecord> {
    read_dialogs(db, &DialogFilter::default())
        .unwrap()
        .into_iter()
        .map(|mut d| {
            d.summary = None;
            (d.call_id.clone(), d)
        })
        .collect()
}

/// Messages as (ts, call_id, method/status, src, dst) multiset: independent of file ids.
fn messages(db: &Path) -> Vec<(i64, String, String, String, String)> {
    let mut v: Vec<_> = read_messages(db, None, None)
        .unwrap()
        .into_iter()
        .map(|m| {
            (
                m.ts_ns,
                m.call_id,
                m.method
                    .unwrap_or_else(|| m.status.unwrap_or(0).to_string()),
                format!("{}:{}", m.src_ip, m.src_port),
                format!("{}:{}", m.dst_ip, m.dst_port),
            )
        })
        .collect();
    v.sort();
    v
}

const CAPTURES: &[&str] = &[
    "corpus/sip-udp-register-invite-cancel-auth-mixed.pcap",
    "corpus/sip-rtp-t38-fax-488-options.pcap",
    "corpus/sip-sipp-5-calls.pcap",
    "corpus/sip-tcp-segmented-call.pcap",
];

#[test]
fn indexing_a_directory_twice_adds_nothing_the_second_time() {
    let db = tempfile::tempdir().unwrap();
    let corpus = testdata("corpus");
    let o = index(db.path(), &[&corpus], &["--json"]);
    let first: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(first["files_indexed"].as_u64().unwrap() >= 39);
    let (m1, d1) = (messages(db.path()), dialogs(db.path()));
    assert!(m1.len() > 300);
    let o = index(db.path(), &[&corpus], &["--json"]);
    let second: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(second["files_indexed"], 0);
    assert_eq!(second["files_known"], first["files_indexed"]);
    assert_eq!(messages(db.path()), m1);
    assert_eq!(dialogs(db.path()), d1);
}

#[test]
fn a_capture_split_into_ring_files_indexes_like_the_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let whole_db = tmp.path().join("whole.db");
    let split_db = tmp.path().join("split.db");
    let runs_db = tmp.path().join("runs.db");
    let ring = tmp.path().join("ring");
    std::fs::create_dir(&ring).unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    for c in CAPTURES {
        files.extend(split(&testdata(c), &ring, 4));
    }
    let whole: Vec<PathBuf> = CAPTURES.iter().map(|c| testdata(c)).collect();
    let whole_refs: Vec<&Path> = whole.iter().map(|p| p.as_path()).collect();
    index(&whole_db, &whole_refs, &["-j", "1"]);
    index(&split_db, &[&ring], &["-j", "2"]);
    // the same ring files indexed in three runs, newest first
    for chunk in files.chunks(files.len().div_ceil(3)).rev() {
        let refs: Vec<&Path> = chunk.iter().map(|p| p.as_path()).collect();
        index(&runs_db, &refs, &[]);
    }
    let want = dialogs(&whole_db);
    assert!(want.len() >= 13, "{} dialogs", want.len());
    assert_eq!(dialogs(&split_db), want, "split into ring files, 2 threads");
    // Newest-first runs: SIP dialogs still merge exactly, but RTP analysis is sequential, so the
    // media summary columns need files in time order (tests/media.rs checks that case); compare
    // without them here.
    let no_media = |m: BTreeMap<String, DialogRecord>| -> BTreeMap<String, DialogRecord> {
        m.into_iter()
            .map(|(k, mut d)| {
                (d.worst_mos, d.max_loss_pct, d.max_jitter_ms) = (None, None, None);
                (k, d)
            })
            .collect()
    };
    assert_eq!(
        no_media(dialogs(&runs_db)),
        no_media(want.clone()),
        "split files indexed in several runs"
    );
    assert_eq!(messages(&split_db), messages(&whole_db));
    assert_eq!(messages(&runs_db), messages(&whole_db));
}

#[test]
fn the_thread_count_does_not_change_the_result() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = testdata("corpus");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    index(&a, &[&corpus], &["-j", "1"]);
    index(&b, &[&corpus], &["-j", "2", "--batch-files", "3"]);
    assert_eq!(dialogs(&a), dialogs(&b));
    assert_eq!(messages(&a), messages(&b));
}

#[test]
fn sigkill_at_any_moment_leaves_a_db_the_next_run_completes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    // a few hundred files so a run lasts long enough to be killed in the middle
    let archive = tmp.path().join("archive");
    for copy in 0..6 {
        let d = archive.join(format!("day{copy}"));
        std::fs::create_dir_all(&d).unwrap();
        for e in std::fs::read_dir(testdata("corpus")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                std::fs::copy(&p, d.join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let clean = tmp.path().join("clean.db");
    let started = std::time::Instant::now();
    index(&clean, &[&archive], &[]);
    // kill moments spread over a whole run (and a bit past it), wherever the machine's speed puts
    // its commit
    let run_ms = (started.elapsed().as_millis() as u64 * 13 / 10).max(200);
    let want_messages = messages(&clean);
    let want_dialogs = dialogs(&clean);

    let db = tmp.path().join("killed.db");
    // the runs to be killed extend a DB that already holds committed rows and dialogs
    index(&db, &[&archive.join("day0")], &[]);
    // deterministic pseudo-random kill moments
    let mut seed: u64 = 0x5eed;
    let mut kills = 0;
    let mut interrupted = 0;
    for k in 0..10 {
        // the archive grows a day every other run, so later runs still have work to be killed in
        let days: Vec<PathBuf> = (0..=1 + k / 2)
            .map(|d| archive.join(format!("day{d}")))
            .collect();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis((seed >> 33) % run_ms);
        let mut child = bin()
            .args(["index", "--settle", "0s", "--quiet", "--db"])
            .arg(&db)
            .args(&days)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        // whatever the moment, the damage is only an interrupted run that the next one completes
        {
            let (code, found) = verify(&db);
            assert!(code == Some(0) || code == Some(1), "{found:?}");
            let unexpected: Vec<_> = found
                .iter()
                .filter(|(kind, check)| {
                    kind == "problem"
                        && !matches!(
                            check.as_str(),
                            "unfinished_run" | "uncommitted_part" | "superseded_part"
                        )
                })
                .collect();
            assert!(
                unexpected.is_empty(),
                "after a kill at {delay:?}: {found:?}"
            );
            assert_eq!(code == Some(0), found.iter().all(|(k, _)| k != "problem"));
            interrupted += usize::from(code == Some(1));
        }
    }
    assert!(
        interrupted > 0,
        "no kill caught a run in the middle ({kills} kills): the test tested nothing"
    );
    index(&db, &[&archive], &[]);
    let (code, found) = verify(&db);
    assert_eq!(
        code,
        Some(0),
        "after {kills} kills and a clean run: {found:?}"
    );
    assert_eq!(
        messages(&db),
        want_messages,
        "after {kills} kills: no loss, no duplicates"
    );
    assert_eq!(dialogs(&db), want_dialogs);
    // the text index holds exactly one document per message
    let o = bin()
        .args(["search", "--json", "--limit", "1000000", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    if o.status.code() != Some(2) {
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).lines().count(),
            want_messages.len()
        );
    }
}

#[test]
fn a_second_index_run_on_a_locked_db_refuses_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    std::fs::create_dir_all(&db).unwrap();
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(db.join("LOCK"))
        .unwrap();
    lock.lock().unwrap();
    let o = bin()
        .args(["index", "--settle", "0s", "--db"])
        .arg(&db)
        .arg(testdata("corpus/sip-cancel-487.pcap"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("another sipidx index run"), "{err}");
    drop(lock);
    index(&db, &[&testdata("corpus/sip-cancel-487.pcap")], &[]);
}

#[test]
fn files_still_being_written_wait_for_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let ring = tmp.path().join("ring");
    std::fs::create_dir(&ring).unwrap();
    std::fs::copy(testdata("corpus/sip-cancel-487.pcap"), ring.join("a.pcap")).unwrap();
    std::fs::copy(
        testdata("corpus/sip-sipp-5-calls.pcap"),
        ring.join("b.pcap.part"),
    )
    .unwrap();
    let db = tmp.path().join("db");
    let o = bin()
        .args(["index", "--json", "--quiet", "--settle", "1h", "--db"])
        .arg(&db)
        .arg(&ring)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["files_indexed"], 0,
        "a just-written file waits for --settle"
    );
    assert_eq!(v["files_waiting"], 2);
    let o = index(&db, &[&ring], &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files_indexed"], 1, ".part files always wait");
}

#[test]
fn the_tables_are_readable_by_duckdb_and_pyarrow() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    index(&db, &[&testdata("corpus")], &[]);
    let n_messages = messages(&db).len();
    let n_dialogs = dialogs(&db).len();
    let script = format!(
        r#"
import duckdb, pyarrow.dataset as ds
db = {db:?}
con = duckdb.connect()
m = con.execute(f"select count(*) from read_parquet('{{db}}/tables/messages/*/*.parquet', hive_partitioning=true)").fetchone()[0]
d = con.execute(f"select count(*) from read_parquet('{{db}}/tables/dialogs/*/*.parquet', hive_partitioning=true)").fetchone()[0]
st = con.execute(f"select state, final_status from read_parquet('{{db}}/tables/dialogs/*/*.parquet', hive_partitioning=true) where call_id = '1-6261@127.0.1.1'").fetchone()
pm = ds.dataset(db + '/tables/messages', format='parquet', partitioning='hive').count_rows()
print(m, d, st[0], st[1], pm)
"#,
        db = db.to_string_lossy()
    );
    let o = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "python: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f[0].parse::<usize>().unwrap(), n_messages);
    assert_eq!(f[1].parse::<usize>().unwrap(), n_dialogs);
    assert_eq!(f[2], "canceled", "sip-cancel-487's call");
    assert_eq!(f[3], "487");
    assert_eq!(f[4].parse::<usize>().unwrap(), n_messages);
}

/// Keep the packets of `src` that `keep` accepts, in a new pcap (same link type).
fn filter_capture(src: &Path, dst: &Path, keep: impl Fn(&[u8]) -> bool) {
    let mut r = open_capture(src, 0).unwrap();
    let mut w = None;
    while let Some(p) = r.next_packet().unwrap() {
        let w = w.get_or_insert_with(|| {
            PcapWriter::new(
                std::fs::File::create(dst).unwrap(),
                p.link_type,
                262_144,
                true,
            )
            .unwrap()
        });
        if keep(p.data) {
            w.write_packet(p.ts_ns, p.data, p.orig_len).unwrap();
        }
    }
    w.unwrap().flush().unwrap();
}

#[test]
fn hep_mirrors_are_indexed_once_as_the_raw_message_marked_mirrored() {
    let tmp = tempfile::tempdir().unwrap();
    let src = testdata("crafted/sip-udp-proxy-with-hep3-mirror.pcap");
    // the raw call alone: drop every packet that carries HEP3
    let raw = tmp.path().join("raw-only.pcap");
    filter_capture(&src, &raw, |d| !d.windows(4).any(|w| w == b"HEP3"));
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    index(&a, &[&src], &[]);
    index(&b, &[&raw], &[]);
    index(&c, &[&src], &["--keep-hep-mirrors"]);
    let with_mirrors = read_messages(&a, None, None).unwrap();
    assert_eq!(with_mirrors.len(), 7);
    assert!(with_mirrors
        .iter()
        .all(|m| m.hep_mirror_capture_id == Some(2001) && m.encap.is_none()));
    assert_eq!(
        messages(&a),
        messages(&b),
        "same messages as the raw call alone"
    );
    let (da, db) = (dialogs(&a), dialogs(&b));
    assert_eq!(da.len(), 1);
    assert_eq!(
        da.values().map(|d| d.messages).collect::<Vec<_>>(),
        db.values().map(|d| d.messages).collect::<Vec<_>>()
    );
    assert_eq!(
        read_messages(&c, None, None).unwrap().len(),
        14,
        "--keep-hep-mirrors"
    );
    // a HEP-only capture is indexed as messages in their own right
    let d = tmp.path().join("d");
    index(&d, &[&testdata("crafted/hep3-udp9060-call.pcap")], &[]);
    let hep = read_messages(&d, None, None).unwrap();
    assert_eq!(hep.len(), 7);
    assert!(hep.iter().all(|m| m.hep_capture_id == Some(2001)));
}

#[test]
fn reindex_rebuilds_the_same_db_and_applies_new_correlation_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let corpus = testdata("corpus");
    index(&db, &[&corpus], &["--correlate-window", "0s"]);
    let (m, d) = (messages(&db), dialogs(&db));
    // the T.38 capture holds two legs of one call through an SBC (same numbers, ms apart)
    let legs = |d: &BTreeMap<String, DialogRecord>| {
        d.values()
            .filter(|x| x.to_user.as_deref() == Some("061963177"))
            .map(|x| x.correlation_id.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    assert_eq!(
        legs(&d),
        2,
        "without the time-window rule the legs stay apart"
    );
    let o = bin()
        .args(["reindex", "--quiet", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let d2 = dialogs(&db);
    assert_eq!(messages(&db), m, "same messages after the rebuild");
    assert_eq!(d2.len(), d.len());
    assert_eq!(legs(&d2), 1, "the default 2 s window links the two legs");
}
