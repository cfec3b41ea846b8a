//! sipidx: a pcap archive indexer and batch forensics library for SIP and RTP.
//! Data flows down the module list (source → decode → sip/rtp → index → store → query); never back up.
#![deny(unsafe_code)]

#[cfg(feature = "full")]
pub mod capture;
#[cfg(feature = "full")]
pub mod cli;
pub mod decode;
// CPU and scheduler hints: with `source::reader`'s mmap, the only `unsafe` in the crate.
#[allow(unsafe_code)]
mod hint;
#[cfg(feature = "full")]
pub mod index;
#[cfg(feature = "full")]
pub mod output;
#[cfg(feature = "full")]
pub mod query;
pub mod rtp;
pub mod sip;
pub mod source;
#[cfg(feature = "full")]
pub mod store;
pub mod text;
pub mod vocab;
