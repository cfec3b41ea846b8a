//! Unit tests of the media pass: the stored timeline text and the flow-slot cache.
use super::announce::Announcement;
use super::feed::UdpFacts;
use super::flows::Maps;
use super::rows::timeline_json;
use crate::rtp::stream::Timeline;
use crate::rtp::Classification;
use std::net::{IpAddr, Ipv4Addr};

/// The column's text is what `serde_json::json!` made of the same timeline (stored rows
/// written before and after compare equal), for awkward jitters too.
#[test]
fn the_timeline_column_is_the_json_value_text() {
    let mut jitters = vec![
        0.0f32,
        0.1,
        1.0 / 3.0,
        12.5,
        1e-7,
        3.4e38,
        f32::MIN_POSITIVE,
    ];
    let mut x = 0x2545_f491u32;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        jitters.push(f32::from_bits(x & 0x7f7f_ffff) % 1000.0);
    }
    for width_s in [0, 1, 4] {
        let mut t = Timeline::default();
        t.width_s = width_s;
        assert_eq!(
            timeline_json(&t),
            serde_json::json!({"width_s": t.width_s, "buckets": t.buckets}).to_string()
        );
        t.buckets = jitters
            .iter()
            .enumerate()
            .map(|(i, &j)| (i as u32 * 7, i as u32 % 3, j))
            .collect();
        assert_eq!(
            timeline_json(&t),
            serde_json::json!({"width_s": t.width_s, "buckets": t.buckets}).to_string()
        );
    }
}

fn facts(flow: u32, src: (IpAddr, u16), dst: (IpAddr, u16)) -> UdpFacts {
    UdpFacts {
        ts_ns: 0,
        src: src.0,
        dst: dst.0,
        src_port: src.1,
        dst_port: dst.1,
        rtp: None,
        looks_like_rtcp: false,
        known: Classification::Neither,
        heuristic: Classification::Neither,
        kept: None,
        flow,
    }
}

/// The per-flow cache must always answer what looking both addresses up answers
/// (destination first), whatever was announced, re-announced or forgotten in between and
/// however the reader reused flow ids: a random walk over few addresses, checked each step.
#[test]
fn a_flow_slot_answers_as_looking_both_addresses_up_would() {
    let addrs: Vec<(IpAddr, u16)> = (0..4)
        .map(|i| {
            (
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i % 2)),
                4000 + u16::from(i),
            )
        })
        .collect();
    let mut m = Maps::default();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut hits, mut misses) = (0, 0);
    for _ in 0..20_000 {
        let r = next();
        let a = addrs[(r >> 8) as usize % addrs.len()];
        let b = addrs[(r >> 16) as usize % addrs.len()];
        match r % 10 {
            0 => {
                let version = m.next_version();
                m.announced.insert(
                    a,
                    Announcement {
                        call_id: None,
                        rtp: true,
                        rtpmap: Vec::new(),
                        last_ns: 0,
                        version,
                    },
                );
            }
            1 => {
                let gone = m.announced.get(&a).map(|x| x.version);
                m.announced.retain(|x| Some(x.version) != gone);
            }
            _ => {
                let id = (r >> 24) as u32 % 3;
                let (ann, _) = m.flow_slot(&facts(id, a, b));
                let look = |k: (IpAddr, u16), via_dst: bool| {
                    let i = m.announced.slot_of(&k)?;
                    Some((i, m.announced.at(i)?.version, via_dst))
                };
                let expected = look(b, true).or_else(|| look(a, false));
                assert_eq!(ann, expected);
                if expected.is_some() {
                    hits += 1;
                } else {
                    misses += 1;
                }
            }
        }
    }
    assert!(
        hits > 1000 && misses > 1000,
        "{hits} announced, {misses} not"
    );
}
