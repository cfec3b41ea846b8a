//! pcapng blocks: SHB (either byte order, several sections), IDB (link type, if_tsresol, if_tsoffset),
//! EPB, SPB, OPB packets, ISB drop counts; other blocks are skipped and counted. No accessor panics.
//!
//! Hand-written rather than taken from `pcap-parser` because the reader needs exactly this walk over
//! one borrowed window shared by the mmap and the streaming paths, with a "need more data" state and
//! block offsets; the format is small and fixed (draft-ietf-opsawg-pcapng).
use super::record::{ByteOrder, Record, Step, MAX_BLOCK_LEN, MAX_CAPLEN};
use super::{LinkType, ReadStats};

pub(crate) const SHB_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const BOM_LE: [u8; 4] = [0x4d, 0x3c, 0x2b, 0x1a];
const BOM_BE: [u8; 4] = [0x1a, 0x2b, 0x3c, 0x4d];

const IDB: u32 = 0x0000_0001;
const OPB: u32 = 0x0000_0002;
const SPB: u32 = 0x0000_0003;
const ISB: u32 = 0x0000_0005;
const EPB: u32 = 0x0000_0006;

const OPT_ENDOFOPT: u16 = 0;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;
const ISB_IFDROP: u16 = 5;

/// Block header (type, length) plus trailing length.
const BLOCK_OVERHEAD: u32 = 12;
const SHB_MIN_LEN: u32 = 28;

/// How to turn timestamp units into nanoseconds, chosen once per IDB so the per-packet cost is one
/// multiply or divide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scale {
    Mul(u64),
    Div(u64),
    /// units * 1e9 / 2^n
    Pow2(u32),
}

impl Scale {
    /// From the if_tsresol byte: MSB clear, 10^-n seconds; MSB set, 2^-n seconds.
    fn from_tsresol(v: u8) -> Option<Scale> {
        let n = u32::from(v & 0x7f);
        if v & 0x80 != 0 {
            return (n < 128).then_some(Scale::Pow2(n));
        }
        if n <= 9 {
            Some(Scale::Mul(10u64.pow(9 - n)))
        } else {
            // 10^(n-9) must fit in a u64; finer resolutions than 1e-28 s are not real.
            10u64.checked_pow(n - 9).map(Scale::Div)
        }
    }

    #[inline]
    fn to_ns(self, units: u64) -> i64 {
        let ns = match self {
            Scale::Mul(m) => units.saturating_mul(m),
            Scale::Div(d) => units / d,
            Scale::Pow2(n) => {
                u64::try_from((u128::from(units) * 1_000_000_000) >> n).unwrap_or(u64::MAX)
            }
        };
        i64::try_from(ns).unwrap_or(i64::MAX)
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    /// False when the IDB was too short to read a link type; its packets are skipped.
    valid: bool,
    link_type: LinkType,
    snaplen: u32,
    scale: Scale,
    offset_ns: i64,
}

/// The walk state: byte order of the current section and its interfaces.
#[derive(Debug)]
pub(crate) struct State {
    order: ByteOrder,
    interfaces: Vec<Interface>,
    /// Timestamp of the last packet, given to Simple Packet Blocks (which carry none).
    last_ts_ns: i64,
    /// `ReadStats::interface_drops` as it stood when this section began: interface ids restart
    /// with each section, so a section's reports are added to what earlier sections counted.
    drops_base: Vec<(u32, u64)>,
}

/// Does `b` start like a pcapng file?
pub(crate) fn sniff(b: &[u8]) -> bool {
    b.starts_with(&SHB_MAGIC)
}

impl State {
    pub fn new() -> State {
        State {
            order: ByteOrder::Little,
            interfaces: Vec::new(),
            last_ts_ns: 0,
            drops_base: Vec::new(),
        }
    }

    /// Look at the block at the start of `b`, updating section and interface state.
    pub fn step(&mut self, b: &[u8], stats: &mut ReadStats) -> Step {
        if b.len() < BLOCK_OVERHEAD as usize {
            return Step::Need(BLOCK_OVERHEAD);
        }
        let is_shb = b.starts_with(&SHB_MAGIC);
        // The byte order of a section is known only from its SHB, so read it before the length.
        let order = if is_shb {
            match b.get(8..12) {
                Some(m) if m == BOM_LE => ByteOrder::Little,
                Some(m) if m == BOM_BE => ByteOrder::Big,
                _ => return Step::Corrupt("pcapng section header with a bad byte-order magic"),
            }
        } else {
            self.order
        };
        let block_type = order.u32(b, 0);
        let total = order.u32(b, 4);
        if total < BLOCK_OVERHEAD || total % 4 != 0 || total > MAX_BLOCK_LEN {
            return Step::Corrupt("pcapng block length impossible");
        }
        if is_shb && total < SHB_MIN_LEN {
            return Step::Corrupt("pcapng section header block too short");
        }
        if b.len() < total as usize {
            return Step::Need(total);
        }
        if order.u32(b, total as usize - 4) != total {
            return Step::Corrupt("pcapng block trailing length differs from its leading length");
        }
        let body = b.get(8..total as usize - 4).unwrap_or_default();
        if is_shb {
            if order.u16(body, 4) != 1 {
                return Step::Corrupt("pcapng section of an unknown major version");
            }
            self.order = order;
            self.interfaces.clear();
            self.drops_base.clone_from(&stats.interface_drops);
            return Step::Consumed(total);
        }
        match block_type {
            EPB | OPB => self.packet_block(block_type, body, total, stats),
            SPB => self.simple_packet_block(body, total, stats),
            IDB => {
                self.interface_block(body, stats);
                Step::Consumed(total)
            }
            ISB => {
                self.statistics_block(body, stats);
                Step::Consumed(total)
            }
            _ => {
                stats.skipped_blocks += 1;
                Step::Consumed(total)
            }
        }
    }

    fn interface_block(&mut self, body: &[u8], stats: &mut ReadStats) {
        let o = self.order;
        let mut ifc = Interface {
            valid: body.len() >= 8,
            link_type: LinkType::from(o.u16(body, 0)),
            snaplen: o.u32(body, 4),
            scale: Scale::Mul(1_000),
            offset_ns: 0,
        };
        let mut malformed = !ifc.valid;
        // Interface ids are positions, so even a malformed IDB takes its place.
        let ok = for_each_option(o, body.get(8..).unwrap_or_default(), |code, value| {
            match (code, value.len()) {
                (IF_TSRESOL, 1) => match Scale::from_tsresol(value[0]) {
                    Some(s) => ifc.scale = s,
                    None => malformed = true,
                },
                (IF_TSOFFSET, 8) => {
                    let secs = o.u64(value, 0) as i64;
                    ifc.offset_ns = secs.saturating_mul(1_000_000_000);
                }
                _ => {}
            }
        });
        if malformed || !ok {
            stats.skipped_blocks += 1;
        }
        self.interfaces.push(ifc);
    }

    fn statistics_block(&mut self, body: &[u8], stats: &mut ReadStats) {
        let o = self.order;
        if body.len() < 12 {
            stats.skipped_blocks += 1;
            return;
        }
        let interface_id = o.u32(body, 0);
        let mut drop = None;
        let ok = for_each_option(o, body.get(12..).unwrap_or_default(), |code, value| {
            if code == ISB_IFDROP && value.len() == 8 {
                drop = Some(o.u64(value, 0));
            }
        });
        if !ok {
            stats.skipped_blocks += 1;
        }
        if let Some(d) = drop {
            let base = self
                .drops_base
                .iter()
                .find(|(id, _)| *id == interface_id)
                .map_or(0, |e| e.1);
            let d = base.saturating_add(d);
            match stats
                .interface_drops
                .iter_mut()
                .find(|(id, _)| *id == interface_id)
            {
                Some(entry) => entry.1 = d,
                None => stats.interface_drops.push((interface_id, d)),
            }
        }
    }

    #[inline]
    fn packet_block(
        &mut self,
        block_type: u32,
        body: &[u8],
        total: u32,
        stats: &mut ReadStats,
    ) -> Step {
        const FIXED: usize = 20;
        let o = self.order;
        if body.len() < FIXED {
            stats.skipped_blocks += 1;
            return Step::Consumed(total);
        }
        // OPB: 16-bit interface id then a 16-bit drops count; EPB: 32-bit interface id.
        let interface_id = if block_type == OPB {
            u32::from(o.u16(body, 0))
        } else {
            o.u32(body, 0)
        };
        let units = (u64::from(o.u32(body, 4)) << 32) | u64::from(o.u32(body, 8));
        let caplen = o.u32(body, 12);
        let orig_len = o.u32(body, 16);
        let ifc = match self.interfaces.get(interface_id as usize) {
            Some(i) if i.valid => *i,
            _ => {
                stats.skipped_blocks += 1;
                return Step::Consumed(total);
            }
        };
        if caplen as usize > body.len() - FIXED || caplen > MAX_CAPLEN {
            stats.skipped_blocks += 1;
            return Step::Consumed(total);
        }
        let ts_ns = ifc.scale.to_ns(units).saturating_add(ifc.offset_ns);
        self.last_ts_ns = ts_ns;
        Step::Packet(Record {
            ts_ns,
            link_type: ifc.link_type,
            interface_id,
            data_start: 8 + FIXED as u32,
            caplen,
            orig_len,
            record_len: total,
        })
    }

    fn simple_packet_block(&mut self, body: &[u8], total: u32, stats: &mut ReadStats) -> Step {
        let ifc = match self.interfaces.first() {
            Some(i) if i.valid && body.len() >= 4 => *i,
            _ => {
                stats.skipped_blocks += 1;
                return Step::Consumed(total);
            }
        };
        let orig_len = self.order.u32(body, 0);
        // The captured length is implicit: the original length cut to the snaplen and to what
        // the block holds (the block also holds padding, hence the min with orig_len).
        let mut caplen = orig_len.min((body.len() - 4) as u32);
        if ifc.snaplen != 0 {
            caplen = caplen.min(ifc.snaplen);
        }
        stats.packets_without_timestamp += 1;
        Step::Packet(Record {
            ts_ns: self.last_ts_ns,
            link_type: ifc.link_type,
            interface_id: 0,
            data_start: 12,
            caplen,
            orig_len,
            record_len: total,
        })
    }
}

/// Walk the options (code, length, value padded to 4 bytes) until opt_endofopt or the end;
/// false when an option runs past the end of the block.
fn for_each_option(o: ByteOrder, mut opts: &[u8], mut f: impl FnMut(u16, &[u8])) -> bool {
    while opts.len() >= 4 {
        let code = o.u16(opts, 0);
        let len = usize::from(o.u16(opts, 2));
        if code == OPT_ENDOFOPT {
            return true;
        }
        let padded = (len + 3) & !3;
        let Some(value) = opts.get(4..4 + len) else {
            return false;
        };
        f(code, value);
        opts = opts.get(4 + padded..).unwrap_or_default();
    }
    true
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds pcapng blocks in either byte order for fixtures.
    pub(crate) struct Builder {
        pub big: bool,
        pub out: Vec<u8>,
    }

    impl Builder {
        pub fn new(big: bool) -> Builder {
            Builder {
                big,
                out: Vec::new(),
            }
        }
        fn u16(&self, x: u16) -> [u8; 2] {
            if self.big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        }
        fn u32(&self, x: u32) -> [u8; 4] {
            if self.big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        }
        pub fn opt(&self, code: u16, value: &[u8]) -> Vec<u8> {
            let mut v = Vec::new();
            v.extend_from_slice(&self.u16(code));
            v.extend_from_slice(&self.u16(value.len() as u16));
            v.extend_from_slice(value);
            while v.len() % 4 != 0 {
                v.push(0);
            }
            v
        }
        pub fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
            let mut body = body.to_vec();
            while !body.len().is_multiple_of(4) {
                body.push(0);
            }
            let total = body.len() as u32 + 12;
            let t = if block_type == 0x0a0d0d0a {
                SHB_MAGIC
            } else {
                self.u32(block_type)
            };
            self.out.extend_from_slice(&t);
            self.out.extend_from_slice(&self.u32(total));
            self.out.extend_from_slice(&body);
            self.out.extend_from_slice(&self.u32(total));
            self
        }
        pub fn shb(&mut self) -> &mut Self {
            let mut b = self.u32(0x1a2b_3c4d).to_vec();
            b.extend_from_slice(&self.u16(1));
            b.extend_from_slice(&self.u16(0));
            b.extend_from_slice(&[0xff; 8]);
            self.block(0x0a0d0d0a, &b)
        }
        pub fn idb(&mut self, link_type: u16, snaplen: u32, opts: &[Vec<u8>]) -> &mut Self {
            let mut b = self.u16(link_type).to_vec();
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&self.u32(snaplen));
            for o in opts {
                b.extend_from_slice(o);
            }
            self.block(IDB, &b)
        }
        pub fn epb(&mut self, ifc: u32, units: u64, data: &[u8], orig: u32) -> &mut Self {
            let mut b = self.u32(ifc).to_vec();
            b.extend_from_slice(&self.u32((units >> 32) as u32));
            b.extend_from_slice(&self.u32(units as u32));
            b.extend_from_slice(&self.u32(data.len() as u32));
            b.extend_from_slice(&self.u32(orig));
            b.extend_from_slice(data);
            self.block(EPB, &b)
        }
        pub fn opb(&mut self, ifc: u16, units: u64, data: &[u8]) -> &mut Self {
            let mut b = self.u16(ifc).to_vec();
            b.extend_from_slice(&self.u16(0));
            b.extend_from_slice(&self.u32((units >> 32) as u32));
            b.extend_from_slice(&self.u32(units as u32));
            b.extend_from_slice(&self.u32(data.len() as u32));
            b.extend_from_slice(&self.u32(data.len() as u32));
            b.extend_from_slice(data);
            self.block(OPB, &b)
        }
        pub fn spb(&mut self, data: &[u8], orig: u32) -> &mut Self {
            let mut b = self.u32(orig).to_vec();
            b.extend_from_slice(data);
            self.block(SPB, &b)
        }
        pub fn isb(&mut self, ifc: u32, ifdrop: u64) -> &mut Self {
            let mut b = self.u32(ifc).to_vec();
            b.extend_from_slice(&[0; 8]);
            let d = if self.big {
                ifdrop.to_be_bytes()
            } else {
                ifdrop.to_le_bytes()
            };
            b.extend_from_slice(&self.opt(ISB_IFDROP, &d));
            b.extend_from_slice(&self.opt(0, &[]));
            self.block(ISB, &b)
        }
    }

    /// Run the walker over a whole buffer: (packets as (offset, record), stats, final step).
    fn walk(b: &[u8]) -> (Vec<(usize, Record)>, ReadStats, Step) {
        let mut st = State::new();
        let mut stats = ReadStats::default();
        let mut pos = 0;
        let mut out = Vec::new();
        loop {
            match st.step(&b[pos..], &mut stats) {
                Step::Packet(r) => {
                    out.push((pos, r));
                    pos += r.record_len as usize;
                }
                Step::Consumed(n) => pos += n as usize,
                s => return (out, stats, s),
            }
        }
    }

    #[test]
    fn tsresol_scales() {
        assert_eq!(
            Scale::from_tsresol(6).unwrap().to_ns(1_500_000),
            1_500_000_000
        );
        assert_eq!(Scale::from_tsresol(9).unwrap().to_ns(7), 7);
        assert_eq!(Scale::from_tsresol(3).unwrap().to_ns(2), 2_000_000);
        assert_eq!(Scale::from_tsresol(12).unwrap().to_ns(5_000), 5);
        // 2^-10 s units: 1024 units are one second.
        assert_eq!(
            Scale::from_tsresol(0x80 | 10).unwrap().to_ns(1024),
            1_000_000_000
        );
        assert_eq!(
            Scale::from_tsresol(0x80 | 1).unwrap().to_ns(3),
            1_500_000_000
        );
        assert_eq!(Scale::from_tsresol(0x80 | 127).unwrap().to_ns(u64::MAX), 0);
        assert_eq!(Scale::from_tsresol(0x80).unwrap().to_ns(u64::MAX), i64::MAX);
        assert!(Scale::from_tsresol(40).is_none());
        assert_eq!(Scale::from_tsresol(0).unwrap().to_ns(u64::MAX), i64::MAX);
    }

    #[test]
    fn interfaces_with_their_own_link_type_resolution_and_offset() {
        for big in [false, true] {
            let mut b = Builder::new(big);
            let ns = b.opt(IF_TSRESOL, &[9]);
            let pow2 = b.opt(IF_TSRESOL, &[0x80 | 20]);
            let end = b.opt(0, &[]);
            let off = b.opt(
                IF_TSOFFSET,
                &if big {
                    100u64.to_be_bytes()
                } else {
                    100u64.to_le_bytes()
                },
            );
            b.shb()
                .idb(1, 0, &[])
                .idb(113, 0, &[ns, end])
                .idb(101, 0, &[pow2, off])
                .epb(0, 1_000_001, b"abc", 3)
                .epb(1, 2_000_000_005, b"defg", 60)
                .epb(2, 3 << 20, b"h", 1)
                .opb(1, 9, b"op")
                .isb(0, 42)
                .isb(0, 43)
                .isb(2, 7);
            let (pkts, stats, end) = walk(&b.out);
            assert!(matches!(end, Step::Need(12)), "{end:?}");
            let got: Vec<_> = pkts
                .iter()
                .map(|(_, r)| (r.ts_ns, r.link_type, r.interface_id, r.caplen, r.orig_len))
                .collect();
            assert_eq!(
                got,
                vec![
                    (1_000_001_000, 1, 0, 3, 3),
                    (2_000_000_005, 113, 1, 4, 60),
                    (103_000_000_000, 101, 2, 1, 1),
                    (9, 113, 1, 2, 2),
                ]
            );
            assert_eq!(stats.interface_drops, vec![(0, 43), (2, 7)]);
            assert_eq!(stats.skipped_blocks, 0);
            // Offsets are the block starts: SHB 28, IDBs 20, 32, 40 (with options).
            assert_eq!(pkts[0].0, 28 + 20 + 32 + 40);
        }
    }

    #[test]
    fn new_section_resets_interfaces_and_may_switch_byte_order() {
        let mut a = Builder::new(false);
        a.shb().idb(1, 0, &[]).epb(0, 1, b"x", 1);
        let mut b = Builder::new(true);
        b.shb()
            .idb(113, 0, &[])
            .epb(0, 2, b"y", 1)
            .epb(1, 3, b"z", 1);
        let mut all = a.out.clone();
        all.extend_from_slice(&b.out);
        let (pkts, stats, _) = walk(&all);
        let got: Vec<_> = pkts.iter().map(|(_, r)| (r.ts_ns, r.link_type)).collect();
        assert_eq!(got, vec![(1_000, 1), (2_000, 113)]);
        // The EPB naming interface 1 of the second section is skipped.
        assert_eq!(stats.skipped_blocks, 1);
        assert_eq!(pkts[1].0, a.out.len() + 28 + 20);
    }

    #[test]
    fn simple_packet_block_uses_first_interface_and_snaplen() {
        let mut b = Builder::new(false);
        b.shb()
            .idb(1, 4, &[])
            .idb(113, 0, &[])
            .epb(1, 77, b"e", 1)
            .spb(b"abcd", 300);
        let (pkts, stats, _) = walk(&b.out);
        let r = pkts[1].1;
        assert_eq!(
            (r.link_type, r.interface_id, r.caplen, r.orig_len),
            (1, 0, 4, 300)
        );
        assert_eq!(r.ts_ns, 77_000, "an SPB takes the previous packet's time");
        assert_eq!(stats.packets_without_timestamp, 1);
        // Without a snaplen the caplen is the orig len, not the padding.
        let mut b = Builder::new(false);
        b.shb().idb(1, 0, &[]).spb(b"abcde", 5);
        let (pkts, _, _) = walk(&b.out);
        assert_eq!(pkts[0].1.caplen, 5);
        assert_eq!(pkts[0].1.record_len, 12 + 4 + 8);
    }

    #[test]
    fn unknown_and_malformed_blocks_are_skipped_and_counted() {
        let mut b = Builder::new(false);
        b.shb().block(0xbad, b"custom").idb(1, 0, &[]);
        // EPB claiming more captured bytes than it holds.
        let mut bad = 0u32.to_le_bytes().to_vec();
        bad.extend_from_slice(&[0; 8]);
        bad.extend_from_slice(&500u32.to_le_bytes());
        bad.extend_from_slice(&500u32.to_le_bytes());
        bad.extend_from_slice(b"abcd");
        b.block(EPB, &bad).block(EPB, b"short").epb(0, 5, b"ok", 2);
        let (pkts, stats, end) = walk(&b.out);
        assert_eq!(pkts.len(), 1);
        assert_eq!(stats.skipped_blocks, 3);
        assert!(matches!(end, Step::Need(12)));
    }

    #[test]
    fn impossible_lengths_stop_the_walk() {
        let mut b = Builder::new(false);
        b.shb().idb(1, 0, &[]);
        let good = b.out.len();
        b.epb(0, 1, b"abcd", 4);
        let mut v = b.out.clone();
        v[good + 4..good + 8].copy_from_slice(&13u32.to_le_bytes());
        assert!(matches!(walk(&v).2, Step::Corrupt(_)));
        v[good + 4..good + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(walk(&v).2, Step::Corrupt(_)));
        let mut v = b.out.clone();
        let n = v.len();
        v[n - 4..].copy_from_slice(&40u32.to_le_bytes());
        assert!(matches!(walk(&v).2, Step::Corrupt(_)));
        // A cut block asks for its whole length.
        let (_, _, end) = walk(&b.out[..b.out.len() - 3]);
        assert!(matches!(end, Step::Need(36)), "{end:?}");
    }
}
