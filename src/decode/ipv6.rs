//! IPv6 header view (RFC 8200) and its extension-header chain: hop-by-hop, routing, destination
//! options, fragment and AH are walked (at most `MAX_EXTENSIONS`); ESP and No Next Header stop.
use std::net::Ipv6Addr;

use super::wire::{be16, u32_at};

const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const ESP: u8 = 50;
const AH: u8 = 51;
const NO_NEXT_HEADER: u8 = 59;
const DESTINATION_OPTIONS: u8 = 60;
const MAX_EXTENSIONS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ipv6<'a> {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    /// Bytes after the fixed header, trimmed to the payload length.
    pub payload: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

/// Where the extension-header walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk<'a> {
    Upper {
        protocol: u8,
        payload: &'a [u8],
    },
    Fragment {
        /// Next Header of the fragment header: the first header of the fragmentable part.
        next_header: u8,
        offset: u32,
        more: bool,
        identification: u32,
        data: &'a [u8],
    },
    /// ESP or No Next Header: nothing readable follows.
    Opaque,
}

pub(crate) fn parse(data: &[u8]) -> Result<Ipv6<'_>, Malformed> {
    let Some(h) = data.get(..40) else {
        return Err(Malformed);
    };
    if h[0] >> 4 != 6 {
        return Err(Malformed);
    }
    let len = usize::from(be16([h[4], h[5]]));
    let rest = &data[40..];
    // Payload length 0 is a jumbogram or an offloaded send: take what was captured.
    let payload = if len == 0 {
        rest
    } else {
        &rest[..len.min(rest.len())]
    };
    let addr = |o: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&h[o..o + 16]);
        Ipv6Addr::from(a)
    };
    Ok(Ipv6 {
        src: addr(8),
        dst: addr(24),
        next_header: h[6],
        payload,
    })
}

/// Walks extension headers from `next_header` over `data` until an upper-layer protocol, a
/// non-atomic fragment header, or an opaque header.
pub(crate) fn walk(mut next_header: u8, mut data: &[u8]) -> Result<Walk<'_>, Malformed> {
    for _ in 0..MAX_EXTENSIONS {
        match next_header {
            HOP_BY_HOP | ROUTING | DESTINATION_OPTIONS | AH => {
                let (Some(&nh), Some(&l)) = (data.first(), data.get(1)) else {
                    return Err(Malformed);
                };
                let len = if next_header == AH {
                    (usize::from(l) + 2) * 4
                } else {
                    (usize::from(l) + 1) * 8
                };
                data = data.get(len..).ok_or(Malformed)?;
                next_header = nh;
            }
            FRAGMENT => {
                let (Some(&nh), Some(off)) = (data.first(), data.get(2..4)) else {
                    return Err(Malformed);
                };
                let id = u32_at(data, 4).ok_or(Malformed)?;
                let off = be16([off[0], off[1]]);
                let offset = u32::from(off >> 3) * 8;
                let more = off & 1 != 0;
                let rest = &data[8..];
                if offset == 0 && !more {
                    // An atomic fragment (RFC 6946): the whole datagram is here.
                    data = rest;
                    next_header = nh;
                    continue;
                }
                return Ok(Walk::Fragment {
                    next_header: nh,
                    offset,
                    more,
                    identification: id,
                    data: rest,
                });
            }
            ESP | NO_NEXT_HEADER => return Ok(Walk::Opaque),
            protocol => {
                return Ok(Walk::Upper {
                    protocol,
                    payload: data,
                })
            }
        }
    }
    Err(Malformed)
}

#[cfg(test)]
pub(crate) fn build(src: u8, dst: u8, next_header: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[next_header, 64]);
    let mut a = [0u8; 16];
    a[0] = 0x20;
    a[1] = 0x01;
    a[15] = src;
    v.extend_from_slice(&a);
    a[15] = dst;
    v.extend_from_slice(&a);
    v.extend_from_slice(payload);
    v
}

/// A fragment extension header followed by `data`.
#[cfg(test)]
pub(crate) fn fragment_header(
    next_header: u8,
    offset: u32,
    more: bool,
    id: u32,
    data: &[u8],
) -> Vec<u8> {
    let mut v = vec![next_header, 0];
    v.extend_from_slice(&(((offset / 8) as u16) << 3 | u16::from(more)).to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(data);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_chain_to_udp() {
        // hop-by-hop (8) -> routing (16) -> destination options (8) -> AH (12) -> UDP
        let mut chain = vec![ROUTING, 0, 1, 4, 0, 0, 0, 0];
        chain.extend_from_slice(&[DESTINATION_OPTIONS, 1]);
        chain.extend_from_slice(&[0; 14]);
        chain.extend_from_slice(&[AH, 0, 1, 4, 0, 0, 0, 0]);
        chain.extend_from_slice(&[17, 1, 0, 0]);
        chain.extend_from_slice(&[0; 8]);
        chain.extend_from_slice(b"udp!");
        let pkt = build(1, 2, HOP_BY_HOP, &chain);
        let ip = parse(&pkt).unwrap();
        assert_eq!(ip.src.octets()[15], 1);
        assert_eq!(
            walk(ip.next_header, ip.payload).unwrap(),
            Walk::Upper {
                protocol: 17,
                payload: b"udp!"
            }
        );
    }

    #[test]
    fn fragment_atomic_esp_and_truncation() {
        let f = fragment_header(17, 1448, true, 0xabcd, b"xx");
        assert_eq!(
            walk(FRAGMENT, &f).unwrap(),
            Walk::Fragment {
                next_header: 17,
                offset: 1448,
                more: true,
                identification: 0xabcd,
                data: b"xx"
            }
        );
        let atomic = fragment_header(6, 0, false, 9, b"tcp");
        assert_eq!(
            walk(FRAGMENT, &atomic).unwrap(),
            Walk::Upper {
                protocol: 6,
                payload: b"tcp"
            }
        );
        assert_eq!(walk(ESP, b"secret").unwrap(), Walk::Opaque);
        assert_eq!(walk(NO_NEXT_HEADER, b"").unwrap(), Walk::Opaque);
        assert_eq!(walk(HOP_BY_HOP, &[17, 1, 0, 0]), Err(Malformed));
        assert_eq!(walk(FRAGMENT, &[17, 0, 0]), Err(Malformed));
        // a loop of empty destination options never ends on its own
        let looped: Vec<u8> = std::iter::repeat_n([60u8, 0, 0, 0, 0, 0, 0, 0], 40)
            .flatten()
            .collect();
        assert_eq!(walk(DESTINATION_OPTIONS, &looped), Err(Malformed));
    }

    #[test]
    fn header_checks() {
        let p = build(1, 2, 17, b"abc");
        assert_eq!(parse(&p).unwrap().payload, b"abc");
        assert_eq!(parse(&p[..39]), Err(Malformed));
        let mut v4 = p.clone();
        v4[0] = 0x45;
        assert_eq!(parse(&v4), Err(Malformed));
        let mut padded = p.clone();
        padded.extend_from_slice(&[0; 4]);
        assert_eq!(parse(&padded).unwrap().payload, b"abc");
    }
}
