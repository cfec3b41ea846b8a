//! Capture files: pcap and pcapng, plain (memory-mapped) or compressed (streamed), read record by
//! record; `writer` writes pcap for extraction. Every packet carries its `PacketLocation`.

mod error;
mod location;
mod pcap;
mod pcapng;
mod reader;
mod record;
mod stream;
#[cfg(test)]
mod tests;
pub mod writer;

pub use error::SourceError;
pub use location::{FileId, PacketLocation};
pub use reader::{
    open_capture, open_capture_with, read_record_bytes, CaptureFormat, CaptureReader, Compression,
    OpenOptions, Packet, ReadStats,
};
pub use writer::PcapWriter;

/// Link-layer header type, as numbered by tcpdump.org's LINKTYPE_ registry.
pub type LinkType = u32;

pub mod linktype {
    //! The LINKTYPE_ values this crate decodes.
    use super::LinkType;
    pub const NULL: LinkType = 0;
    pub const ETHERNET: LinkType = 1;
    pub const RAW: LinkType = 101;
    pub const LOOP: LinkType = 108;
    pub const LINUX_SLL: LinkType = 113;
    pub const IPV4: LinkType = 228;
    pub const IPV6: LinkType = 229;
    pub const LINUX_SLL2: LinkType = 276;
}
