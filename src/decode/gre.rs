//! GRE (RFC 2784 with RFC 2890 key and sequence) and the ERSPAN headers it carries (types I, II,
//! III as Cisco documents them): finds the inner IPv4/IPv6 packet or Ethernet frame.
use super::wire::be16;

const GRE_CHECKSUM: u16 = 0x8000;
const GRE_ROUTING: u16 = 0x4000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQUENCE: u16 = 0x1000;
const GRE_VERSION: u16 = 0x0007;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const TRANSPARENT_ETHERNET: u16 = 0x6558;
const ERSPAN_I_II: u16 = 0x88be;
const ERSPAN_III: u16 = 0x22eb;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inner<'a> {
    Ipv4(&'a [u8]),
    Ipv6(&'a [u8]),
    Ethernet { frame: &'a [u8], erspan: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GreError {
    Malformed,
    /// Another GRE version (PPTP's enhanced GRE), source routing, or a payload we do not follow.
    Unsupported,
}

pub(crate) fn parse(data: &[u8]) -> Result<Inner<'_>, GreError> {
    let Some(&[f0, f1, p0, p1]) = data.get(..4) else {
        return Err(GreError::Malformed);
    };
    let flags = be16([f0, f1]);
    if flags & (GRE_VERSION | GRE_ROUTING) != 0 {
        return Err(GreError::Unsupported);
    }
    let protocol = be16([p0, p1]);
    let mut off = 4;
    for bit in [GRE_CHECKSUM, GRE_KEY, GRE_SEQUENCE] {
        if flags & bit != 0 {
            off += 4;
        }
    }
    let rest = data.get(off..).ok_or(GreError::Malformed)?;
    match protocol {
        ETHERTYPE_IPV4 => Ok(Inner::Ipv4(rest)),
        ETHERTYPE_IPV6 => Ok(Inner::Ipv6(rest)),
        TRANSPARENT_ETHERNET => Ok(Inner::Ethernet {
            frame: rest,
            erspan: false,
        }),
        // Type I has no ERSPAN header and no GRE sequence number; type II has both.
        ERSPAN_I_II if flags & GRE_SEQUENCE == 0 => Ok(Inner::Ethernet {
            frame: rest,
            erspan: true,
        }),
        ERSPAN_I_II => Ok(Inner::Ethernet {
            frame: rest.get(8..).ok_or(GreError::Malformed)?,
            erspan: true,
        }),
        ERSPAN_III => {
            // 12-byte header; its last bit (O) announces an 8-byte platform-specific subheader.
            let o = rest.get(11).ok_or(GreError::Malformed)? & 1 != 0;
            let skip = if o { 20 } else { 12 };
            Ok(Inner::Ethernet {
                frame: rest.get(skip..).ok_or(GreError::Malformed)?,
                erspan: true,
            })
        }
        _ => Err(GreError::Unsupported),
    }
}

/// A GRE header with optional checksum, key and sequence, protocol `protocol`.
#[cfg(test)]
pub(crate) fn build(
    protocol: u16,
    checksum: bool,
    key: Option<u32>,
    seq: Option<u32>,
    rest: &[u8],
) -> Vec<u8> {
    let mut flags = 0u16;
    if checksum {
        flags |= GRE_CHECKSUM;
    }
    if key.is_some() {
        flags |= GRE_KEY;
    }
    if seq.is_some() {
        flags |= GRE_SEQUENCE;
    }
    let mut v = flags.to_be_bytes().to_vec();
    v.extend_from_slice(&protocol.to_be_bytes());
    if checksum {
        v.extend_from_slice(&[0xbe, 0xef, 0, 0]);
    }
    if let Some(k) = key {
        v.extend_from_slice(&k.to_be_bytes());
    }
    if let Some(s) = seq {
        v.extend_from_slice(&s.to_be_bytes());
    }
    v.extend_from_slice(rest);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_checksum_sequence_skipped() {
        let g = build(0x0800, true, Some(7), Some(9), b"\x45ip");
        assert_eq!(parse(&g), Ok(Inner::Ipv4(b"\x45ip")));
        let g = build(0x86dd, false, Some(7), None, b"\x60");
        assert_eq!(parse(&g), Ok(Inner::Ipv6(b"\x60")));
        let g = build(0x6558, false, None, None, b"eth");
        assert_eq!(
            parse(&g),
            Ok(Inner::Ethernet {
                frame: b"eth",
                erspan: false
            })
        );
        assert_eq!(parse(&g[..3]), Err(GreError::Malformed));
        let short = build(0x0800, true, Some(1), None, b"");
        assert_eq!(parse(&short[..6]), Err(GreError::Malformed));
    }

    #[test]
    fn erspan_types() {
        let g = build(0x88be, false, None, None, b"eth1");
        assert_eq!(
            parse(&g),
            Ok(Inner::Ethernet {
                frame: b"eth1",
                erspan: true
            })
        );
        let mut ii = vec![0x10, 0x0a, 0x00, 0x01, 0, 0, 0, 0];
        ii.extend_from_slice(b"eth2");
        let g = build(0x88be, false, None, Some(1), &ii);
        assert_eq!(
            parse(&g),
            Ok(Inner::Ethernet {
                frame: b"eth2",
                erspan: true
            })
        );
        let mut iii = vec![0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        iii.extend_from_slice(b"eth3");
        let g = build(0x22eb, false, None, Some(1), &iii);
        assert_eq!(
            parse(&g),
            Ok(Inner::Ethernet {
                frame: b"eth3",
                erspan: true
            })
        );
        let mut iii_o = vec![0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        iii_o.extend_from_slice(&[0xff; 8]);
        iii_o.extend_from_slice(b"eth4");
        let g = build(0x22eb, false, None, Some(1), &iii_o);
        assert_eq!(
            parse(&g),
            Ok(Inner::Ethernet {
                frame: b"eth4",
                erspan: true
            })
        );
        assert_eq!(
            parse(&build(0x22eb, false, None, None, &[0; 11])),
            Err(GreError::Malformed)
        );
    }

    #[test]
    fn pptp_routing_and_unknown_protocols_unsupported() {
        let mut pptp = build(0x880b, false, Some(1), None, b"");
        pptp[1] |= 1;
        assert_eq!(parse(&pptp), Err(GreError::Unsupported));
        let mut routing = build(0x0800, false, None, None, b"");
        routing[0] |= 0x40;
        assert_eq!(parse(&routing), Err(GreError::Unsupported));
        assert_eq!(
            parse(&build(0x0806, false, None, None, b"")),
            Err(GreError::Unsupported)
        );
    }
}
