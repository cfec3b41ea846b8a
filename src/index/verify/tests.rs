//! Unit tests of the DB checks.
use super::*;

#[test]
fn message_keys_tell_two_messages_of_one_segment_apart() {
    let a = MessageRecord {
        file_id: 1,
        offset: 24,
        call_id: "x".into(),
        cseq_num: Some(1),
        method: Some("INVITE".into()),
        ..Default::default()
    };
    let mut b = a.clone();
    assert_eq!(message_key(&a), message_key(&b));
    b.cseq_num = Some(2);
    assert_ne!(message_key(&a), message_key(&b));
    let mut c = a.clone();
    c.offset = 25;
    assert_ne!(message_key(&a), message_key(&c));
}

#[test]
fn a_missing_db_is_an_error_not_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    assert!(verify(&dir.path().join("nope")).is_err());
    assert!(verify(dir.path()).is_err(), "a directory without catalog");
    assert!(!dir.path().join("nope").exists(), "verify creates nothing");
}

#[test]
fn an_empty_committed_db_is_sound_and_a_corrupt_catalog_is_named() {
    let dir = tempfile::tempdir().unwrap();
    Catalog {
        version: catalog::CATALOG_VERSION,
        ..Default::default()
    }
    .save(dir.path())
    .unwrap();
    let r = verify(dir.path()).unwrap();
    assert!(r.is_sound(), "{:?}", r.findings);
    std::fs::write(
        dir.path().join(CATALOG_FILE),
        b"{\"version\": 1, \"files\": [",
    )
    .unwrap();
    let r = verify(dir.path()).unwrap();
    assert_eq!(r.problems(), 1, "{:?}", r.findings);
    assert_eq!(r.findings[0].check, Check::Catalog);
    assert!(r.findings[0].path.ends_with(CATALOG_FILE));
}

#[test]
fn catalog_ids_must_be_unique_and_below_next_file_id() {
    let dir = tempfile::tempdir().unwrap();
    let f = catalog::CatalogFile {
        id: 0,
        path: "/nonexistent/a.pcap".into(),
        size: 1,
        fingerprint: "0".into(),
        mtime_ns: 0,
        run: 1,
        packets: 0,
        sip_messages: 0,
        first_ts_ns: None,
        last_ts_ns: None,
        truncated_at: None,
        malformed_sip: 0,
        hep_mirrors: 0,
        span_duplicates: 0,
        error: None,
    };
    Catalog {
        version: catalog::CATALOG_VERSION,
        next_file_id: 1,
        last_run: 1,
        files: vec![f.clone(), f],
    }
    .save(dir.path())
    .unwrap();
    let r = verify(dir.path()).unwrap();
    let checks: Vec<_> = r.findings.iter().map(|f| (f.severity, f.check)).collect();
    assert!(
        checks.contains(&(Severity::Problem, Check::Catalog)),
        "{checks:?}"
    );
    assert!(
        checks.contains(&(Severity::Warning, Check::CaptureFile)),
        "a missing capture is a warning: {checks:?}"
    );
    assert!(r
        .findings
        .iter()
        .any(|f| f.message.contains("appears more than once")));
}
