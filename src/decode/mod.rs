//! Packet decoding below SIP: link layers, tunnels, IPv4/IPv6 with defragmentation, UDP, TCP
//! reassembly framed for SIP, and HEP v2/v3. Emits `Datagram`s; knows nothing of the index.

mod datagram;
mod decoder;

pub use datagram::{Datagram, Encap, HepInfo, Transport};
pub use decoder::{DecodeConfig, DecodeStats, Decoder};
