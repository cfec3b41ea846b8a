//! End-to-end decoder tests: byte fixtures per layer, then the public corpus.
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use super::super::{gre, hep, ipv4, ipv6, tcp, udp};
use super::*;
use crate::sip::{stream_start, Start};
use crate::source::{linktype, open_capture, LinkType, Packet, PacketLocation};

/// HEP version, capture id, node name, payload type.
type HepSummary = (u8, Option<u32>, Option<Vec<u8>>, Option<u8>);

#[derive(Debug, Clone, PartialEq)]
struct Out {
    ts_ns: i64,
    src: IpAddr,
    dst: IpAddr,
    ports: (u16, u16),
    transport: Transport,
    encap: Encap,
    vlan: Option<u16>,
    payload: Vec<u8>,
    locations: Vec<u64>,
    hep: Option<HepSummary>,
}

fn own(d: &Datagram<'_>) -> Out {
    Out {
        ts_ns: d.ts_ns,
        src: d.src,
        dst: d.dst,
        ports: (d.src_port, d.dst_port),
        transport: d.transport,
        encap: d.encap,
        vlan: d.vlan,
        payload: d.payload.to_vec(),
        locations: d.locations.iter().map(|l| l.offset).collect(),
        hep: d.hep.map(|h| {
            (
                h.version,
                h.capture_id,
                h.node_name.map(<[u8]>::to_vec),
                h.payload_type,
            )
        }),
    }
}

/// Decodes `frames` (one per packet, packet i at ts i and offset i) with `config`.
fn run_with(config: DecodeConfig, link: LinkType, frames: &[Vec<u8>]) -> (Vec<Out>, DecodeStats) {
    let mut d = Decoder::new(config);
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let p = Packet {
            ts_ns: i as i64,
            link_type: link,
            interface_id: 0,
            data: f,
            orig_len: f.len() as u32,
            location: PacketLocation {
                file_id: 0,
                offset: i as u64,
                record_len: 0,
            },
        };
        d.decode(&p, |dg| out.push(own(dg)));
    }
    d.finish(|dg| out.push(own(dg)));
    (out, d.stats().clone())
}

fn run(link: LinkType, frames: &[Vec<u8>]) -> (Vec<Out>, DecodeStats) {
    run_with(DecodeConfig::new(crate::sip::stream_start), link, frames)
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];

fn udp4(payload: &[u8]) -> Vec<u8> {
    ipv4::build(A, B, 17, 1, 0, &udp::build(5060, 5080, payload))
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

#[test]
fn plain_udp_over_ethernet_with_padding() {
    let mut f = eth(0x0800, &udp4(b"rtp"));
    f.extend_from_slice(&[0; 20]);
    let (out, st) = run(linktype::ETHERNET, &[f]);
    assert_eq!(out.len(), 1);
    let o = &out[0];
    assert_eq!((o.src, o.dst, o.ports), (v4(A), v4(B), (5060, 5080)));
    assert_eq!(
        (o.payload.as_slice(), o.transport, o.encap, o.vlan),
        (&b"rtp"[..], Transport::Udp, Encap::default(), None)
    );
    assert_eq!(o.locations, vec![0]);
    assert_eq!((st.packets, st.datagrams), (1, 1));
}

#[test]
fn vlan_and_qinq() {
    let mut tagged = vec![0x00, 0x64, 0x08, 0x00];
    tagged.extend_from_slice(&udp4(b"x"));
    let mut qinq = vec![0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00];
    qinq.extend_from_slice(&udp4(b"y"));
    let (out, _) = run(
        linktype::ETHERNET,
        &[eth(0x8100, &tagged), eth(0x88a8, &qinq), eth(0x9100, &qinq)],
    );
    assert_eq!(
        out.iter().map(|o| o.vlan).collect::<Vec<_>>(),
        vec![Some(100), Some(20), Some(20)]
    );
    assert!(out.iter().all(|o| o.encap == Encap::VLAN));
}

#[test]
fn cooked_null_loop_and_raw_links() {
    let ip = udp4(b"p");
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    sll2.extend_from_slice(&ip);
    let null_le = [&[2u8, 0, 0, 0][..], &ip].concat();
    let null_be = [&[0u8, 0, 0, 2][..], &ip].concat();
    let v6 = ipv6::build(1, 2, 17, &udp::build(1, 2, b"six"));
    let loop6 = [&30u32.to_be_bytes()[..], &v6].concat();
    for (link, frame, payload) in [
        (linktype::LINUX_SLL, sll, &b"p"[..]),
        (linktype::LINUX_SLL2, sll2, b"p"),
        (linktype::NULL, null_le, b"p"),
        (linktype::NULL, null_be, b"p"),
        (linktype::LOOP, loop6, b"six"),
        (linktype::RAW, ip.clone(), b"p"),
        (linktype::RAW, v6.clone(), b"six"),
        (linktype::IPV4, ip.clone(), b"p"),
        (linktype::IPV6, v6.clone(), b"six"),
    ] {
        let (out, _) = run(link, &[frame]);
        assert_eq!(out.len(), 1, "link {link}");
        assert_eq!(out[0].payload, payload, "link {link}");
    }
    let (out, st) = run(
        linktype::ETHERNET,
        &[eth(0x0806, &[0; 28]), eth(0x0026, &[0x42; 30]), vec![1, 2]],
    );
    assert!(out.is_empty());
    assert_eq!((st.non_ip, st.malformed_link), (2, 1));
    let (_, st) = run(999, &[ip]);
    assert_eq!(st.unsupported_link, 1);
}

#[test]
fn ip_in_ip_both_ways() {
    let inner4 = udp4(b"in4");
    let inner6 = ipv6::build(7, 8, 17, &udp::build(1, 2, b"in6"));
    let frames = vec![
        eth(
            0x0800,
            &ipv4::build([1, 1, 1, 1], [2, 2, 2, 2], 4, 9, 0, &inner4),
        ),
        eth(
            0x0800,
            &ipv4::build([1, 1, 1, 1], [2, 2, 2, 2], 41, 9, 0, &inner6),
        ),
        eth(0x86dd, &ipv6::build(3, 4, 4, &inner4)),
        eth(0x86dd, &ipv6::build(3, 4, 41, &inner6)),
    ];
    let (out, _) = run(linktype::ETHERNET, &frames);
    assert_eq!(out.len(), 4);
    assert!(out.iter().all(|o| o.encap == Encap::IPIP));
    assert_eq!(out[0].src, v4(A));
    assert_eq!(out[1].payload, b"in6");
    assert!(out[3].src.is_ipv6());
}

#[test]
fn gre_with_key_and_transparent_ethernet() {
    let g = gre::build(0x0800, true, Some(0xfeed), Some(1), &udp4(b"gre"));
    let mut vl = vec![0x00, 0x07, 0x08, 0x00];
    vl.extend_from_slice(&udp4(b"teb"));
    let teb = gre::build(0x6558, false, Some(1), None, &eth(0x8100, &vl));
    let frames = vec![
        eth(
            0x0800,
            &ipv4::build([1, 1, 1, 1], [2, 2, 2, 2], 47, 1, 0, &g),
        ),
        eth(
            0x0800,
            &ipv4::build([1, 1, 1, 1], [2, 2, 2, 2], 47, 1, 0, &teb),
        ),
    ];
    let (out, _) = run(linktype::ETHERNET, &frames);
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].encap, out[0].src, out[0].payload.as_slice()),
        (Encap::GRE, v4(A), &b"gre"[..])
    );
    let mut e = Encap::GRE;
    e.insert(Encap::VLAN);
    assert_eq!((out[1].encap, out[1].vlan), (e, Some(7)));
}

#[test]
fn erspan_types_one_two_three() {
    let inner = eth(0x0800, &udp4(b"mirrored"));
    let ii = [&[0x10, 0x0a, 0x00, 0x01, 0, 0, 0, 0][..], &inner].concat();
    let iii = [
        &[0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1][..],
        &[0; 8],
        &inner,
    ]
    .concat();
    let greis = [
        gre::build(0x88be, false, None, None, &inner),
        gre::build(0x88be, false, None, Some(5), &ii),
        gre::build(0x22eb, false, None, Some(5), &iii),
    ];
    let frames: Vec<Vec<u8>> = greis
        .iter()
        .map(|g| {
            eth(
                0x0800,
                &ipv4::build([1, 1, 1, 1], [2, 2, 2, 2], 47, 1, 0, g),
            )
        })
        .collect();
    let (out, _) = run(linktype::ETHERNET, &frames);
    assert_eq!(out.len(), 3);
    let mut e = Encap::GRE;
    e.insert(Encap::ERSPAN);
    for o in &out {
        assert_eq!(
            (o.encap, o.payload.as_slice(), o.src),
            (e, &b"mirrored"[..], v4(A))
        );
    }
    assert_eq!(e.name().as_deref(), Some("gre+erspan"));
}

#[test]
fn nested_tunnels_are_bounded() {
    let mut p = udp4(b"deep");
    for _ in 0..20 {
        p = ipv4::build([1, 1, 1, 1], [2, 2, 2, 2], 4, 1, 0, &p);
    }
    let (out, st) = run(linktype::RAW, &[p]);
    assert!(out.is_empty());
    assert_eq!(st.unsupported_tunnel, 1);
}

#[test]
fn ipv6_extension_headers_to_udp_and_esp_stops() {
    let mut chain = vec![60, 0, 1, 4, 0, 0, 0, 0];
    chain.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
    chain.extend_from_slice(&udp::build(5060, 5060, b"ext"));
    let (out, st) = run(
        linktype::IPV6,
        &[
            ipv6::build(1, 2, 0, &chain),
            ipv6::build(1, 2, 50, b"esp..."),
        ],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, b"ext");
    assert_eq!(st.other_ip_proto, 1);
}

/// IPv4 fragments of one UDP datagram carrying `msg`, 8-byte aligned pieces of `size`.
fn v4_fragments(msg: &[u8], size: usize, id: u16) -> Vec<Vec<u8>> {
    let u = udp::build(5060, 5060, msg);
    let chunks: Vec<&[u8]> = u.chunks(size).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let more = if i + 1 < chunks.len() { 0x2000 } else { 0 };
            ipv4::build(A, B, 17, id, more | (i * size / 8) as u16, c)
        })
        .collect()
}

#[test]
fn ipv4_fragments_in_order_out_of_order_and_overlapping() {
    let msg = b"INVITE sip:bob@example.com SIP/2.0\r\nContent-Length: 0\r\n\r\n".repeat(3);
    let frags = v4_fragments(&msg, 64, 7);
    assert!(frags.len() >= 3);
    let (out, st) = run(linktype::RAW, &frags);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, msg);
    let n = frags.len() as u64;
    assert_eq!(out[0].locations, (0..n).collect::<Vec<_>>());
    assert_eq!(out[0].ts_ns, n as i64 - 1);
    assert_eq!((st.fragments, st.fragments_reassembled), (n, 1));

    let mut rev = frags.clone();
    rev.reverse();
    let (out, _) = run(linktype::RAW, &rev);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, msg);

    // a duplicate of the middle fragment carrying different bytes: the first copy wins
    let mut forged = frags[1].clone();
    let l = forged.len();
    forged[20..l].fill(b'Z');
    let mut dup = frags.clone();
    dup.insert(2, forged);
    let (out, _) = run(linktype::RAW, &dup);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, msg);
    assert_eq!(out[0].locations.len(), frags.len() + 1);
}

#[test]
fn ipv6_fragments_over_sll_and_timeout() {
    let msg = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n".repeat(4);
    let u = udp::build(5060, 5060, &msg);
    let (a, b) = u.split_at(96);
    let sll = |ip: Vec<u8>| {
        [
            &[0u8, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x86, 0xdd][..],
            &ip,
        ]
        .concat()
    };
    let f1 = sll(ipv6::build(
        1,
        2,
        44,
        &ipv6::fragment_header(17, 0, true, 99, a),
    ));
    let f2 = sll(ipv6::build(
        1,
        2,
        44,
        &ipv6::fragment_header(17, 96, false, 99, b),
    ));
    let (out, st) = run(linktype::LINUX_SLL, &[f2.clone(), f1.clone()]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, msg);
    assert_eq!(out[0].locations, vec![0, 1]);
    assert_eq!(st.fragments_reassembled, 1);

    // the second half arrives after the timeout: nothing, and both pieces counted as dropped
    let cfg = DecodeConfig {
        fragment_timeout_ns: 0,
        ..DecodeConfig::new(crate::sip::stream_start)
    };
    let (out, st) = run_with(
        cfg,
        linktype::LINUX_SLL,
        &[f1, sll(ipv6::build(1, 2, 17, &udp::build(1, 1, b"x"))), f2],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(st.fragments_dropped, 2);
}

#[test]
fn fragment_flood_stays_bounded() {
    let cfg = DecodeConfig {
        max_fragment_bytes: 256 * 1024,
        ..DecodeConfig::new(crate::sip::stream_start)
    };
    let frames: Vec<Vec<u8>> = (0..5000u16)
        .map(|id| ipv4::build(A, B, 17, id, 0x2000, &[0u8; 1400]))
        .collect();
    let (out, st) = run_with(cfg, linktype::RAW, &frames);
    assert!(out.is_empty());
    assert_eq!(st.fragments, 5000);
    assert!(st.fragments_dropped >= 4800, "{st:?}");
}

fn tcp4(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    ipv4::build(A, B, 6, 1, 0, &tcp::build(40000, 5060, seq, flags, payload))
}

#[test]
fn tcp_messages_framed_across_and_within_segments() {
    let invite = b"INVITE sip:b@x SIP/2.0\r\nContent-Length: 3\r\n\r\nabc".to_vec();
    let bye = b"BYE sip:b@x SIP/2.0\r\nContent-Length: 0\r\n\r\n".to_vec();
    let both = [&invite[20..], &b"\r\n"[..], &bye].concat();
    let frames = vec![
        tcp4(1000, 0x02, b""),
        tcp4(1001, 0, &invite[..20]),
        tcp4(1021, 0, &both),
        // HTTP in another connection is ignored
        ipv4::build(
            A,
            B,
            6,
            1,
            0,
            &tcp::build(40001, 5060, 1, 0, b"GET / HTTP/1.1\r\n\r\n"),
        ),
    ];
    let (out, st) = run(linktype::RAW, &frames);
    assert_eq!(out.len(), 2);
    assert_eq!(
        (
            out[0].payload.clone(),
            out[0].locations.clone(),
            out[0].ts_ns
        ),
        (invite, vec![1, 2], 2)
    );
    assert_eq!(
        (out[1].payload.clone(), out[1].locations.clone()),
        (bye, vec![2])
    );
    assert!(out
        .iter()
        .all(|o| o.transport == Transport::Tcp && o.ports == (40000, 5060)));
    assert_eq!((st.tcp_segments, st.tcp_messages, st.datagrams), (4, 2, 2));
}

#[test]
fn same_tcp_capture_given_twice_yields_its_messages_twice() {
    // `sipidx grep f.pcap f.pcap` runs one decoder over both files: the second file starts back in
    // time, so it is not the first one's continuation and its segments are not retransmissions.
    let bye = b"BYE sip:b@x SIP/2.0\r\nContent-Length: 0\r\n\r\n".to_vec();
    let frames = [
        tcp4(1000, 0x02, b""),
        tcp4(1001, 0, &bye[..10]),
        tcp4(1011, 0, &bye[10..]),
    ];
    let mut d = Decoder::new(DecodeConfig::new(crate::sip::stream_start));
    let mut out = Vec::new();
    for file_id in 0..2 {
        for (i, f) in frames.iter().enumerate() {
            let p = Packet {
                ts_ns: i as i64,
                link_type: linktype::RAW,
                interface_id: 0,
                data: f,
                orig_len: f.len() as u32,
                location: PacketLocation {
                    file_id,
                    offset: i as u64,
                    record_len: 0,
                },
            };
            d.decode(&p, |dg| out.push(own(dg)));
        }
    }
    d.finish(|dg| out.push(own(dg)));
    assert_eq!(out.len(), 2, "{:?}", d.stats());
    assert!(out
        .iter()
        .all(|o| o.payload == bye && o.locations == [1, 2]));
    assert_eq!(d.stats().tcp_retransmissions, 0);
}

fn hep_sip() -> Vec<u8> {
    hep::build_v3(
        [192, 168, 1, 1],
        [192, 168, 1, 2],
        (5060, 5062),
        17,
        &[
            (0x0009, &1_700_000_000u32.to_be_bytes()),
            (0x000a, &5u32.to_be_bytes()),
            (0x000b, &[1]),
            (0x000c, &77u32.to_be_bytes()),
            (0x0013, b"edge"),
            (0x000f, b"OPTIONS sip:x SIP/2.0\r\n\r\n"),
        ],
    )
}

#[test]
fn hep3_over_udp_and_several_in_one_tcp_segment() {
    let h = hep_sip();
    let (out, st) = run(
        linktype::RAW,
        &[ipv4::build(A, B, 17, 1, 0, &udp::build(40000, 9060, &h))],
    );
    assert_eq!(out.len(), 1);
    let o = &out[0];
    assert_eq!(
        (o.src, o.ports, o.ts_ns),
        (
            v4([192, 168, 1, 1]),
            (5060, 5062),
            1_700_000_000_000_005_000
        )
    );
    assert_eq!(o.encap, Encap::HEP);
    assert_eq!(o.hep, Some((3, Some(77), Some(b"edge".to_vec()), Some(1))));
    assert_eq!(o.payload, b"OPTIONS sip:x SIP/2.0\r\n\r\n");
    assert_eq!(st.hep_packets, 1);

    let three = [h.clone(), h.clone(), h].concat();
    let (out, st) = run(linktype::RAW, &[tcp4(1, 0, &three)]);
    assert_eq!(out.len(), 3);
    assert_eq!((st.hep_packets, st.malformed_hep), (3, 0));

    // with HEP decoding off the datagram is plain UDP
    let cfg = DecodeConfig {
        hep: false,
        ..DecodeConfig::new(crate::sip::stream_start)
    };
    let (out, _) = run_with(
        cfg,
        linktype::RAW,
        &[ipv4::build(
            A,
            B,
            17,
            1,
            0,
            &udp::build(1, 9060, &hep_sip()),
        )],
    );
    assert_eq!(
        (out.len(), out[0].ports, out[0].encap),
        (1, (1, 9060), Encap::default())
    );
}

#[test]
fn hep2_and_compressed_hep3_and_malformed_hep() {
    let mut v2 = vec![2, 16, 2, 6, 0x13, 0xc4, 0x13, 0xc4, 1, 2, 3, 4, 5, 6, 7, 8];
    v2.extend_from_slice(&10u32.to_le_bytes());
    v2.extend_from_slice(&20u32.to_le_bytes());
    v2.extend_from_slice(&[9, 0, 0, 0]);
    v2.extend_from_slice(b"SIP/2.0 100 Trying\r\n\r\n");
    let body = b"REGISTER sip:x SIP/2.0\r\n\r\n";
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut z, body).unwrap();
    let comp = hep::build_v3(
        [1, 1, 1, 1],
        [2, 2, 2, 2],
        (1, 2),
        17,
        &[(0x0010, &z.finish().unwrap())],
    );
    let mut broken = hep_sip();
    broken.truncate(30);
    let frames: Vec<Vec<u8>> = [v2, comp, broken]
        .iter()
        .map(|p| ipv4::build(A, B, 17, 1, 0, &udp::build(40000, 9060, p)))
        .collect();
    let (out, st) = run(linktype::RAW, &frames);
    assert_eq!(out.len(), 3);
    assert_eq!(
        (
            out[0].transport,
            out[0].ts_ns,
            out[0].hep.as_ref().map(|h| h.0)
        ),
        (Transport::Tcp, 10_000_020_000, Some(2))
    );
    assert_eq!(out[0].payload, b"SIP/2.0 100 Trying\r\n\r\n");
    assert_eq!(
        (out[1].payload.as_slice(), out[1].encap),
        (&body[..], Encap::HEP)
    );
    // the malformed one is counted and handed up as the UDP datagram it is
    assert_eq!((out[2].ports, out[2].hep.is_none()), ((40000, 9060), true));
    assert_eq!((st.hep_packets, st.malformed_hep), (2, 1));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let seeds = [
        eth(0x0800, &udp4(b"seed")),
        eth(
            0x0800,
            &tcp4(1, 0, b"INVITE sip:a SIP/2.0\r\nl: 10\r\n\r\n"),
        ),
        eth(
            0x0800,
            &ipv4::build(
                A,
                B,
                47,
                1,
                0,
                &gre::build(0x22eb, false, None, Some(1), &[0; 40]),
            ),
        ),
        eth(
            0x86dd,
            &ipv6::build(1, 2, 44, &ipv6::fragment_header(17, 0, true, 1, &[0; 32])),
        ),
        eth(
            0x0800,
            &ipv4::build(A, B, 17, 1, 0, &udp::build(1, 9060, &hep_sip())),
        ),
    ];
    let mut d = Decoder::new(DecodeConfig::new(crate::sip::stream_start));
    for round in 0..20_000u32 {
        let mut f = seeds[round as usize % seeds.len()].clone();
        for _ in 0..(next() % 6) {
            let i = next() as usize % f.len();
            f[i] = next() as u8;
        }
        f.truncate(next() as usize % (f.len() + 1));
        for link in [
            linktype::ETHERNET,
            linktype::RAW,
            linktype::NULL,
            linktype::LINUX_SLL2,
        ] {
            let p = Packet {
                ts_ns: i64::from(round),
                link_type: link,
                interface_id: 0,
                data: &f,
                orig_len: 0,
                location: PacketLocation::default(),
            };
            d.decode(&p, |_| {});
        }
    }
    d.finish(|_| {});
    assert_eq!(d.stats().packets, 80_000);
}

// ---- the public corpus ------------------------------------------------------------------------

struct Corpus {
    sip: usize,
    hep: usize,
    datagrams: Vec<Out>,
    stats: DecodeStats,
}

fn corpus(name: &str) -> Corpus {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/corpus")
        .join(name);
    let mut d = Decoder::new(DecodeConfig::new(crate::sip::stream_start));
    let mut datagrams = Vec::new();
    let mut reader = open_capture(&path, 0).unwrap();
    while let Some(p) = reader.next_packet().unwrap() {
        d.decode(&p, |dg| datagrams.push(own(dg)));
    }
    d.finish(|dg| datagrams.push(own(dg)));
    let is_sip = |o: &&Out| stream_start(&o.payload) == Start::Yes;
    Corpus {
        sip: datagrams
            .iter()
            .filter(|o| o.hep.is_none())
            .filter(is_sip)
            .count(),
        hep: datagrams
            .iter()
            .filter(|o| o.hep.is_some())
            .filter(is_sip)
            .count(),
        datagrams,
        stats: d.stats().clone(),
    }
}

/// "Number of SIP messages" from the tshark oracle.
fn tshark_sip_count(name: &str) -> usize {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/corpus/expected")
        .join(format!("{name}.sip_stat.txt"));
    let text = std::fs::read_to_string(path).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Number of SIP messages:"))
        .unwrap();
    line.rsplit(' ').next().unwrap().trim().parse().unwrap()
}

#[test]
fn corpus_sip_counts_match_tshark() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    names.sort();
    assert!(names.len() >= 30);
    let mut wrong = Vec::new();
    for n in &names {
        let c = corpus(n);
        let want = tshark_sip_count(n);
        if c.sip != want {
            wrong.push(format!(
                "{n}: decoded {} SIP, tshark {want}; {:?}",
                c.sip, c.stats
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn corpus_tunnels_fragments_and_tcp() {
    let c = corpus("sip-tcp-over-ipip-tunnel.pcap");
    assert_eq!(c.sip, 4);
    // frames 2 and 3 are tunnelled, 1 and 4 are not (tshark -V shows two IPv4 headers in 2 and 3)
    let ipip: Vec<bool> = c
        .datagrams
        .iter()
        .map(|o| o.encap.contains(Encap::IPIP))
        .collect();
    assert_eq!(ipip, vec![false, true, true, false]);
    assert!(c.datagrams.iter().all(|o| o.transport == Transport::Tcp));

    let c = corpus("sip-udp-ipv4-fragmented-call.pcap");
    // only the first fragment of the INVITE was captured: held, then dropped at the end, never
    // emitted half (tshark too shows 5 SIP messages and a lone fragment)
    let s = &c.stats;
    assert_eq!(
        (s.fragments, s.fragments_reassembled, s.fragments_dropped),
        (1, 0, 1)
    );
    assert_eq!(c.sip, 5);

    let c = corpus("sip-ipv6-fragmented-sll-prack-update.pcap");
    assert!(c.stats.fragments_reassembled > 0);
    assert_eq!(c.stats.fragments_dropped, 0);

    let c = corpus("sip-tcp-large-body-loopback.pcap");
    assert_eq!(c.sip, 2);
    assert!(c
        .datagrams
        .iter()
        .any(|o| o.locations.len() == 5 && o.payload.len() == 65_793));

    let c = corpus("sip-long-request-response-paths-rawip4.pcap");
    assert!(c.datagrams.iter().all(|o| o.payload.len() > 9_000));

    let c = corpus("rtp-vlan-two-interfaces.pcapng");
    assert!(c
        .datagrams
        .iter()
        .any(|o| o.vlan.is_some() && o.encap.contains(Encap::VLAN)));

    let c = corpus("negative-http-on-sip-port-tcp.pcapng");
    assert!(c.datagrams.is_empty());
}

#[test]
fn corpus_hep_files() {
    let c = corpus("hep-sip-udp9060.pcap");
    // 6 SIP messages, one log line (payload type 100) and one RTCP report as JSON (type 5)
    assert_eq!(
        (c.hep, c.sip, c.stats.hep_packets, c.stats.malformed_hep),
        (6, 0, 8, 0)
    );
    assert!(c
        .datagrams
        .iter()
        .all(|o| o.encap.contains(Encap::HEP) && o.ports.1 != 9060));
    let types: Vec<Option<u8>> = c
        .datagrams
        .iter()
        .map(|o| o.hep.as_ref().and_then(|h| h.3))
        .collect();
    assert_eq!(types, [1, 1, 1, 1, 100, 1, 1, 5].map(Some).to_vec());

    let c = corpus("hep3-compressed-sll.pcapng");
    assert_eq!(
        (c.hep, c.stats.hep_packets, c.stats.malformed_hep),
        (21, 21, 0)
    );
    let first = &c.datagrams[0];
    assert_eq!(
        (first.ports, first.transport),
        ((54345, 5060), Transport::Tcp)
    );
    assert_eq!(first.ts_ns / 1_000_000_000, 0x5995_0fa2);
    assert_eq!(first.hep.as_ref().map(|h| h.1), Some(Some(228)));
}
