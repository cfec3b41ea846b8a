//! The public reader: detects compression and format by magic bytes, then walks records.
//! Plain files are memory-mapped; compressed ones are streamed through a bounded buffer.
use std::path::{Path, PathBuf};

use super::{FileId, LinkType, PacketLocation, SourceError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Zstd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap { nanosecond: bool, big_endian: bool },
    Pcapng,
}

/// One captured packet, borrowed from the mapped file or the stream buffer.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Capture time in nanoseconds since the Unix epoch (UTC).
    pub ts_ns: i64,
    pub link_type: LinkType,
    /// pcapng interface id; 0 for pcap.
    pub interface_id: u32,
    /// The captured bytes (caplen of them).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
    pub location: PacketLocation,
}

#[derive(Clone, Debug, Default)]
pub struct ReadStats {
    pub packets: u64,
    /// Captured bytes of all packets returned.
    pub packet_bytes: u64,
    /// Bytes of the (uncompressed) capture stream consumed.
    pub stream_bytes: u64,
    /// Set when the file ends inside a record: the offset of that last partial record.
    pub truncated_at: Option<u64>,
    /// pcapng blocks skipped (unknown types, malformed options) and records with absurd lengths skipped.
    pub skipped_blocks: u64,
    /// pcapng Interface Statistics Blocks: (interface id, isb_ifdrop) as last reported.
    pub interface_drops: Vec<(u32, u64)>,
}

/// A capture file open for reading; see `open_capture`.
pub struct CaptureReader {
    pub(crate) path: PathBuf,
    pub(crate) format: CaptureFormat,
    pub(crate) compression: Compression,
    pub(crate) stats: ReadStats,
    // implementation state is private to the source module
    pub(crate) inner: super::pcap::Inner,
}

/// Open `path`, detect compression (gzip, bzip2, zstd) and format (pcap µs/ns, either byte order; pcapng)
/// from magic bytes. `file_id` is stamped into every `PacketLocation`.
pub fn open_capture(path: &Path, file_id: FileId) -> Result<CaptureReader, SourceError> {
    let _ = (path, file_id);
    unimplemented!("source::open_capture")
}

impl CaptureReader {
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn format(&self) -> CaptureFormat {
        self.format
    }
    pub fn compression(&self) -> Compression {
        self.compression
    }
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }
    /// The next packet; `Ok(None)` at the end. A file cut mid-record ends with `Ok(None)` and
    /// `stats().truncated_at` set (never an error). Corrupt headers before any packet are errors.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, SourceError> {
        unimplemented!("CaptureReader::next_packet")
    }
}
