//! SIP/SIPS/TEL URIs (RFC 3261 §19.1, RFC 3966) and name-addr (display name, URI, header parameters).
//! Values are slices of the input with escapes kept raw; malformed input gives `None`, never a panic.
use super::lex::{find_unquoted, param, parse_u16, trim};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uri<'a> {
    /// "sip", "sips", "tel", ... as written.
    pub scheme: &'a [u8],
    /// The user part; for `tel:` the telephone-subscriber (the number).
    pub user: Option<&'a [u8]>,
    /// The host; an IPv6 reference is given without its brackets. Empty for `tel:`; for schemes other
    /// than sip/sips/tel everything after the scheme.
    pub host: &'a [u8],
    pub port: Option<u16>,
    /// URI parameters after the host (";transport=tcp;user=phone"), without the leading ';'.
    pub params: &'a [u8],
    /// The password in `user:password@host` (deprecated by RFC 3261 but seen in the wild).
    pub password: Option<&'a [u8]>,
    /// URI headers after '?', without the '?'; never part of `params`.
    pub headers: &'a [u8],
}

/// Splits `host[:port]` where host may be an IPv6 reference; the brackets are dropped from the host.
pub(crate) fn split_hostport(s: &[u8]) -> Option<(&[u8], Option<u16>)> {
    let (host, rest) = if let Some(inner) = s.strip_prefix(b"[") {
        let close = inner.iter().position(|&b| b == b']')?;
        let host = &inner[..close];
        if host.is_empty()
            || !host
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        (host, &inner[close + 1..])
    } else {
        let end = s.iter().position(|&b| b == b':').unwrap_or(s.len());
        let host = &s[..end];
        if host.is_empty()
            || !host
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            return None;
        }
        (host, &s[end..])
    };
    let port = match rest {
        [] => None,
        [b':', digits @ ..] => Some(parse_u16(digits)?),
        _ => return None,
    };
    Some((host, port))
}

fn is_scheme(s: &[u8]) -> bool {
    matches!(s.first(), Some(b) if b.is_ascii_alphabetic())
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Rejects bytes that mark a framing error (controls, whitespace, quotes, angles). Raw UTF-8 is let
/// through: RFC 3261 wants it escaped, but user agents do send it.
fn is_uri_char(b: u8) -> bool {
    b > b' ' && b != 0x7f && !matches!(b, b'"' | b'<' | b'>')
}

impl<'a> Uri<'a> {
    pub fn parse(s: &'a [u8]) -> Option<Uri<'a>> {
        let s = trim(s);
        let colon = s.iter().position(|&b| b == b':')?;
        let scheme = &s[..colon];
        let rest = &s[colon + 1..];
        if !is_scheme(scheme) || rest.is_empty() || !rest.iter().all(|&b| is_uri_char(b)) {
            return None;
        }
        let (before_q, headers) = match rest.iter().position(|&b| b == b'?') {
            Some(q) => (&rest[..q], &rest[q + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let empty = &rest[..0];
        if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
            // The user part may hold ';' (RFC 3261 user-unreserved), so '@' decides where it ends.
            let (userinfo, hostpart) = match before_q.iter().position(|&b| b == b'@') {
                Some(at) => (Some(&before_q[..at]), &before_q[at + 1..]),
                None => (None, before_q),
            };
            let (user, password) = match userinfo {
                Some(ui) => match ui.iter().position(|&b| b == b':') {
                    Some(c) => (Some(&ui[..c]), Some(&ui[c + 1..])),
                    None => (Some(ui), None),
                },
                None => (None, None),
            };
            if user.is_some_and(|u| u.is_empty()) {
                return None;
            }
            let (hostport, params) = match hostpart.iter().position(|&b| b == b';') {
                Some(sc) => (&hostpart[..sc], &hostpart[sc + 1..]),
                None => (hostpart, empty),
            };
            let (host, port) = split_hostport(hostport)?;
            Some(Uri {
                scheme,
                user,
                host,
                port,
                params,
                password,
                headers,
            })
        } else if scheme.eq_ignore_ascii_case(b"tel") {
            let (number, params) = match before_q.iter().position(|&b| b == b';') {
                Some(sc) => (&before_q[..sc], &before_q[sc + 1..]),
                None => (before_q, empty),
            };
            if number.is_empty() {
                return None;
            }
            Some(Uri {
                scheme,
                user: Some(number),
                host: empty,
                port: None,
                params,
                password: None,
                headers,
            })
        } else {
            Some(Uri {
                scheme,
                user: None,
                host: rest,
                port: None,
                params: empty,
                password: None,
                headers: empty,
            })
        }
    }

    /// A URI parameter by name (case-insensitive); a flag parameter such as `lr` gives `Some(b"")`.
    pub fn param(&self, name: &str) -> Option<&'a [u8]> {
        param(self.params, name.as_bytes())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// As written: without the surrounding quotes, escapes (`\"`) kept raw.
    pub display_name: Option<&'a [u8]>,
    pub uri: Option<Uri<'a>>,
    /// The tag header parameter.
    pub tag: Option<&'a [u8]>,
    /// Header parameters after the URI, without the leading ';'.
    pub params: &'a [u8],
}

impl<'a> NameAddr<'a> {
    /// Parses `"Display" <uri>;params`, `Display <uri>`, `<uri>` or a bare addr-spec `uri;params`.
    /// A well-framed value whose URI does not parse gives `uri: None`; broken framing gives `None`.
    pub fn parse(s: &'a [u8]) -> Option<NameAddr<'a>> {
        let s = trim(s);
        if s.is_empty() {
            return None;
        }
        let (display_name, after_display) = if s[0] == b'"' {
            let close = closing_quote(&s[1..])? + 1;
            (Some(&s[1..close]), trim(&s[close + 1..]))
        } else {
            match find_unquoted_lt(s) {
                Some(lt) => {
                    let d = trim(&s[..lt]);
                    // Lenient beyond RFC 3261's token list: real UAs write stray backslashes and
                    // quotes here (see the corpus's `\"arik\" <sip:...>`); only controls reject.
                    if d.iter().any(|&b| b < 0x20 && b != b'\t') {
                        return None;
                    }
                    ((!d.is_empty()).then_some(d), &s[lt..])
                }
                None => (None, s),
            }
        };
        let (uri_text, after_uri) = if let Some(inner) = after_display.strip_prefix(b"<") {
            let gt = inner.iter().position(|&b| b == b'>')?;
            (&inner[..gt], trim(&inner[gt + 1..]))
        } else if display_name.is_some() {
            // A display name must be followed by <uri>.
            return None;
        } else {
            // addr-spec: RFC 3261 §20 — parameters after a bare URI are header parameters.
            match after_display.iter().position(|&b| b == b';') {
                Some(sc) => (trim(&after_display[..sc]), &after_display[sc..]),
                None => (after_display, &after_display[after_display.len()..]),
            }
        };
        let params = match after_uri {
            [] => after_uri,
            [b';', p @ ..] => trim(p),
            _ => return None,
        };
        let uri = Uri::parse(uri_text);
        // Without <...> there is no frame to keep once the URI fails.
        let framed = after_display.starts_with(b"<");
        if uri.is_none() && (uri_text.is_empty() || !framed) {
            return None;
        }
        Some(NameAddr {
            display_name,
            uri,
            tag: param(params, b"tag"),
            params,
        })
    }

    /// A header parameter by name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&'a [u8]> {
        param(self.params, name.as_bytes())
    }
}

/// Index of the closing '"' in `s` (the text after an opening quote), honouring `\` escapes.
fn closing_quote(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn find_unquoted_lt(s: &[u8]) -> Option<usize> {
    // '<' opens the angle state in find_unquoted, so look for it directly outside quotes.
    let semi = find_unquoted(s, b';').unwrap_or(s.len());
    s[..semi].iter().position(|&b| b == b'<')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_full() {
        let u = Uri::parse(b"sips:alice:secret@atlanta.com:5061;transport=tcp;lr?subject=project%20x&priority=urgent").unwrap();
        assert_eq!(u.scheme, b"sips");
        assert_eq!(u.user, Some(&b"alice"[..]));
        assert_eq!(u.password, Some(&b"secret"[..]));
        assert_eq!(u.host, b"atlanta.com");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.params, b"transport=tcp;lr");
        assert_eq!(u.headers, b"subject=project%20x&priority=urgent");
        assert_eq!(u.param("TRANSPORT"), Some(&b"tcp"[..]));
        assert_eq!(u.param("lr"), Some(&b""[..]));
        assert_eq!(u.param("subject"), None);
    }

    #[test]
    fn sip_uri_host_only_escaped_user_and_user_params() {
        let u = Uri::parse(b"sip:registrar.biloxi.com").unwrap();
        assert_eq!(
            (u.user, u.host, u.port),
            (None, &b"registrar.biloxi.com"[..], None)
        );
        let u = Uri::parse(b"sip:%61lice@atlanta.com").unwrap();
        assert_eq!(u.user, Some(&b"%61lice"[..]));
        let u = Uri::parse(b"sip:alice;day=tuesday@atlanta.com").unwrap();
        assert_eq!(u.user, Some(&b"alice;day=tuesday"[..]));
        assert_eq!(u.host, b"atlanta.com");
    }

    #[test]
    fn raw_utf8_user_is_kept() {
        let u = Uri::parse("sip:jürgen@example.de".as_bytes()).unwrap();
        assert_eq!(u.user, Some("jürgen".as_bytes()));
    }

    #[test]
    fn ipv6_reference() {
        let u = Uri::parse(b"sip:bob@[2001:db8::10]:5070;maddr=[::1]").unwrap();
        assert_eq!(u.host, b"2001:db8::10");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.params, b"maddr=[::1]");
        let u = Uri::parse(b"sip:[::1]").unwrap();
        assert_eq!((u.host, u.port), (&b"::1"[..], None));
        assert_eq!(Uri::parse(b"sip:[::1"), None);
        assert_eq!(Uri::parse(b"sip:[zz]"), None);
    }

    #[test]
    fn tel_and_other_schemes() {
        let u = Uri::parse(b"tel:+49-30-1234567;phone-context=example.com").unwrap();
        assert_eq!(u.scheme, b"tel");
        assert_eq!(u.user, Some(&b"+49-30-1234567"[..]));
        assert_eq!(u.host, b"");
        assert_eq!(u.params, b"phone-context=example.com");
        let u = Uri::parse(b"urn:service:sos").unwrap();
        assert_eq!((u.scheme, u.host), (&b"urn"[..], &b"service:sos"[..]));
    }

    #[test]
    fn malformed_uris() {
        for bad in [
            &b""[..],
            b"sip:",
            b"nocolon",
            b"1sip:host",
            b"sip:@host",
            b"sip:host:port",
            b"sip:host:99999",
            b"sip:ho st",
            b"sip:user@",
            b"sip:a@b:5060x",
            b":host",
        ] {
            assert_eq!(Uri::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            br#""Bob \"the\" Builder, Jr." <sip:bob@biloxi.com;transport=udp>;tag=a6c85cf;x=1"#,
        )
        .unwrap();
        assert_eq!(n.display_name, Some(&br#"Bob \"the\" Builder, Jr."#[..]));
        let u = n.uri.unwrap();
        assert_eq!(
            (u.user, u.host, u.params),
            (Some(&b"bob"[..]), &b"biloxi.com"[..], &b"transport=udp"[..])
        );
        assert_eq!(n.tag, Some(&b"a6c85cf"[..]));
        assert_eq!(n.params, b"tag=a6c85cf;x=1");
        assert_eq!(n.param("X"), Some(&b"1"[..]));

        let n = NameAddr::parse(b"Alice Smith <sip:alice@atlanta.com>").unwrap();
        assert_eq!(n.display_name, Some(&b"Alice Smith"[..]));
        assert_eq!(n.tag, None);

        let n = NameAddr::parse(b"sip:carol@chicago.com;tag=887s").unwrap();
        assert_eq!(n.display_name, None);
        assert_eq!(n.uri.unwrap().params, b"");
        assert_eq!(n.tag, Some(&b"887s"[..]));

        let n = NameAddr::parse(b"<tel:+4930123>;tag=1").unwrap();
        assert_eq!(n.uri.unwrap().user, Some(&b"+4930123"[..]));
        assert_eq!(n.tag, Some(&b"1"[..]));

        // A quoted display name may hold '<', ';' and escaped quotes.
        let n = NameAddr::parse(br#""a<b;c\"" <sip:x@y>"#).unwrap();
        assert_eq!(n.display_name, Some(&br#"a<b;c\""#[..]));
        assert_eq!(n.uri.unwrap().host, b"y");

        // The corpus writes the display name with backslashes outside quotes.
        let n = NameAddr::parse(br#"\"arik\" <sip:816666@voip.brurjula.net>;tag=6433ef9"#).unwrap();
        assert_eq!(n.display_name, Some(&br#"\"arik\""#[..]));
        assert_eq!(n.uri.unwrap().user, Some(&b"816666"[..]));
        assert_eq!(n.tag, Some(&b"6433ef9"[..]));
    }

    #[test]
    fn name_addr_malformed() {
        for bad in [
            &b""[..],
            b"\"unterminated <sip:a@b>",
            b"<sip:a@b",
            b"\"Name\" sip:a@b",
            b"<sip:a@b> junk",
            b"<>",
            b"Bob sip:a@b",
            b"not a uri;tag=1",
        ] {
            assert_eq!(
                NameAddr::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A framed but unparsable URI keeps the frame and drops the URI.
        let n = NameAddr::parse(b"<sip:a@b:x>;tag=9").unwrap();
        assert_eq!((n.uri, n.tag), (None, Some(&b"9"[..])));
    }
}
