//! Tests of the whole reader on the public corpus (testdata/corpus) against capinfos' oracle output,
//! and on cut, compressed, byte-swapped and damaged copies written to a temp dir.
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::reader::open_with_chunk;
use super::*;

/// An owned copy of what the reader returned for one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Owned {
    ts_ns: i64,
    link_type: LinkType,
    interface_id: u32,
    data: Vec<u8>,
    orig_len: u32,
    location: PacketLocation,
}

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/corpus")
        .join(name)
}

fn drain(mut r: CaptureReader) -> (Vec<Owned>, ReadStats) {
    let mut out = Vec::new();
    while let Some(p) = r.next_packet().expect("read error") {
        out.push(Owned {
            ts_ns: p.ts_ns,
            link_type: p.link_type,
            interface_id: p.interface_id,
            data: p.data.to_vec(),
            orig_len: p.orig_len,
            location: p.location,
        });
    }
    // Once done, it stays done.
    assert!(r.next_packet().unwrap().is_none());
    (out, r.stats().clone())
}

fn read_all(path: &Path) -> (Vec<Owned>, ReadStats) {
    drain(open_capture(path, 7).unwrap_or_else(|e| panic!("{e}")))
}

/// Read with plain reads through a tiny buffer, so every record straddles refills.
fn read_streamed(path: &Path, chunk: usize) -> (Vec<Owned>, ReadStats) {
    drain(
        open_with_chunk(path, 7, OpenOptions { mmap: false }, chunk)
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

fn capinfos(name: &str) -> String {
    fs::read_to_string(corpus(&format!("expected/{name}.capinfos.txt"))).unwrap()
}

fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim_start_matches(':').trim())
}

/// capinfos prints local time; the oracle was made on a UTC machine.
fn parse_time(s: &str) -> i64 {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    t.and_utc().timestamp_nanos_opt().unwrap()
}

fn corpus_files() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(corpus(""))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_corpus_file_agrees_with_capinfos() {
    let files = corpus_files();
    assert!(files.len() >= 30, "corpus missing: {files:?}");
    for name in files {
        let ci = capinfos(&name);
        let (pkts, stats) = read_all(&corpus(&name));
        let n: usize = field(&ci, "Number of packets").unwrap().parse().unwrap();
        assert_eq!(pkts.len(), n, "{name}: packet count");
        assert_eq!(stats.packets, n as u64);
        assert_eq!(stats.truncated_at, None, "{name}");
        assert_eq!(stats.corrupt_at, None, "{name}");
        let file_len = fs::metadata(corpus(&name)).unwrap().len();
        assert_eq!(stats.stream_bytes, file_len, "{name}: every byte walked");
        // capinfos' data size adds up the lengths on the wire.
        if let Some(size) = field(&ci, "Data size").and_then(|s| s.strip_suffix(" bytes")) {
            let wire: u64 = pkts.iter().map(|p| u64::from(p.orig_len)).sum();
            assert_eq!(wire, size.parse::<u64>().unwrap(), "{name}: data size");
        }
        let captured: u64 = pkts.iter().map(|p| p.data.len() as u64).sum();
        assert_eq!(stats.packet_bytes, captured);
        if let (Some(first), Some(last)) = (
            field(&ci, "First packet time"),
            field(&ci, "Last packet time"),
        ) {
            let min = pkts.iter().map(|p| p.ts_ns).min().unwrap();
            let max = pkts.iter().map(|p| p.ts_ns).max().unwrap();
            assert_eq!(min, parse_time(first), "{name}: first packet time");
            assert_eq!(max, parse_time(last), "{name}: last packet time");
        }
        // Per-interface packet counts (single-section files; capinfos repeats them per section).
        if !ci.contains("\nSection ") {
            let mut want = BTreeMap::new();
            let mut iface = None;
            for l in ci.lines() {
                if let Some(rest) = l.strip_prefix("Interface #") {
                    iface = rest
                        .split_whitespace()
                        .next()
                        .and_then(|x| x.parse::<u32>().ok());
                }
                if let (Some(i), Some(k)) = (iface, l.trim().strip_prefix("Number of packets = ")) {
                    want.insert(i, k.parse::<usize>().unwrap());
                }
            }
            let mut got = BTreeMap::new();
            for p in &pkts {
                *got.entry(p.interface_id).or_insert(0usize) += 1;
            }
            got.retain(|_, v| *v > 0);
            want.retain(|_, v| *v > 0);
            assert_eq!(got, want, "{name}: packets per interface");
        }
        // Locations are increasing and stamped with the file id.
        assert!(pkts
            .windows(2)
            .all(|w| w[0].location.offset < w[1].location.offset));
        assert!(pkts.iter().all(|p| p.location.file_id == 7));
    }
}

#[test]
fn nanosecond_pcap_keeps_nanoseconds() {
    let r = open_capture(&corpus("nanosecond-pcap-sll-tcp-handshake.pcap"), 0).unwrap();
    assert_eq!(
        r.format(),
        CaptureFormat::Pcap {
            nanosecond: true,
            big_endian: false
        }
    );
    assert_eq!(r.snaplen(), Some(262_144));
    let (pkts, _) = drain(r);
    assert_eq!(pkts[0].ts_ns, parse_time("2014-12-09 17:16:09.924505488"));
    assert!(pkts.iter().all(|p| p.link_type == linktype::LINUX_SLL));
    assert_eq!(pkts[0].location.offset, 24);
}

#[test]
fn pcapng_nanosecond_resolution_and_link_type() {
    let (pkts, stats) = read_all(&corpus("hep3-compressed-sll.pcapng"));
    assert_eq!(pkts.len(), 21);
    assert!(pkts.iter().all(|p| p.link_type == linktype::LINUX_SLL));
    // tshark -T fields -e frame.time_epoch: 1502941090.317366997
    assert_eq!(pkts[0].ts_ns, 1_502_941_090_317_366_997);
    // SHB 120 bytes, IDB 84 bytes.
    assert_eq!(pkts[0].location.offset, 204);
    assert_eq!(pkts[0].location.record_len, 836);
    assert_eq!(pkts[0].data.len(), 803);
    assert_eq!(stats.skipped_blocks, 0);
}

#[test]
fn pcapng_five_interfaces_three_sections_mixed_link_types() {
    let name = "pcapng-five-interfaces-mixed-linktypes.pcapng";
    let (pkts, stats) = read_all(&corpus(name));
    // capinfos: "Encapsulation in use by packets: Ethernet (6), NULL/Loopback (2)".
    let ci = capinfos(name);
    assert!(ci.contains("Ethernet (6)") && ci.contains("NULL/Loopback (2)"));
    let eth = pkts
        .iter()
        .filter(|p| p.link_type == linktype::ETHERNET)
        .count();
    let null = pkts
        .iter()
        .filter(|p| p.link_type == linktype::NULL)
        .count();
    assert_eq!((eth, null), (6, 2));
    // Two Simple Packet Blocks, in the big-endian second section.
    assert_eq!(stats.packets_without_timestamp, 2);
    // Three custom blocks and five name resolution blocks are not used.
    assert_eq!(stats.skipped_blocks, 8);
    // tshark frame.time_epoch of the first EPB.
    assert_eq!(pkts[0].ts_ns, 1_340_954_905_298_858_000);
    // isb_ifdrop of interface 0: 10 in section 1, 1 in section 2.
    assert_eq!(stats.interface_drops, vec![(0, 11)]);
    // The SPB's caplen is cut to its interface's snaplen (128), and it has no timestamp of its own.
    let spb = pkts.iter().find(|p| p.location.offset == 1108).unwrap();
    assert_eq!(
        (spb.data.len(), spb.orig_len, spb.interface_id),
        (128, 314, 0)
    );
}

#[test]
fn two_interface_pcapng() {
    let (pkts, _) = read_all(&corpus("rtp-vlan-two-interfaces.pcapng"));
    assert_eq!(pkts.len(), 112);
    assert!(pkts.iter().all(|p| p.link_type == linktype::ETHERNET));
    assert!(pkts.iter().any(|p| p.interface_id == 1));
}

/// Rewrite a little-endian µs pcap as big-endian, optionally with the ns magic.
fn swap_pcap(le: &[u8], nano: bool) -> Vec<u8> {
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let mut out = Vec::new();
    out.extend_from_slice(&(if nano { 0xa1b2_3c4du32 } else { 0xa1b2_c3d4 }).to_be_bytes());
    out.extend_from_slice(&u16::from_le_bytes([le[4], le[5]]).to_be_bytes());
    out.extend_from_slice(&u16::from_le_bytes([le[6], le[7]]).to_be_bytes());
    for o in [8, 12, 16, 20] {
        out.extend_from_slice(&u32_at(le, o).to_be_bytes());
    }
    let mut pos = 24;
    while pos < le.len() {
        let caplen = u32_at(le, pos + 8) as usize;
        let frac = u32_at(le, pos + 4);
        out.extend_from_slice(&u32_at(le, pos).to_be_bytes());
        out.extend_from_slice(&(if nano { frac * 1000 } else { frac }).to_be_bytes());
        out.extend_from_slice(&u32_at(le, pos + 8).to_be_bytes());
        out.extend_from_slice(&u32_at(le, pos + 12).to_be_bytes());
        out.extend_from_slice(&le[pos + 16..pos + 16 + caplen]);
        pos += 16 + caplen;
    }
    out
}

#[test]
fn big_endian_pcap_in_both_resolutions_reads_like_the_original() {
    let src = corpus("sip-tcp-register-200.pcap");
    let (want, _) = read_all(&src);
    let dir = tempfile::tempdir().unwrap();
    for nano in [false, true] {
        let p = dir.path().join(format!("be-{nano}.pcap"));
        fs::write(&p, swap_pcap(&fs::read(&src).unwrap(), nano)).unwrap();
        let r = open_capture(&p, 7).unwrap();
        assert_eq!(
            r.format(),
            CaptureFormat::Pcap {
                nanosecond: nano,
                big_endian: true
            }
        );
        let (got, _) = drain(r);
        assert_eq!(got, want);
    }
}

#[test]
fn files_cut_anywhere_yield_the_whole_records() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "sip-options-200.pcap",
        "negative-http-on-sip-port-tcp.pcapng",
    ] {
        let bytes = fs::read(corpus(name)).unwrap();
        let (full, _) = read_all(&corpus(name));
        let header_end = if name.ends_with(".pcap") { 24 } else { 28 };
        let p = dir.path().join(name);
        // Every byte of the headers, a spread through the records, and both sides of each record
        // boundary (every byte of both files takes too long unoptimised).
        let near_boundary = |c: usize| {
            full.iter().any(|p| {
                let end = (p.location.offset + u64::from(p.location.record_len)) as usize;
                c.abs_diff(end) <= 2 || c.abs_diff(p.location.offset as usize + 16) <= 1
            })
        };
        let cuts = (0..bytes.len()).filter(|&c| c < 128 || c % 23 == 0 || near_boundary(c));
        for cut in cuts {
            fs::write(&p, &bytes[..cut]).unwrap();
            let opened = open_capture(&p, 7);
            if cut < header_end {
                match opened {
                    Err(SourceError::NotACapture { .. }) => continue,
                    Err(e) => panic!("{name} cut at {cut}: {e}"),
                    Ok(_) if name.ends_with(".pcapng") => {}
                    Ok(_) => panic!("{name} cut at {cut} opened"),
                }
            }
            // A pcapng cut inside its SHB is not a capture yet; past it, the walk starts.
            let Ok(r) = opened else {
                assert!(
                    name.ends_with(".pcapng") && cut < 100,
                    "{name} cut at {cut}"
                );
                continue;
            };
            let (got, stats) = drain(r);
            let whole: Vec<_> = full
                .iter()
                .filter(|p| p.location.offset + u64::from(p.location.record_len) <= cut as u64)
                .cloned()
                .collect();
            assert_eq!(got, whole, "{name} cut at {cut}");
            // The partial record, if any: the packet straddling the cut, or (pcapng) a non-packet block.
            let straddling = full.iter().find(|p| {
                p.location.offset < cut as u64
                    && p.location.offset + u64::from(p.location.record_len) > cut as u64
            });
            if let Some(p) = straddling {
                assert_eq!(
                    stats.truncated_at,
                    Some(p.location.offset),
                    "{name} cut at {cut}"
                );
            }
            let at_boundary = full
                .iter()
                .any(|p| p.location.offset + u64::from(p.location.record_len) == cut as u64);
            if at_boundary {
                assert_eq!(stats.truncated_at, None, "{name} cut at {cut}");
            }
            assert_eq!(stats.corrupt_at, None);
            // Streamed reads agree with the mapped one.
            let (got_s, stats_s) = read_streamed(&p, 5);
            assert_eq!(got_s, got);
            assert_eq!(stats_s.truncated_at, stats.truncated_at);
        }
    }
}

#[test]
fn pcapng_cut_inside_interface_block() {
    let bytes = fs::read(corpus("hep3-compressed-sll.pcapng")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.pcapng");
    // SHB is bytes 0..120, the IDB 120..204, the first EPB 204..1040.
    for (cut, n, truncated) in [
        (120, 0, None),
        (150, 0, Some(120)),
        (204, 0, None),
        (1039, 0, Some(204)),
        (1041, 1, Some(1040)),
    ] {
        fs::write(&p, &bytes[..cut]).unwrap();
        let (got, stats) = read_all(&p);
        assert_eq!(
            (got.len(), stats.truncated_at),
            (n, truncated),
            "cut at {cut}"
        );
    }
    fs::write(&p, &bytes[..119]).unwrap();
    assert!(matches!(
        open_capture(&p, 0),
        Err(SourceError::NotACapture { .. })
    ));
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn bzip2(b: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn zstd(b: &[u8]) -> Vec<u8> {
    zstd::encode_all(b, 3).unwrap()
}

#[test]
fn compressed_copies_give_identical_packets_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["sip-rtp-single-call.pcap", "rtp-vlan-two-interfaces.pcapng"] {
        let bytes = fs::read(corpus(name)).unwrap();
        let (want, want_stats) = read_all(&corpus(name));
        // Two gzip members and two zstd frames, split mid-record: both are one stream to readers.
        let mut two_gz = gzip(&bytes[..1001]);
        two_gz.extend_from_slice(&gzip(&bytes[1001..]));
        let mut two_zst = zstd(&bytes[..777]);
        two_zst.extend_from_slice(&zstd(&bytes[777..]));
        let cases = [
            ("a.gz", gzip(&bytes), Compression::Gzip),
            ("b.bz2", bzip2(&bytes), Compression::Bzip2),
            ("c.zst", zstd(&bytes), Compression::Zstd),
            ("disguised.pcap", zstd(&bytes), Compression::Zstd),
            ("two-members.gz", two_gz, Compression::Gzip),
            ("two-frames.zst", two_zst, Compression::Zstd),
        ];
        for (file, data, compression) in cases {
            let p = dir.path().join(file);
            fs::write(&p, data).unwrap();
            let r = open_capture(&p, 7).unwrap();
            assert_eq!(r.compression(), compression, "{file}");
            assert!(!r.is_mapped());
            let (got, stats) = drain(r);
            assert_eq!(got, want, "{name} as {file}");
            assert_eq!(stats.stream_bytes, want_stats.stream_bytes);
            assert_eq!(
                read_streamed(&p, 3).0,
                want,
                "{name} as {file}, tiny buffer"
            );
        }
        // And plain reads of the plain file.
        assert_eq!(read_streamed(&corpus(name), 1).0, want);
        assert_eq!(read_streamed(&corpus(name), 4096).0, want);
    }
}

#[test]
fn cut_compressed_file_ends_like_a_cut_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    let name = "sip-rtp-t38-fax-488-options.pcap";
    let bytes = fs::read(corpus(name)).unwrap();
    let (full, _) = read_all(&corpus(name));
    // bzip2 and zstd decode whole blocks (100 kB at bzip2 level 1, up to 128 kB for zstd), so they
    // are cut inside their last block.
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(&bytes).unwrap();
    let bz = bz.finish().unwrap();
    let bz_cut = bz.len() - 200;
    let zst = zstd(&bytes);
    for (ext, z, cut) in [
        ("gz", gzip(&bytes), None),
        ("bz2", bz, Some(bz_cut)),
        ("zst", zst.clone(), Some(zst.len() - 200)),
    ] {
        let p = dir.path().join(format!("cut.{ext}"));
        fs::write(&p, &z[..cut.unwrap_or(z.len() / 2)]).unwrap();
        let (got, stats) = read_all(&p);
        assert!(
            !got.is_empty() && got.len() < full.len(),
            "{ext}: {}",
            got.len()
        );
        assert_eq!(got[..], full[..got.len()], "{ext}");
        let next = full[got.len()].location.offset;
        // None only if the decoder happened to stop exactly at a record boundary.
        assert!(
            stats.truncated_at.unwrap_or(next) == next,
            "{ext}: {:?}",
            stats.truncated_at
        );
    }
}

#[test]
fn not_a_capture_names_the_file_and_shows_the_first_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("empty.pcap", vec![], "empty file"),
        (
            "notes.pcap",
            b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
            "53 49 50 2f",
        ),
        (
            "short.pcap",
            vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0],
            "d4 c3 b2 a1 02 00 04 00",
        ),
        (
            "text.gz",
            gzip(b"hello, not a capture"),
            "decompressed: 68 65 6c 6c",
        ),
        (
            "shb-only.pcapng",
            vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0],
            "0a 0d 0d 0a",
        ),
    ];
    for (file, data, shown) in cases {
        let p = dir.path().join(file);
        fs::write(&p, data).unwrap();
        for mmap in [false, true, false, true] {
            let err = open_capture_with(&p, 0, OpenOptions { mmap })
                .err()
                .unwrap();
            assert!(
                matches!(err, SourceError::NotACapture { .. }),
                "{file}: {err}"
            );
            let msg = err.to_string();
            assert!(msg.contains(file) && msg.contains(shown), "{msg}");
        }
    }
    let missing = dir.path().join("missing.pcap");
    let err = open_capture(&missing, 0).err().unwrap();
    assert!(matches!(err, SourceError::Open { .. }) && err.to_string().contains("missing.pcap"));
}

#[test]
fn bad_section_header_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.pcapng");
    let mut b = fs::read(corpus("hep3-compressed-sll.pcapng")).unwrap();
    b[8..12].copy_from_slice(b"XXXX");
    fs::write(&p, &b).unwrap();
    let err = open_capture(&p, 0).err().unwrap();
    assert!(
        matches!(err, SourceError::Corrupt { offset: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("bad.pcapng"));
}

#[test]
fn absurd_caplen_stops_the_walk_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let name = "sip-tcp-register-200.pcap";
    let (full, _) = read_all(&corpus(name));
    let mut b = fs::read(corpus(name)).unwrap();
    let at = full[3].location.offset as usize;
    b[at + 8..at + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let p = dir.path().join("absurd.pcap");
    fs::write(&p, &b).unwrap();
    for (got, stats) in [read_all(&p), read_streamed(&p, 64)] {
        assert_eq!(got[..], full[..3]);
        assert_eq!(stats.corrupt_at, Some(at as u64));
        assert_eq!(stats.truncated_at, None);
        assert_eq!(stats.skipped_blocks, 1);
    }
}

#[test]
fn damaged_files_never_panic_and_mapped_equals_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for name in [
        "sip-options-200.pcap",
        "pcapng-five-interfaces-mixed-linktypes.pcapng",
        "negative-http-on-sip-port-tcp.pcapng",
    ] {
        let bytes = fs::read(corpus(name)).unwrap();
        let p = dir.path().join(name);
        for _ in 0..150 {
            let mut b = bytes.clone();
            for _ in 0..1 + rand() % 6 {
                let i = (rand() as usize) % b.len();
                b[i] = rand() as u8;
            }
            b.truncate(b.len() - (rand() as usize % 64));
            fs::write(&p, &b).unwrap();
            let mapped = open_capture(&p, 1).map(drain);
            let streamed = open_with_chunk(&p, 1, OpenOptions { mmap: false }, 13).map(drain);
            match (mapped, streamed) {
                (Ok((a, sa)), Ok((b, sb))) => {
                    assert_eq!(a, b);
                    assert_eq!(
                        (sa.truncated_at, sa.corrupt_at, sa.skipped_blocks),
                        (sb.truncated_at, sb.corrupt_at, sb.skipped_blocks)
                    );
                    assert_eq!(sa.interface_drops, sb.interface_drops);
                    // The mapped short path counts for itself; it must count the same.
                    assert_eq!(
                        (sa.packets, sa.packet_bytes, sa.stream_bytes),
                        (sb.packets, sb.packet_bytes, sb.stream_bytes)
                    );
                    assert_eq!(sa.packets_without_timestamp, sb.packets_without_timestamp);
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("mapped {:?} vs streamed {:?}", a.is_ok(), b.is_ok()),
            }
        }
    }
}

#[test]
fn part_files_are_not_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("live.pcap.part");
    fs::copy(corpus("sip-options-200.pcap"), &p).unwrap();
    let r = open_capture(&p, 7).unwrap();
    assert!(!r.is_mapped());
    assert_eq!(drain(r).0, read_all(&corpus("sip-options-200.pcap")).0);
    assert!(open_capture(&corpus("sip-options-200.pcap"), 0)
        .unwrap()
        .is_mapped());
}

#[test]
fn writer_round_trip_in_both_resolutions() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = read_all(&corpus("hep3-compressed-sll.pcapng"));
    for nano in [true, false] {
        let p = dir.path().join(format!("out-{nano}.pcap"));
        let f = fs::File::create(&p).unwrap();
        let mut w =
            PcapWriter::new(std::io::BufWriter::new(f), linktype::LINUX_SLL, 0, nano).unwrap();
        for pk in &src {
            w.write_packet(pk.ts_ns, &pk.data, pk.orig_len).unwrap();
        }
        assert_eq!(w.packets(), src.len() as u64);
        w.into_inner().unwrap();
        let r = open_capture(&p, 0).unwrap();
        assert_eq!(
            r.format(),
            CaptureFormat::Pcap {
                nanosecond: nano,
                big_endian: false
            }
        );
        assert_eq!(r.snaplen(), Some(262_144));
        let (got, _) = drain(r);
        assert_eq!(got.len(), src.len());
        for (g, s) in got.iter().zip(&src) {
            let want_ts = if nano { s.ts_ns } else { s.ts_ns / 1000 * 1000 };
            assert_eq!(
                (g.ts_ns, &g.data, g.orig_len, g.link_type),
                (want_ts, &s.data, s.orig_len, s.link_type)
            );
        }
        assert_ne!(src[0].ts_ns % 1000, 0, "fixture must have sub-µs digits");
    }
}

#[test]
fn writer_cuts_to_snaplen_and_rejects_times_outside_pcap_range() {
    let mut w = PcapWriter::new(Vec::new(), linktype::RAW, 4, false).unwrap();
    w.write_packet(1_000_000_123_456, b"abcdefgh", 8).unwrap();
    assert!(w.write_packet(-1, b"x", 1).is_err());
    assert!(w
        .write_packet((1i64 << 32) * 1_000_000_000, b"x", 1)
        .is_err());
    let out = w.into_inner().unwrap();
    assert_eq!(out.len(), 24 + 16 + 4);
    assert_eq!(
        &out[24..40],
        &[0xe8, 0x03, 0, 0, 0x7b, 0, 0, 0, 4, 0, 0, 0, 8, 0, 0, 0]
    );
    assert_eq!(&out[40..], b"abcd");
}

#[test]
fn read_record_bytes_returns_the_exact_record() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["sip-options-200.pcap", "rtp-vlan-two-interfaces.pcapng"] {
        let bytes = fs::read(corpus(name)).unwrap();
        let (pkts, _) = read_all(&corpus(name));
        let gz = dir.path().join(format!("{name}.gz"));
        fs::write(&gz, gzip(&bytes)).unwrap();
        for p in pkts.iter().step_by(7) {
            let rec = read_record_bytes(&corpus(name), p.location).unwrap();
            let (o, n) = (p.location.offset as usize, p.location.record_len as usize);
            assert_eq!(rec, &bytes[o..o + n]);
            let start = if name.ends_with(".pcap") { 16 } else { 28 };
            assert_eq!(&rec[start..start + p.data.len()], &p.data[..]);
            assert_eq!(read_record_bytes(&gz, p.location).unwrap(), rec);
        }
        let beyond = PacketLocation {
            file_id: 0,
            offset: bytes.len() as u64 - 4,
            record_len: 100,
        };
        assert!(matches!(
            read_record_bytes(&corpus(name), beyond),
            Err(SourceError::Corrupt { .. })
        ));
        assert!(matches!(
            read_record_bytes(&gz, beyond),
            Err(SourceError::Corrupt { .. })
        ));
    }
}

#[test]
fn pipes_are_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let name = "rtp-vlan-two-interfaces.pcapng";
    let (want, _) = read_all(&corpus(name));
    let bytes = fs::read(corpus(name)).unwrap();
    for (i, data) in [bytes.clone(), gzip(&bytes)].into_iter().enumerate() {
        let fifo = dir.path().join(format!("fifo{i}"));
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(ok.success());
        let f2 = fifo.clone();
        let writer = std::thread::spawn(move || fs::write(f2, data).unwrap());
        let r = open_capture(&fifo, 7).unwrap();
        assert!(!r.is_mapped());
        assert_eq!(drain(r).0, want);
        writer.join().unwrap();
    }
}
