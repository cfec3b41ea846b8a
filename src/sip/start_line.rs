//! The one definition of a SIP start line (RFC 3261 §7.1 Request-Line, §7.2 Status-Line), used by
//! the parser, the per-datagram pre-check (`looks_like_sip`) and the TCP framer (`stream_start`).
//!
//! The framer is exactly as strict as the parser, decided once: a position in a TCP stream is a
//! message start when its first line is one `parse` accepts. A stricter framer (the decoder once
//! had its own, demanding a `sip:`/`sips:`/`tel:` URI and `SIP/2.0` in capitals) lost emergency
//! `urn:service:sos` requests, `im:` URIs, `sip/2.0` and `SIP/2.1` status lines and a tab after
//! the method over TCP while UDP found them. Junk is kept out by the rule itself (a method token,
//! a URI with a colon and a `SIP/d.d` version; or a version, a code 100-699 and a printable reason)
//! and, before a line ends, by saying `No` as soon as its bytes cannot begin a start line.
use super::lex::{is_token, is_token_char, is_ws, trim_end_ws, trim_start_ws};
use super::ParseError;
pub use crate::vocab::Start;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request { method: &'a [u8], uri: &'a [u8] },
    Response { code: u16, reason: &'a [u8] },
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
pub(super) fn parse_start_line(line: &[u8]) -> Result<StartLine<'_>, ParseError> {
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

pub(super) fn skip_leading_crlf(buf: &[u8]) -> usize {
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
    if opening(rest) != Opening::Right {
        return false;
    }
    let line = match rest.iter().position(|&b| b == b'\n') {
        Some(lf) => &rest[..lf],
        None => rest,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    !line.is_empty() && parse_start_line(line).is_ok()
}

/// How the first token of a line ends. A start line opens with a token (the method, or the "SIP"
/// of "SIP/2.0") ended by SP/HT or by that "/": anything else fails `parse_start_line`, so the
/// line end need not be sought.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opening {
    Right,
    Wrong,
    /// The bytes end inside the first token.
    Unfinished,
}

fn opening(rest: &[u8]) -> Opening {
    let token_len = rest
        .iter()
        .take_while(|&&b| TOKEN_CHARS[usize::from(b)])
        .count();
    match rest.get(token_len) {
        None => Opening::Unfinished,
        Some(&b) if is_ws(b) && token_len > 0 => Opening::Right,
        Some(b'/') if token_len == 3 && rest[..3].eq_ignore_ascii_case(b"SIP") => Opening::Right,
        Some(_) => Opening::Wrong,
    }
}

/// A first line longer than this is not waited for on a stream (the one bound the parser lacks: it
/// caps what a direction buffers on junk that never ends a line).
const MAX_LINE: usize = 8 * 1024;
/// A stream cut inside a first token longer than this is not waited for (see `stream_start`).
const MAX_METHOD: usize = 32;

/// The TCP framer's check (RFC 3261 §18.3): does the stream at `buf` begin with a SIP start line?
/// `Yes` exactly when the first line is one [`parse`](super::parse) accepts, so a message found over
/// UDP is found over TCP. `Incomplete` while the first line has not ended and its bytes can still
/// begin one; `No` as soon as they cannot (a byte no start line opens with, a control byte). Keep-alive CR/LF before a message are the caller's to
/// skip (RFC 5626): here they are `No`, so that an empty line is never taken for a start.
/// Besides the parser's rule, two bounds on waiting: a first line longer than [`MAX_LINE`], and
/// bytes that end inside a first token longer than [`MAX_METHOD`], are `No`.
pub fn stream_start(buf: &[u8]) -> Start {
    if buf.is_empty() {
        return Start::No;
    }
    let window = &buf[..buf.len().min(MAX_LINE)];
    if let Some(lf) = window.iter().position(|&b| b == b'\n') {
        let line = &window[..lf];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let yes = opening(line) == Opening::Right && parse_start_line(line).is_ok();
        return if yes { Start::Yes } else { Start::No };
    }
    match opening(window) {
        Opening::Wrong => return Start::No,
        // Junk of token bytes (base64, say) must not hold a stream open until MAX_LINE: a method
        // is a short word (SUBSCRIBE, the longest registered, has 9 letters). Only a line cut
        // inside such a first token is refused; a whole line is judged by the parser alone.
        Opening::Unfinished if window.len() > MAX_METHOD => return Start::No,
        _ if window.len() == MAX_LINE => return Start::No,
        _ => {}
    }
    // No start line holds a control byte other than HT (a CR may end the bytes so far, before its LF).
    let (last, before) = window.split_last().unwrap_or((&b'\r', &[]));
    let control = |b: u8| b < 0x20 && b != b'\t';
    if before.iter().any(|&b| control(b)) || (control(*last) && *last != b'\r') {
        return Start::No;
    }
    Start::Incomplete
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn start_lines() {
        assert_eq!(stream_start(b"SIP/2.0 200 OK\r\n"), Start::Yes);
        assert_eq!(
            stream_start(b"INVITE sip:bob@b.example SIP/2.0\r\nVia"),
            Start::Yes
        );
        assert_eq!(stream_start(b"MESSAGE sips:x SIP/2.0\n"), Start::Yes);
        assert_eq!(stream_start(b"OPTIONS tel:+123 SIP/2.0\r\n"), Start::Yes);
        assert_eq!(stream_start(b"INVITE sip:bob@b.exa"), Start::Incomplete);
        assert_eq!(stream_start(b"SIP/2"), Start::Incomplete);
        assert_eq!(stream_start(b"INV"), Start::Incomplete);
        assert_eq!(stream_start(b"GET / HTTP/1.1\r\n"), Start::No);
        assert_eq!(stream_start(b"GET sip:x HTTP/1.1\r\n"), Start::No);
        assert_eq!(stream_start(b"HTTP/1.1 200 OK\r\n"), Start::No);
        assert_eq!(stream_start(b"\r\n\r\n"), Start::No);
        assert_eq!(stream_start(b"\x80\x08rtp"), Start::No);
        assert_eq!(stream_start(b""), Start::No);
    }

    /// The lines the decoder's own framer once refused over TCP while the parser took them.
    #[test]
    fn the_framer_takes_what_the_parser_takes() {
        for line in [
            &b"OPTIONS urn:service:sos SIP/2.0\r\n"[..],
            b"MESSAGE im:bob@example.com SIP/2.0\r\n",
            b"sip/2.0 200 OK\r\n",
            b"SIP/2.1 200 OK\r\n",
            b"INVITE\tsip:a@b SIP/2.0\r\n",
        ] {
            let text = String::from_utf8_lossy(line);
            assert!(looks_like_sip(line), "{text:?}");
            assert_eq!(stream_start(line), Start::Yes, "{text:?}");
            for end in 1..line.len() - 1 {
                assert_eq!(
                    stream_start(&line[..end]),
                    Start::Incomplete,
                    "{text:?} cut at {end}"
                );
            }
        }
        // The parser sets no bound on a method; the framer judges a whole line the same way, and
        // refuses only to wait inside an overlong first token or line.
        let long = b"A-VERY-LONG-EXTENSION-METHOD-NAME-OVER-32 sip:a@b SIP/2.0\r\n";
        assert!(looks_like_sip(long));
        assert_eq!(stream_start(long), Start::Yes);
        assert_eq!(stream_start(&long[..40]), Start::No);
        assert_eq!(stream_start(&long[..50]), Start::Incomplete);
        assert_eq!(stream_start(&[b'A'; 3000]), Start::No);
        let mut line = b"INVITE sip:".to_vec();
        line.resize(MAX_LINE, b'a');
        assert_eq!(stream_start(&line), Start::No);
        line.truncate(MAX_LINE - 1);
        assert_eq!(stream_start(&line), Start::Incomplete);
        assert_eq!(stream_start(b"INVITE sip:a\x00"), Start::No);
        assert_eq!(stream_start(b"INVITE sip:a\rb"), Start::No);
    }

    /// `stream_start` against the parser's rule on every one-byte change of a few start lines:
    /// with the line ended, `Yes` exactly when `looks_like_sip`; cut before its end, never `No`
    /// for bytes that the parser accepts as a whole datagram.
    #[test]
    fn the_framer_agrees_with_the_parser_on_every_one_byte_change() {
        let (mut yes, mut no) = (0, 0);
        for base in [
            &b"SIP/2.0 200 OK\r\n"[..],
            b"sip/2.0\t180 x\r\n",
            b"INVITE sip:a@b SIP/2.0\r\n",
            b"A urn:x SIP/2.0\n",
            b"SIP sip:x SIP/2.0\r\n",
        ] {
            for i in 0..base.len() {
                for v in 0..=255u8 {
                    let mut p = base.to_vec();
                    p[i] = v;
                    if matches!(p[0], b'\r' | b'\n') {
                        continue; // keep-alives: the caller skips them before asking
                    }
                    let parser = looks_like_sip(&p);
                    let text = String::from_utf8_lossy(&p);
                    if p.contains(&b'\n') {
                        assert_eq!(stream_start(&p) == Start::Yes, parser, "{text:?}");
                    } else if parser {
                        assert_eq!(stream_start(&p), Start::Incomplete, "{text:?}");
                    }
                    if parser {
                        yes += 1;
                    } else {
                        no += 1;
                    }
                }
            }
        }
        assert!(yes > 1000 && no > 1000, "{yes} yes, {no} no");
    }
}
