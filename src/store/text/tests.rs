//! Tests of the text index over a small fixture: filters, trigram substrings, time ranges and
//! sorting, text queries, hits, and deleting a file's documents.

use super::*;
use crate::store::record::Transport;

const T0: i64 = 1_709_251_200 * 1_000_000_000;
const SEC: i64 = 1_000_000_000;

fn request(i: i64, method: &str, from: &str, to: &str, ua: &str) -> MessageRecord {
    let text = format!(
        "{method} sip:{to}@example.net SIP/2.0\r\nFrom: <sip:{from}@example.org>;tag=a{i}\r\n\
             To: <sip:{to}@example.net>\r\nCall-ID: call-{i}@host\r\nCSeq: 1 {method}\r\n\
             User-Agent: {ua}\r\nContent-Length: 0\r\n\r\n"
    );
    MessageRecord {
        ts_ns: T0 + i * SEC,
        src_ip: "192.0.2.10".into(),
        dst_ip: "198.51.100.20".into(),
        src_port: 5060,
        dst_port: 5062,
        transport: Transport::Udp,
        method: Some(method.into()),
        call_id: format!("call-{i}@host"),
        cseq_num: Some(1),
        cseq_method: Some(method.into()),
        from_user: Some(from.into()),
        to_user: Some(to.into()),
        ruri_user: Some(to.into()),
        user_agent: Some(ua.into()),
        size: text.len() as u32,
        text,
        file_id: 1,
        offset: 24 + i as u64 * 100,
        record_len: 90,
        ..Default::default()
    }
}

fn response(i: i64, status: u16, reason: &str, from: &str, to: &str) -> MessageRecord {
    let text = format!(
        "SIP/2.0 {status} {reason}\r\nFrom: <sip:{from}@example.org>;tag=a{i}\r\n\
             To: <sip:{to}@example.net>;tag=b\r\nCall-ID: call-{i}@host\r\nCSeq: 1 INVITE\r\n\
             Server: Asterisk PBX 18\r\nContent-Length: 0\r\n\r\n"
    );
    MessageRecord {
        ts_ns: T0 + i * SEC,
        src_ip: "198.51.100.20".into(),
        dst_ip: "192.0.2.10".into(),
        src_port: 5062,
        dst_port: 5060,
        transport: Transport::Tcp,
        status: Some(status),
        reason: Some(reason.into()),
        call_id: format!("call-{i}@host"),
        cseq_num: Some(1),
        cseq_method: Some("INVITE".into()),
        from_user: Some(from.into()),
        to_user: Some(to.into()),
        user_agent: Some("Asterisk PBX 18".into()),
        size: text.len() as u32,
        text,
        file_id: 2,
        offset: 1000 + i as u64,
        record_len: 77,
        ..Default::default()
    }
}

fn fixture() -> (tempfile::TempDir, TextIndex) {
    let dir = tempfile::tempdir().unwrap();
    let idx = TextIndex::open_or_create(dir.path()).unwrap();
    let mut w = idx.writer(1, 20_000_000).unwrap();
    let mut scan = request(5, "OPTIONS", "100", "100", "friendly-scanner");
    scan.scanner = true;
    for m in [
        request(0, "INVITE", "+4923231234", "alice", "Zoiper rv2.10.11"),
        request(1, "INVITE", "+4912345", "Bob", "Linphone/5.0"),
        response(2, 486, "Busy Here", "+4912345", "Bob"),
        response(3, 404, "Not Found", "0000001", "carol"),
        response(4, 200, "OK", "+4923231234", "alice"),
        scan,
        request(6, "BYE", "+4923231234", "alice", "Zoiper rv2.10.11"),
    ] {
        w.add(&m).unwrap();
    }
    w.finish().unwrap();
    idx.reload().unwrap();
    (dir, idx)
}

fn call_ids(idx: &TextIndex, f: TextFilter) -> Vec<String> {
    let hits = idx.search(&f, 100, SortOrder::TsAsc).unwrap();
    assert_eq!(idx.count(&f).unwrap(), hits.len());
    hits.into_iter()
        .map(|h| h.call_id.trim_end_matches("@host").to_owned())
        .collect()
}

fn from(s: &str) -> TextFilter {
    TextFilter {
        from: Some(s.into()),
        ..Default::default()
    }
}

#[test]
fn a_delete_file_a_killed_writer_left_does_not_block_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let all = TextFilter::default();
    {
        let idx = TextIndex::open_or_create(dir.path()).unwrap();
        let mut w = idx.writer(1, 20_000_000).unwrap();
        for i in 0..4 {
            let mut m = request(i, "INVITE", "100", "200", "ua");
            m.file_id = (i % 2) as u32;
            w.add(&m).unwrap();
        }
        w.finish().unwrap();
    }
    // A writer deletes a file's messages and is killed after writing the delete file but
    // before its commit point (meta.json) moved: replayed by restoring the old meta.json.
    let meta = dir.path().join("meta.json");
    let committed = std::fs::read(&meta).unwrap();
    {
        let idx = TextIndex::open_or_create(dir.path()).unwrap();
        let mut w = idx.writer(1, 20_000_000).unwrap();
        w.delete_file(0);
        w.finish().unwrap();
    }
    let orphans = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("del".as_ref()))
            .count()
    };
    assert_eq!(orphans(), 1);
    std::fs::write(&meta, committed).unwrap();
    let idx = TextIndex::open_or_create(dir.path()).unwrap();
    idx.reload().unwrap();
    assert_eq!(idx.count(&all).unwrap(), 4, "the delete never committed");
    // The next run redoes the same deletion, reaching the same operation stamp and file name.
    let mut w = idx.writer(1, 20_000_000).unwrap();
    w.delete_file(0);
    w.finish().unwrap();
    idx.reload().unwrap();
    assert_eq!(idx.count(&all).unwrap(), 2);
}

#[test]
fn user_substring_needs_adjacent_trigrams() {
    let (_d, idx) = fixture();
    // "2323" is in +4923231234 only; +4912345 has neither 232 nor 323.
    assert_eq!(call_ids(&idx, from("2323")), ["call-0", "call-4", "call-6"]);
    // One trigram: both numbers contain "234".
    assert_eq!(
        call_ids(&idx, from("234")),
        ["call-0", "call-1", "call-2", "call-4", "call-6"]
    );
    // +4923231234 holds both trigrams of "1232" (123, 232), but not adjacent.
    assert!(call_ids(&idx, from("1232")).is_empty());
    assert_eq!(call_ids(&idx, from("2312")), ["call-0", "call-4", "call-6"]);
    // Repeated trigram: "0000" is in 0000001; "00000000" is not.
    assert_eq!(call_ids(&idx, from("0000")), ["call-3"]);
    assert!(call_ids(&idx, from("00000000")).is_empty());
    // Short needle falls back to a regex over the whole values.
    assert_eq!(call_ids(&idx, from("01")), ["call-3"]);
    // Case-insensitive, on to and ruri too; regex metacharacters are literal.
    let to = TextFilter {
        to: Some("BO".into()),
        ..Default::default()
    };
    assert_eq!(call_ids(&idx, to), ["call-1", "call-2"]);
    let ruri = TextFilter {
        ruri: Some("LIC".into()),
        ..Default::default()
    };
    assert_eq!(call_ids(&idx, ruri), ["call-0", "call-6"]);
    assert!(call_ids(&idx, from("+4")).len() == 5);
    assert!(call_ids(&idx, from(".*")).is_empty());
}

#[test]
fn status_method_and_endpoint_filters() {
    let (_d, idx) = fixture();
    let st = |s| TextFilter {
        status: Some(s),
        ..Default::default()
    };
    assert_eq!(
        call_ids(&idx, st(StatusFilter::Class(4))),
        ["call-2", "call-3"]
    );
    assert_eq!(call_ids(&idx, st(StatusFilter::Code(486))), ["call-2"]);
    assert_eq!(call_ids(&idx, st(StatusFilter::Class(2))), ["call-4"]);
    let methods = TextFilter {
        methods: vec!["invite".into(), "BYE".into()],
        ..Default::default()
    };
    assert_eq!(call_ids(&idx, methods), ["call-0", "call-1", "call-6"]);
    let ua = TextFilter {
        ua: Some("ZOIPER RV2.10".into()),
        ..Default::default()
    };
    assert_eq!(call_ids(&idx, ua), ["call-0", "call-6"]);
    let ip = TextFilter {
        ip: Some("198.51.100.20".into()),
        ..Default::default()
    };
    assert_eq!(call_ids(&idx, ip).len(), 7);
    let port = TextFilter {
        port: Some(5062),
        ..Default::default()
    };
    assert_eq!(call_ids(&idx, port).len(), 7);
    let port = TextFilter {
        port: Some(5061),
        ..Default::default()
    };
    assert!(call_ids(&idx, port).is_empty());
    let scanner = TextFilter {
        scanner: Some(true),
        ..Default::default()
    };
    assert_eq!(call_ids(&idx, scanner), ["call-5"]);
    let cid = TextFilter {
        call_id: Some("call-3@host".into()),
        ..Default::default()
    };
    assert_eq!(call_ids(&idx, cid), ["call-3"]);
    // Conditions combine with AND.
    let both = TextFilter {
        status: Some(StatusFilter::Class(4)),
        from: Some("12345".into()),
        ..Default::default()
    };
    assert_eq!(call_ids(&idx, both), ["call-2"]);
}

#[test]
fn time_range_is_half_open_and_sorting_follows_ts() {
    let (_d, idx) = fixture();
    let f = TextFilter {
        since_ns: Some(T0 + 2 * SEC),
        until_ns: Some(T0 + 5 * SEC),
        ..Default::default()
    };
    assert_eq!(call_ids(&idx, f.clone()), ["call-2", "call-3", "call-4"]);
    let desc: Vec<_> = idx
        .search(&f, 2, SortOrder::TsDesc)
        .unwrap()
        .into_iter()
        .map(|h| h.ts_ns)
        .collect();
    assert_eq!(desc, [T0 + 4 * SEC, T0 + 3 * SEC]);
}

#[test]
fn text_words_phrases_and_regex() {
    let (_d, idx) = fixture();
    let q = |s: &str| TextFilter {
        text_query: Some(s.into()),
        ..Default::default()
    };
    assert_eq!(call_ids(&idx, q("\"Busy Here\"")), ["call-2"]);
    // Words are ANDed: both occur only in the 486.
    assert_eq!(call_ids(&idx, q("busy asterisk")), ["call-2"]);
    assert!(call_ids(&idx, q("\"Here Busy\"")).is_empty());
    assert_eq!(
        call_ids(&idx, q("linphone OR \"not found\"")),
        ["call-1", "call-3"]
    );
    let re = TextFilter {
        text_regex: Some("zoip.*".into()),
        ..Default::default()
    };
    assert_eq!(call_ids(&idx, re), ["call-0", "call-6"]);
    assert!(matches!(
        idx.search(&q("\"unclosed"), 10, SortOrder::TsAsc),
        Err(StoreError::Query(_))
    ));
}

#[test]
fn hits_point_back_into_the_capture() {
    let (_d, idx) = fixture();
    let hits = idx
        .search(
            &TextFilter {
                status: Some(StatusFilter::Code(404)),
                ..Default::default()
            },
            10,
            SortOrder::TsAsc,
        )
        .unwrap();
    assert_eq!(hits.len(), 1);
    let h = &hits[0];
    assert_eq!((h.file_id, h.offset, h.record_len), (2, 1003, 77));
    assert_eq!(
        (h.src_port, h.dst_port, h.transport.as_str()),
        (5062, 5060, "tcp")
    );
    assert_eq!(h.reason.as_deref(), Some("Not Found"));
    assert_eq!(h.method, None);
    assert_eq!(h.from_user.as_deref(), Some("0000001"));
    assert_eq!(h.ts_ns, T0 + 3 * SEC);
}

#[test]
fn delete_file_removes_its_messages_atomically_and_reopen_keeps_the_rest() {
    let (dir, idx) = fixture();
    assert_eq!(idx.num_docs(), 7);
    let mut w = idx.writer(1, 20_000_000).unwrap();
    w.delete_file(2);
    // Not visible before commit.
    idx.reload().unwrap();
    assert_eq!(idx.num_docs(), 7);
    w.finish().unwrap();
    idx.reload().unwrap();
    assert_eq!(idx.num_docs(), 4);
    drop(idx);
    let again = TextIndex::open_or_create(dir.path()).unwrap();
    assert_eq!(again.num_docs(), 4);
    assert_eq!(call_ids(&again, from("2323")), ["call-0", "call-6"]);
}
