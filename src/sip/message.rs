//! The SIP message view: one pass over the header block fills the fields every later stage needs.
//! After `parse` succeeds no accessor panics; values are slices of the input.
use super::{NameAddr, Uri};

/// Why a payload is not a SIP message we can use; `Copy` so the hot path only counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ParseError {
    #[error("not a SIP start line")]
    NotSip,
    #[error("no end of headers")]
    Truncated,
    #[error("malformed header")]
    BadHeader,
    #[error("malformed start line")]
    BadStartLine,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request { method: &'a [u8], uri: &'a [u8] },
    Response { code: u16, reason: &'a [u8] },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    pub number: u32,
    pub method: &'a [u8],
}

/// A parsed SIP message. Header values are raw slices (trimmed; folded values keep their CRLF).
#[derive(Clone, Debug)]
pub struct Message<'a> {
    /// The message as framed: start line through body.
    pub raw: &'a [u8],
    pub start: StartLine<'a>,
    /// The header block, without the start line and without the empty line.
    pub header_block: &'a [u8],
    pub body: &'a [u8],
    pub call_id: Option<&'a [u8]>,
    pub from: Option<NameAddr<'a>>,
    pub to: Option<NameAddr<'a>>,
    pub cseq: Option<CSeq<'a>>,
    /// Branch parameter of the topmost Via.
    pub via_branch: Option<&'a [u8]>,
    pub contact: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub server: Option<&'a [u8]>,
    pub p_asserted_identity: Option<&'a [u8]>,
    pub diversion: Option<&'a [u8]>,
    pub reason: Option<&'a [u8]>,
    /// X-Call-ID / X-CID / X-Orig-Call-ID style correlation header value.
    pub x_call_id: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    pub content_length: Option<u32>,
    pub expires: Option<u32>,
    /// Authorization or Proxy-Authorization present.
    pub has_authorization: bool,
    /// WWW-Authenticate or Proxy-Authenticate present.
    pub has_challenge: bool,
}

/// Cheap pre-check on a payload's first bytes: a SIP request line or status line.
pub fn looks_like_sip(payload: &[u8]) -> bool {
    let _ = payload;
    unimplemented!("looks_like_sip")
}

/// Parse one SIP message from `buf` (exactly one message; trailing bytes beyond Content-Length are
/// excluded from `body`, a short body is accepted as is).
pub fn parse(buf: &[u8]) -> Result<Message<'_>, ParseError> {
    let _ = buf;
    unimplemented!("sip::parse")
}

impl<'a> Message<'a> {
    pub fn method(&self) -> Option<&'a [u8]> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }
    /// The Request-URI, parsed.
    pub fn request_uri(&self) -> Option<Uri<'a>> {
        match self.start {
            StartLine::Request { uri, .. } => Uri::parse(uri),
            StartLine::Response { .. } => None,
        }
    }
    /// All headers in order as (name, value); names as written (compact forms not expanded).
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            rest: self.header_block,
        }
    }
    /// First value of a header by name, case-insensitive, compact form accepted.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        let _ = name;
        unimplemented!("Message::header")
    }
}

pub struct HeaderIter<'a> {
    #[allow(dead_code)]
    rest: &'a [u8],
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        unimplemented!("HeaderIter::next")
    }
}
