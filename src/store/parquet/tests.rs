//! Tests of the Parquet tables: round trips, day partitioning, part roll-over, crash leftovers,
//! upserts and deletes, and that pyarrow and DuckDB read what we write.

use super::*;
use crate::store::columns::{schema_of, TableRow};
use crate::store::record::{DialogKind, DialogRecord, MessageRecord};
use crate::store::record::{DialogState, EndedBy, Transport};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use std::collections::HashSet;
use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;

const DAY_NS: i64 = 86_400 * 1_000_000_000;
// 2024-03-01T00:00:00Z
const T0: i64 = 1_709_251_200 * 1_000_000_000;

fn msg(i: u32, ts_ns: i64) -> MessageRecord {
    MessageRecord {
        ts_ns,
        src_ip: format!("10.0.0.{}", i % 250),
        dst_ip: "2001:db8::1".into(),
        src_port: 5060,
        dst_port: 5080 + (i % 3) as u16,
        transport: if i.is_multiple_of(2) {
            Transport::Udp
        } else {
            Transport::Tcp
        },
        method: i.is_multiple_of(2).then(|| "INVITE".to_owned()),
        status: (i % 2 == 1).then_some(180),
        call_id: format!("call-{}", i / 2),
        cseq_num: Some(i),
        from_user: Some(format!("+49232312{i:02}")),
        vlan: i.is_multiple_of(5).then_some(42),
        size: 400 + i,
        text: "must not be stored in the table".into(),
        file_id: 7,
        offset: 24 + u64::from(i) * 1000,
        record_len: 500,
        hep_capture_id: None,
        hep_mirror_capture_id: None,
        scanner: i == 3,
        ..Default::default()
    }
}

fn dialog(call_id: &str, start_ns: i64, state: DialogState) -> DialogRecord {
    DialogRecord {
        call_id: call_id.into(),
        kind: DialogKind::Call,
        state,
        final_status: Some(200),
        start_ns,
        end_ns: start_ns + 60_000_000_000,
        invite_ns: Some(start_ns),
        answer_ns: Some(start_ns + 2_000_000_000),
        pdd_ms: Some(1234.5),
        duration_s: Some(58.0),
        ended_by: Some(EndedBy::Callee),
        from_user: Some("alice".into()),
        to_user: Some("+4923231234".into()),
        src_ip: "192.0.2.1".into(),
        dst_ip: "192.0.2.2".into(),
        src_port: 5060,
        dst_port: 5060,
        messages: 7,
        correlation_id: call_id.into(),
        ..Default::default()
    }
}

fn write_messages(
    db: &Path,
    run: u64,
    rows: Vec<MessageRecord>,
    opts: WriterOptions,
) -> Vec<PartInfo> {
    let mut w = TableWriter::<MessageRecord>::create(db, run, opts).unwrap();
    for r in rows {
        w.push(r).unwrap();
    }
    w.finish().unwrap()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn messages_round_trip_across_batches_and_row_groups() {
    let db = tempfile::tempdir().unwrap();
    let rows: Vec<_> = (0..1000)
        .map(|i| msg(i, T0 + i64::from(i) * 1_000_000))
        .collect();
    let opts = WriterOptions {
        batch_rows: 64,
        row_group_rows: 100,
        ..Default::default()
    };
    let parts = write_messages(db.path(), 1, rows.clone(), opts);
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].rows, 1000);
    let back = read_messages(db.path(), None, None).unwrap();
    let expect: Vec<_> = rows
        .into_iter()
        .map(|mut r| {
            r.text.clear();
            r
        })
        .collect();
    assert_eq!(back, expect);
    let meta = open_reader(&parts[0].path).unwrap().metadata().clone();
    assert_eq!(meta.num_row_groups(), 10);
}

#[test]
fn rows_land_in_the_utc_day_of_their_timestamp() {
    let db = tempfile::tempdir().unwrap();
    let rows = vec![
        msg(0, T0 - 1),          // 2024-02-29T23:59:59.999999999
        msg(1, T0),              // 2024-03-01
        msg(2, T0 + DAY_NS - 1), // 2024-03-01
        msg(3, T0 + DAY_NS),     // 2024-03-02
        msg(4, T0 - 1),
    ];
    write_messages(db.path(), 12, rows, WriterOptions::default());
    assert_eq!(
        files_under(&db.path().join("tables")),
        [
            "messages/date=2024-02-29/part-000012-00000.parquet",
            "messages/date=2024-03-01/part-000012-00001.parquet",
            "messages/date=2024-03-02/part-000012-00002.parquet",
        ]
    );
    let day1 = read_messages(db.path(), Some(T0), Some(T0 + DAY_NS)).unwrap();
    assert_eq!(
        day1.iter().map(|m| m.ts_ns).collect::<Vec<_>>(),
        [T0, T0 + DAY_NS - 1]
    );
    let first = read_messages(db.path(), None, Some(T0)).unwrap();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|m| m.ts_ns == T0 - 1));
}

#[test]
fn full_parts_roll_over_and_closing_old_days_bounds_open_writers() {
    let db = tempfile::tempdir().unwrap();
    let opts = WriterOptions {
        max_rows_per_part: 3,
        max_open_days: 1,
        ..Default::default()
    };
    // Day A, day B, then day A again: A must be closed once B opens, then reopened.
    let mut rows: Vec<_> = (0..4).map(|i| msg(i, T0 + i64::from(i))).collect();
    rows.push(msg(4, T0 + DAY_NS));
    rows.push(msg(5, T0 + 5));
    let parts = write_messages(db.path(), 3, rows, opts);
    let shape: Vec<_> = parts
        .iter()
        .map(|p| (p.day.to_string(), p.n, p.rows))
        .collect();
    assert_eq!(
        shape,
        [
            ("2024-03-01".to_owned(), 0, 3),
            ("2024-03-01".to_owned(), 1, 1),
            ("2024-03-02".to_owned(), 2, 1),
            ("2024-03-01".to_owned(), 3, 1),
        ]
    );
    assert_eq!(read_messages(db.path(), None, None).unwrap().len(), 6);
}

#[test]
fn tmp_leftovers_are_ignored_and_recovered() {
    let db = tempfile::tempdir().unwrap();
    write_messages(db.path(), 1, vec![msg(0, T0)], WriterOptions::default());
    // A crashed writer: an unfinished part, plus garbage with the tmp name.
    let mut w =
        TableWriter::<MessageRecord>::create(db.path(), 2, WriterOptions::default()).unwrap();
    w.push(msg(1, T0 + 1)).unwrap();
    drop(w);
    let day = db.path().join("tables/messages/date=2024-03-01");
    fs::write(day.join("part-000003-00000.parquet.tmp"), b"not parquet").unwrap();
    assert!(day.join("part-000002-00000.parquet.tmp").exists());
    assert_eq!(read_messages(db.path(), None, None).unwrap().len(), 1);
    assert_eq!(recover(db.path()).unwrap(), 2);
    assert_eq!(files_under(&day), ["part-000001-00000.parquet"]);
}

#[test]
fn remove_parts_deletes_only_that_run() {
    let db = tempfile::tempdir().unwrap();
    write_messages(
        db.path(),
        1,
        vec![msg(0, T0), msg(1, T0 + DAY_NS)],
        WriterOptions::default(),
    );
    write_messages(
        db.path(),
        2,
        vec![msg(2, T0), msg(3, T0 + 2 * DAY_NS)],
        WriterOptions::default(),
    );
    // A run id reused without removal must not overwrite its earlier parts.
    write_messages(db.path(), 2, vec![msg(4, T0)], WriterOptions::default());
    assert_eq!(read_messages(db.path(), None, None).unwrap().len(), 5);
    assert_eq!(remove_parts(db.path(), "messages", 2).unwrap(), 3);
    let left = read_messages(db.path(), None, None).unwrap();
    assert_eq!(left.iter().map(|m| m.size).collect::<Vec<_>>(), [400, 401]);
    // The day only run 2 used is gone.
    assert!(!db.path().join("tables/messages/date=2024-03-03").exists());
}

#[test]
fn upsert_replaces_dialogs_by_call_id_and_moves_days() {
    let db = tempfile::tempdir().unwrap();
    upsert_dialogs(
        db.path(),
        1,
        vec![
            dialog("a", T0 + 10, DialogState::InProgress),
            dialog("b", T0 + 20, DialogState::Answered),
            dialog("c", T0 + DAY_NS, DialogState::Failed),
        ],
        &[],
    )
    .unwrap();
    // A later file completes "a" and shows "c" really began the day before.
    let mut a = dialog("a", T0 + 10, DialogState::Answered);
    a.messages = 12;
    let c = dialog("c", T0 + 5, DialogState::Canceled);
    upsert_dialogs(
        db.path(),
        2,
        vec![a.clone(), c.clone()],
        &[day_of(T0 + DAY_NS)],
    )
    .unwrap();
    let all = read_dialogs(db.path(), &DialogFilter::default()).unwrap();
    let got: Vec<_> = all
        .iter()
        .map(|d| (d.call_id.as_str(), d.state, d.messages))
        .collect();
    assert_eq!(
        got,
        [
            ("c", DialogState::Canceled, 7),
            ("a", DialogState::Answered, 12),
            ("b", DialogState::Answered, 7)
        ]
    );
    assert_eq!(all[0], c);
    assert_eq!(all[1], a);
    // Day 2 lost its only dialog and is gone; day 1 holds exactly one part.
    assert_eq!(
        files_under(&db.path().join("tables")),
        ["dialogs/date=2024-03-01/part-000002-00000.parquet"]
    );
    let f = DialogFilter {
        to_user: Some("2323".into()),
        since_ns: Some(T0 + 10),
        ..Default::default()
    };
    let ids: Vec<_> = read_dialogs(db.path(), &f)
        .unwrap()
        .into_iter()
        .map(|d| d.call_id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn delete_rows_rewrites_only_parts_holding_them_and_remove_parts_undoes_it() {
    let db = tempfile::tempdir().unwrap();
    let mut a: Vec<_> = (0..6).map(|i| msg(i, T0 + i64::from(i))).collect();
    for (i, m) in a.iter_mut().enumerate() {
        m.file_id = 1 + (i % 2) as u32;
    }
    write_messages(db.path(), 1, a, WriterOptions::default());
    let mut b = msg(10, T0 + DAY_NS);
    b.file_id = 2;
    write_messages(db.path(), 2, vec![b], WriterOptions::default());
    let mut gone = Vec::new();
    let n = delete_rows::<MessageRecord>(
        db.path(),
        3,
        DayRange::from_ns(Some(T0), Some(T0 + 1)),
        |m| m.file_id == 2,
        |m| gone.push(m.cseq_num.unwrap()),
    )
    .unwrap();
    assert_eq!(n, 3);
    assert_eq!(gone, [1, 3, 5], "only the day asked for");
    let left: Vec<_> = read_messages(db.path(), None, None)
        .unwrap()
        .into_iter()
        .map(|m| (m.cseq_num.unwrap(), m.file_id))
        .collect();
    assert_eq!(left, [(0, 1), (2, 1), (4, 1), (10, 2)]);
    // a run that dies before its commit is undone by deleting its parts
    remove_parts(db.path(), "messages", 3).unwrap();
    assert_eq!(read_messages(db.path(), None, None).unwrap().len(), 7);
    // committed: recover deletes the superseded part; nothing matching leaves parts alone
    delete_rows::<MessageRecord>(
        db.path(),
        3,
        DayRange::default(),
        |m| m.file_id == 1,
        |_| {},
    )
    .unwrap();
    assert_eq!(recover(db.path()).unwrap(), 1);
    assert_eq!(
        files_under(&db.path().join("tables")),
        [
            "messages/date=2024-03-01/part-000003-00000.parquet",
            "messages/date=2024-03-02/part-000002-00000.parquet",
        ]
    );
    assert_eq!(read_messages(db.path(), None, None).unwrap().len(), 4);
}

#[test]
fn upsert_can_remove_rows_that_no_longer_exist() {
    let db = tempfile::tempdir().unwrap();
    upsert_dialogs(
        db.path(),
        1,
        vec![
            dialog("a", T0, DialogState::Answered),
            dialog("b", T0 + 5, DialogState::Answered),
        ],
        &[],
    )
    .unwrap();
    upsert_rows_removing(
        db.path(),
        2,
        vec![dialog("a", T0, DialogState::Failed)],
        &HashSet::from(["b".to_string()]),
        &[day_of(T0)],
        true,
        |d: &DialogRecord| &d.call_id,
        |a, b| a.call_id.cmp(&b.call_id),
    )
    .unwrap();
    let all = read_dialogs(db.path(), &DialogFilter::default()).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, DialogState::Failed);
}

#[test]
fn upsert_merges_several_old_parts_with_sorted_new_rows_batch_by_batch() {
    let db = tempfile::tempdir().unwrap();
    // two live parts in one day (plain appends), each sorted, more rows than a merge batch
    let n = MERGE_BATCH_ROWS as i64 * 2 + 7;
    for (run, parity) in [(1, 0), (2, 1)] {
        let mut w =
            TableWriter::<DialogRecord>::create(db.path(), run, WriterOptions::default()).unwrap();
        for i in (0..n).filter(|i| i % 2 == parity) {
            w.push(dialog(
                &format!("c{i:05}"),
                T0 + i * 10,
                DialogState::Answered,
            ))
            .unwrap();
        }
        w.finish().unwrap();
    }
    // new rows: one replaces c00004 (and moves it), one is new; c00003 is dropped as replaced
    let new = vec![
        dialog("c00004", T0 + 15, DialogState::Failed),
        dialog("zz", T0 + 10 * n, DialogState::Answered),
    ];
    let keys = ["c00004", "c00003"];
    let order = |a: &DialogRecord, b: &DialogRecord| {
        (a.start_ns, &a.call_id).cmp(&(b.start_ns, &b.call_id))
    };
    let parts = upsert_sorted(
        db.path(),
        3,
        new.into_iter(),
        &[],
        &|r: &DialogRecord| keys.contains(&r.call_id.as_str()),
        true,
        order,
    )
    .unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].rows, n as u64);
    let mut got = Vec::new();
    read_part::<DialogRecord>(&parts[0].path, &mut |d| {
        got.push((d.start_ns - T0, d.call_id, d.state));
        Ok(())
    })
    .unwrap();
    assert!(got
        .windows(2)
        .all(|w| (w[0].0, &w[0].1) < (w[1].0, &w[1].1)));
    assert_eq!(
        got[..5].iter().map(|g| g.1.as_str()).collect::<Vec<_>>(),
        ["c00000", "c00001", "c00004", "c00002", "c00005"],
        "c00004 moved between c00001 and c00002, c00003 replaced away"
    );
    assert_eq!(got[2], (15, "c00004".to_string(), DialogState::Failed));
    assert_eq!(got.last().unwrap().1, "zz");
    // rows that go back to an earlier day are refused, not written out of order
    let back = vec![
        dialog("a", T0 + DAY_NS, DialogState::Answered),
        dialog("b", T0, DialogState::Answered),
    ];
    let err = upsert_sorted(db.path(), 4, back.into_iter(), &[], &|_| false, true, order)
        .unwrap_err()
        .to_string();
    assert!(err.contains("day order"), "{err}");
}

#[test]
fn superseded_parts_left_by_a_crash_are_hidden_then_removed() {
    let db = tempfile::tempdir().unwrap();
    upsert_dialogs(
        db.path(),
        1,
        vec![dialog("a", T0, DialogState::InProgress)],
        &[],
    )
    .unwrap();
    let day = db.path().join("tables/dialogs/date=2024-03-01");
    let old = day.join("part-000001-00000.parquet");
    let kept = day.join("kept-old.bin");
    fs::copy(&old, &kept).unwrap();
    upsert_dialogs(
        db.path(),
        2,
        vec![dialog("a", T0, DialogState::Answered)],
        &[],
    )
    .unwrap();
    // Simulate the crash window: the old part is back next to its replacement.
    fs::rename(&kept, &old).unwrap();
    let all = read_dialogs(db.path(), &DialogFilter::default()).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, DialogState::Answered);
    assert_eq!(recover(db.path()).unwrap(), 1);
    assert!(!old.exists());
    assert_eq!(
        read_dialogs(db.path(), &DialogFilter::default())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn unknown_enum_word_in_a_file_is_reported_not_defaulted() {
    let db = tempfile::tempdir().unwrap();
    let parts = write_messages(db.path(), 1, vec![msg(0, T0)], WriterOptions::default());
    // Rewrite the part with transport = "quic" through plain arrow.
    let batch = {
        let mut b = Vec::new();
        read_part::<MessageRecord>(&parts[0].path, &mut |m| {
            b.push(m);
            Ok(())
        })
        .unwrap();
        let cols: Vec<_> = MessageRecord::columns()
            .iter()
            .map(|c| {
                if c.name == "transport" {
                    Arc::new(arrow::array::StringArray::from(vec!["quic"])) as _
                } else {
                    c.build(&b)
                }
            })
            .collect();
        RecordBatch::try_new(Arc::new(schema_of::<MessageRecord>()), cols).unwrap()
    };
    let mut w =
        ArrowWriter::try_new(File::create(&parts[0].path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let err = read_messages(db.path(), None, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("transport") && err.contains("quic"), "{err}");
}

/// Outside readers (pyarrow, DuckDB) see the Hive layout, the types and the values.
#[test]
fn tables_are_readable_by_pyarrow_and_duckdb() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import pyarrow, duckdb"])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        eprintln!(
            "SKIPPED tables_are_readable_by_pyarrow_and_duckdb: python3 lacks pyarrow or duckdb"
        );
        return;
    }
    let db = tempfile::tempdir().unwrap();
    let rows: Vec<_> = (0..300)
        .map(|i| msg(i, T0 + i64::from(i) * (DAY_NS / 200)))
        .collect();
    write_messages(
        db.path(),
        1,
        rows,
        WriterOptions {
            batch_rows: 50,
            ..Default::default()
        },
    );
    upsert_dialogs(
        db.path(),
        1,
        vec![
            dialog("x", T0, DialogState::Answered),
            dialog("y", T0 + DAY_NS, DialogState::Final(404)),
        ],
        &[],
    )
    .unwrap();
    // A leftover tmp must not break outside readers that glob *.parquet.
    fs::write(
        db.path()
            .join("tables/messages/date=2024-03-01/part-000009-00000.parquet.tmp"),
        b"x",
    )
    .unwrap();
    let script = r#"
import sys, pyarrow.dataset as ds, duckdb
db = sys.argv[1]
m = ds.dataset(db + "/tables/messages", format="parquet", partitioning="hive",
               exclude_invalid_files=True, ignore_prefixes=[".", "_"])
t = m.to_table(filter=ds.field("date") == "2024-03-02")
print("pa_day2", t.num_rows)
print("pa_types", m.schema.field("ts").type, m.schema.field("src_port").type, m.schema.field("vlan").type)
con = duckdb.connect()
glob = db + "/tables/messages/*/*.parquet"
print("dk_count", con.execute(f"select count(*) from read_parquet('{glob}', hive_partitioning=true)").fetchone()[0])
print("dk_invites", con.execute(f"select count(*) from read_parquet('{glob}') where method = 'INVITE'").fetchone()[0])
print("dk_days", con.execute(f"select count(distinct date) from read_parquet('{glob}', hive_partitioning=true)").fetchone()[0])
print("dk_user", con.execute(f"select from_user from read_parquet('{glob}') where cseq_num = 17").fetchone()[0])
dg = db + "/tables/dialogs/*/*.parquet"
r = con.execute(f"""select call_id, state, epoch_ns("end") - epoch_ns(start), pdd_ms, ended_by, worst_mos is null
                    from read_parquet('{dg}') order by start""").fetchall()
print("dk_dialogs", r)
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, db.path().to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expect_day2 = (0..300)
        .filter(|i| (i * (DAY_NS / 200)) / DAY_NS == 1)
        .count();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("pa_day2 {expect_day2}"));
    assert_eq!(lines[1], "pa_types timestamp[ns, tz=UTC] uint16 uint16");
    assert_eq!(lines[2], "dk_count 300");
    assert_eq!(lines[3], "dk_invites 150");
    assert_eq!(lines[4], "dk_days 2");
    assert_eq!(lines[5], "dk_user +4923231217");
    assert_eq!(
        lines[6],
        "dk_dialogs [('x', 'answered', 60000000000, 1234.5, 'callee', True), \
             ('y', '404', 60000000000, 1234.5, 'callee', True)]"
    );
}
