//! On-disk encodings the ring writes: classic pcap (µs or ns magic) and pcapng (SHB, one IDB with
//! if_tsresol, EPBs with an optional opt_comment), appended into the ring's staging buffer.
//!
//! Hand-written beside `source::PcapWriter` because the ring must know where every record ends: on
//! a full disk it truncates the file to its last whole record rather than leave half of one.
use crate::source::LinkType;

/// Which container the ring writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Pcap,
    Pcapng,
}

impl FileFormat {
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Pcap => "pcap",
            FileFormat::Pcapng => "pcapng",
        }
    }
}

const PCAP_MAGIC_MICRO: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NANO: u32 = 0xa1b2_3c4d;
const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 0x0000_0001;
const EPB: u32 = 0x0000_0006;
const ISB: u32 = 0x0000_0005;
const ISB_STARTTIME: u16 = 2;
const ISB_ENDTIME: u16 = 3;
const ISB_IFDROP: u16 = 5;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;

/// What a file's header says about its packets.
#[derive(Clone, Debug)]
pub(crate) struct Header<'a> {
    pub format: FileFormat,
    pub link_type: LinkType,
    pub snaplen: u32,
    pub nanosecond: bool,
    pub if_name: &'a str,
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

fn push_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn push_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn push_option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    push_u16(out, code);
    push_u16(out, value.len() as u16);
    out.extend_from_slice(value);
    out.extend(std::iter::repeat_n(0, pad4(value.len())));
}

/// Writes the block's total length at `start + 4` and as the trailer.
fn close_block(out: &mut Vec<u8>, start: usize) {
    let len = (out.len() - start + 4) as u32;
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    push_u32(out, len);
}

/// Appends the file header (pcap global header, or pcapng SHB + IDB).
pub(crate) fn encode_header(h: &Header<'_>, out: &mut Vec<u8>) {
    match h.format {
        FileFormat::Pcap => {
            push_u32(
                out,
                if h.nanosecond {
                    PCAP_MAGIC_NANO
                } else {
                    PCAP_MAGIC_MICRO
                },
            );
            push_u16(out, 2);
            push_u16(out, 4);
            push_u32(out, 0); // thiszone
            push_u32(out, 0); // sigfigs
            push_u32(out, h.snaplen);
            push_u32(out, h.link_type);
        }
        FileFormat::Pcapng => {
            let start = out.len();
            push_u32(out, SHB);
            push_u32(out, 0);
            push_u32(out, BYTE_ORDER_MAGIC);
            push_u16(out, 1);
            push_u16(out, 0);
            out.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
            let appl = concat!("sipidx ", env!("CARGO_PKG_VERSION"));
            push_option(out, SHB_USERAPPL, appl.as_bytes());
            push_option(out, OPT_END, &[]);
            close_block(out, start);

            let start = out.len();
            push_u32(out, IDB);
            push_u32(out, 0);
            push_u16(out, h.link_type as u16);
            push_u16(out, 0);
            push_u32(out, h.snaplen);
            if !h.if_name.is_empty() {
                push_option(
                    out,
                    IF_NAME,
                    &h.if_name.as_bytes()[..h.if_name.len().min(1024)],
                );
            }
            push_option(out, IF_TSRESOL, &[if h.nanosecond { 9 } else { 6 }]);
            push_option(out, OPT_END, &[]);
            close_block(out, start);
        }
    }
}

/// Appends one packet record; `data` longer than the snaplen is cut to it. `comment` is kept only
/// in pcapng (classic pcap has nowhere to put it).
pub(crate) fn encode_record(
    h: &Header<'_>,
    ts_ns: i64,
    data: &[u8],
    orig_len: u32,
    comment: Option<&[u8]>,
    out: &mut Vec<u8>,
) {
    let data = &data[..data.len().min(h.snaplen as usize)];
    let caplen = data.len() as u32;
    let orig_len = orig_len.max(caplen);
    let ts_ns = ts_ns.max(0) as u64;
    match h.format {
        FileFormat::Pcap => {
            // pcap seconds are 32 bits: good until 2106.
            let secs = (ts_ns / 1_000_000_000) as u32;
            let frac = (ts_ns % 1_000_000_000) as u32;
            push_u32(out, secs);
            push_u32(out, if h.nanosecond { frac } else { frac / 1_000 });
            push_u32(out, caplen);
            push_u32(out, orig_len);
            out.extend_from_slice(data);
        }
        FileFormat::Pcapng => {
            let units = if h.nanosecond { ts_ns } else { ts_ns / 1_000 };
            let start = out.len();
            push_u32(out, EPB);
            push_u32(out, 0);
            push_u32(out, 0); // interface id: one IDB per file
            push_u32(out, (units >> 32) as u32);
            push_u32(out, units as u32);
            push_u32(out, caplen);
            push_u32(out, orig_len);
            out.extend_from_slice(data);
            out.extend(std::iter::repeat_n(0, pad4(data.len())));
            if let Some(c) = comment {
                push_option(out, OPT_COMMENT, &c[..c.len().min(0xffff)]);
                push_option(out, OPT_END, &[]);
            }
            close_block(out, start);
        }
    }
}

/// What the capturer lost while one file was written, from libpcap's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Drops {
    /// `ps_ifdrop`: dropped by the interface or its driver.
    pub interface: u64,
    /// `ps_drop`: dropped by the kernel (buffer full: the capturer did not keep up).
    pub os: u64,
}

/// Appends a pcapng Interface Statistics Block saying what the capturer dropped between the
/// file's first and last packet, which `index` reports as possible capture loss. Both counts go
/// into `isb_ifdrop`, as dumpcap puts libpcap's `ps_drop` there (Wireshark and `source::pcapng`
/// read it as the capture's drops). Each ring file is its own section, so the count is the
/// file's own. Classic pcap has nowhere to put it.
pub(crate) fn encode_drops(h: &Header<'_>, span_ns: (i64, i64), drops: Drops, out: &mut Vec<u8>) {
    if h.format != FileFormat::Pcapng {
        return;
    }
    let units = |ts_ns: i64| {
        let t = ts_ns.max(0) as u64;
        let u = if h.nanosecond { t } else { t / 1_000 };
        let mut b = ((u >> 32) as u32).to_le_bytes().to_vec();
        b.extend_from_slice(&(u as u32).to_le_bytes());
        b
    };
    let start = out.len();
    push_u32(out, ISB);
    push_u32(out, 0);
    push_u32(out, 0); // interface id: one IDB per file
    out.extend_from_slice(&units(span_ns.1));
    push_option(out, ISB_STARTTIME, &units(span_ns.0));
    push_option(out, ISB_ENDTIME, &units(span_ns.1));
    let dropped = drops.interface.saturating_add(drops.os);
    push_option(out, ISB_IFDROP, &dropped.to_le_bytes());
    push_option(out, OPT_END, &[]);
    close_block(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::open_capture;

    fn roundtrip(format: FileFormat, nanosecond: bool) {
        let h = Header {
            format,
            link_type: crate::source::linktype::RAW,
            snaplen: 8,
            nanosecond,
            if_name: "lo",
        };
        let mut buf = Vec::new();
        encode_header(&h, &mut buf);
        encode_record(
            &h,
            1_700_000_000_123_456_789,
            b"0123456789",
            10,
            None,
            &mut buf,
        );
        encode_record(
            &h,
            1_700_000_001_000_000_001,
            b"abc",
            3,
            Some(b"hep id=7"),
            &mut buf,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("x.{}", format.extension()));
        std::fs::write(&path, &buf).unwrap();
        let mut r = open_capture(&path, 0).unwrap();
        let p = r.next_packet().unwrap().unwrap();
        let want = if nanosecond {
            1_700_000_000_123_456_789
        } else {
            1_700_000_000_123_456_000
        };
        assert_eq!((p.ts_ns, p.data, p.orig_len), (want, &b"01234567"[..], 10));
        assert_eq!(p.link_type, crate::source::linktype::RAW);
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(p.data, b"abc");
        assert!(r.next_packet().unwrap().is_none());
    }

    #[test]
    fn pcap_and_pcapng_read_back() {
        for f in [FileFormat::Pcap, FileFormat::Pcapng] {
            for ns in [false, true] {
                roundtrip(f, ns);
            }
        }
    }

    #[test]
    fn pcapng_blocks_are_aligned() {
        let h = Header {
            format: FileFormat::Pcapng,
            link_type: 1,
            snaplen: 65535,
            nanosecond: true,
            if_name: "eth0",
        };
        let mut buf = Vec::new();
        encode_header(&h, &mut buf);
        encode_record(&h, 5, b"12345", 5, Some(b"c"), &mut buf);
        assert_eq!(buf.len() % 4, 0);
        // every block's leading and trailing lengths agree
        let mut off = 0;
        while off < buf.len() {
            let len = u32::from_le_bytes(buf[off + 4..off + 8].try_into().unwrap()) as usize;
            let tail = u32::from_le_bytes(buf[off + len - 4..off + len].try_into().unwrap());
            assert_eq!(len, tail as usize);
            off += len;
        }
        assert_eq!(off, buf.len());
    }
}
