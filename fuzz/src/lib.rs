//! Fuzz targets for sipidx: each takes arbitrary bytes and drives one stage the way the CLI does.
//! A target must never panic, whatever the input; `main.rs` runs them under a mutation driver.

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
];

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

/// The whole pipeline below the index for a capture: link, IP, defragmentation, TCP reassembly,
/// HEP, dedup, then the SIP, SDP, X-RTP-Stat, RTP and RTCP parsers on every datagram.
pub fn decode(data: &[u8], scratch: &Path) {
    let p = write_tmp(data, scratch);
    let Ok(mut r) = open_capture_with(&p, 0, OpenOptions { mmap: true }) else {
        return;
    };
    // small limits so that eviction and give-up paths are reached by small inputs
    let mut dec = Decoder::new(DecodeConfig {
        max_fragment_bytes: 4096,
        max_tcp_streams: 4,
        max_tcp_buffer: 4096,
        ..DecodeConfig::default()
    });
    let mut dedup = Deduplicator::new(DedupConfig {
        span: true,
        max_entries: 8,
        ..DedupConfig::default()
    });
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
