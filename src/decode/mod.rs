//! Packet decoding below SIP: link layers, tunnels, IPv4/IPv6 with defragmentation, UDP, TCP
//! reassembly framed for SIP, and HEP v2/v3. Emits `Datagram`s; knows nothing of the index.
//!
//! One file per wire structure (`link`, `vlan`, `ipv4`, `ipv6`, `gre`, `udp`, `tcp`, `hep`) and per
//! engine (`defrag`, the reassembler in `tcp`, the SIP framer in `sipframe`); `decoder` ties them
//! together. Every view checks its length once; no accessor panics after that check. `dedup` is
//! the stage after decoding: SPAN duplicates and HEP copies of raw messages, decided per datagram.

mod datagram;
mod decoder;
mod dedup;
mod defrag;
mod gre;
pub(crate) mod hep;
mod ipv4;
mod ipv6;
mod link;
mod sipframe;
mod tcp;
mod udp;
mod vlan;
mod wire;

pub use datagram::{Datagram, Encap, HepInfo, OwnedDatagram, OwnedHepInfo, Transport};
pub use decoder::{DecodeConfig, DecodeStats, Decoder};
pub use dedup::{
    DedupConfig, DedupError, DedupStats, Deduplicator, DelayBuffer, DelayLimits, DelayStats, Flow,
    Mirror, Released, Verdict, SIP_T1_NS,
};
pub use tcp::StartRule;
