//! Fuzz targets for sipidx: each takes arbitrary bytes and drives one stage the way the CLI does.
//! A target must never panic, whatever the input; `main.rs` runs them under a mutation driver and
//! `fuzz_targets/*.rs` under libFuzzer (`cargo fuzz run NAME`, scripts/cargo-fuzz.sh).

use std::io::Write;
use std::path::Path;

use sipidx::decode::{DecodeConfig, Decoder, DedupConfig, Deduplicator};
use sipidx::rtp::{rtcp, RtpHeader};
use sipidx::sip::{self, RtpStat};
use sipidx::source::{open_capture_with, OpenOptions};

/// A named target and the testdata files whose bytes seed it.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8], &Path),
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "capture",
        run: capture,
    },
    Target {
        name: "decode",
        run: decode,
    },
    Target {
        name: "sip",
        run: sip_parse,
    },
    Target {
        name: "sdp",
        run: sdp,
    },
    Target {
        name: "rtp",
        run: rtp,
    },
    Target {
        name: "rtp_stat",
        run: rtp_stat,
    },
    Target {
        name: "packets",
        run: packets,
    },
    Target {
        name: "vq",
        run: vq,
    },
];

/// Runs `f` with this process's scratch directory (for the targets that need a file), made once
/// under `$TMPDIR` as `sipidx-fuzz-<pid>`: libFuzzer leaves by `exit`, so nothing would remove a
/// `TempDir`; scripts/cargo-fuzz.sh points `TMPDIR` at a directory it deletes afterwards.
pub fn with_scratch<T>(f: impl FnOnce(&Path) -> T) -> T {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("sipidx-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch dir");
        d
    });
    f(dir)
}

fn write_tmp(data: &[u8], scratch: &Path) -> std::path::PathBuf {
    let p = scratch.join("input.pcap");
    let mut f = std::fs::File::create(&p).expect("scratch file");
    f.write_all(data).expect("scratch write");
    p
}

/// Capture readers: the bytes as a file (pcap, pcapng, or gzip/bzip2/zstd of either), both
/// through the memory map and through the streaming reader; every packet touched.
pub fn capture(data: &[u8], scratch: &Path) {
    let p = write_tmp(data, scratch);
    for mmap in [true, false] {
        let Ok(mut r) = open_capture_with(&p, 0, OpenOptions { mmap }) else {
            continue;
        };
        let mut n = 0u64;
        while let Ok(Some(pkt)) = r.next_packet() {
            n = n.wrapping_add(pkt.data.len() as u64 + u64::from(pkt.orig_len));
        }
        std::hint::black_box((n, r.stats()));
    }
}

/// A decoder and dedup engine with small limits, so that eviction and give-up paths are reached
/// by small inputs.
fn small_decoder() -> (Decoder, Deduplicator) {
    let dec = Decoder::new(DecodeConfig {
        max_fragment_bytes: 4096,
        max_tcp_streams: 4,
        max_tcp_buffer: 4096,
        ..DecodeConfig::new(sipidx::sip::stream_start)
    });
    let dedup = Deduplicator::new(DedupConfig {
        span: true,
        max_entries: 8,
        ..DedupConfig::default()
    });
    (dec, dedup)
}

/// The whole pipeline below the index for a capture: link, IP, defragmentation, TCP reassembly,
/// HEP, dedup, then the SIP, SDP, X-RTP-Stat, RTP and RTCP parsers on every datagram.
pub fn decode(data: &[u8], scratch: &Path) {
    let p = write_tmp(data, scratch);
    let Ok(mut r) = open_capture_with(&p, 0, OpenOptions { mmap: true }) else {
        return;
    };
    let (mut dec, mut dedup) = small_decoder();
    let mut sink = |dg: &sipidx::decode::Datagram<'_>| {
        std::hint::black_box(dedup.push(dg, dg.ts_ns));
        payload(dg.payload);
    };
    while let Ok(Some(pkt)) = r.next_packet() {
        dec.decode(&pkt, &mut sink);
    }
    dec.finish(&mut sink);
    std::hint::black_box(dec.stats());
}

/// The decode layers without a file: the input is a series of packets, each a link type byte
/// (see `LINK_TYPES`), a 16-bit big-endian length and that many bytes, fed to one `Decoder` with
/// small limits (link, VLAN, tunnels, IPv4/IPv6 and defragmentation, UDP, TCP reassembly, HEP).
/// Coverage guidance works best here: no file I/O between the bytes and the parsers.
pub fn packets(data: &[u8], _: &Path) {
    use sipidx::source::{linktype, Packet, PacketLocation};
    const LINK_TYPES: [u32; 8] = [
        linktype::ETHERNET,
        linktype::RAW,
        linktype::IPV4,
        linktype::IPV6,
        linktype::LINUX_SLL,
        linktype::LINUX_SLL2,
        linktype::NULL,
        linktype::LOOP,
    ];
    let (mut dec, mut dedup) = small_decoder();
    let mut sink = |dg: &sipidx::decode::Datagram<'_>| {
        std::hint::black_box(dedup.push(dg, dg.ts_ns));
        payload(dg.payload);
    };
    let mut rest = data;
    let mut ts_ns = 1_700_000_000_000_000_000i64;
    let mut offset = 0u64;
    while let [kind, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        // the link type byte's high bits move the clock, so timeouts and windows are reached
        ts_ns = ts_ns.saturating_add(i64::from(*kind >> 3) * 250_000_000);
        let pkt = Packet {
            ts_ns,
            link_type: LINK_TYPES[usize::from(*kind & 7)],
            interface_id: 0,
            data: bytes,
            orig_len: bytes.len() as u32,
            location: PacketLocation {
                file_id: 0,
                offset,
                record_len: bytes.len() as u32 + 16,
            },
        };
        dec.decode(&pkt, &mut sink);
        offset += u64::from(pkt.location.record_len);
        rest = next;
    }
    dec.finish(&mut sink);
    std::hint::black_box(dec.stats());
}

/// RFC 6035 vq-rtcpxr bodies, every accessor of both metric sections.
pub fn vq(data: &[u8], _: &Path) {
    let Some(r) = sipidx::rtp::vq::parse(data) else {
        return;
    };
    std::hint::black_box((
        r.kind,
        &r.call_id,
        &r.local_addr,
        &r.remote_addr,
        r.bad_lines,
    ));
    for m in [&r.local, &r.remote].into_iter().flatten() {
        std::hint::black_box((
            m.network_loss_pct(),
            m.discard_pct(),
            m.jitter_ms(),
            m.mean_abs_jitter_ms(),
            m.round_trip_ms(),
            m.mos_lq(),
            m.mos_cq(),
            m.r_factor(),
            m.codec(),
            m.payload_type(),
        ));
    }
}

fn payload(b: &[u8]) {
    sip_parse(b, Path::new(""));
    rtp(b, Path::new(""));
}

pub fn sip_parse(data: &[u8], _: &Path) {
    std::hint::black_box(sip::looks_like_sip(data));
    let Ok(m) = sip::parse(data) else { return };
    std::hint::black_box((
        m.method(),
        m.status(),
        m.request_uri(),
        m.from,
        m.to,
        m.cseq,
    ));
    std::hint::black_box(m.headers().count());
    std::hint::black_box(m.vias().count());
    for s in m.rtp_stats() {
        std::hint::black_box((s.packets_sent(), s.packets_received(), s.fields().count()));
    }
    if let Some(Ok(sd)) = m.sdp() {
        walk_sdp(&sd);
    }
}

fn walk_sdp(sd: &sip::SessionDescription<'_>) {
    std::hint::black_box(sd.connection.as_ref().map(|c| c.ip()));
    for md in &sd.media {
        std::hint::black_box(md.payload_types().count());
        std::hint::black_box(md.rtpmaps().count());
        std::hint::black_box(md.direction());
        std::hint::black_box(md.attributes().count());
    }
}

pub fn sdp(data: &[u8], _: &Path) {
    if let Ok(sd) = sip::sdp::parse(data) {
        walk_sdp(&sd);
    }
}

/// RTP header, then the same bytes as an RTCP compound (with XR blocks) walked to its end.
pub fn rtp(data: &[u8], _: &Path) {
    if let Ok(h) = RtpHeader::parse(data) {
        std::hint::black_box((
            h.payload_type(),
            h.sequence_number(),
            h.timestamp(),
            h.csrc_count(),
        ));
    }
    std::hint::black_box(sipidx::rtp::detect::classify_heuristic(data));
    std::hint::black_box(sipidx::rtp::detect::looks_like_rtcp(data));
    for p in rtcp::packets(data).take(64) {
        let Ok(p) = p else { continue };
        match p {
            rtcp::RtcpPacket::SenderReport(sr) => {
                for b in sr.report_blocks() {
                    std::hint::black_box(rtcp::round_trip_units(sr.ntp_middle(), &b));
                }
            }
            rtcp::RtcpPacket::ReceiverReport(rr) => {
                std::hint::black_box(rr.report_blocks().count());
            }
            rtcp::RtcpPacket::SourceDescription(s) => {
                std::hint::black_box((s.items().count(), s.cname()));
            }
            rtcp::RtcpPacket::Goodbye(b) => {
                std::hint::black_box((b.ssrcs().count(), b.reason()));
            }
            rtcp::RtcpPacket::ExtendedReport(xr) => {
                for b in xr.blocks().take(64) {
                    std::hint::black_box(format!("{b:?}").len());
                }
            }
            other => {
                std::hint::black_box(format!("{other:?}").len());
            }
        }
    }
}

/// X-RTP-Stat family: first line is the header name, the rest its value.
pub fn rtp_stat(data: &[u8], _: &Path) {
    let (name, value) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"X-RTP-Stat"[..], data),
    };
    if let Some(s) = RtpStat::parse(name, value) {
        std::hint::black_box((s.packets_sent(), s.packets_received(), s.separator()));
        for (k, v) in s.fields() {
            std::hint::black_box((k.len(), v.len()));
        }
    }
}
