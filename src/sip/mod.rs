//! SIP (RFC 3261) message parsing over borrowed bytes: start line, headers, URIs, name-addr, body.
//! Hand-written: no maintained Rust crate parses SIP zero-copy and leniently enough for forensics.

#[cfg(test)]
mod corpus_tests;
pub mod correlate;
pub mod dialog;
mod headers;
mod lex;
pub mod megaco;
mod message;
pub mod rtp_stat;
pub mod scanner;
pub mod sdp;
pub mod start_line;
mod uri;
mod via;

pub use headers::{canonical_name, HeaderIter, HeaderValues, HeadersNamed};
pub use message::{parse, CSeq, Message, ParseError};
pub use rtp_stat::{RtpStat, StatHeader};
pub use sdp::{SdpError, SessionDescription};
pub use start_line::{looks_like_sip, stream_start, Start, StartLine};
pub use uri::{NameAddr, Uri};
pub use via::Via;
