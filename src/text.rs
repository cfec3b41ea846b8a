//! Text shared by every layer that shows packet data: timestamps in the three forms sipidx prints,
//! and sanitising of strings from the wire. A leaf module: queries, the index and output all use it.
use std::borrow::Cow;

/// `2014-03-27 10:40:25.298` (UTC, milliseconds): table cells, where width is scarce.
pub fn short_time(ts_ns: i64) -> String {
    let secs = ts_ns.div_euclid(1_000_000_000);
    let nanos = ts_ns.rem_euclid(1_000_000_000) as u32;
    let dt = chrono::DateTime::from_timestamp(secs, nanos).unwrap_or_default();
    dt.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// Text from a packet, made safe for a terminal: valid UTF-8 is kept, CR/LF/TAB kept only if
/// `keep_newlines`, every other control byte and every invalid byte becomes `\xNN`.
pub fn sanitize(bytes: &[u8], keep_newlines: bool) -> Cow<'_, str> {
    let clean = |c: char| !c.is_control() || (keep_newlines && matches!(c, '\r' | '\n' | '\t'));
    if let Ok(s) = std::str::from_utf8(bytes) {
        if s.chars().all(clean) {
            return Cow::Borrowed(s);
        }
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if clean(c) {
                out.push(c);
            } else if (c as u32) < 0x100 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    Cow::Owned(out)
}

/// Lossy UTF-8 for JSON values: JSON escaping handles control characters itself.
pub fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// RFC 3339 UTC with microseconds, or nanoseconds when the capture has sub-microsecond digits.
pub fn rfc3339(ts_ns: i64) -> String {
    let secs = ts_ns.div_euclid(1_000_000_000);
    let nanos = ts_ns.rem_euclid(1_000_000_000) as u32;
    let dt = chrono::DateTime::from_timestamp(secs, nanos).unwrap_or_default();
    if nanos.is_multiple_of(1000) {
        dt.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    } else {
        dt.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
    }
}

/// sipgrep/ngrep style `2014/03/27 10:40:25.298990` (UTC).
pub fn ngrep_time(ts_ns: i64) -> String {
    let secs = ts_ns.div_euclid(1_000_000_000);
    let nanos = ts_ns.rem_euclid(1_000_000_000) as u32;
    let dt = chrono::DateTime::from_timestamp(secs, nanos).unwrap_or_default();
    dt.format("%Y/%m/%d %H:%M:%S%.6f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_terminal_controls_but_keeps_text() {
        assert_eq!(sanitize(b"INVITE sip:a@b", false), "INVITE sip:a@b");
        assert_eq!(sanitize(b"a\x1b[2Jb", false), "a\\x1b[2Jb");
        assert_eq!(sanitize(b"a\r\nb", true), "a\r\nb");
        assert_eq!(sanitize(b"a\r\nb", false), "a\\x0d\\x0ab");
        assert_eq!(sanitize(b"\xff\xfeok", false), "\\xff\\xfeok");
        assert_eq!(sanitize("Müller".as_bytes(), false), "Müller");
    }

    #[test]
    fn timestamps_render_in_utc_with_the_capture_precision() {
        assert_eq!(
            rfc3339(1_395_916_825_298_990_000),
            "2014-03-27T10:40:25.298990Z"
        );
        assert_eq!(
            rfc3339(1_395_916_825_298_990_123),
            "2014-03-27T10:40:25.298990123Z"
        );
        assert_eq!(
            ngrep_time(1_395_916_825_298_990_000),
            "2014/03/27 10:40:25.298990"
        );
    }
}
