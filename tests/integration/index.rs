//! Integration tests of `sipidx index`: idempotence, crash safety under SIGKILL, independence from
//! file splitting and thread count, the lock, and the tables read by an independent reader.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sipidx::source::{open_capture, PcapWriter};
use sipidx::store::parquet::{read_dialogs, read_messages, DialogFilter};
use sipidx::store::record::DialogRecord;

use crate::util::{index_cmd, index_with, sipidx, split, tempdir, testdata, tool, verify};

/// `sipidx verify --json`: exit status and the (type, check) of every finding.
fn findings(db: &Path) -> (Option<i32>, Vec<(String, String)>) {
    let (code, rows) = verify(db);
    let found = rows
        .iter()
        .filter(|v| v["type"] != "summary")
        .map(|v| {
            (
                v["type"].as_str().unwrap().to_owned(),
                v["check"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (code, found)
}

/// After a SIGKILL at `delay`: whatever the moment, `verify` may find only the traces of an
/// interrupted run, which the next run completes or rolls back. True when it found any.
fn verify_after_kill(db: &Path, delay: Duration) -> bool {
    let (code, found) = findings(db);
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
    code == Some(1)
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
    let db = tempdir();
    let corpus = testdata("corpus");
    let first = index_with(db.path(), &[&corpus], &["--json"]).json();
    assert!(first["files_indexed"].as_u64().unwrap() >= 39);
    let (m1, d1) = (messages(db.path()), dialogs(db.path()));
    assert!(m1.len() > 300);
    let second = index_with(db.path(), &[&corpus], &["--json"]).json();
    assert_eq!(second["files_indexed"], 0);
    assert_eq!(second["files_known"], first["files_indexed"]);
    assert_eq!(messages(db.path()), m1);
    assert_eq!(dialogs(db.path()), d1);
}

#[test]
fn a_capture_split_into_ring_files_indexes_like_the_whole() {
    let tmp = tempdir();
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
    index_with(&whole_db, &whole_refs, &["-j", "1"]);
    index_with(&split_db, &[&ring], &["-j", "2"]);
    // one scan worker builds each file's pre-roll beside its predecessor's scan; two replay it
    let lone_db = tmp.path().join("lone.db");
    index_with(&lone_db, &[&ring], &["-j", "1"]);
    assert_eq!(file_counts(&lone_db), file_counts(&split_db));
    assert_eq!(messages(&lone_db), messages(&whole_db));
    assert_eq!(dialogs(&lone_db), dialogs(&whole_db));
    // a pre-roll's own counts are its predecessor's: per-file counts add up to the whole's
    let sum = |db: &Path| {
        file_counts(db).iter().fold([0u64; 5], |mut a, (_, c)| {
            a.iter_mut().zip(c).for_each(|(a, c)| *a += c);
            a
        })
    };
    assert_eq!(sum(&split_db), sum(&whole_db));
    // the same ring files indexed in three runs, newest first
    for chunk in files.chunks(files.len().div_ceil(3)).rev() {
        let refs: Vec<&Path> = chunk.iter().map(|p| p.as_path()).collect();
        index_with(&runs_db, &refs, &[]);
    }
    let want = dialogs(&whole_db);
    assert!(want.len() >= 13, "{} dialogs", want.len());
    assert_eq!(dialogs(&split_db), want, "split into ring files, 2 threads");
    // Newest-first runs: SIP dialogs merge exactly, and the media of each run's files, older than
    // what was analysed, is analysed again in time order with them, so the media summary
    // columns agree too.
    assert_eq!(
        dialogs(&runs_db),
        want.clone(),
        "split files indexed in several runs"
    );
    assert_eq!(messages(&split_db), messages(&whole_db));
    assert_eq!(messages(&runs_db), messages(&whole_db));
}

/// Each catalogued file's name and counts: packets, SIP messages, malformed SIP, HEP mirrors and
/// SPAN duplicates dropped.
fn file_counts(db: &Path) -> Vec<(String, [u64; 5])> {
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(db.join("catalog.json")).unwrap()).unwrap();
    let mut v: Vec<(String, [u64; 5])> = c["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let n = |k: &str| f[k].as_u64().unwrap();
            let name = Path::new(f["path"].as_str().unwrap()).file_name().unwrap();
            (
                name.to_string_lossy().into_owned(),
                [
                    n("packets"),
                    n("sip_messages"),
                    n("malformed_sip"),
                    n("hep_mirrors"),
                    n("span_duplicates"),
                ],
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_thread_count_does_not_change_the_result() {
    let tmp = tempdir();
    let corpus = testdata("corpus");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    index_with(&a, &[&corpus], &["-j", "1"]);
    index_with(&b, &[&corpus], &["-j", "2", "--batch-files", "3"]);
    assert_eq!(dialogs(&a), dialogs(&b));
    assert_eq!(messages(&a), messages(&b));
    assert_eq!(file_counts(&a), file_counts(&b));
}

#[test]
fn sigkill_at_any_moment_leaves_a_db_the_next_run_completes_exactly() {
    let tmp = tempdir();
    // enough days that every run has new work, whether or not the one before it was killed
    const DAYS: usize = 12;
    let archive = tmp.path().join("archive");
    for copy in 0..DAYS {
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
    index_with(&clean, &[&archive], &[]);
    let want_messages = messages(&clean);
    let want_dialogs = dialogs(&clean);

    let db = tmp.path().join("killed.db");
    // the runs to be killed extend a DB that already holds committed rows and dialogs; how long
    // that took sets the first span of kill moments
    let started = Instant::now();
    index_with(&db, &[&archive.join("day0")], &[]);
    let mut span_ms = (started.elapsed().as_millis() as u64 * 3 / 2).max(50);
    // deterministic pseudo-random kill moments
    let mut seed: u64 = 0x5eed;
    let mut kills = 0;
    let mut interrupted = 0;
    let mut newest_day = 1;
    // at least ten runs, until three kills caught a run in the middle; a run that ends before
    // its kill moment resets the span to its own length (the machine's speed varies, and a
    // fixed span measured once let every run finish first on a fast, idle host)
    for k in 0..40 {
        if newest_day >= DAYS || (k >= 10 && interrupted >= 3) {
            break;
        }
        let days: Vec<PathBuf> = (0..=newest_day)
            .map(|d| archive.join(format!("day{d}")))
            .collect();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis((seed >> 33) % span_ms);
        let started = Instant::now();
        let mut child = index_cmd(&db)
            .args(&days)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let finished = loop {
            if child.try_wait().unwrap().is_some() {
                break true;
            }
            if started.elapsed() >= delay {
                break false;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if finished {
            span_ms = (started.elapsed().as_millis() as u64).max(20);
            newest_day += 1;
        } else {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        interrupted += usize::from(verify_after_kill(&db, delay));
    }
    assert!(
        interrupted > 0,
        "no kill caught a run in the middle ({kills} kills): the test tested nothing"
    );
    index_with(&db, &[&archive], &[]);
    let (code, found) = findings(&db);
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
    let o = sipidx()
        .args(["search", "--json", "--limit", "1000000", "--db"])
        .arg(&db)
        .run();
    if o.code() != Some(2) {
        assert_eq!(o.stdout().lines().count(), want_messages.len());
    }
}

#[test]
fn a_second_index_run_on_a_locked_db_refuses_clearly() {
    let tmp = tempdir();
    let db = tmp.path().join("db");
    std::fs::create_dir_all(&db).unwrap();
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(db.join("LOCK"))
        .unwrap();
    lock.lock().unwrap();
    let err = sipidx()
        .args(["index", "--settle", "0s", "--db"])
        .arg(&db)
        .arg(testdata("corpus/sip-cancel-487.pcap"))
        .code(2)
        .stderr();
    assert!(err.contains("another sipidx index run"), "{err}");
    drop(lock);
    index_with(&db, &[&testdata("corpus/sip-cancel-487.pcap")], &[]);
}

#[test]
fn files_still_being_written_wait_for_the_next_run() {
    let tmp = tempdir();
    let ring = tmp.path().join("ring");
    std::fs::create_dir(&ring).unwrap();
    std::fs::copy(testdata("corpus/sip-cancel-487.pcap"), ring.join("a.pcap")).unwrap();
    std::fs::copy(
        testdata("corpus/sip-sipp-5-calls.pcap"),
        ring.join("b.pcap.part"),
    )
    .unwrap();
    let db = tmp.path().join("db");
    let v = sipidx()
        .args(["index", "--json", "--quiet", "--settle", "1h", "--db"])
        .arg(&db)
        .arg(&ring)
        .run()
        .json();
    assert_eq!(
        v["files_indexed"], 0,
        "a just-written file waits for --settle"
    );
    assert_eq!(v["files_waiting"], 2);
    let v = index_with(&db, &[&ring], &["--json"]).json();
    assert_eq!(v["files_indexed"], 1, ".part files always wait");
}

#[test]
fn the_tables_are_readable_by_duckdb_and_pyarrow() {
    let tmp = tempdir();
    let db = tmp.path().join("db");
    index_with(&db, &[&testdata("corpus")], &[]);
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
    let out = tool("python3").arg("-c").arg(&script).ok().stdout();
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
    let tmp = tempdir();
    let src = testdata("crafted/sip-udp-proxy-with-hep3-mirror.pcap");
    // the raw call alone: drop every packet that carries HEP3
    let raw = tmp.path().join("raw-only.pcap");
    filter_capture(&src, &raw, |d| !d.windows(4).any(|w| w == b"HEP3"));
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    index_with(&a, &[&src], &[]);
    index_with(&b, &[&raw], &[]);
    index_with(&c, &[&src], &["--keep-hep-mirrors"]);
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
    index_with(&d, &[&testdata("crafted/hep3-udp9060-call.pcap")], &[]);
    let hep = read_messages(&d, None, None).unwrap();
    assert_eq!(hep.len(), 7);
    assert!(hep.iter().all(|m| m.hep_capture_id == Some(2001)));
}

#[test]
fn reindex_rebuilds_the_same_db_and_applies_new_correlation_rules() {
    let tmp = tempdir();
    let db = tmp.path().join("db");
    let corpus = testdata("corpus");
    index_with(&db, &[&corpus], &["--correlate-window", "0s"]);
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
    sipidx()
        .args(["reindex", "--quiet", "--json", "--db"])
        .arg(&db)
        .ok();
    let d2 = dialogs(&db);
    assert_eq!(messages(&db), m, "same messages after the rebuild");
    assert_eq!(d2.len(), d.len());
    assert_eq!(legs(&d2), 1, "the default 2 s window links the two legs");
}

/// Rows of every table, counted: (messages, dialogs, rtp_streams, rtcp_reports, qos_reports).
fn table_counts(db: &Path) -> [usize; 5] {
    use sipidx::store::parquet::{for_each_row, DayRange};
    use sipidx::store::record::{QosReportRecord, RtcpReportRecord, RtpStreamRecord};
    let mut n = [0usize; 5];
    n[0] = read_messages(db, None, None).unwrap().len();
    n[1] = read_dialogs(db, &DialogFilter::default()).unwrap().len();
    for_each_row::<RtpStreamRecord>(db, DayRange::default(), |_| {
        n[2] += 1;
        Ok(())
    })
    .unwrap();
    for_each_row::<RtcpReportRecord>(db, DayRange::default(), |_| {
        n[3] += 1;
        Ok(())
    })
    .unwrap();
    for_each_row::<QosReportRecord>(db, DayRange::default(), |_| {
        n[4] += 1;
        Ok(())
    })
    .unwrap();
    n
}

/// Documents in the text index (every message, via `search`).
fn text_docs(db: &Path) -> usize {
    sipidx()
        .args(["search", "--json", "--limit", "1000000", "--db"])
        .arg(db)
        .run()
        .stdout()
        .lines()
        .count()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn rfc3339(ts_ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ts_ns)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn first_last_ts(path: &Path) -> (i64, i64) {
    let mut r = open_capture(path, 0).unwrap();
    let mut first = None;
    let mut last = 0;
    while let Some(p) = r.next_packet().unwrap() {
        first.get_or_insert(p.ts_ns);
        last = p.ts_ns;
    }
    (first.unwrap(), last)
}

/// A ring of the four captures indexed without the number-window rule, and the window of the
/// SIPp capture's 2nd and 3rd ring files (of 6): (tmp, ring, db, since, until).
fn window_fixture() -> (tempfile::TempDir, PathBuf, PathBuf, String, String) {
    let tmp = tempdir();
    let ring = tmp.path().join("ring");
    std::fs::create_dir(&ring).unwrap();
    let mut sipp = Vec::new();
    for c in CAPTURES {
        if c.contains("sipp") {
            // 6 files of 5 packets: files 1-2 hold messages of calls 1-3, not of calls 4-5
            sipp = split(&testdata(c), &ring, 6);
        } else {
            split(&testdata(c), &ring, 4);
        }
    }
    let db = tmp.path().join("db");
    index_with(&db, &[&ring], &["--correlate-window", "0s"]);
    let (since, _) = first_last_ts(&sipp[1]);
    let (_, until) = first_last_ts(&sipp[2]);
    (tmp, ring, db, rfc3339(since), rfc3339(until))
}

/// New rule for the window: every SIPp INVITE carries `Subject: Performance Test`, so the header
/// links the five calls into one group (and, in a full reindex, the TCP capture's call of years
/// later, whose Call-ID sorts after; `Max-Forwards` would link nearly everything).
const NEW_RULES: &[&str] = &["--correlate-window", "0s", "--correlate-header", "Subject"];

fn reindex_window(db: &Path, since: &str, until: &str) -> serde_json::Value {
    reindex_window_with(db, since, until, NEW_RULES)
}

#[test]
fn reindex_of_a_window_applies_new_rules_there_and_matches_a_full_reindex() {
    let (tmp, ring, db, since, until) = window_fixture();
    let before = dialogs(&db);
    let counts_before = table_counts(&db);
    let v = reindex_window(&db, &since, &until);
    assert_eq!(v["type"], "reindex_window");
    assert_eq!(v["files"], 2, "{v}");
    assert_eq!(v["sip_messages"], v["sip_messages_removed"]);
    // the same rules over everything, from scratch
    let full = tmp.path().join("full");
    index_with(&full, &[&ring], NEW_RULES);
    let want = dialogs(&full);
    let got = dialogs(&db);
    assert_eq!(table_counts(&db), table_counts(&full), "every table");
    assert_eq!(table_counts(&db), counts_before);
    assert_eq!(messages(&db), messages(&full), "no message lost or doubled");
    assert_eq!(
        text_docs(&db),
        messages(&db).len(),
        "one document per message"
    );
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    // the dialogs the window's files hold messages of, by time
    let (s, u) = (
        chrono::DateTime::parse_from_rfc3339(&since)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap(),
        chrono::DateTime::parse_from_rfc3339(&until)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap(),
    );
    let in_window: std::collections::BTreeSet<String> = read_messages(&db, None, None)
        .unwrap()
        .into_iter()
        .filter(|m| m.ts_ns >= s && m.ts_ns <= u)
        .map(|m| m.call_id)
        .collect();
    assert_eq!(in_window.len(), 3, "{in_window:?}");
    let mut spanning = 0;
    for (id, d) in &got {
        if in_window.contains(id) {
            assert_eq!(d, &want[id], "{id}: as a full reindex gives it");
            assert_eq!(d.correlation_id, "1-16732@127.0.1.1", "{id}: new rule");
            spanning += usize::from(d.start_ns < s || d.end_ns > u);
        } else {
            assert_eq!(d, &before[id], "{id}: outside the window, untouched");
        }
    }
    assert_eq!(spanning, 3, "calls crossing the window's edges");
    let outside: Vec<_> = got
        .iter()
        .filter(|(id, _)| id.ends_with("16732@127.0.1.1") && !in_window.contains(*id))
        .collect();
    assert!(!outside.is_empty());
    for (id, d) in outside {
        assert_eq!(
            &d.correlation_id, id,
            "outside the window the old rule stays"
        );
    }
    // a second identical window reindex changes nothing
    reindex_window(&db, &since, &until);
    assert_eq!(dialogs(&db), got);
    assert_eq!(messages(&db), messages(&full));
}

#[test]
fn sigkill_during_a_window_reindex_then_rerun_gives_the_clean_result() {
    let (tmp, _ring, db, since, until) = window_fixture();
    let clean = tmp.path().join("clean");
    copy_dir(&db, &clean);
    let t0 = std::time::Instant::now();
    reindex_window(&clean, &since, &until);
    // kill moments spread over a clean run's duration, so most land inside one
    let took = t0.elapsed().as_millis().max(20) as u64;
    let (want_m, want_d) = (messages(&clean), dialogs(&clean));
    let mut seed: u64 = 0xdead_beef;
    let mut killed_mid_run = 0;
    for _ in 0..10 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis((seed >> 33) % took);
        killed_mid_run += usize::from(kill_window_reindex(&db, &since, &until, NEW_RULES, delay));
    }
    eprintln!("{killed_mid_run} kills landed inside a window reindex");
    reindex_window(&db, &since, &until);
    assert!(!db.join("reindex.json").exists());
    assert_eq!(findings(&db).0, Some(0), "{:?}", findings(&db).1);
    assert_eq!(messages(&db), want_m);
    assert_eq!(dialogs(&db), want_d);
    assert_eq!(text_docs(&db), want_m.len());
}

/// Stream rows by id with the figures a rebuild must reproduce.
type StreamFigures = (
    u64,
    i64,
    String,
    String,
    String,
    Option<String>,
    bool,
    String,
);

fn stream_rows(db: &Path) -> BTreeMap<String, StreamFigures> {
    use sipidx::store::parquet::{for_each_row, DayRange};
    use sipidx::store::record::RtpStreamRecord;
    let mut m = BTreeMap::new();
    for_each_row::<RtpStreamRecord>(db, DayRange::default(), |r| {
        let fig = (
            r.packets,
            r.lost,
            format!("{:.6}", r.max_delta_ms),
            format!("{:.6}", r.max_jitter_ms),
            format!("{:.6}", r.mean_jitter_ms),
            r.call_id.clone(),
            r.announced,
            r.metrics.clone(),
        );
        assert!(
            m.insert(r.stream_id.clone(), fig).is_none(),
            "stream row {} twice",
            r.stream_id
        );
        Ok(())
    })
    .unwrap();
    m
}

/// RTCP and quality report rows as sorted debug strings (file ids are the same in both DBs).
fn report_rows(db: &Path) -> (Vec<String>, Vec<String>) {
    use sipidx::store::parquet::{for_each_row, DayRange};
    use sipidx::store::record::{QosReportRecord, RtcpReportRecord};
    let (mut r, mut q) = (Vec::new(), Vec::new());
    for_each_row::<RtcpReportRecord>(db, DayRange::default(), |x| {
        r.push(format!("{x:?}"));
        Ok(())
    })
    .unwrap();
    for_each_row::<QosReportRecord>(db, DayRange::default(), |x| {
        q.push(format!("{x:?}"));
        Ok(())
    })
    .unwrap();
    r.sort();
    q.sort();
    (r, q)
}

/// A dialog's worst MOS, max loss %, max jitter (ms).
type MediaCols = (Option<f64>, Option<f64>, Option<f64>);

/// Dialog media columns by Call-ID.
fn dialog_media(db: &Path) -> BTreeMap<String, MediaCols> {
    dialogs(db)
        .into_iter()
        .map(|(k, d)| (k, (d.worst_mos, d.max_loss_pct, d.max_jitter_ms)))
        .collect()
}

/// Split a capture into ring files ending before the given packet numbers (0-based).
fn split_at(src: &Path, dir: &Path, cuts: &[usize]) -> Vec<PathBuf> {
    let mut r = open_capture(src, 0).unwrap();
    let mut packets = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        packets.push((p.ts_ns, p.link_type, p.data.to_vec(), p.orig_len));
    }
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(packets.len());
    let mut out = Vec::new();
    for (i, w) in bounds.windows(2).enumerate() {
        let path = dir.join(format!("cut{i:02}.pcap"));
        let f = std::fs::File::create(&path).unwrap();
        let mut wr = PcapWriter::new(f, packets[0].1, 262_144, true).unwrap();
        for (ts, _, data, len) in &packets[w[0]..w[1]] {
            wr.write_packet(*ts, data, *len).unwrap();
        }
        wr.flush().unwrap();
        out.push(path);
    }
    out
}

/// Three rings in capture-time order: the T.38 call (two RTP streams 2.2 s apart, announced by
/// SDP early in the capture) in 10 files; the single call cut after its SIP (INVITE…ACK with
/// both SDPs) so that its stream starts in the next file; RTP with RTCP SR/RR and XR VoIP
/// metrics, 4 files each. Returns (tmp, T.38 files, single-call files, RTCP files, db).
fn media_fixture() -> (
    tempfile::TempDir,
    Vec<PathBuf>,
    Vec<PathBuf>,
    Vec<PathBuf>,
    PathBuf,
) {
    let tmp = tempdir();
    let dirs: Vec<PathBuf> = ["ring-a", "ring-b", "ring-c"]
        .iter()
        .map(|d| tmp.path().join(d))
        .collect();
    for d in &dirs {
        std::fs::create_dir(d).unwrap();
    }
    let t38 = split(
        &testdata("corpus/sip-rtp-t38-fax-488-options.pcap"),
        &dirs[0],
        10,
    );
    let single = split_at(
        &testdata("corpus/sip-rtp-single-call.pcap"),
        &dirs[1],
        &[4, 200],
    );
    let mut rtcp = split(
        &testdata("rtp/rtcp-compound-sr-rr-sdes-bye.pcap"),
        &dirs[2],
        4,
    );
    rtcp.extend(split(
        &testdata("rtp/rtcp-xr-voip-metrics.pcap"),
        &dirs[2],
        4,
    ));
    let db = tmp.path().join("db");
    index_with(&db, &[&dirs[0], &dirs[1], &dirs[2]], &[]);
    (tmp, t38, single, rtcp, db)
}

fn media_rings(tmp: &Path) -> Vec<PathBuf> {
    ["ring-a", "ring-b", "ring-c"]
        .iter()
        .map(|d| tmp.join(d))
        .collect()
}

fn reindex_window_with(db: &Path, since: &str, until: &str, extra: &[&str]) -> serde_json::Value {
    sipidx()
        .args(["reindex", "--quiet", "--json", "--db"])
        .arg(db)
        .args(["--since", since, "--until", until])
        .args(extra)
        .ok()
        .json()
}

/// The T.38 ring file holding the second stream's first packet (the first began a file before).
fn t38_window(t38: &[PathBuf], db: &Path) -> (String, String, i64, i64) {
    let (first, _) = first_last_ts(&t38[0]);
    let (_, last) = first_last_ts(&t38[t38.len() - 1]);
    let starts: Vec<i64> = stream_rows(db)
        .keys()
        .filter_map(|id| id.rsplit('@').next()?.parse().ok())
        .filter(|s| (first..=last).contains(s))
        .collect();
    for f in t38 {
        let (a, b) = first_last_ts(f);
        let inside = starts.iter().filter(|s| (a..=b).contains(*s)).count();
        let before = starts.iter().filter(|s| **s < a).count();
        if inside >= 1 && before >= 1 {
            return (rfc3339(a), rfc3339(b), a, b);
        }
    }
    panic!("no T.38 ring file holds one stream's start after another's: {starts:?}");
}

#[test]
fn reindex_of_a_window_rebuilds_its_media_like_a_full_reindex() {
    let (tmp, t38, single, rtcp, db) = media_fixture();
    let rings = media_rings(tmp.path());
    let rings: Vec<&Path> = rings.iter().map(PathBuf::as_path).collect();
    let counts = table_counts(&db);
    let (streams_before, reports_before) = (stream_rows(&db), report_rows(&db));
    assert!(
        counts[2] >= 3 && counts[3] > 0 && counts[4] > 0,
        "{counts:?}"
    );
    let full = tmp.path().join("full");
    index_with(&full, &rings, &[]);
    assert_eq!(
        stream_rows(&full),
        streams_before,
        "the fixture is deterministic"
    );

    // a window starting between the T.38 call's two streams
    let (since, until, a, b) = t38_window(&t38, &db);
    let v = reindex_window_with(&db, &since, &until, &[]);
    assert_eq!(v["files"], 1, "{v}");
    assert!(v["rtp_streams"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["rtp_streams"], v["rtp_streams_removed"], "{v}");
    assert!(
        v["rtp_streams_continuing"].as_u64().unwrap() >= 1,
        "the stream begun before the window is seen again and left alone: {v}"
    );
    assert!(
        v["media_files"].as_u64().unwrap() > 1,
        "continued past F: {v}"
    );
    assert_eq!(table_counts(&db), counts, "no row lost or doubled");
    assert_eq!(stream_rows(&db), streams_before, "same figures, same ids");
    assert_eq!(report_rows(&db), reports_before);
    assert_eq!(dialog_media(&db), dialog_media(&full));

    // a window over the middle RTCP files
    let (since2, _) = first_last_ts(&rtcp[1]);
    let (_, until2) = first_last_ts(&rtcp[2]);
    let v = reindex_window_with(&db, &rfc3339(since2), &rfc3339(until2), &[]);
    // both RTCP captures share that second: files of the other ring (analysed apart as out of
    // time order by `index`) are in the window too
    assert_eq!(v["files"], 4, "{v}");
    assert!(v["rtcp_reports"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["rtcp_reports"], v["rtcp_reports_removed"], "{v}");
    assert_eq!(v["qos_reports"], v["qos_reports_removed"], "{v}");
    assert_eq!(table_counts(&db), counts);
    assert_eq!(stream_rows(&db), streams_before);
    assert_eq!(
        report_rows(&db),
        reports_before,
        "RTTs need the SRs before the window"
    );

    // a window where the single call's stream starts, its SDP in the file before
    let (s3, u3) = first_last_ts(&single[1]);
    let v = reindex_window_with(&db, &rfc3339(s3), &rfc3339(u3), &[]);
    assert_eq!(v["files"], 1, "{v}");
    assert_eq!(v["rtp_streams"], 1, "{v}");
    assert_eq!(v["rtp_streams_continuing"], 0, "{v}");
    assert_eq!(
        v["dialogs"], 1,
        "the call's row, for its media columns only: {v}"
    );
    assert_eq!(
        stream_rows(&db),
        streams_before,
        "announced by the SDP before the window"
    );
    assert_eq!(table_counts(&db), counts);
    assert_eq!(dialog_media(&db), dialog_media(&full));

    // new metrics in the window: the streams starting there are the RFC 3550 full index's, the
    // stream that began before keeps its Wireshark row
    let rfc = tmp.path().join("rfc");
    index_with(&rfc, &rings, &["--metrics", "rfc3550"]);
    let want = stream_rows(&rfc);
    reindex_window_with(&db, &since, &until, &["--metrics", "rfc3550"]);
    let got = stream_rows(&db);
    assert_eq!(got.len(), streams_before.len());
    let mut changed = 0;
    for (id, fig) in &got {
        let start: i64 = id.rsplit('@').next().unwrap().parse().unwrap();
        if (a..=b).contains(&start) {
            assert_eq!(fig, &want[id], "{id}: rebuilt with the new metrics");
            changed += 1;
        } else {
            assert_eq!(fig, &streams_before[id], "{id}: outside, untouched");
        }
    }
    assert!(changed >= 1);
    // the single call's window under the new metrics: its dialog, outside the window, follows
    reindex_window_with(&db, &rfc3339(s3), &rfc3339(u3), &["--metrics", "rfc3550"]);
    let single_call = "1-7879@127.0.0.1";
    assert_eq!(
        dialog_media(&db)[single_call],
        dialog_media(&rfc)[single_call]
    );
    assert_ne!(
        dialog_media(&db)[single_call],
        dialog_media(&full)[single_call]
    );
    let got = stream_rows(&db);
    let media = dialog_media(&db);
    let t38_call = got
        .values()
        .find_map(|f| f.5.clone())
        .expect("the T.38 call's streams carry its Call-ID");
    let per_stream: Vec<_> = got
        .values()
        .filter(|f| f.5.as_ref() == Some(&t38_call))
        .collect();
    assert_eq!(per_stream.len(), 2);
    assert_eq!(
        media[&t38_call].2.map(|j| format!("{j:.6}")),
        per_stream.iter().map(|f| f.3.clone()).max_by(|x, y| {
            x.parse::<f64>()
                .unwrap()
                .total_cmp(&y.parse::<f64>().unwrap())
        }),
        "the dialog's max jitter is recomputed over its streams"
    );
}

#[test]
fn sigkill_during_a_media_window_reindex_then_rerun_gives_the_clean_result() {
    let (tmp, t38, _single, _rtcp, db) = media_fixture();
    let (since, until, _, _) = t38_window(&t38, &db);
    let extra = ["--metrics", "rfc3550"];
    let clean = tmp.path().join("clean");
    copy_dir(&db, &clean);
    let t0 = std::time::Instant::now();
    reindex_window_with(&clean, &since, &until, &extra);
    let took = t0.elapsed().as_millis().max(20) as u64;
    let want = (stream_rows(&clean), report_rows(&clean), dialogs(&clean));
    let mut seed: u64 = 0x5eed_cafe;
    for _ in 0..8 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis((seed >> 33) % took);
        kill_window_reindex(&db, &since, &until, &extra, delay);
    }
    reindex_window_with(&db, &since, &until, &extra);
    assert!(!db.join("reindex.json").exists());
    assert_eq!(findings(&db).0, Some(0), "{:?}", findings(&db).1);
    assert_eq!(stream_rows(&db), want.0);
    assert_eq!(report_rows(&db), want.1);
    assert_eq!(dialogs(&db), want.2);
    // every table, the media ones included, holds as many rows as after the clean run
    assert_eq!(table_counts(&db), table_counts(&clean));
}

/// Starts `reindex --since --until` on `db`, SIGKILLs it after `delay` if it still runs, and checks
/// what `verify` may see after a kill; true when the kill landed inside the window reindex.
fn kill_window_reindex(
    db: &Path,
    since: &str,
    until: &str,
    extra: &[&str],
    delay: Duration,
) -> bool {
    let mut child = sipidx()
        .args(["reindex", "--quiet", "--db"])
        .arg(db)
        .args(["--since", since, "--until", until])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    std::thread::sleep(delay);
    let mut mid_run = false;
    if child.try_wait().unwrap().is_none() {
        child.kill().unwrap(); // SIGKILL
        mid_run = db.join("reindex.json").exists();
    }
    child.wait().unwrap();
    verify_after_kill(db, delay);
    mid_run
}

/// A trunk capture with RTP calls, RTCP and SIP over UDP and TCP (scripts/gen-trunk.py,
/// deterministic for its seed): ~5.6 MB, 30 s, ~47 RTP streams. None without python3.
fn gen_trunk(dir: &Path) -> Option<PathBuf> {
    let out = dir.join("trunk.pcap");
    let o = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-trunk.py"))
        .args([
            "--calls",
            "12",
            "--mean-duration",
            "15s",
            "--duration",
            "30s",
        ])
        .args(["--seed", "7", "--out"])
        .arg(&out)
        .output()
        .ok()?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(out)
}

/// `editcap -F pcap -c <packets>`: the capture as ring files named `x_00000_<time>.pcap` ...,
/// in time order. None without editcap.
fn editcap_split(src: &Path, dir: &Path, packets: usize) -> Option<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).unwrap();
    let o = std::process::Command::new("editcap")
        .args(["-F", "pcap", "-c", &packets.to_string()])
        .arg(src)
        .arg(dir.join("x.pcap"))
        .output()
        .ok()?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    Some(files)
}

/// The files renamed as `tcpdump -C 1 -w trunk.pcap` names its ring: `trunk.pcap`,
/// `trunk.pcap1`, ..., `trunk.pcap10`, ... (name order is not time order from the tenth on).
fn tcpdump_names(files: &[PathBuf], dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = if i == 0 {
                "trunk.pcap".to_string()
            } else {
                format!("trunk.pcap{i}")
            };
            let to = dir.join(name);
            std::fs::copy(f, &to).unwrap();
            to
        })
        .collect()
}

/// Every table of a DB as the CLI and the Parquet reader give it, each row a JSON string, rows
/// sorted: streams, dialogs, messages, RTCP and quality reports. Where a row was read from
/// (file, file id, offset in the file) is left out: it depends on the split by design.
fn all_tables(db: &Path) -> BTreeMap<&'static str, Vec<String>> {
    fn strip(mut v: serde_json::Value) -> String {
        if let Some(o) = v.as_object_mut() {
            for k in ["file", "file_id", "offset"] {
                o.remove(k);
            }
        }
        v.to_string()
    }
    let cli = |args: &[&str]| -> Vec<String> {
        let o = sipidx().args(args).arg("--db").arg(db).run();
        // 1: nothing matched, as grep says it
        let code = o.code();
        assert!(matches!(code, Some(0 | 1)), "{}", o.stderr());
        let mut rows: Vec<String> = o
            .stdout()
            .lines()
            .map(|l| strip(serde_json::from_str(l).unwrap()))
            .collect();
        rows.sort();
        rows
    };
    let mut t = BTreeMap::new();
    t.insert("streams", cli(&["streams", "--json"]));
    t.insert("calls", cli(&["calls", "--json", "--limit", "0"]));
    t.insert("search", cli(&["search", "--json", "--limit", "0"]));
    let mut rtcp = Vec::new();
    sipidx::store::parquet::for_each_row::<sipidx::store::record::RtcpReportRecord>(
        db,
        sipidx::store::parquet::DayRange::default(),
        |r| {
            rtcp.push(strip(serde_json::to_value(&r).unwrap()));
            Ok(())
        },
    )
    .unwrap();
    rtcp.sort();
    t.insert("rtcp_reports", rtcp);
    let mut qos = Vec::new();
    sipidx::store::parquet::for_each_row::<sipidx::store::record::QosReportRecord>(
        db,
        sipidx::store::parquet::DayRange::default(),
        |r| {
            qos.push(strip(serde_json::to_value(&r).unwrap()));
            Ok(())
        },
    )
    .unwrap();
    qos.sort();
    t.insert("qos_reports", qos);
    t
}

fn assert_same_tables(
    want: &BTreeMap<&'static str, Vec<String>>,
    db: &Path,
    how: &str,
) -> BTreeMap<&'static str, Vec<String>> {
    let got = all_tables(db);
    for (table, rows) in want {
        assert_eq!(
            got[table].len(),
            rows.len(),
            "{how}: {table} has {} rows, the unsplit capture {}",
            got[table].len(),
            rows.len()
        );
        assert!(
            got[table] == *rows,
            "{how}: {table} differs from the unsplit capture's"
        );
    }
    got
}

/// Issue 20: `tcpdump -C` names its ring `trunk.pcap`, `trunk.pcap1`, ... `trunk.pcap10`, and
/// path order put `trunk.pcap10` before `trunk.pcap2`: the media pass met files out of time
/// order and cut every RTP stream at their boundaries (47 streams became 195 rows here).
#[test]
fn tcpdump_dash_c_ring_names_index_in_capture_order() {
    let tmp = tempdir();
    let Some(whole) = gen_trunk(tmp.path()) else {
        eprintln!("skipped: no python3");
        return;
    };
    let Some(split) = editcap_split(&whole, &tmp.path().join("editcap"), 2000) else {
        eprintln!("skipped: no editcap");
        return;
    };
    assert!(split.len() >= 12, "{} files", split.len());
    let ring = tcpdump_names(&split, &tmp.path().join("ring"));
    let base = tmp.path().join("whole.db");
    index_with(&base, &[&whole], &[]);
    let want = all_tables(&base);
    assert!(want["streams"].len() > 20 && !want["rtcp_reports"].is_empty());
    let db = tmp.path().join("ring.db");
    let o = index_with(&db, &[ring[0].parent().unwrap()], &["--json"]);
    let v: serde_json::Value = o.json();
    assert_eq!(v["files_indexed"], ring.len());
    assert_eq!(v["media_files_out_of_order"], 0, "{v}");
    assert_same_tables(&want, &db, "tcpdump -C names");
    // file ids follow capture time, not names
    let catalog: serde_json::Value =
        serde_json::from_slice(&std::fs::read(db.join("catalog.json")).unwrap()).unwrap();
    let by_id: Vec<String> = catalog["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    let in_time: Vec<String> = ring
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(by_id, in_time);
}

/// Issue 20: the same tables whatever the split, the names, the links or the number and order of
/// runs: split by `editcap -c` and renamed as `tcpdump -C` names, indexed as a directory, via a
/// directory of symlinks, one file per run in a random (seeded) order, and in two runs.
#[test]
fn a_split_trunk_indexes_like_the_whole_whatever_the_names_links_and_runs() {
    let tmp = tempdir();
    let Some(whole) = gen_trunk(tmp.path()) else {
        eprintln!("skipped: no python3");
        return;
    };
    let Some(split) = editcap_split(&whole, &tmp.path().join("editcap"), 2000) else {
        eprintln!("skipped: no editcap");
        return;
    };
    let ring = tcpdump_names(&split, &tmp.path().join("ring"));
    let base = tmp.path().join("whole.db");
    index_with(&base, &[&whole], &[]);
    let want = all_tables(&base);

    // (a) the editcap names, as a directory
    let db = tmp.path().join("editcap.db");
    index_with(&db, &[split[0].parent().unwrap()], &[]);
    assert_same_tables(&want, &db, "editcap -c directory");

    // (b) a directory of symlinks with the tcpdump names: the links' paths are the ones kept
    let links = tmp.path().join("links");
    std::fs::create_dir(&links).unwrap();
    for f in &ring {
        std::os::unix::fs::symlink(f, links.join(f.file_name().unwrap())).unwrap();
    }
    let db = tmp.path().join("links.db");
    index_with(&db, &[&links], &[]);
    assert_same_tables(&want, &db, "symlinks");
    let catalog: serde_json::Value =
        serde_json::from_slice(&std::fs::read(db.join("catalog.json")).unwrap()).unwrap();
    for f in catalog["files"].as_array().unwrap() {
        let p = Path::new(f["path"].as_str().unwrap());
        assert_eq!(p.parent().unwrap(), links, "{p:?}");
        assert!(p.symlink_metadata().unwrap().file_type().is_symlink());
    }
    let o = sipidx()
        .args(["search", "--json", "--limit", "1", "--db"])
        .arg(&db)
        .run();
    let first: serde_json::Value =
        serde_json::from_str(o.stdout().lines().next().unwrap()).unwrap();
    assert!(first["file"]
        .as_str()
        .unwrap()
        .starts_with(&*links.to_string_lossy()));
    // the same files through their real names are known already
    let o = index_with(&db, &[ring[0].parent().unwrap()], &["--json"]);
    let v: serde_json::Value = o.json();
    assert_eq!(
        (v["files_indexed"].clone(), v["files_known"].clone()),
        (0.into(), ring.len().into())
    );

    // (c) one file per run, in a random order (a seeded shuffle): each late file is folded in
    let mut order: Vec<&PathBuf> = ring.iter().collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in (1..order.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        order.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    assert_ne!(order, ring.iter().collect::<Vec<_>>());
    let db = tmp.path().join("random.db");
    let mut reanalysed = 0;
    for f in &order {
        let o = index_with(&db, &[f], &["--json"]);
        let v: serde_json::Value = o.json();
        assert_eq!(v["media_files_out_of_order"], 0, "{v}");
        reanalysed += v["media_files_reanalysed"].as_u64().unwrap();
    }
    assert!(
        reanalysed > 0,
        "some file of a shuffled ring comes before one indexed earlier"
    );
    assert_same_tables(&want, &db, "one file per run, random order");

    // (d) two runs: the first six names (trunk.pcap, trunk.pcap1, trunk.pcap10 ...: not the
    // first six in time), then the directory
    let mut names: Vec<&PathBuf> = ring.iter().collect();
    names.sort();
    let db = tmp.path().join("two.db");
    let first: Vec<&Path> = names[..6].iter().map(|p| p.as_path()).collect();
    index_with(&db, &first, &[]);
    index_with(&db, &[ring[0].parent().unwrap()], &[]);
    assert_same_tables(&want, &db, "two runs");
}

/// Issue 20: `--settle` spares a file named on the command line; files found by a walk that are
/// too young wait, the run says so and for how long; and the DB such a run leaves is a DB.
#[test]
fn settle_applies_to_walked_files_only_and_an_empty_run_leaves_a_db() {
    let tmp = tempdir();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    let fresh = dir.join("fresh.pcap");
    std::fs::copy(testdata("corpus/sip-cancel-487.pcap"), &fresh).unwrap();
    let db = tmp.path().join("db");
    let run = |arg: &Path| {
        sipidx()
            .args(["index", "--json", "--settle", "1h", "--db"])
            .arg(&db)
            .arg(arg)
            .run()
    };
    // a walk: the file was just written, so it waits
    let o = run(&dir);
    assert!(o.code() == Some(0));
    let v: serde_json::Value = o.json();
    assert_eq!(
        (v["files_indexed"].clone(), v["files_waiting"].clone()),
        (0.into(), 1.into())
    );
    let wait = v["settle_wait_seconds"].as_f64().unwrap();
    assert!(wait > 3500.0 && wait <= 3600.0, "{v}");
    let stderr = o.stderr();
    assert!(
        stderr.contains("1 files found in a directory or glob"),
        "{stderr}"
    );
    assert!(stderr.contains("run again in"), "{stderr}");
    // the run indexed nothing, yet the DB answers queries: nothing matches (exit 1, as grep),
    // it is not "not a sipidx database" (exit 2)
    for q in [
        &["calls", "--json"][..],
        &["search", "--json"],
        &["streams", "--json"],
    ] {
        let o = sipidx().args(q).arg("--db").arg(&db).run();
        let stderr = o.stderr();
        assert_eq!(o.code(), Some(1), "{q:?}: {stderr}");
        assert!(o.stdout_bytes().is_empty(), "{q:?}");
        assert!(!stderr.contains("not a sipidx database"), "{q:?}: {stderr}");
    }
    // a glob is a walk too
    let o = run(&dir.join("*.pcap"));
    let v: serde_json::Value = o.json();
    assert_eq!(v["files_waiting"], 1, "{v}");
    // named, the same file is indexed at once
    let o = run(&fresh);
    let v: serde_json::Value = o.json();
    assert_eq!(
        (v["files_indexed"].clone(), v["files_waiting"].clone()),
        (1.into(), 0.into())
    );
    assert_eq!(v["settle_wait_seconds"], 0.0);
    assert!(!dialogs(&db).is_empty());
}

/// Issue 20: a SIP/TCP message cut by a ring rotation is completed by the scan of the file after
/// the cut, which replays its predecessor's tail first. When the predecessor is indexed after
/// that file (ring files newest first, one per run), the file is rescanned with the tail once
/// it is known, and only the rows its own scan made are replaced: the tables, the text index
/// (`search`) included, equal those of one run over the ring.
#[test]
fn a_tcp_message_cut_by_a_rotation_is_found_whatever_order_the_ring_files_come_in() {
    let tmp = tempdir();
    let ring = tmp.path().join("ring");
    std::fs::create_dir(&ring).unwrap();
    // 19 packets in 7 files: the INVITE and others are cut between files
    let files = split(&testdata("corpus/sip-tcp-segmented-call.pcap"), &ring, 7);
    assert_eq!(files.len(), 7);
    let whole = tmp.path().join("whole.db");
    index_with(
        &whole,
        &[&testdata("corpus/sip-tcp-segmented-call.pcap")],
        &[],
    );
    let one_run = tmp.path().join("one.db");
    index_with(&one_run, &[&ring], &[]);
    assert_eq!(messages(&one_run), messages(&whole));
    let want = all_tables(&one_run);
    let db = tmp.path().join("newest-first.db");
    let mut rescanned = 0;
    for f in files.iter().rev() {
        let o = index_with(&db, &[f], &["--json"]);
        let v: serde_json::Value = o.json();
        rescanned += v["files_rescanned"].as_u64().unwrap();
    }
    assert_eq!(
        rescanned, 6,
        "each file but the newest, once its predecessor came"
    );
    assert_eq!(messages(&db), messages(&whole));
    assert_eq!(dialogs(&db), dialogs(&whole));
    assert_same_tables(&want, &db, "newest first, one file per run");
}
