//! UDP header view (RFC 768): payload trimmed to the UDP length; checksum not verified.
//! Length 0 (IPv6 jumbograms, offloaded sends) means "to the end of the IP payload".
use super::wire::be16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Udp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

#[inline(always)]
pub(crate) fn parse(data: &[u8]) -> Result<Udp<'_>, Malformed> {
    let Some(&[s0, s1, d0, d1, l0, l1, _, _]) = data.get(..8) else {
        return Err(Malformed);
    };
    let len = usize::from(be16([l0, l1]));
    let end = match len {
        0 => data.len(),
        1..=7 => return Err(Malformed),
        // A snaplen-truncated capture keeps what it has.
        _ => len.min(data.len()),
    };
    Ok(Udp {
        src_port: be16([s0, s1]),
        dst_port: be16([d0, d1]),
        payload: &data[8..end],
    })
}

#[cfg(test)]
pub(crate) fn build(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = src_port.to_be_bytes().to_vec();
    v.extend_from_slice(&dst_port.to_be_bytes());
    v.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_to_length_and_rejects_short() {
        let mut d = build(5060, 5080, b"hello");
        d.extend_from_slice(b"trailer");
        let u = parse(&d).unwrap();
        assert_eq!(
            (u.src_port, u.dst_port, u.payload),
            (5060, 5080, &b"hello"[..])
        );
        assert_eq!(parse(&d[..7]), Err(Malformed));
        let mut bad = d.clone();
        bad[4..6].copy_from_slice(&[0, 5]);
        assert_eq!(parse(&bad), Err(Malformed));
        assert_eq!(parse(&d[..10]).unwrap().payload, b"he");
    }
}
