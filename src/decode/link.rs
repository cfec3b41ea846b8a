//! Link layers down to the network-layer bytes: Ethernet II (with VLAN stacks), Linux cooked
//! capture v1/v2, BSD NULL/LOOP, and raw IP. Each header is length-checked once, then sliced.
use super::vlan;
use super::wire::{be16, u16_at};
use crate::source::{linktype, LinkType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkError {
    /// A LINKTYPE this decoder does not read.
    Unsupported,
    /// Too short, or a header field that cannot be.
    Malformed,
    /// A well-formed frame that does not carry IPv4/IPv6 (ARP, LLC, LLDP...).
    NonIp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Network {
    Ipv4,
    Ipv6,
}

/// The network-layer bytes of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct L3<'a> {
    pub net: Network,
    pub bytes: &'a [u8],
    /// Innermost VLAN id, if the frame was tagged.
    pub vlan: Option<u16>,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// BSD address families: AF_INET is 2 everywhere; AF_INET6 differs per OS (Linux 10, NetBSD/OpenBSD
/// 24, FreeBSD 28, macOS 30).
fn family(af: u32) -> Result<Network, LinkError> {
    match af {
        2 => Ok(Network::Ipv4),
        10 | 24 | 28 | 30 => Ok(Network::Ipv6),
        _ => Err(LinkError::NonIp),
    }
}

#[inline]
fn by_ethertype(ethertype: u16, rest: &[u8]) -> Result<L3<'_>, LinkError> {
    // Untagged IPv4 is nearly every frame on a trunk: no tag walk for it.
    if ethertype == ETHERTYPE_IPV4 {
        return Ok(L3 {
            net: Network::Ipv4,
            bytes: rest,
            vlan: None,
        });
    }
    let (ethertype, bytes, vlan) =
        vlan::strip(ethertype, rest).map_err(|vlan::Malformed| LinkError::Malformed)?;
    let net = match ethertype {
        ETHERTYPE_IPV4 => Network::Ipv4,
        ETHERTYPE_IPV6 => Network::Ipv6,
        _ => return Err(LinkError::NonIp),
    };
    Ok(L3 { net, bytes, vlan })
}

/// Ethernet II; an 802.3 length field (< 0x0600) means LLC/SNAP, which never carries our IP here.
#[inline]
pub(crate) fn ethernet(data: &[u8]) -> Result<L3<'_>, LinkError> {
    let ethertype = u16_at(data, 12).ok_or(LinkError::Malformed)?;
    if ethertype < 0x0600 {
        return Err(LinkError::NonIp);
    }
    by_ethertype(ethertype, &data[14..])
}

/// Network bytes of one captured frame of link type `link_type`.
#[inline]
pub(crate) fn parse(link_type: LinkType, data: &[u8]) -> Result<L3<'_>, LinkError> {
    match link_type {
        linktype::ETHERNET => ethernet(data),
        linktype::LINUX_SLL => {
            // packet type, ARPHRD type, address length, 8 address bytes, protocol
            let proto = u16_at(data, 14).ok_or(LinkError::Malformed)?;
            by_ethertype(proto, &data[16..])
        }
        linktype::LINUX_SLL2 => {
            // protocol, reserved, interface index, ARPHRD type, packet type, address length, address
            if data.len() < 20 {
                return Err(LinkError::Malformed);
            }
            by_ethertype(be16([data[0], data[1]]), &data[20..])
        }
        linktype::NULL | linktype::LOOP => {
            let Some(&[a, b, c, d]) = data.get(..4) else {
                return Err(LinkError::Malformed);
            };
            let af = if link_type == linktype::LOOP {
                u32::from_be_bytes([a, b, c, d])
            } else {
                // Host byte order of the capturing machine, which the file does not record: a family
                // is small, so whichever reading fits in 16 bits is the right one.
                let le = u32::from_le_bytes([a, b, c, d]);
                if le > 0xffff {
                    le.swap_bytes()
                } else {
                    le
                }
            };
            Ok(L3 {
                net: family(af)?,
                bytes: &data[4..],
                vlan: None,
            })
        }
        linktype::RAW => {
            let net = match data.first().map(|b| b >> 4) {
                Some(4) => Network::Ipv4,
                Some(6) => Network::Ipv6,
                _ => return Err(LinkError::Malformed),
            };
            Ok(L3 {
                net,
                bytes: data,
                vlan: None,
            })
        }
        linktype::IPV4 => Ok(L3 {
            net: Network::Ipv4,
            bytes: data,
            vlan: None,
        }),
        linktype::IPV6 => Ok(L3 {
            net: Network::Ipv6,
            bytes: data,
            vlan: None,
        }),
        _ => Err(LinkError::Unsupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ethertype: &[u8], rest: &[u8]) -> Vec<u8> {
        let mut v = vec![0xaa; 12];
        v.extend_from_slice(ethertype);
        v.extend_from_slice(rest);
        v
    }

    #[test]
    fn ethernet_ipv4_ipv6_llc_arp() {
        let f = eth(&[8, 0], &[0x45, 1]);
        let l3 = parse(linktype::ETHERNET, &f).unwrap();
        assert_eq!(
            (l3.net, l3.bytes, l3.vlan),
            (Network::Ipv4, &[0x45u8, 1][..], None)
        );
        let f = eth(&[0x86, 0xdd], &[0x60]);
        assert_eq!(parse(1, &f).unwrap().net, Network::Ipv6);
        assert_eq!(
            parse(1, &eth(&[0x00, 0x26], &[0x42, 0x42, 3])),
            Err(LinkError::NonIp)
        );
        assert_eq!(
            parse(1, &eth(&[0x08, 0x06], &[0; 28])),
            Err(LinkError::NonIp)
        );
        assert_eq!(parse(1, &[0; 13]), Err(LinkError::Malformed));
    }

    #[test]
    fn ethernet_qinq_9100_and_8100() {
        let f = eth(
            &[0x91, 0x00],
            &[0, 7, 0x81, 0x00, 0x0f, 0xff, 0x86, 0xdd, 0x60],
        );
        let l3 = parse(1, &f).unwrap();
        assert_eq!(
            (l3.net, l3.vlan, l3.bytes),
            (Network::Ipv6, Some(0xfff), &[0x60u8][..])
        );
    }

    #[test]
    fn sll_and_sll2() {
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.push(0x45);
        assert_eq!(parse(linktype::LINUX_SLL, &sll).unwrap().bytes, &[0x45]);
        // SLL with a VLAN-tagged protocol
        let mut sllv = sll[..14].to_vec();
        sllv.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a, 0x86, 0xdd, 0x60]);
        let l3 = parse(linktype::LINUX_SLL, &sllv).unwrap();
        assert_eq!((l3.net, l3.vlan), (Network::Ipv6, Some(10)));
        let mut sll2 = vec![
            0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        sll2.push(0x60);
        let l3 = parse(linktype::LINUX_SLL2, &sll2).unwrap();
        assert_eq!((l3.net, l3.bytes), (Network::Ipv6, &[0x60u8][..]));
        assert_eq!(
            parse(linktype::LINUX_SLL2, &sll2[..19]),
            Err(LinkError::Malformed)
        );
    }

    #[test]
    fn null_both_byte_orders_and_loop_network_order() {
        assert_eq!(
            parse(linktype::NULL, &[2, 0, 0, 0, 0x45]).unwrap().net,
            Network::Ipv4
        );
        assert_eq!(
            parse(linktype::NULL, &[0, 0, 0, 2, 0x45]).unwrap().net,
            Network::Ipv4
        );
        for af in [10u32, 24, 28, 30] {
            let mut le = af.to_le_bytes().to_vec();
            le.push(0x60);
            assert_eq!(parse(linktype::NULL, &le).unwrap().net, Network::Ipv6);
            let mut be = af.to_be_bytes().to_vec();
            be.push(0x60);
            assert_eq!(parse(linktype::NULL, &be).unwrap().net, Network::Ipv6);
            assert_eq!(parse(linktype::LOOP, &be).unwrap().net, Network::Ipv6);
        }
        assert_eq!(parse(linktype::LOOP, &[2, 0, 0, 0]), Err(LinkError::NonIp));
        assert_eq!(parse(linktype::NULL, &[7, 0, 0, 0]), Err(LinkError::NonIp));
        assert_eq!(parse(linktype::NULL, &[2, 0]), Err(LinkError::Malformed));
    }

    #[test]
    fn raw_by_version_nibble_and_fixed_ip_types() {
        assert_eq!(parse(linktype::RAW, &[0x45]).unwrap().net, Network::Ipv4);
        assert_eq!(parse(linktype::RAW, &[0x60]).unwrap().net, Network::Ipv6);
        assert_eq!(parse(linktype::RAW, &[0x10]), Err(LinkError::Malformed));
        assert_eq!(parse(linktype::RAW, &[]), Err(LinkError::Malformed));
        assert_eq!(parse(linktype::IPV4, &[0x45]).unwrap().net, Network::Ipv4);
        assert_eq!(parse(linktype::IPV6, &[0x60]).unwrap().net, Network::Ipv6);
        assert_eq!(parse(147, &[0x45]), Err(LinkError::Unsupported));
    }
}
