//! Test-only: a tiny pcap/pcapng reader for the corpus (the real one lives in `source`), plus
//! frame builders shared by the decoder tests.
use crate::source::{LinkType, PacketLocation};

pub(crate) struct OwnedPacket {
    pub ts_ns: i64,
    pub link_type: LinkType,
    pub data: Vec<u8>,
    pub location: PacketLocation,
}

fn u32_at(b: &[u8], o: usize, le: bool) -> u32 {
    let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
    if le {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    }
}

/// Every packet of a plain pcap or pcapng file (panics on anything odd: test input is known).
pub(crate) fn read_capture(path: &std::path::Path) -> Vec<OwnedPacket> {
    let b = std::fs::read(path).unwrap();
    let magic = u32_at(&b, 0, true);
    let mut out = Vec::new();
    if magic == 0x0a0d0d0a {
        let le = u32_at(&b, 8, true) == 0x1a2b3c4d;
        let mut links = Vec::new();
        let mut off = 0;
        while off + 12 <= b.len() {
            let kind = u32_at(&b, off, le);
            let len = u32_at(&b, off + 4, le) as usize;
            match kind {
                1 => links.push(u32::from(if le {
                    u16::from_le_bytes([b[off + 8], b[off + 9]])
                } else {
                    u16::from_be_bytes([b[off + 8], b[off + 9]])
                })),
                6 => {
                    let iface = u32_at(&b, off + 8, le) as usize;
                    let ts = (u64::from(u32_at(&b, off + 12, le)) << 32)
                        | u64::from(u32_at(&b, off + 16, le));
                    let cap = u32_at(&b, off + 20, le) as usize;
                    // tsresol is not parsed: the corpus pcapng files use µs or ns; tests ignore time.
                    out.push(OwnedPacket {
                        ts_ns: (ts as i64).wrapping_mul(1000),
                        link_type: links[iface],
                        data: b[off + 28..off + 28 + cap].to_vec(),
                        location: PacketLocation {
                            file_id: 0,
                            offset: off as u64,
                            record_len: len as u32,
                        },
                    });
                }
                _ => {}
            }
            off += len;
        }
    } else {
        let (le, nano) = match magic {
            0xa1b2c3d4 => (true, false),
            0xa1b23c4d => (true, true),
            0xd4c3b2a1 => (false, false),
            0x4d3cb2a1 => (false, true),
            m => panic!("not a capture: {m:x}"),
        };
        let link = u32_at(&b, 20, le) & 0x0fff_ffff;
        let mut off = 24;
        while off + 16 <= b.len() {
            let sec = i64::from(u32_at(&b, off, le));
            let frac = i64::from(u32_at(&b, off + 4, le));
            let cap = u32_at(&b, off + 8, le) as usize;
            out.push(OwnedPacket {
                ts_ns: sec * 1_000_000_000 + if nano { frac } else { frac * 1000 },
                link_type: link,
                data: b[off + 16..off + 16 + cap].to_vec(),
                location: PacketLocation {
                    file_id: 0,
                    offset: off as u64,
                    record_len: (16 + cap) as u32,
                },
            });
            off += 16 + cap;
        }
    }
    out
}
