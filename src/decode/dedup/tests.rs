//! Tests of the dedup stage: SPAN duplicates, HEP mirrors, table bounds, the delay buffer, and
//! the owned datagram it carries in grep.

use super::table::SLOTS;
use super::*;
use crate::decode::{HepInfo, OwnedDatagram};
use std::net::Ipv4Addr;

const MS: i64 = 1_000_000;
const US: i64 = 1_000;
const INVITE: &[u8] =
    b"INVITE sip:bob@10.0.0.2 SIP/2.0\r\nCall-ID: a@b\r\nContent-Length: 0\r\n\r\n";
const OK: &[u8] = b"SIP/2.0 200 OK\r\nCall-ID: a@b\r\nContent-Length: 0\r\n\r\n";
const RTP: &[u8] = &[
    0x80, 0x00, 0x00, 0x01, 0, 0, 0, 160, 0x11, 0x22, 0x33, 0x44, 0xff, 0xff,
];
const HEP: HepInfo<'static> = HepInfo {
    version: 3,
    capture_id: Some(2001),
    auth_key: None,
    node_name: None,
    payload_type: Some(1),
};

fn raw(payload: &'static [u8], ts_ns: i64) -> Datagram<'static> {
    Datagram {
        ts_ns,
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        src_port: 5060,
        dst_port: 5060,
        transport: Transport::Udp,
        encap: Encap::default(),
        vlan: None,
        payload,
        locations: &[],
        hep: None,
    }
}

fn hep(payload: &'static [u8], ts_ns: i64) -> Datagram<'static> {
    let mut d = raw(payload, ts_ns);
    d.encap = Encap::HEP;
    d.hep = Some(HEP);
    d
}

fn span() -> DedupConfig {
    DedupConfig {
        span: true,
        ..DedupConfig::default()
    }
}

#[test]
fn span_copy_20us_later_on_the_same_flow_is_a_duplicate() {
    let mut d = Deduplicator::new(span());
    assert_eq!(d.push(&raw(INVITE, 0), 0), Verdict::Keep { seq: 0 });
    let v = d.push(&raw(INVITE, 20 * US), 20 * US);
    assert!(matches!(v, Verdict::Duplicate { .. }), "{v:?}");
    assert_eq!(d.stats().span_duplicates, 1);
    assert_eq!(
        d.flow_duplicates().get(&Flow::of(&raw(INVITE, 0))),
        Some(&1)
    );
    // RTP is deduplicated the same way.
    assert!(d.push(&raw(RTP, MS), MS).is_kept());
    assert!(!d.push(&raw(RTP, MS + 20 * US), MS + 20 * US).is_kept());
}

#[test]
fn sip_retransmission_after_t1_is_never_a_duplicate() {
    let mut d = Deduplicator::new(span());
    assert!(d.push(&raw(OK, 0), 0).is_kept());
    assert!(!d.push(&raw(OK, 20 * US), 20 * US).is_kept());
    assert_eq!(
        d.push(&raw(OK, SIP_T1_NS), SIP_T1_NS),
        Verdict::Keep { seq: 1 },
        "a retransmission T1 later is a message of its own"
    );
    // And its own SPAN copy is a duplicate of the retransmission.
    assert!(!d
        .push(&raw(OK, SIP_T1_NS + 20 * US), SIP_T1_NS + 20 * US)
        .is_kept());
    assert_eq!(d.stats().span_duplicates, 2);
    let long = DedupConfig {
        span_window_ns: SIP_T1_NS,
        ..span()
    };
    assert_eq!(
        long.validate(),
        Err(DedupError::SpanWindowNotBelowT1(SIP_T1_NS))
    );
    assert_eq!(span().validate(), Ok(()));
}

#[test]
fn same_payload_on_another_flow_or_outside_the_window_is_kept() {
    let mut d = Deduplicator::new(span());
    assert!(d.push(&raw(INVITE, 0), 0).is_kept());
    let mut other = raw(INVITE, 10 * US);
    other.src_port = 5062;
    assert!(d.push(&other, 10 * US).is_kept());
    assert!(d.push(&raw(INVITE, 6 * MS), 6 * MS).is_kept());
    assert!(d.push(&raw(OK, 6 * MS), 6 * MS).is_kept());
    assert_eq!(d.stats().span_duplicates, 0);
}

#[test]
fn dedup_off_keeps_every_copy() {
    let mut d = Deduplicator::new(DedupConfig::default());
    assert!(d.push(&raw(INVITE, 0), 0).is_kept());
    assert!(d.push(&raw(INVITE, 20 * US), 20 * US).is_kept());
    let mut none = Deduplicator::new(DedupConfig {
        hep_mirrors: false,
        ..DedupConfig::default()
    });
    assert!(none.push(&raw(INVITE, 0), 0).is_kept());
    assert!(none.push(&hep(INVITE, 0), 200 * US).is_kept());
}

#[test]
fn hep_copy_after_its_raw_message_is_a_mirror_of_it() {
    let mut d = Deduplicator::new(DedupConfig::default());
    assert_eq!(d.push(&raw(INVITE, 0), 0), Verdict::Keep { seq: 0 });
    assert_eq!(d.push(&raw(OK, MS), MS), Verdict::Keep { seq: 1 });
    let v = d.push(&hep(INVITE, 0), MS + 200 * US);
    let Verdict::Mirror { of, mirror } = v else {
        panic!("{v:?}")
    };
    assert_eq!((of, mirror.capture_id), (0, Some(2001)));
    assert_eq!(mirror.now_ns, MS + 200 * US);
    // A second HEP copy has no raw message left to mirror: a message of its own.
    assert_eq!(d.push(&hep(INVITE, 0), 2 * MS), Verdict::Keep { seq: 2 });
    assert_eq!(d.stats().hep_mirrors, 1);
}

#[test]
fn hep_copy_before_its_raw_message_is_withdrawn_for_it() {
    let mut d = Deduplicator::new(DedupConfig::default());
    assert_eq!(d.push(&hep(INVITE, 0), 0), Verdict::Keep { seq: 0 });
    let v = d.push(&raw(INVITE, 300 * US), 300 * US);
    assert_eq!(
        v,
        Verdict::KeepMirrored {
            seq: 1,
            mirror: Mirror {
                capture_id: Some(2001),
                now_ns: 0,
                location: None
            },
            withdraw: 0
        }
    );
    assert_eq!(d.stats().hep_mirrors_before_raw, 1);
}

#[test]
fn hep_copy_outside_the_window_or_of_another_flow_is_a_message() {
    let mut d = Deduplicator::new(DedupConfig::default());
    assert!(d.push(&raw(INVITE, 0), 0).is_kept());
    assert!(d.push(&hep(INVITE, 0), 1_001 * MS).is_kept());
    let mut moved = hep(OK, 0);
    moved.dst_port = 5080;
    assert!(d.push(&raw(OK, 0), 1_002 * MS).is_kept());
    assert!(d.push(&moved, 1_003 * MS).is_kept());
    assert_eq!(d.stats().hep_mirrors, 0);
}

#[test]
fn each_retransmission_pairs_with_its_own_hep_copy() {
    let mut d = Deduplicator::new(DedupConfig::default());
    assert!(d.push(&raw(OK, 0), 0).is_kept());
    assert!(d.push(&raw(OK, 500 * MS), 500 * MS).is_kept());
    let a = d.push(&hep(OK, 0), 500 * MS + 200 * US);
    let b = d.push(&hep(OK, 0), 500 * MS + 400 * US);
    assert!(matches!(a, Verdict::Mirror { of: 0, .. }), "{a:?}");
    assert!(matches!(b, Verdict::Mirror { of: 1, .. }), "{b:?}");
}

#[test]
fn span_copy_of_a_hep_mirror_is_a_duplicate_not_a_message() {
    let mut d = Deduplicator::new(span());
    assert!(d.push(&raw(INVITE, 0), 0).is_kept());
    assert!(!d.push(&raw(INVITE, 0), 20 * US).is_kept());
    assert!(matches!(
        d.push(&hep(INVITE, 0), 200 * US),
        Verdict::Mirror { of: 0, .. }
    ));
    assert!(matches!(
        d.push(&hep(INVITE, 0), 220 * US),
        Verdict::Duplicate { .. }
    ));
    assert_eq!((d.stats().hep_mirrors, d.stats().span_duplicates), (1, 2));
}

#[test]
fn rtp_is_never_paired_with_hep() {
    let mut d = Deduplicator::new(DedupConfig::default());
    assert!(d.push(&raw(RTP, 0), 0).is_kept());
    assert!(d.push(&hep(RTP, 0), 100 * US).is_kept());
    assert_eq!(d.stats().hep_mirrors, 0);
}

#[test]
fn tables_stay_within_their_bound_and_count_evictions() {
    let mut d = Deduplicator::new(DedupConfig {
        max_entries: 2,
        ..span()
    });
    let payloads: [&'static [u8]; 3] = [b"A 1", b"B 2", b"C 3"];
    for (i, p) in payloads.iter().enumerate() {
        assert!(d.push(&raw(p, 0), i as i64 * US).is_kept());
    }
    assert!(d.span.live <= 2 && d.raws.live <= 2, "bounded");
    assert!(d.stats().evicted >= 2, "{:?}", d.stats());
    // The first was forgotten: its copy is no longer recognised.
    assert!(d.push(&raw(payloads[0], 0), 4 * US).is_kept());
    assert!(!d.push(&raw(payloads[2], 0), 5 * US).is_kept());
}

#[test]
fn expired_entries_are_forgotten() {
    let mut d = Deduplicator::new(span());
    for i in 0..1000i64 {
        let p: &'static [u8] = if i % 2 == 0 { INVITE } else { OK };
        d.push(&raw(p, 0), i * 10 * MS);
    }
    // SPAN entries live 5 ms: only the latest is left.
    assert_eq!((d.span.live, d.span.order.len()), (1, 1));
    // Raw messages wait 1 s for a HEP copy, at most SLOTS of one payload.
    assert_eq!(d.raws.live, 2 * SLOTS);
    assert!(d.raws.order.len() <= 101, "{}", d.raws.order.len());
}

fn collect(
    buf: &mut DelayBuffer<&'static str>,
    dg: &Datagram<'_>,
    now: i64,
    name: &'static str,
    out: &mut Vec<(&'static str, Option<u32>)>,
) -> Verdict {
    buf.push(
        dg,
        now,
        || (name, 1),
        |r| out.push((r.item, r.mirrored_by.and_then(|m| m.capture_id))),
    )
}

#[test]
fn delay_buffer_notes_a_later_mirror_on_the_raw_message_in_order() {
    let mut buf = DelayBuffer::new(DedupConfig::default(), DelayLimits::default());
    let mut out = Vec::new();
    collect(&mut buf, &raw(INVITE, 0), 0, "invite", &mut out);
    collect(&mut buf, &hep(INVITE, 0), 200 * US, "invite-hep", &mut out);
    collect(&mut buf, &raw(OK, 0), 10 * MS, "ok", &mut out);
    assert!(out.is_empty(), "held for the window: {out:?}");
    collect(
        &mut buf,
        &hep(OK, 0),
        10 * MS + 200 * US,
        "ok-hep",
        &mut out,
    );
    collect(&mut buf, &raw(b"BYE x", 0), 2_000 * MS, "bye", &mut out);
    assert_eq!(out, [("invite", Some(2001)), ("ok", Some(2001))]);
    buf.finish(|r| out.push((r.item, None)));
    assert_eq!(out.len(), 3);
    assert_eq!(out[2].0, "bye");
}

#[test]
fn delay_buffer_withdraws_a_copy_seen_before_its_raw_message() {
    let mut buf = DelayBuffer::new(DedupConfig::default(), DelayLimits::default());
    let mut out = Vec::new();
    collect(&mut buf, &raw(OK, 0), 0, "earlier", &mut out);
    collect(&mut buf, &hep(INVITE, 0), 10 * US, "invite-hep", &mut out);
    collect(&mut buf, &raw(INVITE, 0), 50 * US, "invite", &mut out);
    buf.finish(|r| out.push((r.item, r.mirrored_by.and_then(|m| m.capture_id))));
    assert_eq!(out, [("earlier", None), ("invite", Some(2001))]);
    assert_eq!(
        buf.stats(),
        &DelayStats {
            peak_items: 3,
            ..DelayStats::default()
        }
    );
}

#[test]
fn delay_buffer_is_bounded_and_counts_early_releases() {
    let limits = DelayLimits {
        max_items: 2,
        max_bytes: usize::MAX,
    };
    let mut buf = DelayBuffer::new(DedupConfig::default(), limits);
    let mut out = Vec::new();
    let payloads: [&'static [u8]; 3] = [b"A 1", b"B 2", b"C 3"];
    let names = ["a", "b", "c"];
    for i in 0..3 {
        collect(&mut buf, &raw(payloads[i], 0), i as i64, names[i], &mut out);
    }
    assert_eq!(out, [("a", None)]);
    assert_eq!(buf.len(), 2);
    // The mirror of the released one is still dropped, without a note.
    let v = collect(&mut buf, &hep(payloads[0], 0), 10, "a-hep", &mut out);
    assert!(matches!(v, Verdict::Mirror { of: 0, .. }));
    assert_eq!(buf.stats().released_early, 1);
    assert_eq!(buf.stats().notes_missed, 1);
}

#[test]
fn without_mirror_pairing_nothing_is_held() {
    let config = DedupConfig {
        hep_mirrors: false,
        span: true,
        ..DedupConfig::default()
    };
    let mut buf = DelayBuffer::new(config, DelayLimits::default());
    let mut out = Vec::new();
    collect(&mut buf, &raw(INVITE, 0), 0, "a", &mut out);
    collect(&mut buf, &raw(INVITE, 0), 20 * US, "a-dup", &mut out);
    assert_eq!(out, [("a", None)]);
    assert!(buf.is_empty());
}

#[test]
fn owned_datagram_round_trips() {
    let locs = [PacketLocation {
        file_id: 1,
        offset: 24,
        record_len: 100,
    }];
    let mut dg = hep(INVITE, 7);
    dg.locations = &locs;
    dg.vlan = Some(100);
    let owned = OwnedDatagram::new(&dg);
    let back = owned.as_datagram();
    assert_eq!(back.payload, INVITE);
    assert_eq!(back.locations, &locs);
    assert_eq!(back.hep, dg.hep);
    assert_eq!(
        (back.ts_ns, back.vlan, back.encap),
        (7, Some(100), Encap::HEP)
    );
    assert!(owned.size() > INVITE.len());
}
