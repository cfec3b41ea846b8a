//! Where a packet lives: enough to re-read its exact bytes later (extraction, archive).

/// A capture file's number within one run or one catalog; the meaning is the caller's.
pub type FileId = u32;

/// The record of one packet inside a capture file.
///
/// `offset` is the byte offset of the record header (pcap packet header or pcapng block) in the
/// *uncompressed* capture stream; for a compressed file it counts decompressed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PacketLocation {
    pub file_id: FileId,
    pub offset: u64,
    /// Length of the whole record (header + data + padding), so the record can be copied verbatim.
    pub record_len: u32,
}
