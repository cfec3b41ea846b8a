//! Integration tests of the DB queries (`search`, `calls`, `stats`): the real binary over DBs built
//! by `sipidx index` from testdata, checked against tshark's oracles, against `sipidx grep` on the
//! same files, and against outcomes read by hand from the messages.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::util::{index, sipidx, tempdir, testdata, tshark_call_ids, Outcome};

/// Runs `sipidx ARGS`; exit 0 (rows) or 1 (none) required.
fn run(args: &[&str]) -> Outcome {
    sipidx().args(args).code_in(&[0, 1])
}

/// One DB over testdata/corpus and testdata/crafted, built once for the tests that share it.
fn shared_db() -> &'static Path {
    static DB: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DB.get_or_init(|| {
        let dir = tempdir();
        let db = dir.path().join("db");
        index(&db, &[&testdata("corpus"), &testdata("crafted")]);
        (dir, db)
    })
    .1
}

/// A DB of one testdata capture, in a temporary directory that lives as long as the first value.
fn db_of(rel: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempdir();
    let db = tmp.path().join("db");
    index(&db, &[&testdata(rel)]);
    (tmp, db)
}

fn db_arg(db: &Path) -> String {
    db.to_str().unwrap().to_string()
}

/// The capture files the catalog of `db` names, as indexed (canonical paths).
fn catalog_files(db: &Path) -> Vec<String> {
    let c: Value =
        serde_json::from_slice(&std::fs::read(db.join("catalog.json")).unwrap()).unwrap();
    c["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["error"].is_null())
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

/// tshark's `-Y sip -T fields -e sip.Call-ID | sort | uniq -c`, non-empty Call-IDs only.
fn oracle_callids(name: &str) -> BTreeMap<String, u64> {
    let path = testdata(&format!("corpus/expected/{name}.sip_callids.txt"));
    let mut m = tshark_call_ids(&path).unwrap();
    m.remove("");
    m
}

fn calls_json(db: &Path, extra: &[&str]) -> Vec<Value> {
    let dbs = db_arg(db);
    let mut args = vec!["calls", "--db", &dbs, "--json", "--limit", "0"];
    args.extend_from_slice(extra);
    run(&args).json_rows()
}

/// The dialog kind a Call-ID's messages call for, read from `grep --json` (requests by method,
/// responses by CSeq method): INVITE makes a call, else REGISTER a registration, else other.
fn kinds_from_grep(file: &Path) -> BTreeMap<String, &'static str> {
    let rows = run(&["grep", "--json", file.to_str().unwrap()]).json_rows();
    let mut methods: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rows {
        let Some(id) = r["call_id"].as_str() else {
            continue;
        };
        let m = match r["method"].as_str() {
            Some(m) => m.to_string(),
            None => r["cseq"]
                .as_str()
                .and_then(|c| c.split_whitespace().nth(1))
                .unwrap_or("")
                .to_string(),
        };
        methods.entry(id.to_string()).or_default().insert(m);
    }
    methods
        .into_iter()
        .map(|(id, ms)| {
            let kind = if ms.contains("INVITE") {
                "call"
            } else if ms.contains("REGISTER") {
                "registration"
            } else {
                "other"
            };
            (id, kind)
        })
        .collect()
}

/// (kind, state, final status) per Call-ID, read by hand from the messages of each capture.
fn hand_outcomes(name: &str) -> Option<Vec<(&'static str, &'static str, &'static str, u64)>> {
    Some(match name {
        // INVITE, 100, 180, CANCEL, 200 (CANCEL), 487, ACK
        "sip-cancel-487.pcap" => vec![("*", "call", "canceled", 487)],
        // INVITE, 100, 180, 200, ACK, BYE, 200
        "sip-simple-invite-bye.pcap" => vec![("*", "call", "answered", 200)],
        "sip-sipp-5-calls.pcap" | "sip-sipp-5-calls-sll.pcap" => {
            vec![("*", "call", "answered", 200)]
        }
        // REGISTER → 401, no retry in the capture
        "sip-register-401-udp.pcap" => vec![("*", "registration", "failed", 401)],
        // OPTIONS → 200: an `other` dialog keeps its final code as its state
        "sip-options-200.pcap" => vec![("*", "other", "200", 200)],
        // See src/sip/dialog/tests/corpus.rs corpus_mixed_register_invite_cancel_auth for each transaction.
        "sip-udp-register-invite-cancel-auth-mixed.pcap" => vec![
            ("105090259-446faf7a@192.168.1.2", "call", "canceled", 408),
            ("11894297-4432a9f8@192.168.1.2", "call", "failed", 480),
            ("24487391-449bf2a0@192.168.1.2", "call", "failed", 403),
            (
                "29858147-465b0752@29858051-465b07b2",
                "registration",
                "registered",
                200,
            ),
            (
                "578222729-4665d775@578222732-4665d772",
                "registration",
                "failed",
                401,
            ),
            ("85216695-42dcdb1d@192.168.1.2", "call", "failed", 403),
        ],
        _ => return None,
    })
}

#[test]
fn calls_has_one_dialog_per_tshark_call_id_on_every_corpus_sip_capture() {
    let tmp = tempdir();
    let mut checked = 0;
    let mut by_hand = 0;
    let mut names: Vec<String> = std::fs::read_dir(testdata("corpus"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    names.sort();
    for name in &names {
        let oracle = oracle_callids(name);
        if oracle.is_empty() {
            continue; // no SIP for tshark (the HEP files: tshark 4.0 has no HEP dissector)
        }
        let file = testdata(&format!("corpus/{name}"));
        let db = tmp.path().join(name);
        index(&db, &[&file]);
        let rows = calls_json(&db, &[]);
        let got: BTreeMap<String, u64> = rows
            .iter()
            .map(|r| {
                (
                    r["call_id"].as_str().unwrap().to_string(),
                    r["messages"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(rows.len(), got.len(), "{name}: a Call-ID listed twice");
        assert_eq!(got, oracle, "{name}: dialogs and message counts vs tshark");
        let kinds = kinds_from_grep(&file);
        for r in &rows {
            let id = r["call_id"].as_str().unwrap();
            assert_eq!(r["kind"], kinds[id], "{name}: kind of {id}");
            for key in ["start", "end"] {
                let t = r[key].as_str().unwrap();
                assert!(
                    t.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(t).is_ok(),
                    "{name}: {key} {t}"
                );
            }
        }
        if let Some(want) = hand_outcomes(name) {
            by_hand += 1;
            for r in &rows {
                let id = r["call_id"].as_str().unwrap();
                let (_, kind, state, status) = want
                    .iter()
                    .find(|w| w.0 == "*" || w.0 == id)
                    .unwrap_or_else(|| panic!("{name}: unexpected dialog {id}"));
                assert_eq!(
                    (
                        r["kind"].as_str().unwrap(),
                        r["state"].as_str().unwrap(),
                        r["final_status"].as_u64()
                    ),
                    (*kind, *state, Some(*status)),
                    "{name}: {id}"
                );
            }
            if want[0].0 != "*" {
                assert_eq!(rows.len(), want.len(), "{name}");
            }
        }
        checked += 1;
    }
    // 24 captures of the corpus carry SIP that tshark sees (README: Call-IDs column).
    assert!(checked >= 24, "only {checked} SIP captures checked");
    assert_eq!(by_hand, 7);
}

#[test]
fn calls_json_rows_carry_the_documented_fields_and_filters_narrow_them() {
    let (_tmp, db) = db_of("corpus/sip-udp-register-invite-cancel-auth-mixed.pcap");
    let all = calls_json(&db, &[]);
    assert_eq!(all.len(), 6);
    for key in [
        "call_id",
        "kind",
        "state",
        "final_status",
        "start",
        "end",
        "from_user",
        "to_user",
        "ruri_user",
        "src_ip",
        "dst_ip",
        "user_agent",
        "pdd_ms",
        "duration_s",
        "messages",
        "correlation_id",
        "scanner",
    ] {
        assert!(all.iter().all(|r| r.get(key).is_some()), "missing {key}");
    }
    assert!(all.iter().all(|r| r.get("summary").is_none()));
    let ids = |rows: Vec<Value>| -> Vec<String> {
        rows.iter()
            .map(|r| r["call_id"].as_str().unwrap().to_string())
            .collect()
    };
    // Three failed calls, one canceled call, one failed registration.
    assert_eq!(calls_json(&db, &["--failed"]).len(), 5);
    assert_eq!(calls_json(&db, &["--failed", "--kind", "call"]).len(), 4);
    assert_eq!(
        ids(calls_json(&db, &["--state", "canceled"])),
        ["105090259-446faf7a@192.168.1.2"]
    );
    assert_eq!(
        ids(calls_json(
            &db,
            &["--kind", "registration", "--state", "registered"]
        )),
        ["29858147-465b0752@29858051-465b07b2"]
    );
    // PDDs 204.6, 193.9 and 426.5 ms.
    assert_eq!(
        ids(calls_json(&db, &["--min-pdd", "300ms"])),
        ["11894297-4432a9f8@192.168.1.2"]
    );
    let by_pdd = ids(calls_json(&db, &["--sort", "-pdd", "--limit", "2"]));
    assert_eq!(
        by_pdd,
        [
            "11894297-4432a9f8@192.168.1.2",
            "85216695-42dcdb1d@192.168.1.2"
        ]
    );
    assert_eq!(calls_json(&db, &["--status", "4xx"]).len(), 5);
    assert_eq!(calls_json(&db, &["--status", "403"]).len(), 2);
    assert_eq!(calls_json(&db, &["--from", "35104723"]).len(), 3);
    assert_eq!(calls_json(&db, &["--ip", "212.242.33.0/24"]).len(), 5);
    assert_eq!(calls_json(&db, &["--ip", "200.68.120.81"]).len(), 1);
    assert_eq!(
        calls_json(&db, &["--until", "2005-07-04T09:43:53.794463Z"]).len(),
        3,
        "--until is inclusive"
    );
    // Nothing answered here: a minimum duration matches nothing, exit 1.
    let dbs = db_arg(&db);
    sipidx()
        .args(["calls", "--db", &dbs, "--min-duration", "1s"])
        .code(1);
    // Time order, newest first.
    let desc = calls_json(&db, &["--sort", "-time"]);
    let starts: Vec<&str> = desc.iter().map(|r| r["start"].as_str().unwrap()).collect();
    let mut sorted = starts.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(starts, sorted);
}

/// A message's identity across `grep --json` and `search --json`.
fn message_key(r: &Value) -> String {
    format!(
        "{} @{} {} {}:{}>{}:{} {} {} {}",
        r["file"].as_str().unwrap(),
        r["offset"],
        r["ts"].as_str().unwrap(),
        r["src_ip"].as_str().unwrap(),
        r["src_port"],
        r["dst_ip"].as_str().unwrap(),
        r["dst_port"],
        r["call_id"],
        r["cseq"],
        if r["status"].is_null() {
            r["method"].to_string()
        } else {
            r["status"].to_string()
        },
    )
}

fn keys(rows: &[Value]) -> BTreeSet<String> {
    let set: BTreeSet<String> = rows.iter().map(message_key).collect();
    assert_eq!(set.len(), rows.len(), "a message printed twice");
    set
}

fn grep_rows(files: &[String], filter: &[&str], regex: Option<&str>) -> Vec<Value> {
    let mut rows = Vec::new();
    // One file at a time, as the index scans them.
    for f in files {
        let mut a: Vec<&str> = vec!["grep", "--json", f];
        a.extend_from_slice(filter);
        if let Some(r) = regex {
            a.extend(["--", r]);
        }
        rows.extend(run(&a).json_rows());
    }
    rows
}

fn search_rows(db: &Path, filter: &[&str], query: Option<&str>) -> Vec<Value> {
    let dbs = db_arg(db);
    let mut args = vec!["search", "--db", &dbs, "--json", "--limit", "0"];
    args.extend_from_slice(filter);
    if let Some(q) = query {
        args.push(q);
    }
    run(&args).json_rows()
}

#[test]
fn search_finds_the_messages_grep_finds_with_the_same_filters() {
    let db = shared_db();
    let files = catalog_files(db);
    assert!(files.len() > 50, "{} files", files.len());
    let cases: &[(&[&str], Option<&str>, Option<&str>)] = &[
        (&["--from", "3510"], None, None),
        (&["--to", "9723"], None, None),
        (&["--call-id", "105090259-446faf7a@192.168.1.2"], None, None),
        (&["--status", "4xx"], None, None),
        (&["--method", "INVITE", "--status", "200"], None, None),
        (&["--method", "BYE"], None, None),
        (&["--ip", "10.0.0.0/8", "--port", "5060"], None, None),
        (&["--ip", "212.242.33.35"], None, None),
        (&["--ua", "x-lite"], None, None),
        (
            &[
                "--since",
                "2005-07-04 09:40",
                "--until",
                "2005-07-04 09:54:08.528833",
            ],
            None,
            None,
        ),
        // Text: a word and a phrase (tokens split at non-alphanumerics, case-insensitive).
        (
            &[],
            Some("cirpack"),
            Some(r"(?i)(^|[^\p{Alphabetic}\p{N}])cirpack($|[^\p{Alphabetic}\p{N}])"),
        ),
        (
            &["--status", "487"],
            Some("\"request terminated\""),
            Some(r"(?i)request[^\p{Alphabetic}\p{N}]+terminated"),
        ),
    ];
    for (filter, query, regex) in cases {
        let want = grep_rows(&files, filter, *regex);
        let got = search_rows(db, filter, *query);
        assert!(!want.is_empty(), "{filter:?} {query:?}: grep found nothing");
        assert_eq!(
            keys(&got),
            keys(&want),
            "{filter:?} {query:?}: search and grep differ"
        );
    }
}

#[test]
fn search_limits_sorts_and_exits_one_when_nothing_matches() {
    let db = shared_db();
    let dbs = db_arg(db);
    let all = search_rows(db, &["--status", "4xx"], None);
    let first = search_rows(db, &["--status", "4xx", "--limit", "3"], None);
    assert_eq!(first.len(), 3);
    let ts = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|r| r["ts"].as_str().unwrap().to_string())
            .collect()
    };
    let mut asc = ts(&all);
    asc.sort();
    assert_eq!(ts(&first), asc[..3]);
    let last = search_rows(
        db,
        &["--status", "4xx", "--sort", "-time", "--limit", "2"],
        None,
    );
    let mut desc = asc.clone();
    desc.reverse();
    assert_eq!(ts(&last), desc[..2]);
    // The default limit and the note on stderr.
    let o = run(&["search", "--db", &dbs, "--json"]);
    assert_eq!(o.json_rows().len(), 100);
    assert!(o.stderr().contains("--limit 0"));
    let o = sipidx()
        .args(["search", "--db", &dbs, "--call-id", "no-such-call"])
        .code(1);
    assert!(o.stdout().is_empty() || o.stdout().starts_with("TIME"));
    sipidx()
        .args(["search", "--db", &dbs, "--regex", "zzzq.*"])
        .code(1);
}

#[test]
fn search_table_has_one_line_per_message_and_escapes_control_bytes() {
    let (_tmp, db) = db_of("corpus/sip-udp-register-invite-cancel-auth-mixed.pcap");
    let dbs = db_arg(&db);
    let filter = ["--call-id", "105090259-446faf7a@192.168.1.2"];
    let o = run(&[
        &["search", "--db", &dbs, "--limit", "0", "--color", "never"][..],
        &filter,
    ]
    .concat());
    let text = o.stdout();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("TIME") && lines[0].contains("SRC → DST"));
    // tshark: 18 messages with this Call-ID.
    assert_eq!(lines.len(), 1 + 18);
    assert!(lines[1].contains("INVITE") && lines[1].contains("192.168.1.2:5060 → "));
    assert!(!text.contains('\x1b'));
}

#[test]
fn csv_parses_and_carries_the_json_values() {
    let db = shared_db();
    let dbs = db_arg(db);
    for (cmd, filter) in [("search", "--status"), ("calls", "--status")] {
        let base = ["--db", &dbs, "--limit", "0", filter, "4xx"];
        let json = run(&[&[cmd, "--json"][..], &base].concat()).json_rows();
        let csv_out = run(&[&[cmd, "--csv"][..], &base].concat()).stdout();
        let mut r = csv::Reader::from_reader(csv_out.as_bytes());
        let headers = r.headers().unwrap().clone();
        let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(rows.len(), json.len(), "{cmd}");
        assert!(!rows.is_empty());
        for (rec, obj) in rows.iter().zip(&json) {
            let obj = obj.as_object().unwrap();
            assert_eq!(headers.len(), obj.len(), "{cmd}: CSV and JSON fields");
            for (h, v) in headers.iter().zip(rec.iter()) {
                let want = match &obj[h] {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert_eq!(v, want, "{cmd}: field {h}");
            }
        }
        // No rows: still the header line.
        let text = sipidx()
            .args([cmd, "--csv", "--db", &dbs, "--call-id", "nope"])
            .code(1)
            .stdout();
        assert_eq!(text.lines().count(), 1);
        assert_eq!(text.trim_end().split(',').count(), headers.len());
    }
}

/// tshark `-z sip,stat`: requests by method and responses by code.
fn oracle_sip_stat(name: &str) -> (u64, BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let text =
        std::fs::read_to_string(testdata(&format!("corpus/expected/{name}.sip_stat.txt"))).unwrap();
    let mut total = 0;
    let (mut methods, mut codes) = (BTreeMap::new(), BTreeMap::new());
    for line in text.lines() {
        let t = line.trim();
        if let Some(n) = t.strip_prefix("Number of SIP messages:") {
            total = n.trim().parse().unwrap();
        } else if let Some(rest) = t
            .strip_prefix("SIP ")
            .filter(|r| r.len() > 3 && r.as_bytes()[..3].iter().all(u8::is_ascii_digit))
        {
            let (code, count) = (&rest[..3], rest.rsplit(':').next().unwrap());
            let n: u64 = count
                .trim()
                .trim_end_matches("Packets")
                .trim()
                .parse()
                .unwrap();
            codes.insert(code.to_string(), n);
        } else if t.ends_with("Packets") && t.contains(':') {
            let (m, n) = t.split_once(':').unwrap();
            let n: u64 = n.trim().trim_end_matches("Packets").trim().parse().unwrap();
            methods.insert(m.trim().to_string(), n);
        }
    }
    (total, methods, codes)
}

#[test]
fn stats_counts_agree_with_tshark_sip_stat() {
    let name = "sip-udp-register-invite-cancel-auth-mixed.pcap";
    let (_tmp, db) = db_of(&format!("corpus/{name}"));
    let dbs = db_arg(&db);
    let lines = run(&["stats", "--db", &dbs, "--json"]).json_rows();
    assert_eq!(lines.len(), 1);
    let t = &lines[0];
    assert_eq!(t["type"], "total");
    let (total, methods, codes) = oracle_sip_stat(name);
    assert_eq!(t["messages"], total);
    let as_map = |v: &Value| -> BTreeMap<String, u64> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
            .collect()
    };
    assert_eq!(as_map(&t["requests"]), methods);
    assert_eq!(as_map(&t["responses"]), codes);
    // By hand (see calls): 4 INVITE dialogs, none answered; PDDs 204.56, 193.853, 426.462 ms.
    assert_eq!(
        (t["calls"].as_u64(), t["answered"].as_u64()),
        (Some(4), Some(0))
    );
    assert_eq!(t["asr_pct"], 0.0);
    assert_eq!(t["max_pdd_ms"], 426.5);
    assert_eq!(t["avg_pdd_ms"], 275.0);
    assert_eq!(t["top_sources"][0]["value"], "192.168.1.2");
    assert_eq!(t["hep_mirrors"], 0);
    // Per hour: the capture spans 09:32-09:57 UTC, one bucket; a window leaves part of it out.
    let by = run(&["stats", "--db", &dbs, "--json", "--by", "hour"]).json_rows();
    assert_eq!(by.len(), 2);
    assert_eq!(by[0]["type"], "bucket");
    assert_eq!(by[0]["start"], "2005-07-04T09:00:00.000000Z");
    assert_eq!(by[0]["messages"], total);
    let part = run(&[
        "stats",
        "--db",
        &dbs,
        "--json",
        "--since",
        "2005-07-04 09:50",
    ])
    .json_rows();
    let n = part[0]["messages"].as_u64().unwrap();
    assert!(n > 0 && n < total, "{n}");
    let text = run(&["stats", "--db", &dbs]).stdout();
    assert!(text.contains("REGISTER 18"), "{text}");
    assert!(text.contains("ASR 0.0 %"), "{text}");
}

#[test]
fn stats_reports_hep_mirrors_dropped_at_index_time() {
    let (_tmp, db) = db_of("crafted/sip-udp-proxy-with-hep3-mirror.pcap");
    let catalog: Value =
        serde_json::from_slice(&std::fs::read(db.join("catalog.json")).unwrap()).unwrap();
    let mirrors = catalog["files"][0]["hep_mirrors"].as_u64().unwrap();
    assert!(mirrors > 0);
    let t = run(&["stats", "--db", &db_arg(&db), "--json"]).json_rows();
    assert_eq!(t[0]["hep_mirrors"].as_u64(), Some(mirrors));
}

#[test]
fn a_missing_db_is_an_error_naming_it_and_an_empty_one_matches_nothing() {
    let tmp = tempdir();
    let missing = tmp.path().join("nope.db");
    let m = db_arg(&missing);
    for cmd in ["search", "calls", "stats"] {
        let o = sipidx().args([cmd, "--db", &m]).code(2);
        let err = o.stderr();
        assert!(err.contains(&m) && err.contains("sipidx index"), "{err}");
        assert!(o.stdout().is_empty());
    }
    // $SIPIDX_DB names the DB when --db is not given.
    let o = sipidx().arg("calls").env("SIPIDX_DB", &missing).code(2);
    assert!(o.stderr().contains(&m));
    // A DB over a capture without SIP: nothing matches, exit 1, no error.
    let empty = tmp.path().join("empty.db");
    index(&empty, &[&testdata("corpus/vlan-http-nosip.pcap")]);
    let e = db_arg(&empty);
    for args in [
        vec!["search", "--db", &e],
        vec!["calls", "--db", &e, "--json"],
        vec!["stats", "--db", &e, "--json"],
    ] {
        let o = sipidx().args(&args).code(1);
        assert!(!o.stderr().contains("error"), "{args:?}");
    }
}
