//! SIP (RFC 3261) message parsing over borrowed bytes: start line, headers, URIs, name-addr, body.
//! Hand-written: no maintained Rust crate parses SIP zero-copy and leniently enough for forensics.

pub mod correlate;
pub mod dialog;
pub mod megaco;
mod message;
pub mod rtp_stat;
mod scan;
pub mod scanner;
pub mod sdp;
mod uri;
mod via;

pub use message::{
    canonical_name, looks_like_sip, parse, CSeq, HeaderIter, HeaderValues, HeadersNamed, Message,
    ParseError, StartLine,
};
pub use rtp_stat::{RtpStat, StatHeader};
pub use sdp::{SdpError, SessionDescription};
pub use uri::{NameAddr, Uri};
pub use via::Via;
