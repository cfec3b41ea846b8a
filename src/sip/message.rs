//! The SIP message view: one pass over the header block fills the fields every later stage needs.
//! After `parse` succeeds no accessor panics; values are slices of the input. Linear in the input size.
//!
//! Leniency (RFC 3261 §7, forensics first): leading CR/LF before the start line (keep-alives, §7.5) are
//! skipped and counted in `consumed`; bare LF line endings are accepted; header lines that are not
//! `token ":" value` are skipped and counted in `bad_header_lines`; a Content-Length longer than the data
//! keeps what is there and sets `body_truncated`. A header block holding a NUL byte is `BadHeader`: SIP
//! is text, and NULs mean binary data or a zero-filled reassembly gap. A message without the empty line
//! that ends the headers is `Truncated` (on a stream: wait for more bytes).
use super::rtp_stat::{RtpStat, RtpStatIter};
use super::scan::{
    is_token, is_token_char, is_ws, param, parse_u32, split_unquoted, trim, SplitUnquoted,
};
use super::sdp::{self, SdpError, SessionDescription};
use super::{NameAddr, Uri, Via};

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

impl<'a> CSeq<'a> {
    /// `1 INVITE`; `None` unless a 32-bit number and a token method.
    pub fn parse(value: &'a [u8]) -> Option<CSeq<'a>> {
        let v = trim(value);
        let sp = v.iter().position(|&b| is_ws(b))?;
        let method = trim(&v[sp..]);
        if !is_token(method) {
            return None;
        }
        Some(CSeq {
            number: parse_u32(&v[..sp])?,
            method,
        })
    }
}

/// A parsed SIP message. Header values are raw slices (trimmed; folded values keep their CRLF).
/// Single-valued fields come from the first header of that name.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    /// The message as framed: start line through body (leading CR/LF excluded, bytes beyond
    /// Content-Length excluded).
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
    /// First value of the first Contact header (`*` included as written).
    pub contact: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub server: Option<&'a [u8]>,
    pub p_asserted_identity: Option<&'a [u8]>,
    pub diversion: Option<&'a [u8]>,
    pub reason: Option<&'a [u8]>,
    /// The first of X-Call-ID, X-CID, X-Orig-Call-ID in header order: headers B2BUAs and capture
    /// agents use to name the other leg's Call-ID. X-Leg-ID is not taken: it names a leg, not a call.
    pub x_call_id: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    /// `None` when absent or not a 32-bit decimal (then `content_length_invalid` is set).
    pub content_length: Option<u32>,
    /// Delta-seconds; `None` when absent or not decimal (RFC 2543 dates).
    pub expires: Option<u32>,
    /// Authorization or Proxy-Authorization present.
    pub has_authorization: bool,
    /// WWW-Authenticate or Proxy-Authenticate present.
    pub has_challenge: bool,
    /// The topmost Via value (first value of the first Via header); see [`Via::parse`].
    pub via: Option<&'a [u8]>,
    /// Number of Via values over all Via headers (comma-separated values counted one by one).
    pub via_count: u32,
    pub max_forwards: Option<u32>,
    pub supported: Option<&'a [u8]>,
    /// The first Record-Route header's whole value (it may hold several comma-separated routes).
    pub record_route: Option<&'a [u8]>,
    /// Well-formed header lines (folded lines count once).
    pub header_count: u32,
    /// Header lines skipped because they are not `token ":" value`.
    pub bad_header_lines: u32,
    /// Content-Length promised more bytes than the buffer holds; `body` is what is there.
    pub body_truncated: bool,
    /// A Content-Length header was present but not a 32-bit decimal; `body` runs to the end.
    pub content_length_invalid: bool,
    /// Bytes of the input this message spans, leading CR/LF included; on a stream, the next
    /// message starts here. Without a usable Content-Length it is the whole input.
    pub consumed: usize,
}

/// Header names this parser knows, for compact-form equivalence and field filling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hdr {
    CallId,
    From,
    To,
    Via,
    Contact,
    ContentLength,
    ContentType,
    Supported,
    Subject,
    ContentEncoding,
    Event,
    AllowEvents,
    ReferTo,
    SessionExpires,
    ReferredBy,
    AcceptContact,
    RejectContact,
    RequestDisposition,
    Identity,
    IdentityInfo,
    CSeq,
    UserAgent,
    Server,
    PAssertedIdentity,
    Diversion,
    Reason,
    XCallId,
    XCid,
    XOrigCallId,
    Expires,
    Authorization,
    ProxyAuthorization,
    WwwAuthenticate,
    ProxyAuthenticate,
    MaxForwards,
    RecordRoute,
}

/// (header, canonical name, compact form) — compact forms from RFC 3261 §7.3.3 and the IANA registry.
const HEADERS: &[(Hdr, &str, Option<u8>)] = &[
    (Hdr::CallId, "Call-ID", Some(b'i')),
    (Hdr::From, "From", Some(b'f')),
    (Hdr::To, "To", Some(b't')),
    (Hdr::Via, "Via", Some(b'v')),
    (Hdr::Contact, "Contact", Some(b'm')),
    (Hdr::ContentLength, "Content-Length", Some(b'l')),
    (Hdr::ContentType, "Content-Type", Some(b'c')),
    (Hdr::Supported, "Supported", Some(b'k')),
    (Hdr::Subject, "Subject", Some(b's')),
    (Hdr::ContentEncoding, "Content-Encoding", Some(b'e')),
    (Hdr::Event, "Event", Some(b'o')),
    (Hdr::AllowEvents, "Allow-Events", Some(b'u')),
    (Hdr::ReferTo, "Refer-To", Some(b'r')),
    (Hdr::SessionExpires, "Session-Expires", Some(b'x')),
    (Hdr::ReferredBy, "Referred-By", Some(b'b')),
    (Hdr::AcceptContact, "Accept-Contact", Some(b'a')),
    (Hdr::RejectContact, "Reject-Contact", Some(b'j')),
    (Hdr::RequestDisposition, "Request-Disposition", Some(b'd')),
    (Hdr::Identity, "Identity", Some(b'y')),
    (Hdr::IdentityInfo, "Identity-Info", Some(b'n')),
    (Hdr::CSeq, "CSeq", None),
    (Hdr::UserAgent, "User-Agent", None),
    (Hdr::Server, "Server", None),
    (Hdr::PAssertedIdentity, "P-Asserted-Identity", None),
    (Hdr::Diversion, "Diversion", None),
    (Hdr::Reason, "Reason", None),
    (Hdr::XCallId, "X-Call-ID", None),
    (Hdr::XCid, "X-CID", None),
    (Hdr::XOrigCallId, "X-Orig-Call-ID", None),
    (Hdr::Expires, "Expires", None),
    (Hdr::Authorization, "Authorization", None),
    (Hdr::ProxyAuthorization, "Proxy-Authorization", None),
    (Hdr::WwwAuthenticate, "WWW-Authenticate", None),
    (Hdr::ProxyAuthenticate, "Proxy-Authenticate", None),
    (Hdr::MaxForwards, "Max-Forwards", None),
    (Hdr::RecordRoute, "Record-Route", None),
];

fn known(name: &[u8]) -> Option<(Hdr, &'static str)> {
    if let [c] = name {
        let c = c.to_ascii_lowercase();
        return HEADERS
            .iter()
            .find(|(_, _, compact)| *compact == Some(c))
            .map(|&(h, n, _)| (h, n));
    }
    HEADERS
        .iter()
        .find(|(_, n, _)| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|&(h, n, _)| (h, n))
}

/// The canonical spelling of a known header name, expanding compact forms (`i` → `Call-ID`).
pub fn canonical_name(name: &[u8]) -> Option<&'static str> {
    known(name).map(|(_, n)| n)
}

/// One logical header line read by [`next_line`].
enum Line<'a> {
    Header {
        name: &'a [u8],
        value: &'a [u8],
    },
    Malformed,
    /// The empty line that ends the header block.
    End,
}

/// Reads the logical line at `buf[pos..]` (folded continuation lines included). Returns the line,
/// the position after it, and whether it ended with LF (false: the buffer ended inside it).
fn next_line(buf: &[u8], pos: usize) -> Option<(Line<'_>, usize, bool)> {
    let rest = buf.get(pos..).filter(|r| !r.is_empty())?;
    let mut end = match rest.iter().position(|&b| b == b'\n') {
        Some(lf) => lf,
        None => {
            let line = if rest == b"\r" {
                Line::End
            } else {
                split_header(rest)
            };
            return Some((line, buf.len(), false));
        }
    };
    if end == 0 || (end == 1 && rest[0] == b'\r') {
        return Some((Line::End, pos + end + 1, true));
    }
    // RFC 3261 §7.3.1: a line starting with SP/HT continues the previous header.
    while end + 1 < rest.len() && is_ws(rest[end + 1]) {
        match rest[end + 1..].iter().position(|&b| b == b'\n') {
            Some(lf) => end += 1 + lf,
            None => return Some((split_header(rest), buf.len(), false)),
        }
    }
    Some((split_header(&rest[..end]), pos + end + 1, true))
}

fn split_header(line: &[u8]) -> Line<'_> {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Line::Malformed;
    };
    let name = &line[..colon];
    let name = match name.iter().rposition(|&b| !is_ws(b)) {
        Some(last) => &name[..=last],
        None => return Line::Malformed,
    };
    if !is_token(name) {
        return Line::Malformed;
    }
    Line::Header {
        name,
        value: trim(&line[colon + 1..]),
    }
}

fn trim_end_ws(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|&b| !is_ws(b)).map_or(0, |p| p + 1);
    &s[..end]
}

fn trim_start_ws(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ws(b)).unwrap_or(s.len());
    &s[start..]
}

/// `SIP/2.0` (RFC 3261 §7.1: case-insensitive), any `digits.digits` version.
fn is_sip_version(s: &[u8]) -> bool {
    if s.len() < 7 || !s[..4].eq_ignore_ascii_case(b"SIP/") {
        return false;
    }
    let v = &s[4..];
    match v.iter().position(|&b| b == b'.') {
        Some(dot) => {
            dot > 0
                && dot + 1 < v.len()
                && v[..dot].iter().all(u8::is_ascii_digit)
                && v[dot + 1..].iter().all(u8::is_ascii_digit)
        }
        None => false,
    }
}

/// Request-Line or Status-Line (RFC 3261 §7.1, §7.2), without its line terminator.
fn parse_start_line(line: &[u8]) -> Result<StartLine<'_>, ParseError> {
    let line = trim_end_ws(line);
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        let sp = line
            .iter()
            .position(|&b| is_ws(b))
            .ok_or(ParseError::BadStartLine)?;
        if !is_sip_version(&line[..sp]) {
            return Err(ParseError::BadStartLine);
        }
        let rest = trim_start_ws(&line[sp..]);
        let code_end = rest.iter().position(|&b| is_ws(b)).unwrap_or(rest.len());
        let code = &rest[..code_end];
        let code = match code {
            [a, b, c] if code.iter().all(u8::is_ascii_digit) => {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => return Err(ParseError::BadStartLine),
        };
        if !(100..=699).contains(&code) {
            return Err(ParseError::BadStartLine);
        }
        let reason = trim_start_ws(&rest[code_end..]);
        if reason.iter().any(|&b| b < 0x20 && b != b'\t') {
            return Err(ParseError::BadStartLine);
        }
        return Ok(StartLine::Response { code, reason });
    }
    let last_sp = line
        .iter()
        .rposition(|&b| is_ws(b))
        .ok_or(ParseError::NotSip)?;
    if !is_sip_version(&line[last_sp + 1..]) {
        return Err(ParseError::NotSip);
    }
    let head = trim_end_ws(&line[..last_sp]);
    let sp = head
        .iter()
        .position(|&b| is_ws(b))
        .ok_or(ParseError::BadStartLine)?;
    let method = &head[..sp];
    let uri = trim_start_ws(&head[sp..]);
    let uri_ok = uri.contains(&b':') && uri.iter().all(|&b| b > b' ' && b != 0x7f);
    if !is_token(method) || !uri_ok {
        return Err(ParseError::BadStartLine);
    }
    Ok(StartLine::Request { method, uri })
}

fn skip_leading_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len())
}

/// `is_token_char` as a table, for the per-packet pre-check.
const TOKEN_CHARS: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = is_token_char(b as u8);
        b += 1;
    }
    t
};

/// Bytes a SIP message may start with: a token character, or CR/LF of keep-alives before it.
const OPENS_START_LINE: [bool; 256] = {
    let mut t = TOKEN_CHARS;
    t[b'\r' as usize] = true;
    t[b'\n' as usize] = true;
    t
};

/// Cheap pre-check on a payload's first line: a SIP request line (any token method) or status line.
/// Leading CR/LF (keep-alives) are skipped as `parse` does.
pub fn looks_like_sip(payload: &[u8]) -> bool {
    // Most payloads on a trunk are RTP (first byte 0x80..0xbf), which must leave after one lookup.
    match payload.first() {
        Some(&b) if OPENS_START_LINE[usize::from(b)] => {}
        _ => return false,
    }
    let rest = &payload[skip_leading_crlf(payload)..];
    // A start line opens with a token (the method, or the "SIP" of "SIP/2.0") ended by SP/HT or
    // by that "/": anything else fails `parse_start_line`, so the line end need not be sought.
    let token_len = rest
        .iter()
        .take_while(|&&b| TOKEN_CHARS[usize::from(b)])
        .count();
    let opens_right = match rest.get(token_len) {
        Some(&b) if is_ws(b) => token_len > 0,
        Some(b'/') => token_len == 3 && rest[..3].eq_ignore_ascii_case(b"SIP"),
        _ => false,
    };
    if !opens_right {
        return false;
    }
    let line = match rest.iter().position(|&b| b == b'\n') {
        Some(lf) => &rest[..lf],
        None => rest,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    !line.is_empty() && parse_start_line(line).is_ok()
}

/// Parse one SIP message from `buf` (exactly one message; trailing bytes beyond Content-Length are
/// excluded from `body`, a short body is accepted as is and flagged `body_truncated`).
/// Leading CR/LF are skipped (RFC 3261 §7.5); `raw` starts at the start line.
pub fn parse(buf: &[u8]) -> Result<Message<'_>, ParseError> {
    let skip = skip_leading_crlf(buf);
    let msg = &buf[skip..];
    if msg.is_empty() {
        return Err(ParseError::NotSip);
    }
    let (line, hdr_start) = match msg.iter().position(|&b| b == b'\n') {
        Some(lf) => (&msg[..lf], Some(lf + 1)),
        None => (msg, None),
    };
    let start = parse_start_line(line.strip_suffix(b"\r").unwrap_or(line))?;
    let hdr_start = hdr_start.ok_or(ParseError::Truncated)?;
    let mut m = Message::empty(msg, start);
    let mut pos = hdr_start;
    let (hdr_end, body_start) = loop {
        let Some((line, next, terminated)) = next_line(msg, pos) else {
            return Err(ParseError::Truncated);
        };
        if !terminated {
            return Err(ParseError::Truncated);
        }
        match line {
            Line::End => break (pos, next),
            Line::Malformed => m.bad_header_lines += 1,
            Line::Header { name, value } => {
                m.header_count += 1;
                m.apply(name, value);
            }
        }
        pos = next;
    };
    m.header_block = &msg[hdr_start..hdr_end];
    if m.header_block.contains(&0) {
        return Err(ParseError::BadHeader);
    }
    let available = &msg[body_start..];
    match m.content_length.map(|n| n as usize) {
        Some(n) if n <= available.len() => {
            m.body = &available[..n];
            m.raw = &msg[..body_start + n];
            m.consumed = skip + body_start + n;
        }
        cl => {
            m.body = available;
            m.body_truncated = cl.is_some();
            m.consumed = buf.len();
        }
    }
    Ok(m)
}

impl<'a> Message<'a> {
    fn empty(raw: &'a [u8], start: StartLine<'a>) -> Message<'a> {
        Message {
            raw,
            start,
            header_block: &raw[..0],
            body: &raw[..0],
            call_id: None,
            from: None,
            to: None,
            cseq: None,
            via_branch: None,
            contact: None,
            user_agent: None,
            server: None,
            p_asserted_identity: None,
            diversion: None,
            reason: None,
            x_call_id: None,
            content_type: None,
            content_length: None,
            expires: None,
            has_authorization: false,
            has_challenge: false,
            via: None,
            via_count: 0,
            max_forwards: None,
            supported: None,
            record_route: None,
            header_count: 0,
            bad_header_lines: 0,
            body_truncated: false,
            content_length_invalid: false,
            consumed: raw.len(),
        }
    }

    /// Fills the field a header feeds; the first header of a name wins.
    fn apply(&mut self, name: &'a [u8], value: &'a [u8]) {
        fn first<'a>(slot: &mut Option<&'a [u8]>, value: &'a [u8]) {
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        let Some((h, _)) = known(name) else { return };
        match h {
            Hdr::CallId => first(&mut self.call_id, value),
            Hdr::From if self.from.is_none() => self.from = NameAddr::parse(value),
            Hdr::To if self.to.is_none() => self.to = NameAddr::parse(value),
            Hdr::CSeq if self.cseq.is_none() => self.cseq = CSeq::parse(value),
            Hdr::Via => {
                for v in split_unquoted(value, b',').filter(|v| !v.is_empty()) {
                    self.via_count += 1;
                    if self.via.is_none() {
                        self.via = Some(v);
                        // Read the branch from the parameters even when sent-by is odd.
                        self.via_branch = super::scan::find_unquoted(v, b';')
                            .and_then(|sc| param(&v[sc + 1..], b"branch"));
                    }
                }
            }
            Hdr::Contact if self.contact.is_none() => {
                self.contact = split_unquoted(value, b',').find(|v| !v.is_empty());
            }
            Hdr::UserAgent => first(&mut self.user_agent, value),
            Hdr::Server => first(&mut self.server, value),
            Hdr::PAssertedIdentity => first(&mut self.p_asserted_identity, value),
            Hdr::Diversion => first(&mut self.diversion, value),
            Hdr::Reason => first(&mut self.reason, value),
            Hdr::XCallId | Hdr::XCid | Hdr::XOrigCallId => first(&mut self.x_call_id, value),
            Hdr::ContentType => first(&mut self.content_type, value),
            Hdr::ContentLength if self.content_length.is_none() && !self.content_length_invalid => {
                self.content_length = parse_u32(value);
                self.content_length_invalid = self.content_length.is_none();
            }
            Hdr::Expires if self.expires.is_none() => self.expires = parse_u32(value),
            Hdr::MaxForwards if self.max_forwards.is_none() => {
                self.max_forwards = parse_u32(value);
            }
            Hdr::Supported => first(&mut self.supported, value),
            Hdr::RecordRoute => first(&mut self.record_route, value),
            Hdr::Authorization | Hdr::ProxyAuthorization => self.has_authorization = true,
            Hdr::WwwAuthenticate | Hdr::ProxyAuthenticate => self.has_challenge = true,
            _ => {}
        }
    }

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
    /// All well-formed headers in order as (name, value); names as written (compact forms not
    /// expanded), folded values include their continuation lines. Malformed lines are skipped.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            rest: self.header_block,
        }
    }
    /// First value of a header by name, case-insensitive, compact form accepted.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers_named(name).next()
    }
    /// Values of every header with this name (case-insensitive, compact form accepted), in order.
    pub fn headers_named<'n>(&self, name: &'n str) -> HeadersNamed<'a, 'n> {
        HeadersNamed {
            inner: self.headers(),
            name: name.as_bytes(),
            known: known(name.as_bytes()).map(|(h, _)| h),
        }
    }
    /// Comma-separated values of every header with this name, split outside quotes and `<...>`,
    /// trimmed, empty ones dropped. Only meaningful for list headers (Via, Contact, Route, ...).
    pub fn header_values<'n>(&self, name: &'n str) -> HeaderValues<'a, 'n> {
        HeaderValues {
            headers: self.headers_named(name),
            current: None,
        }
    }
    /// Every Via value, topmost first, parsed; unparsable values are skipped.
    pub fn vias(&self) -> impl Iterator<Item = Via<'a>> {
        self.header_values("Via").filter_map(Via::parse)
    }
    /// The body as SDP when Content-Type is application/sdp and the body is not empty.
    pub fn sdp(&self) -> Option<Result<SessionDescription<'a>, SdpError>> {
        let ct = self.content_type?;
        let mime = trim(ct.split(|&b| b == b';').next().unwrap_or(ct));
        (mime.eq_ignore_ascii_case(b"application/sdp") && !self.body.is_empty())
            .then(|| sdp::parse(self.body))
    }
    /// End-of-call statistics headers (X-RTP-Stat, P-RTP-Stat, RTP-RxStat, RTP-TxStat, ...).
    pub fn rtp_stats(&self) -> impl Iterator<Item = RtpStat<'a>> {
        RtpStatIter::new(self.headers())
    }
}

/// Iterator over (name, value) of the header block; see [`Message::headers`].
#[derive(Clone, Debug)]
pub struct HeaderIter<'a> {
    rest: &'a [u8],
}

impl<'a> HeaderIter<'a> {
    /// Iterates a header block given directly (lines ending in CRLF or LF).
    pub fn new(header_block: &'a [u8]) -> HeaderIter<'a> {
        HeaderIter { rest: header_block }
    }
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (line, next, _) = next_line(self.rest, 0)?;
            self.rest = &self.rest[next.min(self.rest.len())..];
            match line {
                Line::Header { name, value } => return Some((name, value)),
                Line::Malformed => continue,
                Line::End => {
                    self.rest = &self.rest[..0];
                    return None;
                }
            }
        }
    }
}

/// Values of the headers with one name; see [`Message::headers_named`].
#[derive(Clone, Debug)]
pub struct HeadersNamed<'a, 'n> {
    inner: HeaderIter<'a>,
    name: &'n [u8],
    known: Option<Hdr>,
}

impl<'a> Iterator for HeadersNamed<'a, '_> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        for (name, value) in self.inner.by_ref() {
            let matches = match self.known {
                Some(h) => known(name).is_some_and(|(k, _)| k == h),
                None => name.eq_ignore_ascii_case(self.name),
            };
            if matches {
                return Some(value);
            }
        }
        None
    }
}

/// Comma-separated values over the headers with one name; see [`Message::header_values`].
pub struct HeaderValues<'a, 'n> {
    headers: HeadersNamed<'a, 'n>,
    current: Option<SplitUnquoted<'a>>,
}

impl<'a> Iterator for HeaderValues<'a, '_> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if let Some(v) = self
                .current
                .as_mut()
                .and_then(|s| s.find(|v| !v.is_empty()))
            {
                return Some(v);
            }
            self.current = Some(split_unquoted(self.headers.next()?, b','));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::sdp::Direction;
    use crate::sip::StatHeader;

    fn msg(lines: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        for l in lines {
            v.extend_from_slice(l.as_bytes());
            v.extend_from_slice(b"\r\n");
        }
        v
    }

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
Max-Forwards: 70\r\n\
From: \"Alice \\\"A\\\" Liddell\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 2 INVITE\r\n\
Contact: <sip:alice@client.atlanta.example.com;transport=tcp>, <sip:alice@backup.example.com>\r\n\
User-Agent: Softphone Beta1.5\r\n\
P-Asserted-Identity: \"Alice\" <sip:+4930123@atlanta.example.com;user=phone>\r\n\
Diversion: <sip:+4930999@atlanta.example.com>;reason=unconditional\r\n\
Reason: Q.850;cause=16;text=\"Normal call clearing\"\r\n\
X-CID: other-leg@b2bua\r\n\
X-Call-ID: later-one\r\n\
Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
Supported: replaces, timer\r\n\
Expires: 120\r\n\
Proxy-Authorization: Digest username=\"alice\", realm=\"atlanta.example.com\"\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 32\r\n\
\r\n\
v=0\r\nm=audio 4000 RTP/AVP 0\r\nc=X\r\n";

    #[test]
    fn request_fields() {
        let m = parse(INVITE.as_bytes()).unwrap();
        assert_eq!(m.method(), Some(&b"INVITE"[..]));
        assert_eq!(m.status(), None);
        assert_eq!(m.request_uri().unwrap().host, b"biloxi.example.com");
        assert_eq!(
            m.call_id,
            Some(&b"3848276298220188511@atlanta.example.com"[..])
        );
        let from = m.from.unwrap();
        assert_eq!(from.display_name, Some(&br#"Alice \"A\" Liddell"#[..]));
        assert_eq!(from.tag, Some(&b"9fxced76sl"[..]));
        let to = m.to.unwrap();
        assert_eq!((to.display_name, to.tag), (Some(&b"Bob"[..]), None));
        assert_eq!(
            m.cseq,
            Some(CSeq {
                number: 2,
                method: b"INVITE"
            })
        );
        assert_eq!(m.via_branch, Some(&b"z9hG4bK74bf9"[..]));
        assert_eq!(m.via_count, 1);
        assert_eq!(
            m.contact,
            Some(&b"<sip:alice@client.atlanta.example.com;transport=tcp>"[..])
        );
        assert_eq!(m.header_values("m").count(), 2);
        assert_eq!(m.user_agent, Some(&b"Softphone Beta1.5"[..]));
        assert_eq!(m.server, None);
        assert!(m.p_asserted_identity.unwrap().starts_with(b"\"Alice\""));
        assert!(m.diversion.unwrap().ends_with(b"reason=unconditional"));
        assert_eq!(
            m.reason,
            Some(&b"Q.850;cause=16;text=\"Normal call clearing\""[..])
        );
        assert_eq!(m.x_call_id, Some(&b"other-leg@b2bua"[..]));
        assert_eq!(
            m.record_route,
            Some(&b"<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"[..])
        );
        assert_eq!(m.supported, Some(&b"replaces, timer"[..]));
        assert_eq!((m.expires, m.max_forwards), (Some(120), Some(70)));
        assert!(m.has_authorization);
        assert!(!m.has_challenge);
        assert_eq!(m.content_type, Some(&b"application/sdp"[..]));
        assert_eq!(m.content_length, Some(32));
        assert_eq!(m.body, b"v=0\r\nm=audio 4000 RTP/AVP 0\r\nc=X");
        assert!(!m.body_truncated && !m.content_length_invalid);
        assert_eq!((m.header_count, m.bad_header_lines), (19, 0));
        assert_eq!(m.consumed, INVITE.len() - 2);
        assert_eq!(m.raw, &INVITE.as_bytes()[..INVITE.len() - 2]);
        assert!(m.header_block.starts_with(b"Via:") && m.header_block.ends_with(b"32\r\n"));
        let sdp = m.sdp().unwrap().unwrap();
        assert_eq!(sdp.media[0].port, 4000);
        assert_eq!(sdp.bad_lines, 1);
    }

    #[test]
    fn response_lines() {
        let m = parse(b"SIP/2.0 486 Busy Here\r\nCall-ID: a\r\nWWW-Authenticate: Digest realm=\"x\"\r\nServer: pbx\r\n\r\n").unwrap();
        assert_eq!(
            m.start,
            StartLine::Response {
                code: 486,
                reason: b"Busy Here"
            }
        );
        assert_eq!(m.status(), Some(486));
        assert_eq!(m.method(), None);
        assert_eq!(m.request_uri(), None);
        assert!(m.has_challenge);
        assert_eq!(m.server, Some(&b"pbx"[..]));
        // Empty reason phrase and lower-case version are read leniently.
        let m = parse(b"sip/2.0 200\r\n\r\n").unwrap();
        assert_eq!(
            m.start,
            StartLine::Response {
                code: 200,
                reason: b""
            }
        );
        for bad in [
            &b"SIP/2.0 099 Low\r\n\r\n"[..],
            b"SIP/2.0 700 High\r\n\r\n",
            b"SIP/2.0 2000 OK\r\n\r\n",
            b"SIP/2.0 20x OK\r\n\r\n",
            b"SIP/x 200 OK\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad).unwrap_err(),
                ParseError::BadStartLine,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            assert!(!looks_like_sip(bad));
        }
    }

    #[test]
    fn any_token_method_and_looks_like_sip() {
        for ok in [
            &b"FOO-BAR.baz! sip:x@y SIP/2.0\r\n"[..],
            b"PUBLISH sips:a@b SIP/2.0\r\n",
            b"MESSAGE tel:+1 SIP/2.0",
            b"\r\n\r\nOPTIONS sip:h SIP/2.0\r\n",
            b"SIP/2.0 180 Ringing\r\n",
        ] {
            assert!(looks_like_sip(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for no in [
            &b""[..],
            b"\r\n\r\n",
            b"GET / HTTP/1.1\r\n",
            b"HTTP/1.1 200 OK\r\n",
            b"INVITE sip:x@y\r\n",
            b"INVITE  SIP/2.0\r\n",
            b"INV(TE sip:x SIP/2.0\r\n",
            b"INVITE nocolon SIP/2.0\r\n",
            b"\x00\x00\x00\x00REGISTER sip:1.1.1.1 SIP/2.0\r\n",
            b"\x80\x00\x12\x34binary",
        ] {
            assert!(!looks_like_sip(no), "{:?}", String::from_utf8_lossy(no));
        }
    }

    /// The pre-check in `looks_like_sip` must never reject what the start-line parser accepts (nor
    /// accept what it rejects): compare with the plain definition on every one-byte change of a
    /// few start lines, with every byte value in every position.
    #[test]
    fn looks_like_sip_fast_reject_agrees_with_the_start_line_parser() {
        fn by_definition(payload: &[u8]) -> bool {
            let rest = &payload[skip_leading_crlf(payload)..];
            let line = match rest.iter().position(|&b| b == b'\n') {
                Some(lf) => &rest[..lf],
                None => rest,
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            !line.is_empty() && parse_start_line(line).is_ok()
        }
        let mut checked = 0;
        let mut accepted = 0;
        for base in [
            &b"SIP/2.0 200 OK\r\n"[..],
            b"sip/2.0\t180 x",
            b"\r\nINVITE sip:a@b SIP/2.0\r\n",
            b"A sip:x SIP/2.0",
            b"SIP sip:x SIP/2.0\r\n",
            b"\x80\x00\x12\x34\x00\x00",
        ] {
            for i in 0..base.len() {
                for v in 0..=255u8 {
                    let mut p = base.to_vec();
                    p[i] = v;
                    let want = by_definition(&p);
                    assert_eq!(
                        looks_like_sip(&p),
                        want,
                        "{:?}",
                        String::from_utf8_lossy(&p)
                    );
                    checked += 1;
                    accepted += usize::from(want);
                }
            }
        }
        // Both answers occur often, so the comparison is not vacuous.
        assert!(
            accepted > 1000 && checked - accepted > 1000,
            "{accepted}/{checked}"
        );
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert_eq!(parse(b"").unwrap_err(), ParseError::NotSip);
        assert_eq!(parse(b"\r\n\r\n").unwrap_err(), ParseError::NotSip);
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap_err(),
            ParseError::NotSip
        );
        assert_eq!(parse(b"\x00\x01\x02\x03").unwrap_err(), ParseError::NotSip);
        assert_eq!(
            parse(b"\x00\x00REGISTER sip:h SIP/2.0\r\n\r\n").unwrap_err(),
            ParseError::BadStartLine
        );
        assert_eq!(
            parse(b"INVITE sip:x SIP/2.0").unwrap_err(),
            ParseError::Truncated
        );
        assert_eq!(
            parse(b"INVITE sip:x SIP/2.0\r\nCall-ID: a\r\n").unwrap_err(),
            ParseError::Truncated
        );
        assert_eq!(
            parse(b"INVITE sip:x SIP/2.0\r\nCall-ID: a").unwrap_err(),
            ParseError::Truncated
        );
        assert_eq!(
            parse(b"INVITE sip:x SIP/2.0\r\nCall-ID: a\r\n\r").unwrap_err(),
            ParseError::Truncated
        );
        assert_eq!(
            parse(b"INVITE sip:x SIP/2.0\r\nCall-ID: a\x00b\r\n\r\n").unwrap_err(),
            ParseError::BadHeader
        );
        // Every prefix and every single-byte corruption of a real message parses or fails cleanly.
        let m = INVITE.as_bytes();
        for i in 0..m.len() {
            let _ = parse(&m[..i]);
            let _ = looks_like_sip(&m[..i]);
            let mut c = m.to_vec();
            c[i] = [0u8, b'\r', b'\n', b':', b' ', b'"', b'<', b','][i % 8];
            if let Ok(p) = parse(&c) {
                let _ = (
                    p.headers().count(),
                    p.vias().count(),
                    p.request_uri(),
                    p.sdp(),
                    p.rtp_stats().count(),
                );
            }
        }
    }

    #[test]
    fn compact_forms_are_equivalent() {
        let raw = msg(&[
            "INVITE sip:a@b SIP/2.0",
            "v: SIP/2.0/UDP h;branch=z9hG4bKc",
            "f: <sip:x@y>;tag=1",
            "t: <sip:a@b>",
            "i: compact@h",
            "CSeq: 1 INVITE",
            "m: <sip:x@h>",
            "c: application/sdp",
            "k: 100rel",
            "s: hi",
            "o: presence",
            "u: dialog",
            "r: <sip:c@d>",
            "x: 1800",
            "b: <sip:e@f>",
            "a: *;audio",
            "j: *;video",
            "d: proxy",
            "y: abc",
            "n: <https://x>;alg=rsa-sha1",
            "e: gzip",
            "l: 0",
            "",
        ]);
        let m = parse(&raw).unwrap();
        assert_eq!(m.call_id, Some(&b"compact@h"[..]));
        assert_eq!(m.via_branch, Some(&b"z9hG4bKc"[..]));
        assert_eq!(m.from.unwrap().tag, Some(&b"1"[..]));
        assert_eq!(m.contact, Some(&b"<sip:x@h>"[..]));
        assert_eq!(m.supported, Some(&b"100rel"[..]));
        assert_eq!(
            (m.content_type, m.content_length),
            (Some(&b"application/sdp"[..]), Some(0))
        );
        for (full, value) in [
            ("Call-ID", "compact@h"),
            ("CALL-id", "compact@h"),
            ("Subject", "hi"),
            ("Event", "presence"),
            ("Allow-Events", "dialog"),
            ("Refer-To", "<sip:c@d>"),
            ("Session-Expires", "1800"),
            ("Referred-By", "<sip:e@f>"),
            ("Accept-Contact", "*;audio"),
            ("Reject-Contact", "*;video"),
            ("Request-Disposition", "proxy"),
            ("Identity", "abc"),
            ("Identity-Info", "<https://x>;alg=rsa-sha1"),
            ("Content-Encoding", "gzip"),
            ("Content-Length", "0"),
        ] {
            assert_eq!(m.header(full), Some(value.as_bytes()), "{full}");
        }
        // And the other way round: asking by compact letter finds the long form.
        let m2 = parse(INVITE.as_bytes()).unwrap();
        assert_eq!(m2.header("i"), m2.call_id);
        assert_eq!(m2.header("L"), Some(&b"32"[..]));
        assert_eq!(m2.header("X-Unknown"), None);
        assert_eq!(canonical_name(b"v"), Some("Via"));
        assert_eq!(canonical_name(b"cseq"), Some("CSeq"));
        assert_eq!(canonical_name(b"q"), None);
        // Names are yielded as written.
        assert_eq!(
            m.headers().next(),
            Some((&b"v"[..], &b"SIP/2.0/UDP h;branch=z9hG4bKc"[..]))
        );
    }

    #[test]
    fn folding_and_whitespace_around_colon() {
        let raw = b"OPTIONS sip:h SIP/2.0\r\n\
Subject: I know you're there,\r\n     pick up the phone\r\n\tand talk to me!\r\n\
Via: SIP/2.0/UDP h1\r\n ;branch=z9hG4bKfold\r\n\
Call-ID   :   spaced@h  \r\n\
X-Empty:\r\n\
Content-Length : 0\r\n\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(
            m.header("subject"),
            Some(&b"I know you're there,\r\n     pick up the phone\r\n\tand talk to me!"[..])
        );
        assert_eq!(m.via_branch, Some(&b"z9hG4bKfold"[..]));
        assert_eq!(m.call_id, Some(&b"spaced@h"[..]));
        assert_eq!(m.header("X-Empty"), Some(&b""[..]));
        assert_eq!(m.content_length, Some(0));
        assert_eq!(m.header_count, 5);
        let names: Vec<&[u8]> = m.headers().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            vec![
                &b"Subject"[..],
                b"Via",
                b"Call-ID",
                b"X-Empty",
                b"Content-Length"
            ]
        );
    }

    #[test]
    fn multi_value_via_with_quoted_commas() {
        let raw = msg(&[
            "SIP/2.0 200 OK",
            r#"Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKtop;x="a,b;branch=no", SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bKmid"#,
            "v: SIP/2.0/TCP client.example.com;branch=z9hG4bKlast;received=192.0.2.1",
            "Via: ",
            "Call-ID: mv",
            "",
        ]);
        let m = parse(&raw).unwrap();
        assert_eq!(m.via_branch, Some(&b"z9hG4bKtop"[..]));
        assert_eq!(m.via_count, 3);
        assert_eq!(
            m.via,
            Some(&br#"SIP/2.0/UDP p1.example.com;branch=z9hG4bKtop;x="a,b;branch=no""#[..])
        );
        let vias: Vec<Via> = m.vias().collect();
        assert_eq!(vias.len(), 3);
        assert_eq!(
            (vias[1].host, vias[1].port),
            (&b"2001:db8::9"[..], Some(5070))
        );
        assert_eq!(vias[2].received(), Some(&b"192.0.2.1"[..]));
        assert_eq!(m.headers_named("via").count(), 3);
        assert_eq!(m.header_values("VIA").count(), 3);
    }

    #[test]
    fn ipv6_and_tel_request_uris() {
        let m = parse(b"INVITE sip:[2001:db8::1]:5080;transport=udp SIP/2.0\r\nTo: <tel:+4930123;phone-context=x>\r\n\r\n").unwrap();
        let u = m.request_uri().unwrap();
        assert_eq!((u.host, u.port), (&b"2001:db8::1"[..], Some(5080)));
        assert_eq!(m.to.unwrap().uri.unwrap().user, Some(&b"+4930123"[..]));
        let m = parse(b"INVITE tel:+4930123 SIP/2.0\r\n\r\n").unwrap();
        assert_eq!(m.request_uri().unwrap().scheme, b"tel");
    }

    #[test]
    fn lf_only_and_leading_keepalive() {
        let raw = b"\r\n\r\nBYE sip:b@h SIP/2.0\nCall-ID: lf@h\nCSeq: 3 BYE\nContent-Length: 4\n\nbodyEXTRA";
        let m = parse(raw).unwrap();
        assert_eq!(m.call_id, Some(&b"lf@h"[..]));
        assert_eq!(m.cseq.unwrap().number, 3);
        assert_eq!(m.body, b"body");
        assert!(m.raw.starts_with(b"BYE") && m.raw.ends_with(b"body"));
        assert_eq!(m.consumed, raw.len() - 5);
        assert!(looks_like_sip(raw));
    }

    #[test]
    fn content_length_cases() {
        let head = "MESSAGE sip:a@b SIP/2.0\r\nCall-ID: cl\r\n";
        let with = |cl: &str, body: &str| format!("{head}{cl}\r\n{body}").into_bytes();
        // Exact.
        let r = with("Content-Length: 5\r\n", "hello");
        let m = parse(&r).unwrap();
        assert_eq!(
            (m.body, m.body_truncated, m.consumed),
            (&b"hello"[..], false, r.len())
        );
        // Too small: the rest is not body (on a stream it is the next message).
        let r = with("Content-Length: 2\r\n", "helloSIP/2.0 200 OK\r\n\r\n");
        let m = parse(&r).unwrap();
        assert_eq!((m.body, m.body_truncated), (&b"he"[..], false));
        assert_eq!(parse(&r[m.consumed..]).unwrap_err(), ParseError::NotSip);
        // Two messages back to back: consumed frames the first.
        let mut two = with("Content-Length: 5\r\n", "hello");
        two.extend_from_slice(b"\r\nSIP/2.0 200 OK\r\nCall-ID: second\r\nl: 0\r\n\r\n");
        let first = parse(&two).unwrap();
        let second = parse(&two[first.consumed..]).unwrap();
        assert_eq!(
            (first.body, second.call_id),
            (&b"hello"[..], Some(&b"second"[..]))
        );
        assert_eq!(first.consumed + second.consumed, two.len());
        // Too big: keep what is there and flag it.
        let r = with("Content-Length: 500\r\n", "short");
        let m = parse(&r).unwrap();
        assert_eq!(
            (m.body, m.body_truncated, m.content_length),
            (&b"short"[..], true, Some(500))
        );
        // Missing: everything after the empty line.
        let r = with("", "all of it");
        let m = parse(&r).unwrap();
        assert_eq!(
            (m.body, m.content_length, m.body_truncated),
            (&b"all of it"[..], None, false)
        );
        // Invalid: flagged, body runs to the end.
        let r = with("Content-Length: 12abc\r\n", "xy");
        let m = parse(&r).unwrap();
        assert_eq!(
            (m.body, m.content_length, m.content_length_invalid),
            (&b"xy"[..], None, true)
        );
        let r = with("Content-Length: 99999999999\r\n", "");
        assert!(parse(&r).unwrap().content_length_invalid);
    }

    #[test]
    fn malformed_header_lines_are_counted_and_skipped() {
        let raw = b"OPTIONS sip:h SIP/2.0\r\n continuation without header\r\nno colon here\r\nBad Name: x\r\n: empty\r\nCall-ID: ok\r\n\r\n";
        let m = parse(raw).unwrap();
        assert_eq!((m.header_count, m.bad_header_lines), (1, 4));
        assert_eq!(m.call_id, Some(&b"ok"[..]));
        assert_eq!(m.headers().count(), 1);
    }

    #[test]
    fn rtp_stats_from_bye() {
        let raw = msg(&[
            "BYE sip:302@10.33.4.125 SIP/2.0",
            "Call-ID: 991750671245200001912@10.33.4.125",
            "CSeq: 1 BYE",
            "X-RTP-Stat:",
            " PS=207;OS=49680;;PR=314;OR=50240;PL=0;JI=600;LA=40;",
            "RTP-RxStat: Dur=13,Pkt=408,Oct=97680,LatePkt=8,LostPkt=0,AvgJit=0",
            "RTP-TxStat: Dur=13,Pkt=417,Oct=100080",
            "Content-Length: 0",
            "",
        ]);
        let m = parse(&raw).unwrap();
        let stats: Vec<RtpStat> = m.rtp_stats().collect();
        assert_eq!(stats.len(), 3);
        assert_eq!(stats[0].header, StatHeader::XRtpStat);
        assert_eq!(stats[0].packets_received(), Some(314));
        assert_eq!(stats[1].packets_received(), Some(408));
        assert_eq!(stats[2].packets_sent(), Some(417));
    }

    /// Builds a message with `n` headers, every third one folded, and a Via with `n` values.
    fn big(n: usize) -> Vec<u8> {
        let mut v = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKbig".to_vec();
        for _ in 0..n {
            v.extend_from_slice(b", SIP/2.0/UDP x;q=\"a,b\"");
        }
        v.extend_from_slice(b"\r\n");
        for i in 0..n {
            if i % 3 == 0 {
                v.extend_from_slice(format!("X-H{i}: a\r\n b\r\n").as_bytes());
            } else {
                v.extend_from_slice(format!("X-H{i}: v{i}\r\n").as_bytes());
            }
        }
        v.extend_from_slice(b"Call-ID: last\r\n\r\n");
        v
    }

    #[test]
    fn ten_thousand_headers_in_linear_time() {
        let small = big(10_000);
        let m = parse(&small).unwrap();
        assert_eq!(m.header_count, 10_002);
        assert_eq!(m.via_count, 10_001);
        assert_eq!(m.call_id, Some(&b"last"[..]));
        assert_eq!(m.header("X-H9998"), Some(&b"v9998"[..]));
        assert_eq!(m.header("X-H9999"), Some(&b"a\r\n b"[..]));
        assert_eq!(m.header("x-h9999"), m.header("X-H9999"));
        // Eight times the input must cost about eight times the time, not sixty-four.
        let large = big(80_000);
        let time = |b: &[u8]| {
            (0..3)
                .map(|_| {
                    let t = std::time::Instant::now();
                    let m = parse(b).unwrap();
                    assert!(m.header_count > 0);
                    t.elapsed()
                })
                .min()
                .unwrap()
        };
        let (ts, tl) = (time(&small), time(&large));
        assert!(tl < ts * 30, "10k headers {ts:?}, 80k headers {tl:?}");
    }

    fn hex_lines(text: &str) -> Vec<Vec<u8>> {
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                (0..l.len() / 2)
                    .map(|i| u8::from_str_radix(&l[2 * i..2 * i + 2], 16).unwrap())
                    .collect()
            })
            .collect()
    }

    fn fixture(name: &str) -> Vec<Vec<u8>> {
        let path = format!("{}/src/sip/testdata/{name}.hex", env!("CARGO_MANIFEST_DIR"));
        hex_lines(&std::fs::read_to_string(path).unwrap())
    }

    /// Call-IDs per the tshark oracle: `count callid` lines, the empty Call-ID included.
    fn expected_callids(name: &str) -> std::collections::BTreeMap<String, usize> {
        let path = format!(
            "{}/testdata/corpus/expected/{name}.sip_callids.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let l = l.trim_start();
                let (n, id) = l.split_once(' ').unwrap_or((l, ""));
                (id.to_string(), n.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn corpus_call_ids_match_tshark() {
        let dir = format!("{}/src/sip/testdata", env!("CARGO_MANIFEST_DIR"));
        let mut files = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let Some(pcap) = name.strip_suffix(".hex") else {
                continue;
            };
            files += 1;
            let mut got = std::collections::BTreeMap::new();
            for payload in fixture(pcap) {
                assert!(!payload.is_empty());
                let id = match parse(&payload) {
                    Ok(m) => {
                        assert!(looks_like_sip(&payload), "{pcap}");
                        assert!(m.consumed <= payload.len() && m.raw.len() <= m.consumed);
                        assert_eq!(m.bad_header_lines, 0, "{pcap}");
                        if let (Some(cl), false) = (m.content_length, m.body_truncated) {
                            assert_eq!(m.body.len(), cl as usize, "{pcap}");
                        }
                        // Only the junk capture's REGISTER lacks these (and its Call-ID).
                        let complete = m.cseq.is_some() && m.from.is_some() && m.to.is_some();
                        assert_eq!(complete, m.call_id.is_some(), "{pcap}");
                        if let Some(sdp) = m.sdp() {
                            assert!(sdp.is_ok(), "{pcap}");
                        }
                        String::from_utf8(m.call_id.unwrap_or_default().to_vec()).unwrap()
                    }
                    Err(_) => String::new(),
                };
                *got.entry(id).or_insert(0usize) += 1;
            }
            assert_eq!(got, expected_callids(pcap), "{pcap}");
        }
        assert!(files >= 18);
    }

    #[test]
    fn corpus_compact_form_invite() {
        let p = fixture("sip-compact-form-invite.pcap");
        let m = parse(&p[0]).unwrap();
        assert_eq!(m.call_id, Some(&b"105090259-446faf7a@192.168.1.2"[..]));
        assert_eq!(
            m.via_branch,
            Some(&b"z9hG4bKnp104984053-44ce4a41192.168.1.2"[..])
        );
        assert_eq!(m.from.unwrap().tag, Some(&b"6433ef9"[..]));
        assert_eq!(m.to.unwrap().uri.unwrap().user, Some(&b"97239287044"[..]));
        assert_eq!(
            (m.content_type, m.content_length),
            (Some(&b"application/sdp"[..]), Some(272))
        );
        assert_eq!(m.header("Content-Type"), m.header("c"));
        // Content-Length says 272 but 372 bytes follow: like tshark, the body stops at 272, which
        // cuts the SDP inside its z= line, before any m= line.
        assert_eq!((m.body.len(), m.body_truncated), (272, false));
        assert!(m.body.ends_with(b"z=2882844"));
        let sdp = m.sdp().unwrap().unwrap();
        assert_eq!(sdp.origin.unwrap().username, b"SIPPS");
        assert_eq!(sdp.connection.unwrap().address, b"192.168.1.2");
        assert!(sdp.media.is_empty());
        // The bytes on the wire do hold the media description.
        let wire = sdp::parse(&p[0][p[0].len() - 372..]).unwrap();
        assert_eq!(wire.media.len(), 1);
        let (sdp, audio) = (&wire, &wire.media[0]);
        assert_eq!((audio.media, audio.port), (&b"audio"[..], 30000));
        assert_eq!(
            audio.payload_types().collect::<Vec<_>>(),
            vec![0, 8, 97, 2, 3]
        );
        assert_eq!(audio.rtpmap(0).unwrap().encoding, b"pcmu");
        assert_eq!(audio.rtpmap(8).unwrap().encoding, b"PCMA");
        assert_eq!(audio.rtpmap(97), None);
        assert_eq!(sdp.direction_for(audio), Direction::SendRecv);
        assert_eq!(sdp.connection_for(audio).unwrap().address, b"192.168.1.2");
    }

    #[test]
    fn corpus_multi_value_headers() {
        let p = fixture("sip-header-multi-value-invite.pcap");
        let m = parse(&p[0]).unwrap();
        // Two To headers, one compact: the first is the To, both are listed.
        assert_eq!(m.to.unwrap().uri.unwrap().user, Some(&b"97239287044"[..]));
        let tos: Vec<&[u8]> = m.headers_named("To").collect();
        assert_eq!(
            tos,
            vec![
                &b"<sip:97239287044@voip.brujula.net>"[..],
                b"<sip:12345@voip.brujula.net>"
            ]
        );
        assert_eq!(m.header_values("Allow").count(), 8);
    }

    #[test]
    fn corpus_invite_sdp_200() {
        let p = fixture("sip-invite-sdp-200.pcap");
        // Both bodies are longer than their Content-Length (272), as in the compact-form capture;
        // tshark and `body` stop at 272, so the SDP checks read what follows the empty line.
        fn wire_sdp<'p>(payload: &'p [u8], m: &Message) -> SessionDescription<'p> {
            let after_headers = m.raw.len() - m.body.len();
            sdp::parse(&payload[after_headers..]).unwrap()
        }
        let invite = parse(&p[0]).unwrap();
        assert_eq!(invite.body.len(), 272);
        assert!(invite.sdp().unwrap().unwrap().media.is_empty());
        let sdp = wire_sdp(&p[0], &invite);
        assert_eq!(sdp.media.len(), 1);
        assert_eq!(sdp.media[0].connection.unwrap().address, b"192.168.1.2");
        assert_eq!(sdp.media[0].rtpmap(0).unwrap().clock_rate, 8000);
        let ok = parse(&p[1]).unwrap();
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.cseq.unwrap().method, b"INVITE");
        let sdp = wire_sdp(&p[1], &ok);
        let ports: Vec<u16> = sdp.media.iter().map(|m| m.port).collect();
        assert_eq!(ports, vec![30000, 20000]);
        assert_eq!(sdp.media[1].connection, None);
        assert_eq!(
            sdp.connection_for(&sdp.media[1]).unwrap().ip(),
            Some("192.168.1.2".parse().unwrap())
        );
    }

    #[test]
    fn corpus_invalid_content_length() {
        let p = fixture("sip-invalid-content-length.pcap");
        for (payload, status) in p.iter().zip([None, Some(200)]) {
            let m = parse(payload).unwrap();
            assert_eq!(m.status(), status);
            assert_eq!(m.call_id, Some(&b"a84b4c76e66710@10.0.0.1"[..]));
            assert!(m.content_length_invalid);
            assert_eq!((m.content_length, m.body), (None, &b""[..]));
        }
        assert_eq!(parse(&p[1]).unwrap().to.unwrap().tag, Some(&b"abc123"[..]));
    }

    #[test]
    fn corpus_junk_before_request() {
        // The capture's first datagram is four NUL bytes; tshark's SIP filter skips it too.
        assert_eq!(parse(&[0; 4]).unwrap_err(), ParseError::NotSip);
        assert!(!looks_like_sip(&[0; 4]));
        // The REGISTER that follows has no Call-ID (tshark's empty Call-ID entry).
        let p = fixture("sip-junk-before-request.pcap");
        let m = parse(&p[0]).unwrap();
        assert_eq!(
            (m.method(), m.call_id, m.expires),
            (Some(&b"REGISTER"[..]), None, Some(3600))
        );
        assert_eq!(m.request_uri().unwrap().port, Some(5060));
    }

    #[test]
    fn corpus_sdp_media_lines_match_tshark() {
        let mut checked = 0;
        for pcap in [
            "sip-cancel-487.pcap",
            "sip-ipv6-fragmented-sll-prack-update.pcap",
            "sip-rawip-linktype-register-auth-invite.pcap",
            "sip-rtp-single-call.pcap",
            "sip-rtp-t38-fax-488-options.pcap",
            "sip-simple-invite-bye.pcap",
            "sip-sipp-5-calls.pcap",
            "sip-udp-invite-register-cloudshark.pcap",
            "sip-udp-ipv4-fragmented-call.pcap",
            "sip-udp-register-invite-cancel-auth-mixed.pcap",
        ] {
            let path = format!(
                "{}/src/sip/testdata/{pcap}.sdp_media.txt",
                env!("CARGO_MANIFEST_DIR")
            );
            let expected = std::fs::read_to_string(path).unwrap();
            let payloads = fixture(pcap);
            assert_eq!(expected.lines().count(), payloads.len(), "{pcap}");
            for (payload, want) in payloads.iter().zip(expected.lines()) {
                let m = parse(payload).unwrap();
                let got: Vec<&[u8]> = match m.sdp() {
                    Some(sdp) => sdp
                        .unwrap()
                        .media
                        .iter()
                        .map(|md| {
                            let first = md.lines.split(|&b| b == b'\n').next().unwrap();
                            trim(&first[2..])
                        })
                        .collect(),
                    None => Vec::new(),
                };
                // tshark lists m= lines whose port is not a number ("m=audio $ ..."); they are dropped here.
                let want: Vec<&[u8]> = want
                    .split(',')
                    .filter(|w| !w.is_empty() && !w.contains(" $ "))
                    .map(str::as_bytes)
                    .collect();
                assert_eq!(got, want, "{pcap}");
                checked += got.len();
            }
        }
        assert!(checked >= 60, "{checked}");
    }
}
