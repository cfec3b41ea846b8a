//! The corpus: real captures, with tshark's dissection as the reference.
use super::*;

// ---- the corpus: real captures, with tshark's dissection as the reference ----

struct Frame {
    seen: Seen,
    payload: Vec<u8>,
}

fn corpus_frames(name: &str) -> Vec<Frame> {
    let dir = format!("{}/src/sip/testdata", env!("CARGO_MANIFEST_DIR"));
    let hex = std::fs::read_to_string(format!("{dir}/{name}.hex")).unwrap();
    let meta = std::fs::read_to_string(format!("{dir}/{name}.frames.tsv")).unwrap();
    let hex: Vec<&str> = hex.lines().filter(|l| !l.is_empty()).collect();
    let meta: Vec<&str> = meta.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(hex.len(), meta.len(), "{name}: fixtures out of step");
    hex.iter()
        .zip(meta)
        .map(|(h, m)| {
            let f: Vec<&str> = m.split('\t').collect();
            let (secs, frac) = f[0].split_once('.').unwrap();
            let frac = format!("{frac:0<9}");
            let ts_ns =
                secs.parse::<i64>().unwrap() * 1_000_000_000 + frac[..9].parse::<i64>().unwrap();
            Frame {
                seen: Seen {
                    ts_ns,
                    src_ip: f[1].parse().unwrap(),
                    src_port: f[2].parse().unwrap(),
                    dst_ip: f[3].parse().unwrap(),
                    dst_port: f[4].parse().unwrap(),
                },
                payload: (0..h.len() / 2)
                    .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
                    .collect(),
            }
        })
        .collect()
}

/// One single-message summary per parsed frame, grouped by Call-ID, in capture order.
fn corpus_parts(name: &str) -> BTreeMap<String, Vec<DialogSummary>> {
    let mut out: BTreeMap<String, Vec<DialogSummary>> = BTreeMap::new();
    for fr in corpus_frames(name) {
        let Ok(m) = parse(&fr.payload) else { continue };
        let id = String::from_utf8_lossy(m.call_id.unwrap_or(b"")).into_owned();
        let mut d = DialogSummary::new(&id);
        d.observe(fr.seen, &m);
        out.entry(id).or_default().push(d);
    }
    out
}

/// Every dialog of a capture, checked order-independent: capture order, reverse, random splits.
fn corpus_dialogs(name: &str) -> BTreeMap<String, DialogSummary> {
    corpus_parts(name)
        .into_iter()
        .map(|(id, parts)| {
            let forward = fold_all(parts.clone());
            let mut rev = parts.clone();
            rev.reverse();
            assert_eq!(forward, fold_all(rev), "{name} {id}: reverse");
            for seed in 1..8 {
                assert_eq!(
                    forward,
                    random_split_merge(&parts, seed),
                    "{name} {id}: {seed}"
                );
            }
            assert_eq!(forward.call_id, id);
            (id, forward)
        })
        .collect()
}

#[test]
fn corpus_fold_is_order_independent() {
    let dir = format!("{}/src/sip/testdata", env!("CARGO_MANIFEST_DIR"));
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(pcap) = name.strip_suffix(".frames.tsv") {
            let dialogs = corpus_dialogs(pcap);
            let msgs: u32 = dialogs.values().map(|d| d.messages).sum();
            assert!(msgs > 0, "{pcap}");
            files += 1;
        }
    }
    assert!(files >= 19, "{files}");
}

fn outcome(d: &DialogSummary) -> (DialogKind, String, Option<u16>, u32) {
    let code = d.final_response().map(|f| f.code);
    (d.kind(), d.state().to_string(), code, d.auth_challenges())
}

#[test]
fn corpus_cancel_487_is_canceled() {
    let dialogs = corpus_dialogs("sip-cancel-487.pcap");
    assert_eq!(dialogs.len(), 1);
    let d = &dialogs["1-6261@127.0.1.1"];
    assert_eq!(
        outcome(d),
        (DialogKind::Call, "canceled".into(), Some(487), 0)
    );
    // tshark -z sip,stat: one CANCEL, one 487, one 200 (to the CANCEL), one 180
    assert_eq!(d.messages, 7);
    assert_eq!(d.answer_ns(), None);
    assert_eq!(d.cancel_ns(), Some(1_362_867_912_811_773_000));
    // INVITE 909.703901 → 180 911.808744
    assert_eq!(ms(d.pdd_ms()), Some(2105));
}

#[test]
fn corpus_simple_invite_bye_is_answered() {
    let dialogs = corpus_dialogs("sip-simple-invite-bye.pcap");
    let d = &dialogs["1-6847@127.0.1.1"];
    assert_eq!(
        outcome(d),
        (DialogKind::Call, "answered".into(), Some(200), 0)
    );
    // INVITE 678.972518 → 200 683.078535; tshark's sip,stat reports the setup as 4107 ms
    let setup = d.setup_ms().unwrap();
    assert!((setup - 4106.017).abs() < 1e-6, "{setup}");
    assert!((setup - 4107.0).abs() < 1.0);
    // 200 683.078535 → BYE 695.081386, sent by the caller (SIPp's From tag)
    assert!((d.duration_s().unwrap() - 12.002851).abs() < 1e-9);
    assert_eq!(d.ended_by(), Some(EndedBy::Caller));
    assert_eq!(d.ack_ns(), Some(1_362_868_683_079_184_000));
    assert_eq!(d.caller_tag(), Some("6847SIPpTag001"));
}

#[test]
fn corpus_sipp_five_answered_calls() {
    let dialogs = corpus_dialogs("sip-sipp-5-calls.pcap");
    assert_eq!(dialogs.len(), 5);
    for d in dialogs.values() {
        assert_eq!(
            outcome(d),
            (DialogKind::Call, "answered".into(), Some(200), 0)
        );
        assert_eq!(d.messages, 6);
        assert_eq!(d.ended_by(), Some(EndedBy::Caller));
        assert!(d.duration_s().unwrap() > 1.0);
    }
}

#[test]
fn corpus_mixed_register_invite_cancel_auth() {
    let dialogs = corpus_dialogs("sip-udp-register-invite-cancel-auth-mixed.pcap");
    let got: BTreeMap<&str, _> = dialogs
        .iter()
        .map(|(id, d)| (id.as_str(), outcome(d)))
        .collect();
    use DialogKind::*;
    let want: BTreeMap<&str, _> = [
        // INVITE (x3) → 100, CANCELs from 34 s on, then 408: the caller gave up
        (
            "105090259-446faf7a@192.168.1.2",
            (Call, "canceled".to_string(), Some(408), 0),
        ),
        // 407 → retry with credentials → 183 → 480
        (
            "11894297-4432a9f8@192.168.1.2",
            (Call, "failed".into(), Some(480), 1),
        ),
        // 407 → retry → 403 Wrong password
        (
            "24487391-449bf2a0@192.168.1.2",
            (Call, "failed".into(), Some(403), 1),
        ),
        // REGISTER 1..6: 401, 200, 401, 401, 401, 200
        (
            "29858147-465b0752@29858051-465b07b2",
            (Registration, "registered".into(), Some(200), 4),
        ),
        // REGISTER 68..79: the last transaction (79) ends in 401 with no retry seen
        (
            "578222729-4665d775@578222732-4665d772",
            (Registration, "failed".into(), Some(401), 10),
        ),
        (
            "85216695-42dcdb1d@192.168.1.2",
            (Call, "failed".into(), Some(403), 1),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
    // tshark -z sip,stat: 14 × 401 and 3 × 407 (no retransmitted challenges in this capture)
    let by_code = |c| {
        dialogs
            .values()
            .flat_map(|d| &d.challenges)
            .filter(|x| x.1 == c)
            .count()
    };
    assert_eq!((by_code(401), by_code(407)), (14, 3));
    let total: u32 = dialogs.values().map(|d| d.messages).sum();
    assert_eq!(total, 81, "tshark: 81 SIP messages");
    let reg = &dialogs["29858147-465b0752@29858051-465b07b2"];
    assert_eq!(reg.register_expires(), Some(1200));
    assert!(reg
        .register_contact()
        .is_some_and(|c| c.contains("sip:35104723@192.168.1.2:5060")));
    // the canceled call's only final came after the CANCEL: no PDD to blame on the network
    assert_eq!(dialogs["105090259-446faf7a@192.168.1.2"].pdd_ms(), None);
    // 2 INVITE 1443.024176 → 183 1443.450638, the 407 round trip excluded
    let d = &dialogs["11894297-4432a9f8@192.168.1.2"];
    assert_eq!(ms(d.pdd_ms()), Some(426));
    // the call still began with the first INVITE (frame 602)
    assert_eq!(d.invite_ns(), Some(1_120_470_966_443_914_000));
}

#[test]
fn corpus_other_captures() {
    let d = corpus_dialogs("sip-options-200.pcap");
    let d = d.values().next().unwrap();
    assert_eq!(
        (d.kind(), d.state().to_string()),
        (DialogKind::Other, "200".into())
    );
    let d = corpus_dialogs("sip-register-auth-hello.pcapng");
    let d = d.values().next().unwrap();
    assert_eq!(
        outcome(d),
        (DialogKind::Registration, "registered".into(), Some(200), 2)
    );
    assert_eq!(d.register_expires(), Some(600));
    // mid-call capture: 180, 200, ACK, BYE, 200 without the INVITE
    let d = corpus_dialogs("sip-udp-ipv4-fragmented-call.pcap");
    let d = &d["1-21520@10.192.243.79"];
    assert_eq!(
        outcome(d),
        (DialogKind::Call, "answered".into(), Some(200), 0)
    );
    assert_eq!((d.invite_ns(), d.setup_ms()), (None, None));
    assert_eq!(d.ended_by(), Some(EndedBy::Caller));
    let d = corpus_dialogs("sip-udp-invite-register-cloudshark.pcap");
    assert_eq!(d["12015624@200.57.7.195"].state(), DialogState::InProgress);
    assert_eq!(d["12013223@200.57.7.195"].state(), DialogState::Answered);
    let reg = &d["D3A26FC3974B44ECB5A96E07282903E3@bestel.com"];
    assert_eq!(reg.state(), DialogState::Registered);
}

fn summary_line(d: &DialogSummary) -> String {
    format!(
        "{} {} {} fin={:?} ch={} pdd={:?} setup={:?} dur={:?} by={:?} exp={:?}",
        d.call_id,
        d.kind().as_str(),
        d.state(),
        d.final_response().map(|f| f.code),
        d.auth_challenges(),
        ms(d.pdd_ms()),
        ms(d.setup_ms()),
        d.duration_s(),
        d.ended_by(),
        d.register_expires()
    )
}

#[test]
#[ignore = "prints every corpus dialog; run with --ignored --nocapture to inspect"]
fn corpus_dump() {
    let dir = format!("{}/src/sip/testdata", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.strip_suffix(".frames.tsv").map(str::to_string)
        })
        .collect();
    names.sort();
    for n in names {
        println!("== {n}");
        for d in corpus_dialogs(&n).values() {
            println!("  {}", summary_line(d));
        }
    }
}
