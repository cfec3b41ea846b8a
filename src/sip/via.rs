//! One Via value (RFC 3261 §20.42): sent-protocol, sent-by and parameters such as branch and received.
//! Parses a single value; splitting a header into values is the caller's job (`lex::split_unquoted`).
use super::lex::{is_ws, param, split_at_first, trim};
use super::uri::split_hostport;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    /// Protocol name and version, e.g. "SIP" and "2.0".
    pub protocol: &'a [u8],
    pub version: &'a [u8],
    /// "UDP", "TCP", "TLS", "SCTP", "WS", ... as written.
    pub transport: &'a [u8],
    /// sent-by host (IPv6 without brackets) and port.
    pub host: &'a [u8],
    pub port: Option<u16>,
    /// Parameters after sent-by, without the leading ';'.
    pub params: &'a [u8],
}

impl<'a> Via<'a> {
    /// Parses `SIP / 2.0 / UDP host:port;params`; LWS around the slashes is allowed.
    pub fn parse(s: &'a [u8]) -> Option<Via<'a>> {
        let s = trim(s);
        let (protocol, rest) = split_at_first(s, |b| b == b'/');
        let rest = trim(rest.strip_prefix(b"/")?);
        let (version, rest) = split_at_first(rest, |b| b == b'/');
        let rest = trim(rest.strip_prefix(b"/")?);
        let (transport, rest) = split_at_first(rest, |b| is_ws(b) || b == b'\r' || b == b'\n');
        let rest = trim(rest);
        let (sent_by, params) = match rest.iter().position(|&b| b == b';') {
            Some(sc) => (trim(&rest[..sc]), trim(&rest[sc + 1..])),
            None => (rest, &rest[rest.len()..]),
        };
        let (protocol, version, transport) = (trim(protocol), trim(version), trim(transport));
        if protocol.is_empty() || version.is_empty() || transport.is_empty() {
            return None;
        }
        let (host, port) = split_hostport(sent_by)?;
        Some(Via {
            protocol,
            version,
            transport,
            host,
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&'a [u8]> {
        self.param("branch")
    }
    pub fn received(&self) -> Option<&'a [u8]> {
        self.param("received")
    }
    /// `Some(b"")` when rport is requested without a value (RFC 3581).
    pub fn rport(&self) -> Option<&'a [u8]> {
        self.param("rport")
    }
    /// A parameter by name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&'a [u8]> {
        param(self.params, name.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_forms() {
        let v = Via::parse(b"SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKnp1;rport").unwrap();
        assert_eq!(
            (v.protocol, v.version, v.transport),
            (&b"SIP"[..], &b"2.0"[..], &b"UDP"[..])
        );
        assert_eq!((v.host, v.port), (&b"192.168.1.2"[..], Some(5060)));
        assert_eq!(v.branch(), Some(&b"z9hG4bKnp1"[..]));
        assert_eq!(v.rport(), Some(&b""[..]));
        assert_eq!(v.received(), None);

        let v = Via::parse(b"SIP / 2.0 / TCP [fd17::1]:5061 ; received=10.0.0.1 ;branch=z9hG4bKx")
            .unwrap();
        assert_eq!(
            (v.transport, v.host, v.port),
            (&b"TCP"[..], &b"fd17::1"[..], Some(5061))
        );
        assert_eq!(v.received(), Some(&b"10.0.0.1"[..]));
        assert_eq!(v.branch(), Some(&b"z9hG4bKx"[..]));

        let v = Via::parse(b"SIP/2.0/TLS client.atlanta.example.com").unwrap();
        assert_eq!(
            (v.host, v.port, v.params),
            (&b"client.atlanta.example.com"[..], None, &b""[..])
        );
    }

    #[test]
    fn via_malformed() {
        for bad in [
            &b""[..],
            b"SIP/2.0",
            b"SIP/2.0/UDP",
            b"SIP/2.0/UDP :5060",
            b"garbage",
        ] {
            assert_eq!(Via::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
