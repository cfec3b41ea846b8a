//! Our `rtp,streams` rows against tshark 4.0's on the crafted captures (testdata/rtp) and the
//! public corpus (testdata/corpus): counts exactly, times within 0.01 ms.

use std::collections::HashMap;
use std::net::IpAddr;

use super::testcap::read_udp;
use super::*;

type RtpMap = Vec<(u8, String, u32)>;

/// A test-only SDP scan: media address → (is RTP audio/video, rtpmap), like tshark's SDP setup.
/// An `m=image … udptl` line hands its port to T.38, as tshark does on the offer.
fn sdp_media(payload: &[u8]) -> Vec<((IpAddr, u16), (bool, RtpMap))> {
    let text = String::from_utf8_lossy(payload);
    if !text.lines().any(|l| l.trim_start().starts_with("m=")) {
        return Vec::new();
    }
    let mut conn: Option<IpAddr> = None;
    let mut out: Vec<((IpAddr, u16), (bool, RtpMap))> = Vec::new();
    let mut pending: Option<(u16, bool)> = None;
    let mut maps = Vec::new();
    let mut flush = |conn: Option<IpAddr>, m: Option<(u16, bool)>, maps: &mut RtpMap| {
        if let (Some(c), Some((p, rtp))) = (conn, m) {
            if p != 0 {
                out.push(((c, p), (rtp, std::mem::take(maps))));
            }
        }
        maps.clear();
    };
    for line in text.lines() {
        let line = line.trim();
        if let Some(c) = line
            .strip_prefix("c=IN IP4 ")
            .or(line.strip_prefix("c=IN IP6 "))
        {
            conn = c.split('/').next().and_then(|a| a.trim().parse().ok());
        } else if let Some(m) = line.strip_prefix("m=") {
            flush(conn, pending, &mut maps);
            let mut f = m.split_whitespace();
            let kind = f.next().unwrap_or("");
            pending = f
                .next()
                .and_then(|p| p.parse().ok())
                .map(|p| (p, kind != "image"));
        } else if let Some(r) = line.strip_prefix("a=rtpmap:") {
            let mut it = r.splitn(2, ' ');
            let pt = it.next().and_then(|p| p.parse().ok());
            let enc = it.next().unwrap_or("");
            let mut parts = enc.split('/');
            let name = parts.next().unwrap_or("").to_owned();
            let rate = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
            if let Some(pt) = pt {
                maps.push((pt, name, rate));
            }
        }
    }
    flush(conn, pending, &mut maps);
    out
}

/// Run the analysis over a capture as tshark does with `rtp.heuristic_rtp:TRUE`.
fn analyse(path: &str) -> (i64, StreamTable) {
    let (origin, dgs) = read_udp(path);
    let mut table = StreamTable::with_time_origin(origin);
    let mut announced: HashMap<(IpAddr, u16), (bool, RtpMap)> = HashMap::new();
    for d in &dgs {
        let sdp = sdp_media(&d.payload);
        if !sdp.is_empty() {
            announced.extend(sdp);
            continue;
        }
        if detect::tshark_claims_port(d.src_port) || detect::tshark_claims_port(d.dst_port) {
            continue;
        }
        let conv_addr = [(d.dst, d.dst_port), (d.src, d.src_port)]
            .into_iter()
            .find(|a| announced.contains_key(a));
        if conv_addr.is_some_and(|a| !announced[&a].0) {
            continue; // T.38 (UDPTL) took the port over
        }
        let class = if conv_addr.is_some() {
            classify_known_flow(&d.payload)
        } else {
            classify_heuristic(&d.payload)
        };
        if class != Classification::Rtp {
            continue;
        }
        let Ok(h) = RtpHeader::parse(&d.payload) else {
            continue;
        };
        let key = StreamKey {
            src: d.src,
            src_port: d.src_port,
            dst: d.dst,
            dst_port: d.dst_port,
            ssrc: h.ssrc(),
        };
        let (conv, format) = match conv_addr {
            Some(a) => {
                let f = announced[&a]
                    .1
                    .iter()
                    .find(|m| m.0 == h.payload_type())
                    .map(|m| PayloadFormat {
                        encoding_name: &m.1,
                        clock_rate: m.2,
                    });
                (ConvKey::announced(a.0, a.1), f)
            }
            None => (
                ConvKey::heuristic(d.src, d.src_port, d.dst, d.dst_port),
                None,
            ),
        };
        table.push(key, conv, d.ts_ns, &h, format);
    }
    (origin, table)
}

fn oracle_rows(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('=') && !l.contains("Src IP addr") && !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Splits a row into (identity text, numeric fields): the numbers are the two times and the six
/// delta/jitter columns, everything else must match exactly.
fn split_row(row: &str) -> (String, Vec<f64>) {
    let toks: Vec<&str> = row.split_whitespace().collect();
    let n = toks.len();
    let has_problem = toks[n - 1] == "X";
    let end = if has_problem { n - 1 } else { n };
    let nums: Vec<f64> = [0, 1]
        .iter()
        .map(|&i| toks[i].parse().unwrap())
        .chain(toks[end - 6..end].iter().map(|t| t.parse().unwrap()))
        .collect();
    let ident = format!("{} | {}", toks[2..end - 6].join(" "), has_problem);
    (ident, nums)
}

/// (exact rows, rows matching within tolerance); panics with a diff on any mismatch.
fn compare(capture: &str, oracle: &str, skip_ssrc: &[&str]) -> (usize, usize) {
    let (origin, table) = analyse(capture);
    let keep = |r: &String| !skip_ssrc.iter().any(|s| r.contains(s));
    let ours: Vec<String> = table.tshark_rows(origin).into_iter().filter(keep).collect();
    let theirs: Vec<String> = oracle_rows(oracle).into_iter().filter(keep).collect();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{capture}: stream count\nours:\n{}\ntshark:\n{}",
        ours.join("\n"),
        theirs.join("\n")
    );
    let mut exact = 0;
    for t in &theirs {
        let (tid, tn) = split_row(t);
        let o = ours
            .iter()
            .find(|o| split_row(o).0 == tid)
            .unwrap_or_else(|| panic!("{capture}: no row like\n{t}\nours:\n{}", ours.join("\n")));
        let (_, on) = split_row(o);
        for (i, (a, b)) in on.iter().zip(&tn).enumerate() {
            // times are in s (0.01 ms = 1e-5 s), the rest in ms; allow print rounding on top.
            let tol = if i < 2 { 1e-5 + 1e-6 } else { 0.01 + 5e-4 };
            assert!(
                (a - b).abs() <= tol,
                "{capture}: column {i} differs\nours:   {o}\ntshark: {t}"
            );
        }
        exact += usize::from(o == t);
    }
    (exact, theirs.len())
}

macro_rules! oracle_test {
    ($name:ident, $dir:literal, $file:literal) => {
        oracle_test!($name, $dir, $file, []);
    };
    ($name:ident, $dir:literal, $file:literal, [$($skip:literal),*]) => {
        #[test]
        fn $name() {
            let cap = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/", $dir, "/", $file);
            let exp = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/",
                $dir,
                "/expected/",
                $file,
                ".rtp_streams.txt"
            );
            let (exact, total) = compare(cap, exp, &[$($skip),*]);
            eprintln!("{}: {exact}/{total} rows byte-identical", $file);
        }
    };
}

oracle_test!(crafted_loss_dup_reorder, "rtp", "rtp-loss-dup-reorder.pcap");
oracle_test!(crafted_seq_wrap, "rtp", "rtp-seq-wrap.pcap");
oracle_test!(
    crafted_ssrc_change_marker_cn,
    "rtp",
    "rtp-ssrc-change-marker-cn.pcap"
);
oracle_test!(crafted_dtmf, "rtp", "rtp-dtmf-rfc2833.pcap");
oracle_test!(
    crafted_rtcp_compound,
    "rtp",
    "rtcp-compound-sr-rr-sdes-bye.pcap"
);
oracle_test!(crafted_rtcp_xr, "rtp", "rtcp-xr-voip-metrics.pcap");
oracle_test!(crafted_pt_survey, "rtp", "rtp-pt-survey.pcap");
oracle_test!(crafted_heuristic_edges, "rtp", "rtp-heuristic-edges.pcap");
oracle_test!(corpus_single_call, "corpus", "sip-rtp-single-call.pcap");
oracle_test!(corpus_g711a, "corpus", "rtp-only-g711a.pcap");
oracle_test!(corpus_dtmf, "corpus", "rtp-only-dtmf-rfc2833-digit1.pcap");
oracle_test!(
    corpus_register_mixed,
    "corpus",
    "sip-udp-register-invite-cancel-auth-mixed.pcap"
);
// 0x0EAF0EAF: after the T.38 re-offers (MEGACO and SIP, frames 1391-1435) tshark decodes the
// last 27 packets to 10.23.1.52:16756 as T.38, not RTP. That is SDP/port tracking, which this
// test's crude SDP scan does not reproduce (the analysis itself matches up to that point: same
// lost count, max delta and jitter); the pipeline's SDP tracker owns it.
oracle_test!(
    corpus_t38_fax,
    "corpus",
    "sip-rtp-t38-fax-488-options.pcap",
    ["0x0EAF0EAF"]
);
oracle_test!(
    corpus_vlan_two_ifaces,
    "corpus",
    "rtp-vlan-two-interfaces.pcapng"
);
oracle_test!(
    corpus_rtcp_only,
    "corpus",
    "rtcp-compound-multiple-in-datagram-sll.pcap"
);
oracle_test!(corpus_fuzz, "corpus", "rtp-malformed-fuzz-single.pcapng");
