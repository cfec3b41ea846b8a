//! sipidx: a pcap archive indexer and batch forensics library for SIP and RTP.
//! Data flows down the module list (source → decode → sip/rtp → index → store → query); never back up.
#![deny(unsafe_code)]

pub mod capture;
pub mod cli;
pub mod decode;
pub mod index;
pub mod output;
pub mod query;
pub mod rtp;
pub mod sip;
pub mod source;
pub mod store;
