//! Stream-level tests: whole streams fed through `StreamTable`, against hand-computed figures and
//! against each other (batched against one-by-one pushes, serde mid-stream).

use super::*;
use std::net::Ipv4Addr;

fn pkt(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut v = vec![0x80, pt | if marker { 0x80 } else { 0 }];
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(&[0xff; 160]);
    v
}

fn key(ssrc: u32) -> StreamKey {
    StreamKey {
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        src_port: 4000,
        dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        dst_port: 5000,
        ssrc,
    }
}

fn feed(t: &mut StreamTable, ts_ns: i64, bytes: &[u8]) {
    let h = RtpHeader::parse(bytes).unwrap();
    let k = key(h.ssrc());
    let conv = ConvKey::heuristic(k.src, k.src_port, k.dst, k.dst_port);
    t.push(k, conv, ts_ns, &h, None);
}

#[test]
fn perfect_stream_has_zero_jitter_and_loss() {
    let mut t = StreamTable::new();
    for i in 0..50u16 {
        feed(
            &mut t,
            i64::from(i) * 20_000_000,
            &pkt(0, i == 0, 100 + i, u32::from(i) * 160, 1),
        );
    }
    let s = t.streams()[0].summary(Metrics::Wireshark);
    assert_eq!((s.packets, s.lost, s.expected), (50, 0, 50));
    assert!((s.mean_delta_ms - 20.0).abs() < 1e-9);
    assert_eq!(s.max_jitter_ms, 0.0);
    assert!(!s.problem);
}

#[test]
fn duplicates_make_lost_negative_and_are_counted() {
    let mut t = StreamTable::new();
    for (n, seq) in [0u16, 1, 2, 2, 3, 5, 4, 6].iter().enumerate() {
        feed(
            &mut t,
            n as i64 * 20_000_000,
            &pkt(0, false, *seq, u32::from(*seq) * 160, 9),
        );
    }
    let st = &t.streams()[0];
    let s = st.summary(Metrics::Wireshark);
    assert_eq!(s.lost, -1); // expected 7 (0..=6), 8 packets
    assert!(s.problem);
    assert_eq!(st.duplicates, 1);
    assert_eq!(st.out_of_order, 1);
    // A.1 validates the source on its second in-order packet and counts from there.
    let r = st.summary(Metrics::Rfc3550);
    assert_eq!((r.expected, r.lost), (6, -1));
}

#[test]
fn sequence_wrap_counts_a_cycle() {
    let mut t = StreamTable::new();
    for i in 0..20u32 {
        let seq = (65530 + i) as u16;
        feed(
            &mut t,
            i64::from(i) * 20_000_000,
            &pkt(8, false, seq, 0xffff_ff00u32.wrapping_add(i * 160), 3),
        );
    }
    let s = t.streams()[0].summary(Metrics::Wireshark);
    assert_eq!((s.expected, s.lost), (20, 0));
    assert_eq!(
        s.max_jitter_ms, 0.0,
        "timestamp wrap must not look like jitter"
    );
    assert_eq!(t.streams()[0].summary(Metrics::Rfc3550).lost, 0);
}

#[test]
fn telephone_events_become_dtmf_digits() {
    let mut t = StreamTable::new();
    for i in 0..5u16 {
        let mut p = pkt(101, i == 0, i, 8000, 4);
        p.truncate(12);
        let end = i >= 3;
        p.extend_from_slice(&[5, if end { 0x8a } else { 0x0a }]);
        p.extend_from_slice(&((u16::min(i, 3) + 1) * 160).to_be_bytes());
        feed(&mut t, i64::from(i) * 20_000_000, &p);
    }
    let st = &t.streams()[0];
    assert_eq!(st.dtmf.len(), 1);
    let e = &st.dtmf[0];
    assert_eq!(e.digit, Some('5'));
    assert_eq!(e.duration, 640);
    assert_eq!(e.end_ns, Some(60_000_000));
    assert!((e.duration_ms - 80.0).abs() < 1e-9);
    assert_eq!(st.payload_label(), "rtpevent");
    let s = st.summary(Metrics::Wireshark);
    assert_eq!(s.min_jitter_ms, -1.0);
}

#[test]
fn state_round_trips_through_serde_mid_stream() {
    let pkts: Vec<Vec<u8>> = (0..40u16)
        .map(|i| pkt(0, false, i, u32::from(i) * 160, 7))
        .collect();
    let when = |i: usize| i as i64 * 20_000_000 + ((i * 7919) % 13) as i64 * 100_000;
    let mut whole = StreamTable::new();
    for (i, p) in pkts.iter().enumerate() {
        feed(&mut whole, when(i), p);
    }
    let mut first = StreamTable::new();
    for (i, p) in pkts.iter().enumerate().take(17) {
        feed(&mut first, when(i), p);
    }
    let json = serde_json::to_string(&first).unwrap();
    let mut second: StreamTable = serde_json::from_str(&json).unwrap();
    for (i, p) in pkts.iter().enumerate().skip(17) {
        feed(&mut second, when(i), p);
    }
    assert_eq!(
        whole.streams()[0].summary(Metrics::Wireshark),
        second.streams()[0].summary(Metrics::Wireshark)
    );
    assert_eq!(whole.tshark_rows(0), second.tshark_rows(0));
}

#[test]
fn batched_pushes_with_located_hints_equal_one_by_one_pushes() {
    // Several streams interleaved, some starting inside a batch and twice in the same batch
    // (their `locate` says None both times), with loss, reordering and an SSRC change.
    let mut packets = Vec::new();
    for i in 0..300u16 {
        for ssrc in 1..=4u32 {
            if ssrc == 4 && i < 37 {
                continue; // starts mid-batch
            }
            if (ssrc == 2 && i % 17 == 5) || (ssrc == 3 && i == 100) {
                continue;
            }
            let seq = if ssrc == 3 && i == 101 { 100 } else { i };
            let ts_ns = i64::from(i) * 20_000_000 + i64::from(ssrc) * 1_000 + i64::from(i % 7);
            packets.push((ts_ns, pkt(0, i == 0, seq, u32::from(seq) * 160, ssrc)));
        }
    }
    let mut one = StreamTable::new();
    for (ts, b) in &packets {
        feed(&mut one, *ts, b);
    }
    let mut batched = StreamTable::new();
    for chunk in packets.chunks(32) {
        let queued: Vec<RtpPacket> = chunk
            .iter()
            .map(|(ts, b)| {
                let h = RtpHeader::parse(b).unwrap();
                let k = key(h.ssrc());
                let conv = ConvKey::heuristic(k.src, k.src_port, k.dst, k.dst_port);
                RtpPacket::new(k, conv, *ts, &h)
            })
            .collect();
        let hints: Vec<Option<usize>> = queued.iter().map(|p| batched.locate(&p.key)).collect();
        for h in hints.iter().flatten() {
            batched.prefetch_slots(*h);
        }
        for (p, h) in queued.iter().zip(hints) {
            batched.push_packet(p, h, None);
        }
    }
    let summaries = |t: &StreamTable| -> Vec<StreamSummary> {
        t.streams()
            .iter()
            .map(|s| s.summary(Metrics::Wireshark))
            .collect()
    };
    assert_eq!(one.streams().len(), 4);
    assert_eq!(summaries(&batched), summaries(&one));
    assert_eq!(
        serde_json::to_string(&batched).unwrap(),
        serde_json::to_string(&one).unwrap()
    );
    // a stale hint (another stream's index) is checked, not trusted
    let p = {
        let b = pkt(0, false, 300, 300 * 160, 1);
        let h = RtpHeader::parse(&b).unwrap();
        let k = key(1);
        RtpPacket::new(
            k,
            ConvKey::heuristic(k.src, k.src_port, k.dst, k.dst_port),
            6_000_000_000,
            &h,
        )
    };
    let i = batched.push_packet(&p, Some(2), None);
    assert_eq!(batched.streams()[i].key.ssrc, 1);
    assert_eq!(batched.streams()[i].packets, 301);
}

/// The cached payload-type meaning must give what looking the format up for every packet
/// gives: the same version always names the same format, and a new version (a re-INVITE
/// remapping PT 96 from 8 kHz to 16 kHz, then to telephone-event) is looked up again.
#[test]
fn versioned_formats_equal_a_lookup_for_every_packet() {
    let narrow = PayloadFormat {
        encoding_name: "L16",
        clock_rate: 8000,
    };
    let wide = PayloadFormat {
        encoding_name: "L16",
        clock_rate: 16000,
    };
    let event = PayloadFormat {
        encoding_name: "telephone-event",
        clock_rate: 8000,
    };
    let conv = ConvKey::announced(key(7).dst, key(7).dst_port);
    let mut packets = Vec::new();
    for i in 0..300u16 {
        // versions 1, 2, 3 over the stream, with PT 0 packets in between
        let (version, format) = match i {
            0..=99 => (1, Some(narrow)),
            100..=199 => (2, Some(wide)),
            _ => (3, Some(event)),
        };
        let pt = if i % 10 == 3 { 0 } else { 96 };
        let ts = u32::from(i) * if version == 2 { 320 } else { 160 };
        let jitter_ns = i64::from(i % 5) * 1_300_000;
        let mut b = pkt(pt, false, i, ts, 7);
        if version == 3 {
            b[12..16].copy_from_slice(&[5, if i % 3 == 0 { 0x80 } else { 0 }, 0x01, 0x40]);
        }
        packets.push((i64::from(i) * 20_000_000 + jitter_ns, b, version, format));
    }
    let mut looked_up = StreamTable::new();
    let mut cached = StreamTable::new();
    let lookups = std::cell::Cell::new(0);
    for (ts, b, version, format) in &packets {
        let h = RtpHeader::parse(b).unwrap();
        let p = RtpPacket::new(key(7), conv, *ts, &h);
        looked_up.push_packet(&p, None, *format);
        cached.push_versioned(&p, None, *version, &|| {
            lookups.set(lookups.get() + 1);
            *format
        });
    }
    let a = looked_up.streams()[0].summary(Metrics::Wireshark);
    let b = cached.streams()[0].summary(Metrics::Wireshark);
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&looked_up).unwrap(),
        serde_json::to_string(&cached).unwrap()
    );
    assert!(
        !cached.streams()[0].dtmf.is_empty(),
        "the remapped PT is read as events"
    );
    // looked up on PT changes and version changes only, not for each of the 300 packets
    assert!(lookups.get() < 100, "{} lookups", lookups.get());
}

#[test]
fn ssrc_change_on_one_five_tuple_is_counted() {
    let mut t = StreamTable::new();
    for i in 0..4u16 {
        feed(
            &mut t,
            i64::from(i),
            &pkt(0, false, i, 0, if i < 2 { 1 } else { 2 }),
        );
    }
    assert_eq!(t.streams().len(), 2);
    assert_eq!(t.ssrc_histories()[0].changes, 1);
}
