//! IPv4 header view (RFC 791): options skipped, total length trims link padding, checksum not
//! verified (capture NICs often offload it, so a "bad" checksum is normal in captures).
use std::net::Ipv4Addr;

use super::wire::be16;

/// The summary of one IPv4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ipv4<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub identification: u16,
    /// Fragment offset in bytes.
    pub fragment_offset: u32,
    pub more_fragments: bool,
    /// The payload, trimmed to the total length (never beyond what was captured).
    pub payload: &'a [u8],
}

impl Ipv4<'_> {
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.fragment_offset != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

#[inline(always)]
pub(crate) fn parse(data: &[u8]) -> Result<Ipv4<'_>, Malformed> {
    let Some(h) = data.get(..20) else {
        return Err(Malformed);
    };
    if h[0] >> 4 != 4 {
        return Err(Malformed);
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < 20 || data.len() < ihl {
        return Err(Malformed);
    }
    let total = usize::from(be16([h[2], h[3]]));
    // A total length of 0 is what TCP segmentation offload leaves in captures of sent packets.
    let end = if total == 0 {
        data.len()
    } else if total < ihl {
        return Err(Malformed);
    } else {
        total.min(data.len())
    };
    let frag = be16([h[6], h[7]]);
    Ok(Ipv4 {
        src: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
        dst: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
        protocol: h[9],
        identification: be16([h[4], h[5]]),
        fragment_offset: u32::from(frag & 0x1fff) * 8,
        more_fragments: frag & 0x2000 != 0,
        payload: &data[ihl..end],
    })
}

#[cfg(test)]
pub(crate) fn build(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    id: u16,
    frag: u16,
    payload: &[u8],
) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&frag.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0xde, 0xad]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_padding_and_fragment_fields() {
        let mut p = build(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            17,
            0x1234,
            0x2000 | 3,
            b"abcd",
        );
        // Ethernet padding past the total length is trimmed
        p.extend_from_slice(&[0; 6]);
        let ip = parse(&p).unwrap();
        assert_eq!(ip.payload, b"abcd");
        assert_eq!(
            (ip.fragment_offset, ip.more_fragments, ip.identification),
            (24, true, 0x1234)
        );
        assert!(ip.is_fragment());
        assert_eq!(ip.src, Ipv4Addr::new(10, 0, 0, 1));

        // 4 bytes of options (IHL 6)
        let mut o = build([1, 1, 1, 1], [2, 2, 2, 2], 6, 1, 0x4000, b"xy");
        o[0] = 0x46;
        o.splice(20..20, [1, 1, 1, 0]);
        o[3] += 4;
        let ip = parse(&o).unwrap();
        assert_eq!(
            (ip.payload, ip.protocol, ip.is_fragment()),
            (&b"xy"[..], 6, false)
        );
    }

    #[test]
    fn truncated_bad_version_bad_ihl_rejected_and_tso_zero_length_accepted() {
        let p = build([1, 1, 1, 1], [2, 2, 2, 2], 17, 1, 0, b"data");
        assert_eq!(parse(&p[..19]), Err(Malformed));
        let mut v6 = p.clone();
        v6[0] = 0x65;
        assert_eq!(parse(&v6), Err(Malformed));
        let mut ihl = p.clone();
        ihl[0] = 0x44;
        assert_eq!(parse(&ihl), Err(Malformed));
        let mut tl = p.clone();
        tl[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(parse(&tl), Err(Malformed));
        let mut tso = p.clone();
        tso[2..4].copy_from_slice(&[0, 0]);
        assert_eq!(parse(&tso).unwrap().payload, b"data");
        // total length beyond the capture: keep what was captured
        assert_eq!(parse(&p[..22]).unwrap().payload, b"da");
    }
}
