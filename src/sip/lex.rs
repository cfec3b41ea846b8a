//! Byte-level helpers shared by the SIP, SDP and stat-header parsers: trimming, tokens, numbers, splitting.
//! Every function is total over any input: slicing only at positions found inside the slice itself.

/// SP or HT: the whitespace that may surround separators and start a folded line (RFC 3261 §7.3.1).
#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[inline]
fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Trims SP, HT, CR and LF from both ends.
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_lws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_lws(b)).map_or(start, |p| p + 1);
    &s[start..end.max(start)]
}

/// RFC 3261 §25.1 `token` characters.
#[inline]
pub(crate) const fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token_char(b))
}

/// Decimal digits only (no sign, no spaces); `None` on empty input or overflow.
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    parse_u64(s).and_then(|n| u32::try_from(n).ok())
}

pub(crate) fn parse_u16(s: &[u8]) -> Option<u16> {
    parse_u64(s).and_then(|n| u16::try_from(n).ok())
}

/// Position of the first `sep` that is outside a quoted string (with `\` escapes) and outside `<...>`.
pub(crate) fn find_unquoted(s: &[u8], sep: u8) -> Option<usize> {
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if in_quotes {
            match b {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else if in_angle {
            if b == b'>' {
                in_angle = false;
            }
        } else if b == sep {
            return Some(i);
        } else if b == b'"' {
            in_quotes = true;
        } else if b == b'<' {
            in_angle = true;
        }
        i += 1;
    }
    None
}

/// Splits on `sep` outside quoted strings and `<...>`, yielding trimmed pieces (empty ones included).
pub(crate) struct SplitUnquoted<'a> {
    rest: Option<&'a [u8]>,
    sep: u8,
}

pub(crate) fn split_unquoted(s: &[u8], sep: u8) -> SplitUnquoted<'_> {
    SplitUnquoted { rest: Some(s), sep }
}

impl<'a> Iterator for SplitUnquoted<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match find_unquoted(rest, self.sep) {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(trim(&rest[..i]))
            }
            None => {
                self.rest = None;
                Some(trim(rest))
            }
        }
    }
}

/// Value of parameter `name` (case-insensitive) in a `;`-separated list such as `tag=x;lr;branch=y`.
/// A flag parameter (`lr`) gives `Some(b"")`.
pub(crate) fn param<'a>(params: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    split_unquoted(params, b';').find_map(|p| {
        let (k, v) = match p.iter().position(|&b| b == b'=') {
            Some(eq) => (trim(&p[..eq]), trim(&p[eq + 1..])),
            None => (p, &p[p.len()..]),
        };
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

/// Splits `s` at the first byte satisfying `f`: (before, after-including-that-byte).
pub(crate) fn split_at_first(s: &[u8], f: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| f(b)) {
        Some(i) => s.split_at(i),
        None => (s, &s[s.len()..]),
    }
}

/// Without trailing SP/HT.
pub(crate) fn trim_end_ws(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|&b| !is_ws(b)).map_or(0, |p| p + 1);
    &s[..end]
}

/// Without leading SP/HT.
pub(crate) fn trim_start_ws(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ws(b)).unwrap_or(s.len());
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_and_numbers() {
        assert_eq!(trim(b" \t a b \r\n"), b"a b");
        assert_eq!(trim(b"   "), b"");
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"1x"), None);
        assert_eq!(parse_u16(b"65536"), None);
    }

    #[test]
    fn split_respects_quotes_and_angles() {
        let v: Vec<&[u8]> =
            split_unquoted(br#"a;x="1,2", <sip:b,c@h> ;q="\",", d"#, b',').collect();
        assert_eq!(
            v,
            vec![
                &br#"a;x="1,2""#[..],
                &br#"<sip:b,c@h> ;q="\",""#[..],
                &b"d"[..]
            ]
        );
    }

    #[test]
    fn params_lookup() {
        let p = br#"branch=z9hG4bK1; RPort ;x="a;tag=no";tag=yes"#;
        assert_eq!(param(p, b"branch"), Some(&b"z9hG4bK1"[..]));
        assert_eq!(param(p, b"rport"), Some(&b""[..]));
        assert_eq!(param(p, b"tag"), Some(&b"yes"[..]));
        assert_eq!(param(p, b"missing"), None);
    }
}
