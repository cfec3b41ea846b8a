//! One message seen twice: HEP mirrors and SPAN duplicates, through the real binary and through the
//! library's decode → dedup pipeline, on the crafted captures (expected figures from MANIFEST.json).
use std::path::Path;

use serde_json::Value;
use sipidx::decode::{DecodeConfig, Decoder, DedupConfig, Deduplicator, Verdict};
use sipidx::source::open_capture;

use crate::util::{
    call_ids, corpus, crafted, manifest_call_ids, manifest_entry, pcap_records, sipidx, tempdir,
    TestCommand,
};

const MIRROR: &str = "sip-udp-proxy-with-hep3-mirror.pcap";
const SPAN: &str = "sip-rtp-span-duplicates.pcap";
const HEP_ONLY: &str = "hep3-udp9060-call.pcap";

/// `sipidx grep ARGS FILE`, to run.
fn grep(args: &[&str], file: &Path) -> TestCommand {
    let mut c = sipidx();
    c.arg("grep").args(args).arg(file);
    c
}

/// What identifies a message whatever file it was read from.
fn wire_keys(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            [
                "ts", "src_ip", "src_port", "dst_ip", "dst_port", "cseq", "status", "size",
            ]
            .iter()
            .map(|k| r[k].to_string())
            .collect::<Vec<_>>()
            .join(" ")
        })
        .collect()
}

/// Writes a pcap of `header` and whole records (record header + data).
fn write_records(path: &Path, header: &[u8], recs: &[Vec<u8>]) {
    let mut out = header.to_vec();
    for r in recs {
        out.extend_from_slice(r);
    }
    std::fs::write(path, out).unwrap();
}

/// Offsets of the HEP records, as `--keep-hep-mirrors` prints them.
fn hep_offsets(file: &Path) -> Vec<u64> {
    grep(&["--json", "--keep-hep-mirrors"], file)
        .ok()
        .json_rows()
        .iter()
        .filter(|r| r["encap"] == "hep")
        .map(|r| r["offset"].as_u64().unwrap())
        .collect()
}

#[test]
fn hep_mirrors_are_dropped_and_noted_on_the_raw_message() {
    let m = manifest_entry(MIRROR);
    let o = grep(&["--json"], &crafted(MIRROR)).ok();
    let got = o.json_rows();
    assert_eq!(got.len() as u64, m["dedup"]["sip_after"].as_u64().unwrap());
    for r in &got {
        assert_eq!(r["encap"], Value::Null, "the raw copy is the one kept: {r}");
        assert_eq!(r["mirrored_by_hep"]["capture_id"], 2001, "{r}");
        assert!(r["mirrored_by_hep"]["offset"].as_u64().unwrap() > r["offset"].as_u64().unwrap());
    }
    let copies = m["dedup"]["hep_copies"].as_u64().unwrap();
    assert!(
        o.stderr()
            .contains(&format!("dropped {copies} HEP mirrors")),
        "{}",
        o.stderr()
    );
    let text = grep(&["--color", "never"], &crafted(MIRROR)).run().stdout();
    assert_eq!(
        text.matches("[mirrored hep-id=2001]").count() as u64,
        m["dedup"]["sip_after"].as_u64().unwrap()
    );
}

#[test]
fn keep_hep_mirrors_prints_every_copy() {
    let m = manifest_entry(MIRROR);
    let got = grep(&["--json", "--keep-hep-mirrors"], &crafted(MIRROR))
        .ok()
        .json_rows();
    assert_eq!(got.len() as u64, m["dedup"]["sip_before"].as_u64().unwrap());
    assert_eq!(call_ids(&got), manifest_call_ids(&m));
    assert!(got.iter().all(|r| r["mirrored_by_hep"].is_null()));
    assert_eq!(
        got.iter().filter(|r| r["encap"] == "hep").count() as u64,
        m["dedup"]["hep_copies"].as_u64().unwrap()
    );
}

#[test]
fn deduped_raw_and_mirror_equal_the_raw_call_alone() {
    let src = crafted(MIRROR);
    let heps = hep_offsets(&src);
    assert!(!heps.is_empty());
    let (header, recs) = pcap_records(&std::fs::read(&src).unwrap());
    let raw_only: Vec<Vec<u8>> = recs
        .into_iter()
        .filter(|r| !heps.contains(&r.offset))
        .map(|r| r.bytes)
        .collect();
    let dir = tempdir();
    let raw_path = dir.path().join("raw-only.pcap");
    write_records(&raw_path, &header, &raw_only);

    let alone = grep(&["--json"], &raw_path).ok().json_rows();
    let deduped = grep(&["--json"], &src).ok().json_rows();
    assert_eq!(wire_keys(&alone), wire_keys(&deduped));
    assert_eq!(call_ids(&alone), call_ids(&deduped));
    assert!(alone.iter().all(|r| r["mirrored_by_hep"].is_null()));
    // And the dialog view agrees too.
    let a = grep(&["--json", "-G", "--method", "BYE"], &raw_path)
        .ok()
        .json_rows();
    let b = grep(&["--json", "-G", "--method", "BYE"], &src)
        .ok()
        .json_rows();
    assert_eq!(wire_keys(&a), wire_keys(&b));
}

#[test]
fn hep_copy_captured_before_its_raw_message_is_dropped_for_it() {
    // As on a capture of several interfaces: each HEP copy comes first, its raw message 200 µs later.
    let src = crafted(MIRROR);
    let heps = hep_offsets(&src);
    let (header, recs) = pcap_records(&std::fs::read(&src).unwrap());
    let mut swapped: Vec<Vec<u8>> = recs.iter().map(|r| r.bytes.clone()).collect();
    let mut pairs = 0;
    for i in 1..recs.len() {
        if heps.contains(&recs[i].offset) && !heps.contains(&recs[i - 1].offset) {
            let (raw, hep) = (&recs[i - 1].bytes, &recs[i].bytes);
            // Swap the bodies, keep the record times in order.
            let mut first = hep.clone();
            first[..8].copy_from_slice(&raw[..8]);
            let mut second = raw.clone();
            second[..8].copy_from_slice(&hep[..8]);
            swapped[i - 1] = first;
            swapped[i] = second;
            pairs += 1;
        }
    }
    assert_eq!(pairs, heps.len());
    let dir = tempdir();
    let path = dir.path().join("hep-first.pcap");
    write_records(&path, &header, &swapped);

    let got = grep(&["--json"], &path).ok().json_rows();
    let expected = grep(&["--json"], &src).ok().json_rows();
    assert_eq!(got.len(), expected.len());
    assert!(got
        .iter()
        .all(|r| r["encap"].is_null() && r["mirrored_by_hep"]["capture_id"] == 2001));
    // The raw messages now sit 200 µs later; everything else is the same, in capture order.
    let strip = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|r| format!("{} {} {}", r["cseq"], r["status"], r["size"]))
            .collect()
    };
    assert_eq!(strip(&got), strip(&expected));
    let offsets: Vec<u64> = got.iter().map(|r| r["offset"].as_u64().unwrap()).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
}

#[test]
fn hep_only_capture_still_gives_the_call() {
    let m = manifest_entry(HEP_ONLY);
    let o = grep(&["--json"], &crafted(HEP_ONLY)).ok();
    let got = o.json_rows();
    assert_eq!(call_ids(&got), manifest_call_ids(&m));
    assert!(got
        .iter()
        .all(|r| r["encap"] == "hep" && r["mirrored_by_hep"].is_null()));
    assert!(!o.stderr().contains("dropped"), "{}", o.stderr());
}

#[test]
fn span_duplicates_dropped_with_dedup_and_the_retransmission_kept() {
    let m = manifest_entry(SPAN);
    let plain = grep(&["--json"], &crafted(SPAN)).ok().json_rows();
    assert_eq!(
        plain.len() as u64,
        m["dedup"]["sip_before"].as_u64().unwrap()
    );
    assert_eq!(
        plain.len() as u64,
        m["tshark"]["sip_messages"].as_u64().unwrap()
    );

    let o = grep(&["--json", "--dedup"], &crafted(SPAN)).ok();
    let got = o.json_rows();
    assert_eq!(got.len() as u64, m["dedup"]["sip_after"].as_u64().unwrap());
    let dropped = plain.len() - got.len();
    assert!(
        o.stderr()
            .contains(&format!("dropped {dropped} SPAN duplicates")),
        "{}",
        o.stderr()
    );
    // The genuine retransmission: the same 200 OK (INVITE) twice, at least T1 apart.
    let ok_invite: Vec<&Value> = got
        .iter()
        .filter(|r| r["status"] == 200 && r["cseq"].as_str().unwrap().ends_with("INVITE"))
        .collect();
    assert_eq!(
        ok_invite.len() as u64,
        1 + m["dedup"]["genuine_retransmissions"].as_u64().unwrap()
    );
    let t = |r: &Value| {
        chrono::DateTime::parse_from_rfc3339(r["ts"].as_str().unwrap())
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    };
    assert!(t(ok_invite[1]) - t(ok_invite[0]) >= 500_000_000);
    // No copy 20 µs apart survives.
    let keys = wire_keys(&got);
    let mut unique = keys.clone();
    unique.dedup();
    assert_eq!(keys, unique);
}

#[test]
fn a_dedup_window_reaching_t1_is_refused() {
    let o = grep(&["--dedup", "--dedup-window", "500ms"], &crafted(SPAN)).code(2);
    assert!(o.stderr().contains("T1"), "{}", o.stderr());
}

#[test]
fn engine_drops_rtp_span_duplicates_per_flow() {
    let m = manifest_entry(SPAN);
    let mut reader = open_capture(&crafted(SPAN), 0).unwrap();
    let mut decoder = Decoder::new(DecodeConfig::new(sipidx::sip::stream_start));
    let mut dedup = Deduplicator::new(DedupConfig {
        span: true,
        ..DedupConfig::default()
    });
    let (mut rtp_before, mut rtp_after, mut sip_after) = (0u64, 0u64, 0u64);
    while let Some(packet) = reader.next_packet().unwrap() {
        decoder.decode(&packet, |dg| {
            let sip = sipidx::sip::looks_like_sip(dg.payload);
            if !sip {
                rtp_before += 1;
            }
            if dedup.push(dg, packet.ts_ns).is_kept() {
                if sip {
                    sip_after += 1;
                } else {
                    rtp_after += 1;
                }
            }
        });
    }
    assert_eq!(rtp_before, m["dedup"]["rtp_before"].as_u64().unwrap());
    assert_eq!(rtp_after, m["dedup"]["rtp_after"].as_u64().unwrap());
    assert_eq!(sip_after, m["dedup"]["sip_after"].as_u64().unwrap());
    let stats = dedup.stats();
    assert_eq!(stats.span_duplicates, stats.datagrams - stats.kept);
    assert_eq!(stats.hep_mirrors, 0);
    // Per flow: each RTP direction lost exactly its copies.
    let per_flow = dedup.flow_duplicates();
    let total: u64 = per_flow.values().sum();
    assert_eq!(total, stats.span_duplicates);
    let rtp_flows: Vec<u64> = per_flow
        .iter()
        .filter(|(f, _)| f.src_port != 5060 && f.dst_port != 5060)
        .map(|(_, &n)| n)
        .collect();
    let streams: Vec<u64> = m["rtp_streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["packets"].as_u64().unwrap())
        .collect();
    let mut sorted = rtp_flows.clone();
    sorted.sort_unstable();
    let mut expected = streams.clone();
    expected.sort_unstable();
    assert_eq!(sorted, expected);
}

#[test]
fn engine_pairs_every_hep_copy_with_its_raw_message() {
    let m = manifest_entry(MIRROR);
    let mut reader = open_capture(&crafted(MIRROR), 0).unwrap();
    let mut decoder = Decoder::new(DecodeConfig::new(sipidx::sip::stream_start));
    let mut dedup = Deduplicator::new(DedupConfig::default());
    let mut mirrored_seqs = Vec::new();
    while let Some(packet) = reader.next_packet().unwrap() {
        decoder.decode(&packet, |dg| {
            if let Verdict::Mirror { of, mirror } = dedup.push(dg, packet.ts_ns) {
                assert_eq!(mirror.capture_id, Some(2001));
                mirrored_seqs.push(of);
            }
        });
    }
    let after = m["dedup"]["sip_after"].as_u64().unwrap();
    assert_eq!(mirrored_seqs, (0..after).collect::<Vec<_>>());
    assert_eq!(dedup.stats().kept, after);
}

#[test]
fn real_span_duplicates_in_a_public_capture_each_follow_their_original_within_the_window() {
    // This public capture was taken on a SPAN port that saw some legs twice (e.g. frames 24 and 26,
    // the same INVITE 1.4 ms apart on 10.35.40.25 -> 10.35.40.200).
    let file = corpus("sip-rtp-t38-fax-488-options.pcap");
    let plain = grep(&["--json"], &file).ok().json_rows();
    let o = grep(&["--json", "--dedup"], &file).ok();
    let deduped = o.json_rows();
    let kept: std::collections::HashSet<u64> = deduped
        .iter()
        .map(|r| r["offset"].as_u64().unwrap())
        .collect();
    let ns = |r: &Value| {
        chrono::DateTime::parse_from_rfc3339(r["ts"].as_str().unwrap())
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    };
    let key = |r: &Value| wire_keys(std::slice::from_ref(r))[0].replace(&r["ts"].to_string(), "");
    let mut dropped = 0;
    for (i, r) in plain.iter().enumerate() {
        if kept.contains(&r["offset"].as_u64().unwrap()) {
            continue;
        }
        dropped += 1;
        let original = plain[..i]
            .iter()
            .rev()
            .find(|p| key(p) == key(r) && kept.contains(&p["offset"].as_u64().unwrap()));
        let original = original.unwrap_or_else(|| panic!("no original for {r}"));
        assert!(ns(r) - ns(original) <= 5_000_000, "{r} vs {original}");
    }
    assert!(dropped > 0);
    assert_eq!(deduped.len() + dropped, plain.len());
    assert!(o
        .stderr()
        .contains(&format!("dropped {dropped} SPAN duplicates")));
}
