//! Unit tests of the window rebuild.
use super::*;

fn file(first: Option<i64>, last: Option<i64>) -> CatalogFile {
    CatalogFile {
        id: 1,
        path: String::new(),
        size: 0,
        fingerprint: String::new(),
        mtime_ns: 0,
        run: 1,
        packets: 0,
        sip_messages: 0,
        first_ts_ns: first,
        last_ts_ns: last,
        truncated_at: None,
        malformed_sip: 0,
        hep_mirrors: 0,
        span_duplicates: 0,
        error: None,
    }
}

#[test]
fn a_file_belongs_to_the_window_when_its_time_span_overlaps_it() {
    let w = TimeWindow {
        since_ns: Some(100),
        until_ns: Some(200),
    };
    assert!(w.overlaps(&file(Some(50), Some(100))), "touches since");
    assert!(w.overlaps(&file(Some(200), Some(300))), "touches until");
    assert!(w.overlaps(&file(Some(10), Some(900))), "spans the window");
    assert!(!w.overlaps(&file(Some(10), Some(99))));
    assert!(!w.overlaps(&file(Some(201), Some(300))));
    assert!(!w.overlaps(&file(None, None)), "no packets");
    let open = TimeWindow {
        since_ns: Some(100),
        until_ns: None,
    };
    assert!(open.overlaps(&file(Some(1_000_000), Some(2_000_000))));
}
