//! Integration tests of `sipidx verify`: a clean DB passes; each kind of damage (a truncated
//! Parquet part, a duplicated part, a deleted text index segment, ...) is found and named.
use std::path::{Path, PathBuf};

use crate::util::{index, sipidx, tempdir, testdata, verify};

/// (check, path) of every problem.
fn problems(rows: &[serde_json::Value]) -> Vec<(String, String)> {
    rows.iter()
        .filter(|r| r["type"] == "problem")
        .map(|r| {
            (
                r["check"].as_str().unwrap().to_owned(),
                r["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A DB of a few corpus captures (SIP over UDP and TCP, several days), copied so that tests may
/// damage it; the captures are copied too, so a test may move them.
fn fresh_db(tmp: &Path) -> PathBuf {
    let caps = tmp.join("caps");
    std::fs::create_dir_all(&caps).unwrap();
    for f in [
        "corpus/sip-cancel-487.pcap",
        "corpus/sip-sipp-5-calls.pcap",
        "crafted/sip-tcp-three-messages-one-segment.pcap",
        "crafted/sip-udp-proxy-with-hep3-mirror.pcap",
    ] {
        let p = testdata(f);
        std::fs::copy(&p, caps.join(p.file_name().unwrap())).unwrap();
    }
    let db = tmp.join("db");
    index(&db, &[&caps]);
    db
}

fn message_parts(db: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for day in std::fs::read_dir(db.join("tables/messages")).unwrap() {
        for p in std::fs::read_dir(day.unwrap().path()).unwrap() {
            v.push(p.unwrap().path());
        }
    }
    v.sort();
    v
}

#[test]
fn a_clean_db_is_sound_and_says_what_it_checked() {
    let tmp = tempdir();
    let db = fresh_db(tmp.path());
    let (code, rows) = verify(&db);
    assert_eq!(code, Some(0), "{rows:?}");
    let summary = rows.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["sound"], true);
    assert!(summary["messages"].as_u64().unwrap() > 0);
    assert_eq!(summary["messages"], summary["text_documents"]);
    assert_eq!(summary["files"], 4);
    // the plain-text form names the verdict
    let o = sipidx().args(["verify", "--db"]).arg(&db).run();
    assert!(o.stdout().contains(": sound ("));
}

#[test]
fn a_truncated_part_is_named() {
    let tmp = tempdir();
    let db = fresh_db(tmp.path());
    let part = message_parts(&db).remove(0);
    let len = std::fs::metadata(&part).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&part)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (code, rows) = verify(&db);
    assert_eq!(code, Some(1));
    let p = problems(&rows);
    assert!(
        p.contains(&("part".into(), part.display().to_string())),
        "{p:?}"
    );
    // the lost rows show in the cross-checks too
    assert!(p.iter().any(|(c, _)| c == "message_count"), "{p:?}");
    assert!(p.iter().any(|(c, _)| c == "text_index"), "{p:?}");
}

#[test]
fn a_duplicated_part_is_named_with_its_original() {
    let tmp = tempdir();
    let db = fresh_db(tmp.path());
    let part = message_parts(&db).remove(0);
    let name = part.file_name().unwrap().to_string_lossy();
    // same run, a part number the run never used: a copy a reader would take as its own part
    let copy = part.with_file_name(format!("{}-99999.parquet", &name[..name.len() - 14]));
    std::fs::copy(&part, &copy).unwrap();
    let (code, rows) = verify(&db);
    assert_eq!(code, Some(1));
    let dup = rows
        .iter()
        .find(|r| r["check"] == "duplicate_message")
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(dup["path"], copy.display().to_string());
    assert!(
        dup["message"]
            .as_str()
            .unwrap()
            .contains(&part.display().to_string()),
        "{dup}"
    );
    assert!(problems(&rows).iter().any(|(c, _)| c == "dialog_messages"));
}

#[test]
fn a_deleted_text_index_segment_is_named() {
    let tmp = tempdir();
    let db = fresh_db(tmp.path());
    let seg = std::fs::read_dir(db.join("text"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "idx"))
        .unwrap();
    std::fs::remove_file(&seg).unwrap();
    let (code, rows) = verify(&db);
    assert_eq!(code, Some(1));
    let p = problems(&rows);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "text_index");
    let msg = rows[0]["message"].as_str().unwrap();
    assert!(
        msg.contains(&seg.file_name().unwrap().to_string_lossy().into_owned()),
        "{msg}"
    );
}

#[test]
fn an_uncommitted_run_and_a_moved_capture_are_told_apart() {
    let tmp = tempdir();
    let db = fresh_db(tmp.path());
    // a run that died before its commit: pending.json and a part of run 2
    std::fs::write(
        db.join("pending.json"),
        br#"{"run":2,"first_file_id":4,"end_file_id":5}"#,
    )
    .unwrap();
    let part = message_parts(&db).remove(0);
    let name = part.file_name().unwrap().to_string_lossy().into_owned();
    let orphan = part.with_file_name(name.replacen("part-000001", "part-000002", 1));
    std::fs::copy(&part, &orphan).unwrap();
    // and an archive that moved one capture away
    let moved = tmp.path().join("caps/sip-cancel-487.pcap");
    std::fs::rename(&moved, tmp.path().join("elsewhere.pcap")).unwrap();
    let (code, rows) = verify(&db);
    assert_eq!(code, Some(1));
    let mut p = problems(&rows);
    p.sort();
    assert_eq!(
        p,
        vec![
            ("uncommitted_part".into(), orphan.display().to_string()),
            (
                "unfinished_run".into(),
                db.join("pending.json").display().to_string()
            ),
        ],
        "the uncommitted part is not counted: no duplicate or count problem"
    );
    let warn = rows.iter().find(|r| r["type"] == "warning").unwrap();
    assert_eq!(warn["check"], "capture_file");
    assert!(warn["path"]
        .as_str()
        .unwrap()
        .ends_with("sip-cancel-487.pcap"));

    // the next index run rolls the run back; the moved file stays a warning, not a failure
    index(&db, &[&tmp.path().join("caps")]);
    let (code, rows) = verify(&db);
    assert_eq!(code, Some(0), "{rows:?}");
    assert_eq!(rows.last().unwrap()["warnings"], 1);
}

#[test]
fn a_capture_changed_in_place_is_a_problem() {
    let tmp = tempdir();
    let db = fresh_db(tmp.path());
    let cap = tmp.path().join("caps/sip-sipp-5-calls.pcap");
    let mut bytes = std::fs::read(&cap).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&cap, bytes).unwrap();
    let (code, rows) = verify(&db);
    assert_eq!(code, Some(1));
    assert_eq!(
        problems(&rows),
        vec![("capture_file".into(), cap.display().to_string())]
    );
}

#[test]
fn verify_of_no_db_is_an_error() {
    let tmp = tempdir();
    let o = sipidx()
        .args(["verify", "--db"])
        .arg(tmp.path().join("none"))
        .code(2);
    assert!(o.stderr().contains("does not exist"));
    assert!(!tmp.path().join("none").exists());
}
