//! RTP and RTCP: header and compound-packet views, flow detection, per-stream analysis that
//! reproduces tshark's `-z rtp,streams` (or RFC 3550 A.1/A.8 metrics), RTCP-XR, and E-model MOS.
//! Sits beside `sip`: it may use `source` and `decode` types, never anything higher.
//!
//! Hand-written: the Rust RTP crates (rtp, webrtc-rtp, rtcp) build and send packets for a live
//! session; none gives borrowed lenient views, RTCP-XR VoIP metrics, or Wireshark's statistics.

pub mod detect;
pub mod header;
pub mod mos;
pub mod payload;
pub mod rtcp;
pub mod rtcp_xr;
pub mod stream;
pub mod vq;

#[cfg(test)]
mod oracle_tests;
#[cfg(test)]
mod testcap;

pub use detect::{
    classify_heuristic, classify_known_flow, looks_like_rtcp, tshark_claims_port, Classification,
};
pub use header::RtpHeader;
pub use stream::{
    ConvKey, Metrics, PayloadFormat, RtpFields, RtpPacket, StreamKey, StreamState, StreamSummary,
    StreamTable, Timeline,
};

/// Why bytes are not a well-formed RTP or RTCP packet. `Copy`, to be counted on the hot path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RtpError {
    #[error("shorter than the fixed header")]
    TooShort,
    #[error("version is not 2")]
    BadVersion,
    #[error("CSRC list overruns the packet")]
    CsrcOverrun,
    #[error("header extension overruns the packet")]
    ExtensionOverrun,
    #[error("length field overruns the datagram")]
    LengthOverrun,
}
