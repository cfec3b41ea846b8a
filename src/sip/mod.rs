//! SIP (RFC 3261) message parsing over borrowed bytes: start line, headers, URIs, name-addr, body.
//! Hand-written: no maintained Rust crate parses SIP zero-copy and leniently enough for forensics.

pub mod dialog;
mod message;
mod uri;

pub use message::{looks_like_sip, parse, CSeq, HeaderIter, Message, ParseError, StartLine};
pub use uri::{NameAddr, Uri};
