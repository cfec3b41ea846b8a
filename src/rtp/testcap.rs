//! Test-only stand-in for `source` + `decode` (written in parallel elsewhere): reads pcap/pcapng
//! files whole and yields UDP payloads of Ethernet/802.1Q/SLL/raw IPv4 and IPv6 (no fragments).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub struct Udp {
    pub ts_ns: i64,
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

fn u16be(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Every record's (timestamp ns, link type, bytes), in file order.
fn records(file: &[u8]) -> Vec<(i64, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let magic = u32::from_le_bytes(file[0..4].try_into().unwrap());
    if magic == 0x0a0d0d0a {
        // pcapng, little-endian sections only (all the corpus uses)
        let mut pos = 0;
        let mut ifaces: Vec<(u32, u64)> = Vec::new();
        while pos + 12 <= file.len() {
            let bt = u32::from_le_bytes(file[pos..pos + 4].try_into().unwrap());
            let len = u32::from_le_bytes(file[pos + 4..pos + 8].try_into().unwrap()) as usize;
            let body = &file[pos + 8..pos + len - 4];
            match bt {
                1 => {
                    let lt = u32::from(u16::from_le_bytes([body[0], body[1]]));
                    let mut res = 1_000_000u64; // µs default
                    let mut o = 8;
                    while o + 4 <= body.len() {
                        let code = u16::from_le_bytes([body[o], body[o + 1]]);
                        let olen = usize::from(u16::from_le_bytes([body[o + 2], body[o + 3]]));
                        if code == 0 {
                            break;
                        }
                        if code == 9 {
                            let v = body[o + 4];
                            res = if v & 0x80 != 0 {
                                1 << (v & 0x7f)
                            } else {
                                10u64.pow(u32::from(v))
                            };
                        }
                        o += 4 + ((olen + 3) & !3);
                    }
                    ifaces.push((lt, res));
                }
                6 => {
                    let ifc = u32::from_le_bytes(body[0..4].try_into().unwrap()) as usize;
                    let hi = u64::from(u32::from_le_bytes(body[4..8].try_into().unwrap()));
                    let lo = u64::from(u32::from_le_bytes(body[8..12].try_into().unwrap()));
                    let cap = u32::from_le_bytes(body[12..16].try_into().unwrap()) as usize;
                    let (lt, res) = ifaces[ifc];
                    let t = (hi << 32) | lo;
                    let ns = (u128::from(t) * 1_000_000_000 / u128::from(res)) as i64;
                    out.push((ns, lt, body[20..20 + cap].to_vec()));
                }
                _ => {}
            }
            pos += len;
        }
        return out;
    }
    let (le, nano) = match magic {
        0xa1b2c3d4 => (true, false),
        0xa1b23c4d => (true, true),
        0xd4c3b2a1 => (false, false),
        0x4d3cb2a1 => (false, true),
        _ => panic!("not a capture"),
    };
    let rd = |b: &[u8]| {
        let a: [u8; 4] = b.try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let lt = rd(&file[20..24]);
    let mut pos = 24;
    while pos + 16 <= file.len() {
        let sec = i64::from(rd(&file[pos..pos + 4]));
        let frac = i64::from(rd(&file[pos + 4..pos + 8]));
        let cap = rd(&file[pos + 8..pos + 12]) as usize;
        let ns = sec * 1_000_000_000 + if nano { frac } else { frac * 1000 };
        out.push((ns, lt, file[pos + 16..pos + 16 + cap].to_vec()));
        pos += 16 + cap;
    }
    out
}

fn udp_of(lt: u32, b: &[u8]) -> Option<(IpAddr, IpAddr, &[u8])> {
    let (mut ethertype, mut off) = match lt {
        1 => (u16be(b, 12), 14),
        113 => (u16be(b, 14), 16),
        101 => (if b[0] >> 4 == 6 { 0x86dd } else { 0x0800 }, 0),
        _ => return None,
    };
    while ethertype == 0x8100 || ethertype == 0x88a8 {
        ethertype = u16be(b, off + 2);
        off += 4;
    }
    let ip = b.get(off..)?;
    match ethertype {
        0x0800 => {
            let ihl = usize::from(ip[0] & 0xf) * 4;
            let total = usize::from(u16be(ip, 2));
            if ip[9] != 17 || u16be(ip, 6) & 0x3fff != 0 {
                return None;
            }
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            Some((src.into(), dst.into(), ip.get(ihl..total.min(ip.len()))?))
        }
        0x86dd => {
            if ip[6] != 17 {
                return None;
            }
            let plen = usize::from(u16be(ip, 4));
            let src: [u8; 16] = ip[8..24].try_into().ok()?;
            let dst: [u8; 16] = ip[24..40].try_into().ok()?;
            Some((
                Ipv6Addr::from(src).into(),
                Ipv6Addr::from(dst).into(),
                ip.get(40..40 + plen)?,
            ))
        }
        _ => None,
    }
}

/// UDP datagrams of a capture, and the timestamp of its first record (tshark's time origin).
pub fn read_udp(path: &str) -> (i64, Vec<Udp>) {
    let file = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let recs = records(&file);
    let origin = recs.first().map_or(0, |r| r.0);
    let mut out = Vec::new();
    for (ts_ns, lt, data) in recs {
        if let Some((src, dst, udp)) = udp_of(lt, &data) {
            if udp.len() < 8 {
                continue;
            }
            let ulen = usize::from(u16be(udp, 4)).clamp(8, udp.len());
            out.push(Udp {
                ts_ns,
                src,
                src_port: u16be(udp, 0),
                dst,
                dst_port: u16be(udp, 2),
                payload: udp[8..ulen].to_vec(),
            });
        }
    }
    (origin, out)
}
