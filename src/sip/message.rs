//! The SIP message view: one pass over the header block fills the fields every later stage needs.
//! After `parse` succeeds no accessor panics; values are slices of the input. Linear in the input size.
//!
//! Leniency (RFC 3261 §7, forensics first): leading CR/LF before the start line (keep-alives, §7.5) are
//! skipped and counted in `consumed`; bare LF line endings are accepted; header lines that are not
//! `token ":" value` are skipped and counted in `bad_header_lines`; a Content-Length longer than the data
//! keeps what is there and sets `body_truncated`. A header block holding a NUL byte is `BadHeader`: SIP
//! is text, and NULs mean binary data or a zero-filled reassembly gap. A message without the empty line
//! that ends the headers is `Truncated` (on a stream: wait for more bytes).
use super::headers::{known, next_line, Hdr, HeaderIter, HeaderValues, HeadersNamed, Line};
use super::lex::{is_token, is_ws, param, parse_u32, split_unquoted, trim};
use super::rtp_stat::{RtpStat, RtpStatIter};
use super::sdp::{self, SdpError, SessionDescription};
use super::start_line::{parse_start_line, skip_leading_crlf, StartLine};
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
                        self.via_branch = super::lex::find_unquoted(v, b';')
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
        HeaderIter::new(self.header_block)
    }
    /// First value of a header by name, case-insensitive, compact form accepted.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers_named(name).next()
    }
    /// Values of every header with this name (case-insensitive, compact form accepted), in order.
    pub fn headers_named<'n>(&self, name: &'n str) -> HeadersNamed<'a, 'n> {
        HeadersNamed::new(self.headers(), name.as_bytes())
    }
    /// Comma-separated values of every header with this name, split outside quotes and `<...>`,
    /// trimmed, empty ones dropped. Only meaningful for list headers (Via, Contact, Route, ...).
    pub fn header_values<'n>(&self, name: &'n str) -> HeaderValues<'a, 'n> {
        HeaderValues::new(self.headers_named(name))
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sip::{looks_like_sip, StatHeader};

    pub(crate) fn msg(lines: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        for l in lines {
            v.extend_from_slice(l.as_bytes());
            v.extend_from_slice(b"\r\n");
        }
        v
    }

    pub(crate) const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
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
}
