//! HEP, the HOMER Encapsulation Protocol: v3 ("HEP3", chunked TLV) and v2 (fixed header), as sent
//! by Kamailio, OpenSIPS, FreeSWITCH, captagent and heplify to port 9060.
//!
//! Hand-written: the Rust HEP crates are unmaintained and allocate per packet; this view borrows.
//! HEPv2's timestamps are in the sender's host order, which is little-endian on every agent seen.
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::wire::{be16, u16_at, u32_at};
use super::HepInfo;

/// Decompressed payloads are capped; a SIP message is far smaller.
pub(crate) const MAX_INFLATED: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HepPayload<'a> {
    Plain(&'a [u8]),
    /// zlib or gzip (chunk 0x0010).
    Compressed(&'a [u8]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hep<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// IP protocol number of the original packet (17, 6, 132).
    pub protocol: u8,
    /// Original capture time, when the agent sent one.
    pub ts_ns: Option<i64>,
    pub vlan: Option<u16>,
    pub payload: HepPayload<'a>,
    pub info: HepInfo<'a>,
    /// Bytes this HEP packet occupied (HEPv2 has no length: the rest of the datagram).
    pub len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

/// A cheap sniff: the HEP3 magic, or a HEPv2 header whose length and family agree.
#[inline]
pub(crate) fn looks_like(p: &[u8]) -> bool {
    matches!(
        p,
        [b'H', b'E', b'P', b'3', ..] | [2, 16, 2, ..] | [2, 40, 10, ..]
    )
}

pub(crate) fn parse(p: &[u8]) -> Result<Hep<'_>, Malformed> {
    if p.starts_with(b"HEP3") {
        parse_v3(p)
    } else {
        parse_v2(p)
    }
}

fn ts(sec: Option<u32>, usec: Option<u32>) -> Option<i64> {
    sec.map(|s| i64::from(s) * 1_000_000_000 + i64::from(usec.unwrap_or(0).min(999_999)) * 1_000)
}

fn parse_v2(p: &[u8]) -> Result<Hep<'_>, Malformed> {
    let (&[version, hlen, family, protocol], _) = p.split_first_chunk::<4>().ok_or(Malformed)?;
    if version != 2 {
        return Err(Malformed);
    }
    let src_port = u16_at(p, 4).ok_or(Malformed)?;
    let dst_port = u16_at(p, 6).ok_or(Malformed)?;
    let (src, dst) = match (family, hlen) {
        (2, 16) => {
            let a = p.get(8..16).ok_or(Malformed)?;
            (
                IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
                IpAddr::V4(Ipv4Addr::new(a[4], a[5], a[6], a[7])),
            )
        }
        (10, 40) => {
            let a = p.get(8..40).ok_or(Malformed)?;
            (IpAddr::V6(v6(&a[..16])), IpAddr::V6(v6(&a[16..])))
        }
        _ => return Err(Malformed),
    };
    let h = usize::from(hlen);
    // struct hep_timehdr { u32 tv_sec; u32 tv_usec; u16 captid; } is 12 bytes with its padding.
    let t = p.get(h..h + 12).ok_or(Malformed)?;
    let sec = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
    let usec = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
    let captid = u16::from_le_bytes([t[8], t[9]]);
    Ok(Hep {
        src,
        dst,
        src_port,
        dst_port,
        protocol,
        ts_ns: ts(Some(sec), Some(usec)),
        vlan: None,
        payload: HepPayload::Plain(&p[h + 12..]),
        info: HepInfo {
            version: 2,
            capture_id: Some(u32::from(captid)),
            auth_key: None,
            node_name: None,
            payload_type: None,
        },
        len: p.len(),
    })
}

fn v6(a: &[u8]) -> Ipv6Addr {
    let mut b = [0u8; 16];
    b.copy_from_slice(&a[..16]);
    Ipv6Addr::from(b)
}

fn parse_v3(p: &[u8]) -> Result<Hep<'_>, Malformed> {
    let total = usize::from(u16_at(p, 4).ok_or(Malformed)?);
    if total < 6 || total > p.len() {
        return Err(Malformed);
    }
    let body = &p[6..total];
    let mut family = None;
    let mut protocol = None;
    let (mut src4, mut dst4, mut src6, mut dst6) = (None, None, None, None);
    let (mut src_port, mut dst_port) = (None, None);
    let (mut sec, mut usec) = (None, None);
    let mut vlan = None;
    let mut payload = None;
    let mut info = HepInfo {
        version: 3,
        capture_id: None,
        auth_key: None,
        node_name: None,
        payload_type: None,
    };
    let mut off = 0;
    while off < body.len() {
        let vendor = u16_at(body, off).ok_or(Malformed)?;
        let kind = u16_at(body, off + 2).ok_or(Malformed)?;
        let len = usize::from(u16_at(body, off + 4).ok_or(Malformed)?);
        if len < 6 || off + len > body.len() {
            return Err(Malformed);
        }
        let v = &body[off + 6..off + len];
        off += len;
        if vendor != 0 {
            continue;
        }
        match (kind, v) {
            (0x0001, [f]) => family = Some(*f),
            (0x0002, [pr]) => protocol = Some(*pr),
            (0x0003, &[a, b, c, d]) => src4 = Some(Ipv4Addr::new(a, b, c, d)),
            (0x0004, &[a, b, c, d]) => dst4 = Some(Ipv4Addr::new(a, b, c, d)),
            (0x0005, a) if a.len() == 16 => src6 = Some(v6(a)),
            (0x0006, a) if a.len() == 16 => dst6 = Some(v6(a)),
            (0x0007, &[a, b]) => src_port = Some(be16([a, b])),
            (0x0008, &[a, b]) => dst_port = Some(be16([a, b])),
            (0x0009, a) => sec = Some(u32_at(a, 0).ok_or(Malformed)?),
            (0x000a, a) => usec = Some(u32_at(a, 0).ok_or(Malformed)?),
            (0x000b, [t]) => info.payload_type = Some(*t),
            (0x000c, a) => {
                info.capture_id = Some(match a {
                    &[x, y] => u32::from(be16([x, y])),
                    _ => u32_at(a, 0).ok_or(Malformed)?,
                })
            }
            (0x000e, a) => info.auth_key = Some(a),
            (0x000f, a) => payload = Some(HepPayload::Plain(a)),
            (0x0010, a) => payload = Some(HepPayload::Compressed(a)),
            (0x0012, &[a, b]) => vlan = Some(be16([a, b]) & 0x0fff),
            (0x0013, a) => info.node_name = Some(a),
            _ => {}
        }
    }
    let (src, dst) = match family {
        Some(2) => (
            IpAddr::V4(src4.ok_or(Malformed)?),
            IpAddr::V4(dst4.ok_or(Malformed)?),
        ),
        Some(10) => (
            IpAddr::V6(src6.ok_or(Malformed)?),
            IpAddr::V6(dst6.ok_or(Malformed)?),
        ),
        _ => return Err(Malformed),
    };
    Ok(Hep {
        src,
        dst,
        src_port: src_port.unwrap_or(0),
        dst_port: dst_port.unwrap_or(0),
        protocol: protocol.ok_or(Malformed)?,
        ts_ns: ts(sec, usec),
        vlan,
        payload: payload.ok_or(Malformed)?,
        info,
        len: total,
    })
}

/// Inflates a zlib or gzip payload into `out` (cleared first), at most `MAX_INFLATED` bytes.
pub(crate) fn inflate(data: &[u8], out: &mut Vec<u8>) -> Result<(), Malformed> {
    out.clear();
    let limit = MAX_INFLATED as u64 + 1;
    let r = if data.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(data)
            .take(limit)
            .read_to_end(out)
    } else {
        flate2::read::ZlibDecoder::new(data)
            .take(limit)
            .read_to_end(out)
    };
    match r {
        Ok(_) if out.len() <= MAX_INFLATED => Ok(()),
        _ => Err(Malformed),
    }
}

/// A HEPv3 packet for tests: IPv4, the given chunks after the addressing ones.
#[cfg(test)]
pub(crate) fn build_v3(
    src: [u8; 4],
    dst: [u8; 4],
    ports: (u16, u16),
    proto: u8,
    extra: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut chunks: Vec<(u16, Vec<u8>)> = vec![
        (1, vec![2]),
        (2, vec![proto]),
        (3, src.to_vec()),
        (4, dst.to_vec()),
        (7, ports.0.to_be_bytes().to_vec()),
        (8, ports.1.to_be_bytes().to_vec()),
    ];
    chunks.extend(extra.iter().map(|(t, v)| (*t, v.to_vec())));
    let mut body = Vec::new();
    for (t, v) in chunks {
        body.extend_from_slice(&0u16.to_be_bytes());
        body.extend_from_slice(&t.to_be_bytes());
        body.extend_from_slice(&((v.len() + 6) as u16).to_be_bytes());
        body.extend_from_slice(&v);
    }
    let mut p = b"HEP3".to_vec();
    p.extend_from_slice(&((body.len() + 6) as u16).to_be_bytes());
    p.extend_from_slice(&body);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_all_chunks() {
        let p = build_v3(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            (5060, 5080),
            17,
            &[
                (0x0009, &1_500_000_000u32.to_be_bytes()),
                (0x000a, &250u32.to_be_bytes()),
                (0x000b, &[1]),
                (0x000c, &2001u32.to_be_bytes()),
                (0x000e, b"secret"),
                (0x0013, b"node-a"),
                (0x0012, &[0x00, 0x2a]),
                (0x0011, b"corr"),
                (0x0fff, b"unknown is skipped"),
                (0x000f, b"OPTIONS sip:x SIP/2.0\r\n\r\n"),
            ],
        );
        assert!(looks_like(&p));
        let h = parse(&p).unwrap();
        assert_eq!(h.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(
            (h.src_port, h.dst_port, h.protocol, h.vlan),
            (5060, 5080, 17, Some(42))
        );
        assert_eq!(h.ts_ns, Some(1_500_000_000_000_250_000));
        assert_eq!(
            h.payload,
            HepPayload::Plain(b"OPTIONS sip:x SIP/2.0\r\n\r\n")
        );
        assert_eq!(h.info.capture_id, Some(2001));
        assert_eq!(h.info.auth_key, Some(&b"secret"[..]));
        assert_eq!(h.info.node_name, Some(&b"node-a"[..]));
        assert_eq!(h.info.payload_type, Some(1));
        assert_eq!(h.len, p.len());
    }

    #[test]
    fn v3_malformed() {
        let p = build_v3([1, 1, 1, 1], [2, 2, 2, 2], (1, 2), 17, &[(0x000f, b"x")]);
        assert!(parse(&p[..p.len() - 1]).is_err());
        let mut bad_chunk = p.clone();
        let n = bad_chunk.len();
        bad_chunk[n - 3] = 200; // payload chunk length past the end
        assert!(parse(&bad_chunk).is_err());
        let no_payload = build_v3([1, 1, 1, 1], [2, 2, 2, 2], (1, 2), 17, &[]);
        assert!(parse(&no_payload).is_err());
        assert!(parse(b"HEP3\x00\x03").is_err());
    }

    #[test]
    fn v2_ipv4_and_ipv6() {
        let mut p = vec![
            2, 16, 2, 17, 0x13, 0xc4, 0x13, 0xc5, 192, 168, 0, 1, 192, 168, 0, 2,
        ];
        p.extend_from_slice(&1_600_000_000u32.to_le_bytes());
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(&[0x34, 0x12, 0, 0]);
        p.extend_from_slice(b"SIP/2.0 200 OK\r\n\r\n");
        assert!(looks_like(&p));
        let h = parse(&p).unwrap();
        assert_eq!((h.src_port, h.dst_port, h.protocol), (5060, 5061, 17));
        assert_eq!(h.dst, IpAddr::V4(Ipv4Addr::new(192, 168, 0, 2)));
        assert_eq!(h.ts_ns, Some(1_600_000_000_000_007_000));
        assert_eq!(h.info.capture_id, Some(0x1234));
        assert_eq!(h.payload, HepPayload::Plain(b"SIP/2.0 200 OK\r\n\r\n"));
        assert!(parse(&p[..20]).is_err());

        let mut p6 = vec![2, 40, 10, 6, 0, 1, 0, 2];
        p6.extend_from_slice(&[0xfe; 16]);
        p6.extend_from_slice(&[0xfd; 16]);
        p6.extend_from_slice(&[0; 12]);
        p6.extend_from_slice(b"x");
        let h = parse(&p6).unwrap();
        assert_eq!((h.protocol, h.payload), (6, HepPayload::Plain(&b"x"[..])));
        assert!(matches!(h.src, IpAddr::V6(a) if a.octets() == [0xfe; 16]));
        assert!(!looks_like(&[0x80, 0x08, 0, 0]));
    }

    #[test]
    fn inflate_zlib_gzip_and_garbage() {
        use flate2::write::{GzEncoder, ZlibEncoder};
        use std::io::Write;
        let msg = b"INVITE sip:a SIP/2.0\r\n\r\n".repeat(10);
        let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&msg).unwrap();
        let z = z.finish().unwrap();
        let mut out = Vec::new();
        inflate(&z, &mut out).unwrap();
        assert_eq!(out, msg);
        let mut g = GzEncoder::new(Vec::new(), flate2::Compression::default());
        g.write_all(&msg).unwrap();
        inflate(&g.finish().unwrap(), &mut out).unwrap();
        assert_eq!(out, msg);
        assert!(inflate(b"not compressed", &mut out).is_err());
        // a bomb is cut off
        let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; MAX_INFLATED + 10]).unwrap();
        assert!(inflate(&z.finish().unwrap(), &mut out).is_err());
    }
}
