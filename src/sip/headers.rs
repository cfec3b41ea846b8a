//! SIP header lines (RFC 3261 §7.3): the known-header table with compact forms, logical lines with
//! folding, and the iterators over a header block. Total over any input, like the rest of the parser.
use super::lex::{is_token, is_ws, split_unquoted, trim, SplitUnquoted};

/// Header names this parser knows, for compact-form equivalence and field filling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hdr {
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

pub(super) fn known(name: &[u8]) -> Option<(Hdr, &'static str)> {
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
pub(super) enum Line<'a> {
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
pub(super) fn next_line(buf: &[u8], pos: usize) -> Option<(Line<'_>, usize, bool)> {
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

/// Iterator over (name, value) of the header block; see [`Message::headers`](super::Message::headers).
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

impl<'a, 'n> HeadersNamed<'a, 'n> {
    /// Headers of `inner` called `name` (case-insensitive; a known name also matches its compact form).
    pub(super) fn new(inner: HeaderIter<'a>, name: &'n [u8]) -> Self {
        HeadersNamed {
            inner,
            name,
            known: known(name).map(|(h, _)| h),
        }
    }
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

impl<'a, 'n> HeaderValues<'a, 'n> {
    pub(super) fn new(headers: HeadersNamed<'a, 'n>) -> Self {
        HeaderValues {
            headers,
            current: None,
        }
    }
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
    use crate::sip::message::tests::{msg, INVITE};
    use crate::sip::parse;

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
    fn malformed_header_lines_are_counted_and_skipped() {
        let raw = b"OPTIONS sip:h SIP/2.0\r\n continuation without header\r\nno colon here\r\nBad Name: x\r\n: empty\r\nCall-ID: ok\r\n\r\n";
        let m = parse(raw).unwrap();
        assert_eq!((m.header_count, m.bad_header_lines), (1, 4));
        assert_eq!(m.call_id, Some(&b"ok"[..]));
        assert_eq!(m.headers().count(), 1);
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
}
