//! The rows against their documented contract: field names, order and `schemas/rows.md`.
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use super::*;
use crate::store::record::RtpStreamRecord;
use crate::store::{DialogRecord, DialogState, Hit};
fn keys<T: Serialize>(row: &T) -> Vec<String> {
    let v = serde_json::to_value(row).unwrap();
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort_unstable();
    k
}

fn sorted(fields: &[&str]) -> Vec<String> {
    let mut f: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
    f.sort_unstable();
    f
}

#[test]
fn call_rows_carry_every_dialog_column_but_the_summary() {
    let d = DialogRecord {
        call_id: "a".into(),
        state: DialogState::Answered,
        duration_s: Some(3.5),
        start_ns: 1_395_916_825_298_990_000,
        answer_ns: Some(1_395_916_826_000_000_000),
        summary: Some("{}".into()),
        ..Default::default()
    };
    let stored = serde_json::to_value(&d).unwrap();
    let want: Vec<String> = sorted(
        &stored
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .filter(|k| *k != "summary")
            .chain(["type"])
            .collect::<Vec<_>>(),
    );
    let row = CallRow::from(d);
    let v = serde_json::to_value(&row).unwrap();
    assert_eq!(v["type"], "dialog");
    assert_eq!(v["start"], "2014-03-27T10:40:25.298990Z");
    assert_eq!(v["answer"], "2014-03-27T10:40:26.000000Z");
    assert_eq!(v["state"], "answered");
    assert_eq!(v["kind"], "call");
    assert_eq!(keys(&row), want);
    assert_eq!(sorted(CallRow::FIELDS), want);
}

#[test]
fn search_rows_name_the_file_and_null_an_empty_call_id() {
    let files: HashMap<u32, String> = [(3, "/cap/3.pcap".to_string())].into();
    let h = Hit {
        call_id: String::new(),
        file_id: 3,
        cseq_num: Some(2),
        cseq_method: Some("BYE".into()),
        ..Default::default()
    };
    let row = SearchRow::new(h, &files);
    let v = serde_json::to_value(&row).unwrap();
    assert_eq!(v["file"], "/cap/3.pcap");
    assert_eq!(v["call_id"], Value::Null);
    assert_eq!(v["cseq"], "2 BYE");
    assert_eq!(keys(&row), sorted(SearchRow::FIELDS));
}

#[test]
fn stream_rows_hold_every_stream_column_with_times_and_json_parsed() {
    let s = RtpStreamRecord {
        start_ns: 1_395_916_825_298_990_000,
        timeline: Some(r#"{"width_s":1,"buckets":[[1,0,0.5]]}"#.into()),
        dtmf_events: Some("not json".into()),
        ..Default::default()
    };
    let row = StreamRow { stream: s };
    let v = serde_json::to_value(&row).unwrap();
    assert_eq!(v["type"], "stream");
    assert_eq!(v["start_time"], "2014-03-27T10:40:25.298990Z");
    assert_eq!(v["timeline"]["width_s"], 1);
    assert_eq!(v["dtmf_events"], Value::Null);
    assert_eq!(keys(&row), sorted(StreamRow::FIELDS));
    // Keys come in name order, as `streams --json` has always printed them.
    let text = serde_json::to_string(&row).unwrap();
    assert!(text.starts_with(r#"{"announced":"#), "{text}");
    for f in StreamRow::CSV_FIELDS {
        assert!(StreamRow::FIELDS.contains(f), "{f}");
    }
}

#[test]
fn tally_rows_name_their_fields() {
    let row = TallyRow {
        row_type: "total",
        start: Some(0),
        end: None,
        messages: 0,
        requests: BTreeMap::new(),
        responses: BTreeMap::new(),
        calls: 0,
        answered: 0,
        failed: 0,
        canceled: 0,
        in_progress: 0,
        asr_pct: None,
        avg_pdd_ms: None,
        max_pdd_ms: None,
        registrations: 0,
        registered: 0,
        registrations_failed: 0,
        other_dialogs: 0,
        top_user_agents: vec![],
        top_sources: vec![],
        scanner_dialogs: 0,
        top_scanner_sources: vec![],
        hep_mirrors: Some(1),
        span_duplicates: Some(2),
    };
    assert_eq!(keys(&row), sorted(TallyRow::FIELDS));
    assert_eq!(
        serde_json::to_value(&row).unwrap()["start"],
        "1970-01-01T00:00:00.000000Z"
    );
}

/// The field list of the section whose heading names `row` (the first code block after it),
/// or of its `nth` code block.
fn documented(doc: &str, row: &str, nth: usize) -> Vec<String> {
    let at = doc
        .find(&format!("(`{row}`)"))
        .unwrap_or_else(|| panic!("schemas/rows.md has no section for {row}"));
    let section = &doc[at..];
    let block = section
        .split("```")
        .nth(1 + 2 * nth)
        .unwrap_or_else(|| panic!("{row}: no code block {nth}"));
    block.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn schemas_rows_md_lists_every_field() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/rows.md")).unwrap();
    let own = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(documented(&doc, "SearchRow", 0), own(SearchRow::FIELDS));
    assert_eq!(documented(&doc, "MessageRow", 0), own(MessageRow::FIELDS));
    assert_eq!(documented(&doc, "CallRow", 0), own(CallRow::FIELDS));
    assert_eq!(documented(&doc, "StreamRow", 0), own(StreamRow::FIELDS));
    assert_eq!(documented(&doc, "StreamRow", 1), own(StreamRow::CSV_FIELDS));
    assert_eq!(documented(&doc, "TallyRow", 0), own(TallyRow::FIELDS));
}
