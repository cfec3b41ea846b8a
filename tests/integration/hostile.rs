//! The hostile capture suite (testdata/hostile, made by scripts/craft_hostile.py) through the real
//! binary: every file is read to its end, bad parts are counted and skipped, memory stays bounded.
use std::path::Path;
use std::process::Stdio;

use crate::util::{
    hostile, index_cmd, index_with, sipidx, sipidx_limited, tempdir, testdata, tool, verify,
    Outcome,
};

fn stem(name: &str) -> &str {
    name.split('.').next().unwrap()
}

/// `sipidx grep --count [extra] FILE`: (exit code, count, stderr).
fn grep_count(file: &Path, extra: &[&str]) -> (i32, u64, String) {
    let o = sipidx()
        .args(["grep", "--count", "--color", "never"])
        .args(extra)
        .arg(file)
        .run();
    let out = o.stdout();
    let n = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("count: {out:?}"));
    (o.code().unwrap_or(-1), n, o.stderr())
}

/// `sipidx index --json` of `target` into `db`, optionally under an address-space limit; asserts
/// it succeeded and returns the run with its summary.
fn index_json(db: &Path, target: &Path, limit_kib: Option<u64>) -> (Outcome, serde_json::Value) {
    let mut c = limit_kib.map_or_else(sipidx, sipidx_limited);
    // two threads: the address space grows with threads (stacks, malloc arenas)
    c.args([
        "index", "--settle", "0s", "--quiet", "--json", "-j", "2", "--db",
    ])
    .arg(db)
    .arg(target);
    let o = c.ok();
    let v = o.json();
    (o, v)
}

/// What one hostile file must give: messages grep counts, packets and SIP messages index counts.
struct Case {
    file: &'static str,
    messages: u64,
    packets: u64,
}

const CASES: &[Case] = &[
    // only the OPTIONS before the absurd record: pcap cannot be resynchronised after it
    Case {
        file: "caplen-absurd.pcap",
        messages: 1,
        packets: 1,
    },
    Case {
        file: "len-absurd.pcap",
        messages: 3,
        packets: 3,
    },
    Case {
        file: "records-zero-256k.pcap",
        messages: 1,
        packets: 1003,
    },
    Case {
        file: "timestamps.pcap",
        messages: 7,
        packets: 7,
    },
    Case {
        file: "frag-endless.pcap",
        messages: 1,
        packets: 20_001,
    },
    // the overlapping datagram reassembles once; the one ending past 64 KiB never does
    Case {
        file: "frag-overlap.pcap",
        messages: 2,
        packets: 10,
    },
    // the 1 GB message never completes; the sane TCP OPTIONS and the sentinel do
    Case {
        file: "tcp-huge-content-length.pcap.zst",
        messages: 2,
        packets: 1_505,
    },
    Case {
        file: "tcp-half-open.pcap.zst",
        messages: 2,
        packets: 100_002,
    },
    Case {
        file: "many-call-ids.pcap.zst",
        messages: 100_001,
        packets: 100_001,
    },
    Case {
        file: "headers-10k.pcap",
        messages: 2,
        packets: 2,
    },
    Case {
        file: "sdp-1000-media.pcap",
        messages: 2,
        packets: 2,
    },
];

#[test]
fn grep_reads_every_hostile_file_to_its_sentinel() {
    for c in CASES {
        let f = hostile(c.file);
        let (rc, n, err) = grep_count(&f, &[]);
        assert_eq!((rc, n), (0, c.messages), "{}: {err}", c.file);
        let id = format!("sentinel-{}@hostile", stem(c.file));
        let (rc, n, _) = grep_count(&f, &["--call-id", &id]);
        assert_eq!((rc, n), (0, 1), "{}: sentinel", c.file);
    }
}

#[test]
fn absurd_caplen_stops_with_a_warning_and_keeps_what_came_before() {
    // regression: a corrupt record used to end the file silently in grep and index
    let f = hostile("caplen-absurd.pcap");
    let (_, _, err) = grep_count(&f, &[]);
    assert!(err.contains("corrupt record at byte offset 306"), "{err}");
    let (rc, n, _) = grep_count(&f, &["--call-id", "after-corrupt@hostile"]);
    assert_eq!((rc, n), (1, 0));
    let db = tempdir();
    let (o, v) = index_json(&db.path().join("db"), &f, None);
    assert_eq!(v["files_corrupt"], 1);
    assert_eq!(v["sip_messages"], 1);
    assert!(o.stderr().contains("corrupt record at byte offset 306"));
}

#[test]
fn index_counts_and_skips_each_hostile_file() {
    for c in CASES.iter().filter(|c| !c.file.starts_with("many-")) {
        let db = tempdir();
        let (_, v) = index_json(&db.path().join("db"), &hostile(c.file), None);
        assert_eq!(v["files_indexed"], 1, "{}", c.file);
        assert_eq!(v["files_failed"], 0, "{}", c.file);
        assert_eq!(v["packets"], c.packets, "{}", c.file);
        assert_eq!(v["sip_messages"], c.messages, "{}: {v}", c.file);
    }
}

#[test]
fn garbage_on_5060_is_counted_malformed_not_indexed() {
    let f = hostile("garbage-5060.pcap");
    let id = "sentinel-garbage-5060@hostile";
    assert_eq!(grep_count(&f, &["--call-id", id]).1, 1);
    let db = tempdir();
    let (_, v) = index_json(&db.path().join("db"), &f, None);
    assert_eq!(v["packets"], 1201);
    assert_eq!(v["sip_messages"], 1);
    // random bytes behind a "SIP/2.0 200 OK" start line parse as far as the headers, lack a
    // Call-ID, and are counted as malformed
    let malformed = v["malformed_sip"].as_u64().unwrap();
    assert!(malformed > 50 && malformed < 1200, "{v}");
}

#[test]
fn timestamps_out_of_order_and_out_of_range_stay_searchable_by_time() {
    let f = hostile("timestamps.pcap");
    // 1970-01-01, and the u32 end of pcap time (2106-02-07)
    let (_, n, _) = grep_count(&f, &["--until", "1971-01-01 00:00"]);
    assert_eq!(n, 1);
    let (_, n, _) = grep_count(&f, &["--since", "2100-01-01 00:00"]);
    assert_eq!(n, 1);
}

#[test]
fn index_of_the_whole_suite_fits_in_a_bounded_address_space() {
    // many-call-ids (100k dialogs) once needed 1 to 1.5 GiB of address space with -j 2; dialogs
    // now spill over --dialog-memory (see the flood test below for a tighter limit).
    let limit_kib = 2 * 1024 * 1024;
    let db = tempdir();
    let (_, v) = index_json(&db.path().join("db"), &hostile(""), Some(limit_kib));
    let files = CASES.len() as u64 + 1; // + garbage-5060
    assert_eq!(v["files_indexed"], files, "{v}");
    let messages: u64 = CASES.iter().map(|c| c.messages).sum::<u64>() + 1;
    assert_eq!(v["sip_messages"], messages, "{v}");
    assert_eq!(v["files_corrupt"], 1, "{v}");
}

/// Rows `search` finds for the word "sentinel" (one per hostile file, two more over TCP).
fn sentinel_rows(db: &Path) -> Result<usize, String> {
    let o = sipidx()
        .args(["search", "--json", "--limit", "0", "--db"])
        .arg(db)
        .arg("sentinel")
        .run();
    match o.code() {
        Some(0) | Some(1) => Ok(o
            .stdout_bytes()
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count()),
        _ => Err(o.stderr()),
    }
}

#[test]
fn search_while_index_writes_sees_only_whole_commits_and_a_second_index_refuses() {
    let tmp = tempdir();
    let db = tmp.path().join("db");
    // the DB exists before readers start
    index_json(&db, &hostile("len-absurd.pcap"), None);
    assert_eq!(sentinel_rows(&db), Ok(1));
    // one file per commit, so readers can catch the DB between commits
    let mut writer = sipidx()
        .args([
            "index",
            "--settle",
            "0s",
            "--quiet",
            "-j",
            "2",
            "--batch-files",
            "1",
            "--db",
        ])
        .arg(&db)
        .arg(hostile(""))
        .stderr(Stdio::piped())
        .spawn();
    let mut seen = vec![];
    let mut refused = None;
    while writer.try_wait().unwrap().is_none() {
        // pending.json exists only while a run is under way, holding the lock (schemas/db.md);
        // waiting for new rows instead raced the writer's exit, which follows its commit closely
        if refused.is_none() && db.join("pending.json").exists() {
            let o = index_cmd(&db).arg(hostile("timestamps.pcap")).run();
            refused = Some((o.code(), o.stderr()));
        }
        match sentinel_rows(&db) {
            Ok(n) => seen.push(n),
            Err(e) => panic!("search failed while index ran: {e}"),
        }
    }
    let o = writer.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, err) = refused.expect("the index run outlived one poll");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("another sipidx index run"), "{err}");
    // counts only grow, by whole files, from the first run's to the final one
    let last = sentinel_rows(&db).unwrap();
    assert_eq!(last, 14);
    assert!(
        seen.len() > 1,
        "too few reads to observe anything: {seen:?}"
    );
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(seen.iter().all(|&n| (1..=last).contains(&n)), "{seen:?}");
}

/// `n` SIP OPTIONS from one scanner, each its own Call-ID, 10,000 a second (as
/// /work/bench/h1m/gen.py makes them): every message is a new dialog.
fn options_flood(path: &Path, n: u32) {
    use sipidx::source::{linktype, PcapWriter};
    let f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut w = PcapWriter::new(f, linktype::ETHERNET, 65_535, false).unwrap();
    for i in 0..n {
        let body = format!(
            "OPTIONS sip:100@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{i}\r\n\
             From: <sip:scan@10.0.0.1>;tag={i}\r\nTo: <sip:100@10.0.0.2>\r\nCall-ID: {i:016x}@flood\r\n\
             CSeq: 1 OPTIONS\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n"
        );
        let udp_len = 8 + body.len();
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
        ip.extend_from_slice(&(i as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        let sum = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum::<u32>();
        let sum = (sum >> 16) + (sum & 0xffff);
        let sum = !((sum + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&5060u16.to_be_bytes());
        frame.extend_from_slice(&5060u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(body.as_bytes());
        let ts_ns = 1_700_000_000_000_000_000 + i64::from(i) * 100_000;
        w.write_packet(ts_ns, &frame, frame.len() as u32).unwrap();
    }
    w.flush().unwrap();
}

/// Dialog rows of a DB: (rows, distinct Call-IDs, rows flagged scanner).
fn dialog_rows(db: &Path) -> (u64, usize, u64) {
    use sipidx::store::parquet::{for_each_row, DayRange};
    use sipidx::store::record::DialogRecord;
    let (mut rows, mut scanners) = (0, 0);
    let mut ids = std::collections::HashSet::new();
    for_each_row::<DialogRecord>(db, DayRange::default(), |d| {
        rows += 1;
        scanners += u64::from(d.scanner);
        ids.insert(d.call_id);
        Ok(())
    })
    .unwrap();
    (rows, ids.len(), scanners)
}

#[test]
fn a_flood_of_call_ids_is_indexed_in_memory_set_by_the_knobs() {
    // 250k Call-IDs took ~1.6 GB of heap before the dialog stage spilled (6.6 KB a dialog);
    // with an 8 MiB dialog budget the run must fit a 1 GiB address space with -j 2.
    let n = 250_000u32;
    let dir = tempdir();
    let pcap = dir.path().join("flood.pcap");
    options_flood(&pcap, n);
    let db = dir.path().join("db");
    let v = sipidx_limited(1024 * 1024)
        .args(["index", "--settle", "0s", "--quiet", "--json", "-j", "2"])
        .args(["--dialog-memory", "8MiB", "--text-memory", "16MiB", "--db"])
        .arg(&db)
        .arg(&pcap)
        .ok()
        .json();
    assert_eq!(v["sip_messages"], n, "{v}");
    assert_eq!(v["dialogs"], n, "{v}");
    // every dialog once, each flagged as the scanner's; the spill directory is gone
    assert_eq!(dialog_rows(&db), (u64::from(n), n as usize, u64::from(n)));
    assert!(!db.join("spill").exists());
    let mut messages = 0u64;
    sipidx::store::parquet::for_each_row::<sipidx::store::record::MessageRecord>(
        &db,
        Default::default(),
        |_| {
            messages += 1;
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(messages, u64::from(n));
}

#[test]
fn spilled_dialogs_give_the_same_rows_as_dialogs_held_in_memory() {
    let dir = tempdir();
    let pcap = dir.path().join("flood.pcap");
    options_flood(&pcap, 30_000);
    let table = |db: &Path| {
        sipidx::store::parquet::read_dialogs(db, &Default::default())
            .unwrap()
            .into_iter()
            .map(|d| format!("{d:?}"))
            .collect::<Vec<_>>()
    };
    let index = |db: &Path, budget: &str| {
        index_with(db, &[&pcap], &["--dialog-memory", budget]);
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    index(&a, "1GiB");
    index(&b, "256KiB");
    let (ta, tb) = (table(&a), table(&b));
    assert_eq!(ta.len(), 30_000);
    assert!(ta == tb, "spilling changed the dialog rows");
}

/// Issue #6's "1M distinct Call-IDs": 1,000,000 OPTIONS with distinct Call-IDs as 50 ring files
/// of 20,000 (198 MB, so made at test time by `craft_hostile.py --call-ids`, never committed),
/// indexed under an address-space limit with two files per batch; the DB then holds one dialog per
/// Call-ID and `verify` passes. Minutes in a debug build, so not in CI's `cargo test`:
/// `cargo test --test integration -- --ignored a_million` (SIPIDX_HOSTILE_CALL_IDS=N for another count).
/// Peak memory is reported in README "Resource bounds".
#[test]
#[ignore]
fn a_million_call_ids_index_under_a_memory_limit() {
    let n: u64 = std::env::var("SIPIDX_HOSTILE_CALL_IDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let per_file = 20_000u64;
    let tmp = tempdir();
    let ring = tmp.path().join("ring");
    let script = testdata("../scripts/craft_hostile.py");
    tool("python3")
        .arg(script)
        .args(["--call-ids", &n.to_string(), &per_file.to_string()])
        .arg(&ring)
        .ok();
    let db = tmp.path().join("db");
    let limit_kib = 3 * 1024 * 1024;
    let v = sipidx_limited(limit_kib)
        .args([
            "index",
            "--settle",
            "0s",
            "--quiet",
            "--json",
            "-j",
            "2",
            "--batch-files",
            "2",
            "--db",
        ])
        .arg(&db)
        .arg(&ring)
        .ok()
        .json();
    assert_eq!(v["files_indexed"], n.div_ceil(per_file), "{v}");
    assert_eq!(v["sip_messages"], n, "{v}");
    assert_eq!(v["dialogs"], n, "{v}");
    let (code, rows) = verify(&db);
    assert_eq!(code, Some(0), "{rows:?}");
    let summary = rows.last().unwrap();
    assert_eq!(summary["dialogs"], n);
    assert_eq!(summary["messages"], n);
    assert_eq!(summary["text_documents"], n);
}
