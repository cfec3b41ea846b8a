//! Message lengths in a TCP byte stream (RFC 3261 §18.3): the header-block end plus Content-Length.
//! Whether a message starts at all is not decided here but by the rule the caller passes the
//! reassembler (`sip::stream_start`), so that the stream and the datagram paths share one definition.
//!
//! Hand-written: no crate frames SIP over a stream, and the check must cost a few byte compares.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// The whole message (headers and body) is this long; the buffer may not hold it all yet.
    Length(usize),
    /// No end of the header block in the first `scanned` bytes.
    NeedMore { scanned: usize },
    /// The message would exceed the limit.
    TooLarge,
}

/// Frames the message at the start of `buf`: the header block ends at the first empty line; the
/// body is Content-Length (or compact `l`) bytes, 0 when absent (RFC 3261 §18.3 for streams).
/// `scanned` from a previous `NeedMore` avoids searching the same bytes again.
pub(crate) fn frame(buf: &[u8], scanned: usize, max: usize) -> Frame {
    let from = scanned.saturating_sub(3).min(buf.len());
    let Some(header_end) = header_end(buf, from) else {
        return if buf.len() > max {
            Frame::TooLarge
        } else {
            Frame::NeedMore { scanned: buf.len() }
        };
    };
    let body = content_length(&buf[..header_end]).unwrap_or(0);
    match header_end.checked_add(body) {
        Some(total) if total <= max => Frame::Length(total),
        _ => Frame::TooLarge,
    }
}

/// Index just past the empty line ending the header block (CRLFCRLF, or bare LFLF).
fn header_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(p) = buf
        .get(i..)
        .and_then(|s| s.iter().position(|&b| b == b'\n'))
    {
        let nl = i + p;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

/// The first Content-Length (or `l`) value in a header block; `None` when absent or not a number.
pub(crate) fn content_length(headers: &[u8]) -> Option<usize> {
    for line in headers.split(|&b| b == b'\n').skip(1) {
        if matches!(line.first(), Some(b' ' | b'\t')) {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = trim(&line[colon + 1..]);
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return None;
        }
        return Some(value.iter().fold(0usize, |n, &d| {
            n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
        }));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_with_content_length_compact_and_absent() {
        let m = b"INVITE sip:a SIP/2.0\r\nContent-Length: 4\r\n\r\nbodyNEXT";
        assert_eq!(frame(m, 0, 1000), Frame::Length(m.len() - 4));
        let c = b"SIP/2.0 200 OK\r\nl:2\r\n\r\nokX";
        assert_eq!(frame(c, 0, 1000), Frame::Length(c.len() - 1));
        let none = b"ACK sip:a SIP/2.0\r\nVia: x\r\n\r\nINVITE";
        assert_eq!(frame(none, 0, 1000), Frame::Length(none.len() - 6));
        let lf = b"ACK sip:a SIP/2.0\nContent-Length : 1\n\nx";
        assert_eq!(frame(lf, 0, 1000), Frame::Length(lf.len()));
        assert_eq!(
            frame(b"ACK sip:a SIP/2.0\r\nVia: x\r\n", 0, 1000),
            Frame::NeedMore { scanned: 27 }
        );
        let huge = b"INVITE sip:a SIP/2.0\r\nContent-Length: 4000000000\r\n\r\n";
        assert_eq!(frame(huge, 0, 1 << 20), Frame::TooLarge);
        let overflow =
            b"INVITE sip:a SIP/2.0\r\nContent-Length: 99999999999999999999999999\r\n\r\n";
        assert_eq!(frame(overflow, 0, 1 << 20), Frame::TooLarge);
        assert_eq!(frame(&[b'a'; 100], 0, 50), Frame::TooLarge);
    }

    #[test]
    fn header_end_found_across_resumed_scans() {
        let m = b"ACK sip:a SIP/2.0\r\nVia: x\r\n\r\n";
        // a previous scan stopped just inside the final CRLFCRLF
        assert_eq!(frame(m, m.len() - 2, 1000), Frame::Length(m.len()));
        assert_eq!(content_length(b"X\r\nContent-Length: abc\r\n"), None);
        assert_eq!(
            content_length(b"X\r\nSubject: l: 5\r\ncontent-length:  7 \r\n"),
            Some(7)
        );
    }
}
