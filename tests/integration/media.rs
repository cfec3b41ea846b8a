//! Integration tests of the media pass through the real binary: `sipidx index` then `sipidx
//! streams --json` against tshark 4.0's `rtp,streams` oracle on every capture with RTP; split,
//! multi-run and thread-count independence; RTCP, RTCP-XR, vq-rtcpxr and X-RTP-Stat family
//! reports landing in their tables; `sipidx quality`.
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sipidx::source::PcapWriter;
use sipidx::store::parquet::{for_each_row, read_dialogs, DayRange, DialogFilter};
use sipidx::store::record::{QosReportRecord, RtcpReportRecord};

use crate::util::{index_with, sipidx, split, tempdir, testdata, TestCommand};

/// `sipidx ARGS --db DB`, to run.
fn db_cmd(db: &Path, args: &[&str]) -> TestCommand {
    let mut c = sipidx();
    c.args(args).arg("--db").arg(db);
    c
}

/// `sipidx streams --json` rows (all streams unless `extra` filters).
fn streams(db: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["streams", "--json"];
    args.extend_from_slice(extra);
    db_cmd(db, &args).code_in(&[0, 1]).json_rows()
}

/// One tshark row: (src, sport, dst, dport, ssrc) → (packets, lost, max delta, max jitter,
/// mean jitter).
type OracleRow = ((String, u64, String, u64, u32), (u64, i64, f64, f64, f64));

fn oracle(path: &Path) -> Vec<OracleRow> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for l in text.lines() {
        let t: Vec<&str> = l.split_whitespace().collect();
        if t.len() < 10 || !t[6].starts_with("0x") {
            continue;
        }
        let n = t.len();
        let end = if t[n - 1] == "X" { n - 1 } else { n };
        // the payload column may hold spaces: count the fixed columns from both ends
        let f = |i: usize| t[end - 6 + i].parse::<f64>().unwrap();
        let pkts_at = end - 8;
        out.push((
            (
                t[2].to_owned(),
                t[3].parse().unwrap(),
                t[4].to_owned(),
                t[5].parse().unwrap(),
                u32::from_str_radix(&t[6][2..], 16).unwrap(),
            ),
            (
                t[pkts_at - 1].parse().unwrap(),
                t[pkts_at].parse().unwrap(),
                f(2),
                f(5),
                f(4),
            ),
        ));
    }
    out
}

/// Index `capture` alone and compare `streams --json` with its oracle; `skip` names SSRCs left
/// out with a reason at the call site.
fn agrees_with_tshark(capture: &str, oracle_file: &str, skip: &[u32]) {
    let tmp = tempdir();
    let db = tmp.path().join("db");
    index_with(&db, &[&testdata(capture)], &[]);
    let ours: Vec<Value> = streams(&db, &[])
        .into_iter()
        .filter(|s| !skip.contains(&(s["ssrc"].as_u64().unwrap() as u32)))
        .collect();
    let theirs: Vec<OracleRow> = oracle(&testdata(oracle_file))
        .into_iter()
        .filter(|r| !skip.contains(&r.0 .4))
        .collect();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{capture}: stream count; ours: {ours:#?}"
    );
    for (key, (pkts, lost, max_delta, max_jitter, mean_jitter)) in theirs {
        let o = ours
            .iter()
            .find(|s| {
                (
                    s["src_ip"].as_str().unwrap().to_owned(),
                    s["src_port"].as_u64().unwrap(),
                    s["dst_ip"].as_str().unwrap().to_owned(),
                    s["dst_port"].as_u64().unwrap(),
                    s["ssrc"].as_u64().unwrap() as u32,
                ) == key
            })
            .unwrap_or_else(|| panic!("{capture}: no stream {key:?}"));
        assert_eq!(o["packets"].as_u64().unwrap(), pkts, "{capture} {key:?}");
        assert_eq!(o["lost"].as_i64().unwrap(), lost, "{capture} {key:?}");
        // tshark prints 3 decimals: 0.01 ms plus print rounding
        for (name, want) in [
            ("max_delta_ms", max_delta),
            ("max_jitter_ms", max_jitter),
            ("mean_jitter_ms", mean_jitter),
        ] {
            let got = o[name].as_f64().unwrap();
            assert!(
                (got - want).abs() <= 0.0105,
                "{capture} {key:?}: {name} {got} vs tshark {want}"
            );
        }
    }
}

macro_rules! oracle_case {
    ($name:ident, $dir:literal, $file:literal) => {
        oracle_case!($name, $dir, $file, []);
    };
    ($name:ident, $dir:literal, $file:literal, [$($skip:literal),*]) => {
        #[test]
        fn $name() {
            agrees_with_tshark(
                concat!($dir, "/", $file),
                concat!($dir, "/expected/", $file, ".rtp_streams.txt"),
                &[$($skip),*],
            );
        }
    };
}

oracle_case!(tshark_single_call, "corpus", "sip-rtp-single-call.pcap");
oracle_case!(tshark_g711a, "corpus", "rtp-only-g711a.pcap");
oracle_case!(
    tshark_dtmf_digit1,
    "corpus",
    "rtp-only-dtmf-rfc2833-digit1.pcap"
);
oracle_case!(
    tshark_vlan_two_ifaces,
    "corpus",
    "rtp-vlan-two-interfaces.pcapng"
);
oracle_case!(
    tshark_register_invite_mixed,
    "corpus",
    "sip-udp-register-invite-cancel-auth-mixed.pcap"
);
// The media gateway's ports are announced by MEGACO (H.248 text), not SIP: after the T.38
// re-offers (frames 1391-1435) tshark decodes the last 27 packets to 10.23.1.52:16756 as T.38,
// not RTP, because the MEGACO reply's Local descriptor gives that port to `m=image … udptl`.
oracle_case!(tshark_t38_fax, "corpus", "sip-rtp-t38-fax-488-options.pcap");
oracle_case!(
    tshark_rtcp_only,
    "corpus",
    "rtcp-compound-multiple-in-datagram-sll.pcap"
);
oracle_case!(tshark_fuzz, "corpus", "rtp-malformed-fuzz-single.pcapng");
oracle_case!(
    tshark_crafted_loss_dup_reorder,
    "rtp",
    "rtp-loss-dup-reorder.pcap"
);
oracle_case!(tshark_crafted_seq_wrap, "rtp", "rtp-seq-wrap.pcap");
oracle_case!(
    tshark_crafted_ssrc_change,
    "rtp",
    "rtp-ssrc-change-marker-cn.pcap"
);
oracle_case!(tshark_crafted_dtmf, "rtp", "rtp-dtmf-rfc2833.pcap");
oracle_case!(
    tshark_crafted_rtcp_compound,
    "rtp",
    "rtcp-compound-sr-rr-sdes-bye.pcap"
);
oracle_case!(tshark_crafted_rtcp_xr, "rtp", "rtcp-xr-voip-metrics.pcap");
oracle_case!(tshark_crafted_pt_survey, "rtp", "rtp-pt-survey.pcap");
oracle_case!(
    tshark_crafted_heuristic_edges,
    "rtp",
    "rtp-heuristic-edges.pcap"
);

/// Every other corpus capture: tshark finds no RTP stream, nor must we.
#[test]
fn tshark_no_streams_elsewhere_in_the_corpus() {
    let tmp = tempdir();
    let with_rtp = [
        "sip-rtp-single-call.pcap",
        "rtp-only-g711a.pcap",
        "rtp-only-dtmf-rfc2833-digit1.pcap",
        "rtp-vlan-two-interfaces.pcapng",
        "sip-udp-register-invite-cancel-auth-mixed.pcap",
        "sip-rtp-t38-fax-488-options.pcap",
    ];
    let mut files = Vec::new();
    for e in std::fs::read_dir(testdata("corpus")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_file()
            && (name.ends_with(".pcap") || name.ends_with(".pcapng"))
            && !with_rtp.contains(&name.as_str())
        {
            let exp = testdata(&format!("corpus/expected/{name}.rtp_streams.txt"));
            assert!(oracle(&exp).is_empty(), "{name} has tshark streams");
            files.push(p);
        }
    }
    assert!(files.len() > 25);
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let db = tmp.path().join("db");
    index_with(&db, &refs, &[]);
    assert_eq!(streams(&db, &[]), Vec::<Value>::new());
}

// ---- crafted call: SDP, RTP both ways, RTCP SR/RR/XR, vq-rtcpxr PUBLISH, stat headers ----

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const COLLECTOR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);
const T0: i64 = 1_700_000_000_000_000_000;
const CALL: &str = "crafted-q@test";

fn frame(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00];
    let total = 20 + 8 + payload.len();
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ];
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let sum = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    let ulen = (8 + payload.len()) as u16;
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&ulen.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

fn sip(start: &str, call_id: &str, cseq: &str, extra: &str, ctype: &str, body: &str) -> Vec<u8> {
    let mut m = format!(
        "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-{cseq}\r\nFrom: <sip:alice@test>;tag=a1\r\n\
         To: <sip:bob@test>;tag=b1\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n{extra}"
    );
    if !body.is_empty() {
        m.push_str(&format!("Content-Type: {ctype}\r\n"));
    }
    m.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    m.into_bytes()
}

fn rtp(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut v = vec![0x80, 8];
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(&[0xd5; 160]);
    v
}

fn ntp_middle(ts_ns: i64) -> u32 {
    let secs = (ts_ns / 1_000_000_000) as u64 + 2_208_988_800;
    let frac = (((ts_ns % 1_000_000_000) as u64) << 32) / 1_000_000_000;
    (((secs & 0xffff) << 16) | (frac >> 16)) as u32
}

fn report_block(ssrc: u32, fraction: u8, cum: u32, jitter: u32, lsr: u32, dlsr: u32) -> Vec<u8> {
    let mut v = ssrc.to_be_bytes().to_vec();
    v.push(fraction);
    v.extend_from_slice(&cum.to_be_bytes()[1..]);
    v.extend_from_slice(&100u32.to_be_bytes());
    v.extend_from_slice(&jitter.to_be_bytes());
    v.extend_from_slice(&lsr.to_be_bytes());
    v.extend_from_slice(&dlsr.to_be_bytes());
    v
}

/// A→B INVITE with `offer` at `at` and B→A 200 OK with `answer` 50 ms later, in the crafted call.
fn offer_answer(at: i64, cseq: &str, offer: &str, answer: &str) -> [(i64, Vec<u8>); 2] {
    let invite = sip(
        "INVITE sip:bob@test SIP/2.0",
        CALL,
        cseq,
        "",
        "application/sdp",
        offer,
    );
    let ok = sip("SIP/2.0 200 OK", CALL, cseq, "", "application/sdp", answer);
    [
        (at, frame(A, 5060, B, 5060, &invite)),
        (at + 50_000_000, frame(B, 5060, A, 5060, &ok)),
    ]
}

/// The crafted call's packets, in time order.
fn crafted_call() -> Vec<(i64, Vec<u8>)> {
    let ms = 1_000_000i64;
    let mut p = Vec::new();
    let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                 m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
                 a=rtpmap:101 telephone-event/8000\r\na=rtcp:40001\r\n";
    let answer = "v=0\r\no=- 2 2 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n\
                  m=audio 50000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=rtcp-mux\r\n";
    p.extend(offer_answer(T0, "1 INVITE", offer, answer));
    // 100 packets each way, 20 ms apart; A→B loses seq 10 and 11
    for i in 0..100u16 {
        let t = T0 + 100 * ms + i64::from(i) * 20 * ms;
        if i != 10 && i != 11 {
            p.push((
                t,
                frame(
                    A,
                    40000,
                    B,
                    50000,
                    &rtp(1000 + i, u32::from(i) * 160, 0x1111_1111),
                ),
            ));
        }
        p.push((
            t + ms,
            frame(
                B,
                50000,
                A,
                40000,
                &rtp(2000 + i, u32::from(i) * 160, 0x2222_2222),
            ),
        ));
    }
    // B sends an SR (about A's stream: 2 lost, jitter 16 units = 2 ms) over rtcp-mux to A's RTCP port
    let sr_at = T0 + 1000 * ms;
    let mut sr = vec![0x81, 200, 0, 12];
    sr.extend_from_slice(&0x2222_2222u32.to_be_bytes());
    let mid = ntp_middle(sr_at);
    sr.extend_from_slice(&((mid >> 16) | 0xe000_0000).to_be_bytes());
    sr.extend_from_slice(&(mid << 16).to_be_bytes());
    sr.extend_from_slice(&8000u32.to_be_bytes());
    sr.extend_from_slice(&50u32.to_be_bytes());
    sr.extend_from_slice(&8000u32.to_be_bytes());
    sr.extend(report_block(0x1111_1111, 13, 2, 16, 0, 0));
    p.push((sr_at, frame(B, 50000, A, 40001, &sr)));
    // A answers with RR (echoing the SR, DLSR 0.5 s: RTT 100 ms) + XR VoIP metrics
    let rr_at = sr_at + 600 * ms;
    let mut rr = vec![0x81, 201, 0, 7];
    rr.extend_from_slice(&0x1111_1111u32.to_be_bytes());
    rr.extend(report_block(0x2222_2222, 0, 0, 8, mid, 32768));
    let mut xr = vec![0x80, 207, 0, 10];
    xr.extend_from_slice(&0x1111_1111u32.to_be_bytes());
    xr.extend_from_slice(&[7, 0, 0, 8]);
    xr.extend_from_slice(&0x2222_2222u32.to_be_bytes());
    xr.extend_from_slice(&[13, 0, 0, 0, 0, 0, 0, 0, 0, 120, 0, 40, 0x7f, 0x7f, 127, 127]);
    xr.extend_from_slice(&[80, 127, 41, 40, 0, 0, 0, 40, 0, 80, 0, 120]);
    rr.extend(xr);
    p.push((rr_at, frame(A, 40001, B, 50000, &rr)));
    // a vq-rtcpxr session report from A to its collector
    let vq = format!(
        "VQSessionReport: CallTerm\r\nCallID: {CALL}\r\nLocalID: <sip:alice@test>\r\nRemoteID: <sip:bob@test>\r\n\
         LocalAddr: IP=10.0.0.1 PORT=40000 SSRC=0x11111111\r\nRemoteAddr: IP=10.0.0.2 PORT=50000 SSRC=0x22222222\r\n\
         x-UserAgent: crafted/1.0\r\nLocalMetrics:\r\nSessionDesc: PT=8 PD=PCMA SR=8000\r\nPacketLoss: NLR=1.0 JDR=0.5\r\n\
         Delay: RTD=110 IAJ=3 MAJ=7\r\nQualityEst: MOSLQ=4.2 MOSCQ=4.1\r\nx-Custom: x-Foo=bar\r\n"
    );
    let end = T0 + 2200 * ms;
    p.push((
        end,
        frame(
            A,
            5060,
            COLLECTOR,
            5060,
            &sip(
                "PUBLISH sip:collector@test SIP/2.0",
                "pub-1@test",
                "1 PUBLISH",
                "Event: vq-rtcpxr\r\n",
                "application/vq-rtcpxr",
                &vq,
            ),
        ),
    ));
    p.push((
        end + 10 * ms,
        frame(B, 5060, A, 5060, &sip("BYE sip:alice@test SIP/2.0", CALL, "2 BYE",
            "X-RTP-Stat: PS=100;OS=16000;PR=98;OR=15680;PL=2,0;JI=3,1;LA=0;DU=2;EN=PCMA;DE=PCMA;XX=kept\r\n\
             RTP-RxStat: Dur=2,Pkt=100,Oct=16000,LatePkt=0,LostPkt=0,AvgJit=0\r\n", "", "")),
    ));
    p.push((
        end + 20 * ms,
        frame(
            A,
            5060,
            B,
            5060,
            &sip(
                "SIP/2.0 200 OK",
                CALL,
                "2 BYE",
                "P-RTP-Stat: PS=100, OS=16000, PR=100, OR=16000, PL=0, JI=1, LA=5, DU=2\r\n",
                "",
                "",
            ),
        ),
    ));
    p
}

fn write_pcap(path: &Path, packets: &[(i64, Vec<u8>)]) {
    let mut w = PcapWriter::new(std::fs::File::create(path).unwrap(), 1, 0, true).unwrap();
    for (ts, data) in packets {
        w.write_packet(*ts, data, data.len() as u32).unwrap();
    }
    w.flush().unwrap();
}

fn qos_rows(db: &Path) -> Vec<QosReportRecord> {
    let mut v = Vec::new();
    for_each_row::<QosReportRecord>(db, DayRange::default(), |r| {
        v.push(r);
        Ok(())
    })
    .unwrap();
    v
}

fn rtcp_rows(db: &Path) -> Vec<RtcpReportRecord> {
    let mut v = Vec::new();
    for_each_row::<RtcpReportRecord>(db, DayRange::default(), |r| {
        v.push(r);
        Ok(())
    })
    .unwrap();
    v
}

#[test]
fn crafted_call_reports_land_in_their_tables() {
    let tmp = tempdir();
    let cap = tmp.path().join("call.pcap");
    write_pcap(&cap, &crafted_call());
    let db = tmp.path().join("db");
    index_with(&db, &[&cap], &[]);

    let s = streams(&db, &["--call-id", CALL]);
    assert_eq!(s.len(), 2, "{s:#?}");
    let ab = s.iter().find(|x| x["ssrc"] == 0x1111_1111u32).unwrap();
    assert_eq!(
        (ab["packets"].as_u64(), ab["lost"].as_i64()),
        (Some(98), Some(2))
    );
    assert_eq!(ab["codec"], "PCMA");
    assert_eq!(ab["announced"], true);
    assert!(ab["mos"].as_f64().unwrap() < 4.4);
    let ba = s.iter().find(|x| x["ssrc"] == 0x2222_2222u32).unwrap();
    assert_eq!(ba["lost"], 0);
    assert!(streams(&db, &["--unmatched"]).is_empty());
    assert_eq!(streams(&db, &["--min-loss", "1.5"]).len(), 1);
    assert_eq!(streams(&db, &["--ssrc", "0x22222222"]).len(), 1);
    assert_eq!(
        streams(&db, &["--codec", "pcma", "--port", "50000"]).len(),
        2
    );

    let rtcp = rtcp_rows(&db);
    let sr = rtcp
        .iter()
        .find(|r| r.packet_type == "SR" && r.source_ssrc == Some(0x1111_1111))
        .expect("SR block");
    assert_eq!(sr.cumulative_lost, Some(2));
    assert_eq!(sr.jitter_ms, Some(2.0));
    assert_eq!(sr.call_id.as_deref(), Some(CALL));
    let rr = rtcp
        .iter()
        .find(|r| r.packet_type == "RR" && r.source_ssrc == Some(0x2222_2222))
        .expect("RR block");
    assert!((rr.rtt_ms.unwrap() - 100.0).abs() < 0.01, "{rr:?}");
    let xr = rtcp.iter().find(|r| r.block == "voip-metrics").expect("XR");
    assert_eq!((xr.mos_lq, xr.r_factor), (Some(4.1), Some(80.0)));
    assert_eq!(xr.round_trip_delay_ms, Some(120.0));

    let qos = qos_rows(&db);
    let kinds: Vec<&str> = qos.iter().map(|q| q.kind.as_str()).collect();
    for k in [
        "rtcp-xr",
        "vq-session",
        "X-RTP-Stat",
        "RTP-RxStat",
        "P-RTP-Stat",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    assert!(
        qos.iter().all(|q| q.call_id.as_deref() == Some(CALL)),
        "{qos:#?}"
    );
    let vq = qos.iter().find(|q| q.kind == "vq-session").unwrap();
    assert_eq!(vq.side.as_deref(), Some("local"));
    assert_eq!(
        (vq.loss_pct, vq.jitter_ms, vq.rtt_ms),
        (Some(1.0), Some(3.0), Some(110.0))
    );
    assert_eq!(vq.mos_lq, Some(4.2));
    assert!(vq.fields.contains("x-Custom.x-Foo"), "{}", vq.fields);
    let x = qos.iter().find(|q| q.kind == "X-RTP-Stat").unwrap();
    assert_eq!((x.packets_received, x.packets_lost), (Some(98), Some(2)));
    assert!(x.fields.contains("\"XX\":\"kept\""));
    assert_eq!(x.reporter_ip, "10.0.0.2");
    let p = qos.iter().find(|q| q.kind == "P-RTP-Stat").unwrap();
    assert_eq!((p.jitter_ms, p.rtt_ms), (Some(1.0), Some(5.0)));
    let rx = qos.iter().find(|q| q.kind == "RTP-RxStat").unwrap();
    assert_eq!(
        (rx.packets_received, rx.side.as_deref()),
        (Some(100), Some("rx"))
    );

    // dialogs carry the media summary; the calls filter fields use it
    let d = read_dialogs(
        &db,
        &DialogFilter {
            call_id: Some(CALL.into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(d.len(), 1);
    assert!((d[0].max_loss_pct.unwrap() - 2.0).abs() < 1e-9);
    assert!(d[0].worst_mos.is_some());
    let f = |loss: f64, mos: f64| {
        read_dialogs(
            &db,
            &DialogFilter {
                min_loss_pct: Some(loss),
                max_mos: Some(mos),
                ..Default::default()
            },
        )
        .unwrap()
        .len()
    };
    assert_eq!(f(1.5, 4.5), 1);
    assert_eq!(f(2.5, 4.5), 0);
    assert_eq!(f(1.5, 1.0), 0);
    let calls = |extra: &[&str]| {
        let mut args = vec!["calls", "--json"];
        args.extend_from_slice(extra);
        db_cmd(&db, &args).run().stdout()
    };
    assert!(calls(&["--min-loss", "1.5", "--max-mos", "4.5"]).contains(CALL));
    assert!(!calls(&["--min-loss", "2.5"]).contains(CALL));
    assert!(!calls(&["--max-mos", "1.0"]).contains(CALL));

    // quality: both directions, the reports side by side
    let text = db_cmd(&db, &["quality", CALL, "--explain"]).ok().stdout();
    for want in [
        "RTCP SR",
        "RTCP-XR",
        "vq-session",
        "X-RTP-Stat",
        "P-RTP-Stat",
        "Ie,eff",
        "98 (+0)",
    ] {
        assert!(text.contains(want), "quality lacks {want:?}:\n{text}");
    }
    let rows = db_cmd(&db, &["quality", CALL, "--json"]).run().json_rows();
    let st: Vec<&Value> = rows.iter().filter(|r| r["type"] == "stream").collect();
    assert_eq!(st.len(), 2);
    let sources = |ssrc: u32| -> Vec<String> {
        let s = st.iter().find(|x| x["ssrc"] == ssrc).unwrap();
        s["reported"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["source"].as_str().unwrap().to_owned())
            .collect()
    };
    // A's stream is reported by B (SR, BYE's X-RTP-Stat); B's by A (RR, XR, vq-rtcpxr local
    // metrics, P-RTP-Stat in the 200 to the BYE).
    let a_to_b = sources(0x1111_1111);
    for want in ["RTCP SR", "X-RTP-Stat"] {
        assert!(a_to_b.iter().any(|s| s == want), "{a_to_b:?}");
    }
    let b_to_a = sources(0x2222_2222);
    for want in ["RTCP RR", "RTCP-XR", "vq-session", "P-RTP-Stat"] {
        assert!(b_to_a.iter().any(|s| s == want), "{b_to_a:?}");
    }
    assert!(rows.iter().any(|r| r["type"] == "qos_report"));
}

// ---- split, runs, threads ----

/// Stream rows keyed by stream_id, everything compared.
fn stream_map(db: &Path) -> BTreeMap<String, Value> {
    streams(db, &[])
        .into_iter()
        .map(|s| (s["stream_id"].as_str().unwrap().to_owned(), s))
        .collect()
}

fn report_sets(db: &Path) -> (Vec<String>, Vec<String>) {
    let mut r: Vec<String> = rtcp_rows(db)
        .into_iter()
        .map(|mut x| {
            (x.file_id, x.offset) = (0, 0);
            format!("{x:?}")
        })
        .collect();
    let mut q: Vec<String> = qos_rows(db)
        .into_iter()
        .map(|mut x| {
            (x.file_id, x.offset) = (0, 0);
            format!("{x:?}")
        })
        .collect();
    r.sort();
    q.sort();
    (r, q)
}

#[test]
fn split_ring_files_and_runs_give_the_same_streams_as_the_whole() {
    let tmp = tempdir();
    let crafted = tmp.path().join("crafted.pcap");
    write_pcap(&crafted, &crafted_call());
    for (name, cap) in [
        ("single-call", testdata("corpus/sip-rtp-single-call.pcap")),
        ("crafted", crafted.clone()),
        ("t38", testdata("corpus/sip-rtp-t38-fax-488-options.pcap")),
    ] {
        let ring = tmp.path().join(format!("ring-{name}"));
        std::fs::create_dir(&ring).unwrap();
        let files = split(&cap, &ring, 3);
        assert_eq!(files.len(), 3);
        let whole = tmp.path().join(format!("{name}-whole.db"));
        let split_db = tmp.path().join(format!("{name}-split.db"));
        let runs = tmp.path().join(format!("{name}-runs.db"));
        index_with(&whole, &[&cap], &["-j", "1"]);
        index_with(&split_db, &[&ring], &["-j", "2", "--batch-files", "1"]);
        index_with(&runs, &[&files[0], &files[1]], &[]);
        index_with(&runs, &[&files[2]], &[]);
        let want = stream_map(&whole);
        assert!(!want.is_empty());
        assert_eq!(
            stream_map(&split_db),
            want,
            "{name}: 3 ring files, 2 threads"
        );
        assert_eq!(stream_map(&runs), want, "{name}: ring files over two runs");
        assert_eq!(report_sets(&split_db), report_sets(&whole), "{name}");
        assert_eq!(report_sets(&runs), report_sets(&whole), "{name}");
        let media = |db: &Path| {
            read_dialogs(db, &DialogFilter::default())
                .unwrap()
                .into_iter()
                .map(|d| (d.call_id, d.worst_mos, d.max_loss_pct, d.max_jitter_ms))
                .collect::<Vec<_>>()
        };
        assert_eq!(media(&runs), media(&whole), "{name}: dialog media summary");
    }
}

/// A call whose first streams closed (idle) in an earlier run and whose re-INVITE brought new
/// ones in a later run: the dialog's media summary covers the streams of both runs.
#[test]
fn a_call_summary_covers_streams_closed_in_an_earlier_run() {
    let tmp = tempdir();
    let ms = 1_000_000i64;
    let s = 1_000 * ms;
    // file 1: the crafted call (A→B loses 2 of 100), then other traffic 11 minutes later, so
    // the call's streams go idle and close within the first run
    let mut first = crafted_call();
    first.push((
        T0 + 660 * s,
        frame(
            A,
            5060,
            B,
            5060,
            &sip(
                "OPTIONS sip:bob@test SIP/2.0",
                "other@test",
                "1 OPTIONS",
                "",
                "",
                "",
            ),
        ),
    ));
    // file 2: a re-INVITE of the same call moves the media to new ports; no loss there
    let t2 = T0 + 700 * s;
    let sdp = |addr: &str, port: u16| {
        format!(
            "v=0\r\no=- 3 3 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
        )
    };
    let mut second = offer_answer(
        t2,
        "3 INVITE",
        &sdp("10.0.0.1", 42000),
        &sdp("10.0.0.2", 52000),
    )
    .to_vec();
    for i in 0..50u16 {
        let t = t2 + 100 * ms + i64::from(i) * 20 * ms;
        second.push((
            t,
            frame(A, 42000, B, 52000, &rtp(i, u32::from(i) * 160, 0x3333_3333)),
        ));
        second.push((
            t + ms,
            frame(B, 52000, A, 42000, &rtp(i, u32::from(i) * 160, 0x4444_4444)),
        ));
    }
    let dir = tmp.path().join("ring");
    std::fs::create_dir(&dir).unwrap();
    let (f1, f2) = (dir.join("a-1.pcap"), dir.join("a-2.pcap"));
    write_pcap(&f1, &first);
    write_pcap(&f2, &second);
    let (whole, runs) = (tmp.path().join("whole"), tmp.path().join("runs"));
    index_with(&whole, &[&f1, &f2], &[]);
    index_with(&runs, &[&f1], &[]);
    index_with(&runs, &[&f2], &[]);
    let media = |db: &Path| {
        read_dialogs(db, &DialogFilter::default())
            .unwrap()
            .into_iter()
            .find(|d| d.call_id == CALL)
            .map(|d| (d.worst_mos, d.max_loss_pct, d.max_jitter_ms))
            .unwrap()
    };
    let want = media(&whole);
    assert_eq!(streams(&whole, &["--call-id", CALL]).len(), 4);
    assert_eq!(want.1, Some(2.0), "the first run's lossy stream counts");
    assert_eq!(media(&runs), want);
}

#[test]
fn thread_count_does_not_change_streams_or_reports() {
    let tmp = tempdir();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let corpus = testdata("corpus");
    let rtp = testdata("rtp");
    index_with(&a, &[&corpus, &rtp], &["-j", "1"]);
    index_with(&b, &[&corpus, &rtp], &["-j", "2", "--batch-files", "3"]);
    let sa = stream_map(&a);
    assert!(sa.len() > 100);
    assert_eq!(stream_map(&b), sa);
    assert_eq!(report_sets(&a), report_sets(&b));
}

#[test]
fn quality_on_the_public_single_call() {
    let tmp = tempdir();
    let db = tmp.path().join("db");
    index_with(&db, &[&testdata("corpus/sip-rtp-single-call.pcap")], &[]);
    let text = db_cmd(&db, &["quality", "1-7879@127.0.0.1"]).ok().stdout();
    assert!(
        text.contains("127.0.0.1:6001 -> 127.0.0.1:6000  SSRC 0xFEBD6340  PCMU (PT 0)"),
        "{text}"
    );
    assert!(text.contains("97.080"), "max delta as tshark: {text}");
    assert!(text.contains("8.162") && text.contains("0.562"), "{text}");
    assert!(text.contains("jitter/1s"), "{text}");
    db_cmd(&db, &["quality", "no-such-call"]).code(1);
    // the metrics switch: RFC 3550 A.8 jitter differs from Wireshark's, counts agree here
    let db2 = tmp.path().join("db2");
    index_with(
        &db2,
        &[&testdata("corpus/sip-rtp-single-call.pcap")],
        &["--metrics", "rfc3550"],
    );
    let r = &streams(&db2, &[])[0];
    assert_eq!(r["metrics"], "rfc3550");
    assert_eq!(r["packets"], 501);
    let w = &streams(&db, &[])[0];
    assert_eq!(w["metrics"], "wireshark");
    assert_ne!(r["max_jitter_ms"], w["max_jitter_ms"]);
}

/// SPAN duplicates: without --dedup the second copies are RTP duplicates (lost goes negative, as in
/// Wireshark), never loss; with --dedup they are dropped and counted per stream.
#[test]
fn span_duplicates_are_duplicates_not_loss_and_dedup_counts_them_per_stream() {
    let tmp = tempdir();
    let f = testdata("crafted/sip-rtp-span-duplicates.pcap");
    let (plain, dedup) = (tmp.path().join("plain"), tmp.path().join("dedup"));
    index_with(&plain, &[&f], &[]);
    index_with(&dedup, &[&f], &["--dedup"]);
    let a = streams(&plain, &[]);
    let b = streams(&dedup, &[]);
    assert_eq!(a.len(), 2);
    assert_eq!(b.len(), 2);
    for r in &a {
        assert_eq!(r["packets"], 100);
        assert_eq!(r["duplicates"], 50);
        assert!(
            r["lost"].as_i64().unwrap() <= 0,
            "duplicates are not loss: {r}"
        );
        assert_eq!(r["span_duplicates_dropped"], 0);
    }
    for r in &b {
        assert_eq!(r["packets"], 50);
        assert_eq!(r["duplicates"], 0);
        assert_eq!(r["lost"], 0);
        assert_eq!(r["span_duplicates_dropped"], 50);
    }
}

#[test]
fn no_media_indexes_sip_only_and_leaves_stored_streams_alone() {
    let tmp = tempdir();
    let crafted = tmp.path().join("crafted.pcap");
    write_pcap(&crafted, &crafted_call());
    let full = tmp.path().join("full.db");
    let sip_only = tmp.path().join("sip-only.db");
    index_with(&full, &[&crafted], &[]);
    index_with(&sip_only, &[&crafted], &["--no-media"]);
    assert!(!stream_map(&full).is_empty() && !rtcp_rows(&full).is_empty());
    assert!(stream_map(&sip_only).is_empty());
    assert!(rtcp_rows(&sip_only).is_empty() && qos_rows(&sip_only).is_empty());
    // the SIP side is the same
    let sip = |db: &Path| {
        read_dialogs(db, &DialogFilter::default())
            .unwrap()
            .into_iter()
            .map(|d| (d.call_id, d.state, d.final_status, d.messages))
            .collect::<Vec<_>>()
    };
    assert_eq!(sip(&sip_only), sip(&full));

    // a SIP-only run after a media run: what the media run stored stays
    let ring = tmp.path().join("ring");
    std::fs::create_dir(&ring).unwrap();
    let files = split(&testdata("corpus/sip-rtp-single-call.pcap"), &ring, 3);
    let mixed = tmp.path().join("mixed.db");
    index_with(&mixed, &[&files[0]], &[]);
    let before = stream_map(&mixed);
    assert!(!before.is_empty());
    index_with(&mixed, &[&files[1], &files[2]], &["--no-media"]);
    assert_eq!(stream_map(&mixed), before);
}

/// A minimal little-endian pcapng: SHB, one Ethernet IDB, EPBs (µs), and an ISB at the end whose
/// `isb_ifdrop` says how many packets the capturer dropped, as dumpcap writes it.
fn write_pcapng_with_drops(path: &Path, packets: &[(i64, Vec<u8>)], ifdrop: u64) {
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&vec![0; pad]);
        out.extend_from_slice(&len.to_le_bytes());
    }
    let mut out = Vec::new();
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0A0D_0D0A, &shb);
    let mut idb = 1u16.to_le_bytes().to_vec();
    idb.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    block(&mut out, 1, &idb);
    let stamp = |ts_ns: i64| {
        let us = (ts_ns / 1_000) as u64;
        let mut b = ((us >> 32) as u32).to_le_bytes().to_vec();
        b.extend_from_slice(&(us as u32).to_le_bytes());
        b
    };
    for (ts, data) in packets {
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&stamp(*ts));
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(data);
        epb.extend_from_slice(&vec![0; (4 - data.len() % 4) % 4]);
        block(&mut out, 6, &epb);
    }
    let mut isb = 0u32.to_le_bytes().to_vec();
    isb.extend_from_slice(&stamp(packets.last().map_or(T0, |p| p.0)));
    isb.extend_from_slice(&5u16.to_le_bytes()); // isb_ifdrop
    isb.extend_from_slice(&8u16.to_le_bytes());
    isb.extend_from_slice(&ifdrop.to_le_bytes());
    isb.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
    block(&mut out, 5, &isb);
    std::fs::write(path, out).unwrap();
}

#[test]
fn loss_while_the_capturer_dropped_is_counted_apart_from_network_loss() {
    let ms = 1_000_000i64;
    let tmp = tempdir();
    let (mut first, mut second) = (Vec::new(), Vec::new());
    // Stream 0xA runs over two ring files: the first (no drops) misses seq 20-21 at 0.4 s, the
    // second (whose capturer dropped 7 packets) misses seq 150 at 3 s. Stream 0xB lives in the
    // first file only and misses seq 60: its files reported no drops.
    for i in 0..200u16 {
        let t = T0 + i64::from(i) * 20 * ms;
        let file = if i < 100 { &mut first } else { &mut second };
        if !(20..=21).contains(&i) && i != 150 {
            let pkt = rtp(i, u32::from(i) * 160, 0xA);
            file.push((t, frame(A, 40000, B, 50000, &pkt)));
        }
        if i < 90 && i != 60 {
            let pkt = rtp(i, u32::from(i) * 160, 0xB);
            first.push((t + ms, frame(B, 42000, A, 52000, &pkt)));
        }
    }
    let (f1, f2) = (
        tmp.path().join("ring-1.pcap"),
        tmp.path().join("ring-2.pcapng"),
    );
    write_pcap(&f1, &first);
    write_pcapng_with_drops(&f2, &second, 7);
    let db = tmp.path().join("db");
    index_with(&db, &[&f1, &f2], &[]);

    let s = streams(&db, &[]);
    let by_ssrc = |ssrc: u32| s.iter().find(|x| x["ssrc"] == ssrc).unwrap().clone();
    let spanning = by_ssrc(0xA);
    assert_eq!(spanning["lost"], 3, "{spanning:#}");
    assert_eq!(spanning["capture_drops"], 7);
    assert_eq!(
        spanning["possible_capture_lost"], 1,
        "only the gap in the dropping file's time span"
    );
    assert_eq!(spanning["possible_capture_loss"], true);
    let earlier = by_ssrc(0xB);
    assert_eq!(earlier["lost"], 1);
    assert_eq!(earlier["capture_drops"], 0);
    assert_eq!(earlier["possible_capture_lost"], 0);
    assert_eq!(earlier["possible_capture_loss"], false);

    // The same figures when the files come in two runs (the counts are carried in the state).
    let db2 = tmp.path().join("db2");
    index_with(&db2, &[&f1], &[]);
    index_with(&db2, &[&f1, &f2], &[]);
    let again = streams(&db2, &[]);
    let a = again.iter().find(|x| x["ssrc"] == 0xA).unwrap();
    assert_eq!(
        (&a["lost"], &a["possible_capture_lost"], &a["capture_drops"]),
        (
            &spanning["lost"],
            &spanning["possible_capture_lost"],
            &spanning["capture_drops"]
        )
    );
}

/// One stream over four ring files of 100 packets each (20 ms apart, no loss).
fn one_stream_over_four_ring_files(dir: &Path) -> Vec<PathBuf> {
    let ms = 1_000_000i64;
    (0..4u16)
        .map(|f| {
            let packets: Vec<(i64, Vec<u8>)> = (f * 100..(f + 1) * 100)
                .map(|i| {
                    let pkt = rtp(i, u32::from(i) * 160, 0xC);
                    (T0 + i64::from(i) * 20 * ms, frame(A, 40000, B, 50000, &pkt))
                })
                .collect();
            let p = dir.join(format!("ring-{f}.pcap"));
            write_pcap(&p, &packets);
            p
        })
        .collect()
}

/// The stream's rows as (packets, lost), sorted.
fn stream_c_rows(db: &Path) -> Vec<(u64, u64)> {
    let mut rows: Vec<(u64, u64)> = streams(db, &[])
        .iter()
        .filter(|s| s["ssrc"] == 0xC)
        .map(|s| (s["packets"].as_u64().unwrap(), s["lost"].as_u64().unwrap()))
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_ring_file_found_late_is_folded_into_the_carried_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let rings = one_stream_over_four_ring_files(tmp.path());
    let db = tmp.path().join("db");
    let runs = |files: &[&PathBuf]| -> Value {
        let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
        index_with(&db, &paths, &["--json"]).json()
    };
    // ring-1 arrives after ring-2 was indexed: it starts before what media already analysed,
    // so the media from the stream's start (ring-0) on is analysed again, ring-1 in its place
    let first = runs(&[&rings[0], &rings[2]]);
    assert_eq!(first["media_files_out_of_order"], 0, "{first}");
    assert_eq!(first["media_files_reanalysed"], 0, "{first}");
    let late = runs(&[&rings[1]]);
    assert_eq!(late["media_files_out_of_order"], 0, "{late}");
    assert_eq!(late["media_files_reanalysed"], 2, "{late}");
    assert_eq!(stream_c_rows(&db), vec![(300, 0)], "ring-1 fills the gap");
    let next = runs(&[&rings[3]]);
    assert_eq!(next["media_files_out_of_order"], 0, "{next}");
    assert_eq!(next["media_files_reanalysed"], 0, "{next}");
    // one stream, as one run over the four files gives
    assert_eq!(stream_c_rows(&db), vec![(400, 0)]);
}

#[test]
fn a_late_ring_file_whose_successor_is_gone_is_analysed_apart_with_a_warning() {
    let tmp = tempdir();
    let rings = one_stream_over_four_ring_files(tmp.path());
    let db = tmp.path().join("db");
    index_with(&db, &[&rings[0], &rings[2]], &[]);
    // ring-2 is rotated away before ring-1 arrives: the media after ring-1 cannot be analysed
    // again, so ring-1 is analysed on its own and the stored stream stays as it was
    std::fs::remove_file(&rings[2]).unwrap();
    // not --quiet: the warning on stderr is part of what is checked
    let o = sipidx()
        .args(["index", "--json", "--settle", "0s", "--db"])
        .arg(&db)
        .arg(&rings[1])
        .ok();
    let late = o.json();
    assert_eq!(late["media_files_out_of_order"], 1, "{late}");
    assert_eq!(late["media_refold_missing"], 1, "{late}");
    let stderr = o.stderr();
    assert!(stderr.contains("gone or rewritten"), "{stderr}");
    // the late file's packets are a stream of their own, the stored one untouched by it, its
    // gap being ring-1's 100 packets
    assert_eq!(stream_c_rows(&db), vec![(100, 0), (200, 100)]);
}

#[test]
fn streams_take_the_row_flags_of_calls_and_print_all_by_default() {
    let tmp = tempdir();
    let db = tmp.path().join("db");
    let pt = testdata("rtp/rtp-pt-survey.pcap");
    index_with(&db, &[&pt], &[]);
    let all = streams(&db, &[]);
    assert!(all.len() > 100, "{} streams", all.len());
    assert_eq!(streams(&db, &["--limit", "0"]), all);
    let o = db_cmd(&db, &["streams", "--json", "--limit", "3"]).ok();
    let first = o.json_rows();
    assert_eq!(first, all[..3]);
    let note = o.stderr();
    assert!(
        note.contains(&format!("showing 3 of {} matching streams", all.len())),
        "{note}"
    );
    // CSV: the header, then one line per stream.
    let text = db_cmd(&db, &["streams", "--csv", "--limit", "2"])
        .ok()
        .stdout();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("call_id,start_time,end_time,src_ip"),
        "{}",
        lines[0]
    );
    // Colour reaches the header only when asked for.
    let plain = db_cmd(&db, &["streams", "--color", "never", "--limit", "1"]).ok();
    assert!(!plain.stdout_bytes().contains(&0x1b));
    let coloured = db_cmd(&db, &["streams", "--color", "always", "--limit", "1"]).ok();
    assert!(coloured.stdout_bytes().starts_with(b"\x1b["));
}

#[test]
fn stats_csv_has_one_row_per_bucket_and_the_total() {
    let tmp = tempdir();
    let db = tmp.path().join("db");
    let call = testdata("corpus/sip-rtp-single-call.pcap");
    index_with(&db, &[&call], &[]);
    let text = db_cmd(&db, &["stats", "--csv", "--by", "hour"])
        .ok()
        .stdout();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().unwrap().clone();
    assert_eq!(&header[0], "type");
    assert_eq!(&header[3], "messages");
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.last().unwrap().get(0), Some("total"));
    assert!(rows.len() >= 2);
    let json = db_cmd(&db, &["stats", "--json", "--by", "hour"]).ok();
    let last = json.json_rows().pop().unwrap();
    assert_eq!(
        rows.last().unwrap().get(3),
        Some(last["messages"].to_string().as_str())
    );
}

#[test]
fn stats_limit_keeps_the_first_buckets_and_the_whole_total() {
    let tmp = tempdir();
    let db = tmp.path().join("db");
    index_with(&db, &[&testdata("corpus")], &[]);
    let all = db_cmd(&db, &["stats", "--json", "--by", "day"])
        .ok()
        .json_rows();
    let buckets = all.iter().filter(|r| r["type"] == "bucket").count();
    assert!(buckets > 3, "{buckets} day buckets in the corpus");
    let o = db_cmd(&db, &["stats", "--json", "--by", "day", "--limit", "2"]).ok();
    let cut = o.json_rows();
    assert_eq!(cut.len(), 3, "two buckets and the total");
    assert_eq!(cut[..2], all[..2]);
    assert_eq!(cut.last(), all.last(), "the total covers every bucket");
    assert!(
        o.stderr()
            .contains(&format!("showing 2 of {buckets} buckets")),
        "{}",
        o.stderr()
    );
    assert_eq!(
        db_cmd(&db, &["stats", "--json", "--by", "day", "--limit", "0"])
            .ok()
            .json_rows(),
        all
    );
}
