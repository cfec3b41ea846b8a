//! Classic pcap (libpcap) files: the 24-byte file header, then 16-byte record headers each followed by
//! the packet bytes. Microsecond and nanosecond magics in either byte order; no accessor panics.
//!
//! Hand-written (two fixed headers) so that pcap and pcapng share one walk over a borrowed window,
//! with "need more data" as an ordinary answer, for both the mapped and the streamed input.
use super::record::{ByteOrder, Record, Step, MAX_CAPLEN};
use super::LinkType;

pub(crate) const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: u32 = 16;

pub(crate) const MAGIC_MICRO: u32 = 0xa1b2_c3d4;
pub(crate) const MAGIC_NANO: u32 = 0xa1b2_3c4d;

/// The link type is the low 16 bits of the header's link-type field; the upper bits carry the FCS
/// length and flag (draft-ietf-opsawg-pcap section 4), which must not leak into the link type.
const LINKTYPE_MASK: u32 = 0x0000_ffff;

/// What the file header says, kept for the record walk.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub order: ByteOrder,
    pub nanosecond: bool,
    pub link_type: LinkType,
    pub snaplen: u32,
    /// Largest caplen believed: see `caplen_limit`.
    pub caplen_limit: u32,
}

/// Recognise a pcap magic in the first four bytes: (byte order, nanosecond).
pub(crate) fn sniff(b: &[u8]) -> Option<(ByteOrder, bool)> {
    let le = ByteOrder::Little.u32(b, 0);
    let be = ByteOrder::Big.u32(b, 0);
    if b.len() < 4 {
        return None;
    }
    match (le, be) {
        (MAGIC_MICRO, _) => Some((ByteOrder::Little, false)),
        (MAGIC_NANO, _) => Some((ByteOrder::Little, true)),
        (_, MAGIC_MICRO) => Some((ByteOrder::Big, false)),
        (_, MAGIC_NANO) => Some((ByteOrder::Big, true)),
        _ => None,
    }
}

/// Parse the file header; `None` when `b` is shorter than a header or has no pcap magic.
pub(crate) fn parse_header(b: &[u8]) -> Option<Header> {
    let (order, nanosecond) = sniff(b)?;
    if b.len() < FILE_HEADER_LEN {
        return None;
    }
    let snaplen = order.u32(b, 16);
    Some(Header {
        order,
        nanosecond,
        link_type: order.u32(b, 20) & LINKTYPE_MASK,
        snaplen,
        caplen_limit: caplen_limit(snaplen),
    })
}

/// Writers are sloppy with snaplen (0, or smaller than what they then write), so a caplen over the
/// snaplen alone is not proof of corruption; over twice a sane snaplen, or over 256 KiB, it is.
fn caplen_limit(snaplen: u32) -> u32 {
    snaplen.saturating_mul(2).clamp(65_535, MAX_CAPLEN)
}

/// Look at the record at the start of `b`.
#[inline]
pub(crate) fn step(h: &Header, b: &[u8]) -> Step {
    let Some(head) = b.first_chunk::<{ RECORD_HEADER_LEN as usize }>() else {
        return Step::Need(RECORD_HEADER_LEN);
    };
    // One fixed-size header read as four words: no per-field bounds checks.
    let little = h.order == ByteOrder::Little;
    let word = |i: usize| {
        let w = [head[i], head[i + 1], head[i + 2], head[i + 3]];
        if little {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    let caplen = word(8);
    if caplen > h.caplen_limit {
        return Step::Corrupt("pcap record caplen larger than any snapshot length");
    }
    let record_len = RECORD_HEADER_LEN + caplen;
    if b.len() < record_len as usize {
        return Step::Need(record_len);
    }
    let sec = i64::from(word(0));
    let frac = i64::from(word(4));
    let frac_ns = if h.nanosecond { frac } else { frac * 1_000 };
    Step::Packet(Record {
        ts_ns: sec * 1_000_000_000 + frac_ns,
        link_type: h.link_type,
        interface_id: 0,
        data_start: RECORD_HEADER_LEN,
        caplen,
        orig_len: word(12),
        record_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: u32, big: bool, snaplen: u32, linktype: u32) -> Vec<u8> {
        let mut v = Vec::new();
        let put = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        put(&mut v, magic);
        v.extend_from_slice(&if big { [0, 2, 0, 4] } else { [2, 0, 4, 0] });
        put(&mut v, 0);
        put(&mut v, 0);
        put(&mut v, snaplen);
        put(&mut v, linktype);
        v
    }

    #[test]
    fn header_in_all_four_variants() {
        for (magic, nano) in [(MAGIC_MICRO, false), (MAGIC_NANO, true)] {
            for big in [false, true] {
                let h = parse_header(&header(magic, big, 65535, 113)).unwrap();
                assert_eq!(h.nanosecond, nano);
                assert_eq!(
                    h.order,
                    if big {
                        ByteOrder::Big
                    } else {
                        ByteOrder::Little
                    }
                );
                assert_eq!(h.link_type, 113);
                assert_eq!(h.snaplen, 65535);
            }
        }
    }

    #[test]
    fn fcs_bits_are_masked_off_the_link_type() {
        // F bit (26) set and an FCS length of 4 in bits 28-31, link type Ethernet.
        let h = parse_header(&header(MAGIC_MICRO, false, 65535, 0x4400_0001)).unwrap();
        assert_eq!(h.link_type, 1);
    }

    #[test]
    fn short_or_foreign_headers_are_rejected() {
        let full = header(MAGIC_MICRO, false, 65535, 1);
        assert!(parse_header(&full[..23]).is_none());
        assert!(parse_header(&full[..3]).is_none());
        assert!(parse_header(b"GET / HTTP/1.1\r\nHost: example\r\n").is_none());
    }

    #[test]
    fn record_timestamps_scale_by_magic() {
        let mut rec = Vec::new();
        for x in [1_500_000_000u32, 123_456, 4, 60] {
            rec.extend_from_slice(&x.to_le_bytes());
        }
        rec.extend_from_slice(&[0xaa; 4]);
        let us = parse_header(&header(MAGIC_MICRO, false, 65535, 1)).unwrap();
        let ns = parse_header(&header(MAGIC_NANO, false, 65535, 1)).unwrap();
        let Step::Packet(r) = step(&us, &rec) else {
            panic!("no packet")
        };
        assert_eq!(r.ts_ns, 1_500_000_000_123_456_000);
        assert_eq!(
            (r.caplen, r.orig_len, r.record_len, r.data_start),
            (4, 60, 20, 16)
        );
        let Step::Packet(r) = step(&ns, &rec) else {
            panic!("no packet")
        };
        assert_eq!(r.ts_ns, 1_500_000_000_000_123_456);
    }

    #[test]
    fn partial_and_absurd_records() {
        let h = parse_header(&header(MAGIC_MICRO, false, 96, 1)).unwrap();
        let mut rec = Vec::new();
        for x in [1u32, 2, 100, 100] {
            rec.extend_from_slice(&x.to_le_bytes());
        }
        assert!(matches!(step(&h, &rec[..10]), Step::Need(16)));
        assert!(matches!(step(&h, &rec), Step::Need(116)));
        rec[8..12].copy_from_slice(&(MAX_CAPLEN + 1).to_le_bytes());
        assert!(matches!(step(&h, &rec), Step::Corrupt(_)));
        // snaplen 96: 65535 is still believed, 70000 is not.
        rec[8..12].copy_from_slice(&70_000u32.to_le_bytes());
        assert!(matches!(step(&h, &rec), Step::Corrupt(_)));
    }
}
