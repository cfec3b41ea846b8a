//! Writing classic pcap files (extraction, capture, tests): little-endian header with the µs or ns
//! magic, then one record per packet. Packets longer than the snaplen are cut to it, as libpcap does.
use std::io::{self, Write};

use super::pcap::{MAGIC_MICRO, MAGIC_NANO};
use super::LinkType;

/// A pcap writer over any `Write`; wrap files in a `BufWriter` (records are written piecewise).
pub struct PcapWriter<W: Write> {
    out: W,
    nanosecond: bool,
    snaplen: u32,
    packets: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Write the file header. `nanosecond` picks the 0xa1b23c4d magic (ns timestamps) over
    /// 0xa1b2c3d4 (µs); a `snaplen` of 0 means 262144, libpcap's default.
    pub fn new(
        mut out: W,
        link_type: LinkType,
        snaplen: u32,
        nanosecond: bool,
    ) -> io::Result<Self> {
        let snaplen = if snaplen == 0 { 262_144 } else { snaplen };
        let magic = if nanosecond { MAGIC_NANO } else { MAGIC_MICRO };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&magic.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0, as every modern writer does.
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&link_type.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            nanosecond,
            snaplen,
            packets: 0,
        })
    }

    /// Append one packet. `ts_ns` must lie in pcap's range (0 to 2^32 seconds after the epoch);
    /// a µs file drops the sub-microsecond part. `orig_len` below the data length is raised to it.
    pub fn write_packet(&mut self, ts_ns: i64, data: &[u8], orig_len: u32) -> io::Result<()> {
        let secs = ts_ns.div_euclid(1_000_000_000);
        let frac_ns = ts_ns.rem_euclid(1_000_000_000) as u32;
        let secs = u32::try_from(secs).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("timestamp {ts_ns} ns is outside the pcap range"),
            )
        })?;
        let frac = if self.nanosecond {
            frac_ns
        } else {
            frac_ns / 1_000
        };
        let caplen = data.len().min(self.snaplen as usize);
        let data = &data[..caplen];
        let caplen = caplen as u32;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&frac.to_le_bytes());
        h[8..12].copy_from_slice(&caplen.to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.max(caplen).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)?;
        self.packets += 1;
        Ok(())
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Flush and hand back the writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
