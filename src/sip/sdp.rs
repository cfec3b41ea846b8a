//! SDP (RFC 8866, formerly RFC 4566) bodies: origin, connection, media descriptions, rtpmap, direction.
//! Media descriptions live in a small `Vec` (one SDP per offer/answer, not per packet); their attributes
//! are re-read lazily from each section's own lines, so values stay slices of the body. No accessor panics.
use std::net::IpAddr;

use super::lex::{is_ws, parse_u16, parse_u32, trim};

/// Why a body is not SDP; unknown or malformed lines inside an SDP are counted, not errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SdpError {
    #[error("empty SDP body")]
    Empty,
    #[error("not SDP: the first line is not v=")]
    NotSdp,
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin<'a> {
    pub username: &'a [u8],
    pub session_id: &'a [u8],
    pub session_version: &'a [u8],
    pub net_type: &'a [u8],
    pub addr_type: &'a [u8],
    pub address: &'a [u8],
}

/// `c=<nettype> <addrtype> <connection-address>`; for multicast the `/ttl` and `/count` are split off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection<'a> {
    pub net_type: &'a [u8],
    /// "IP4" or "IP6" as written.
    pub addr_type: &'a [u8],
    pub address: &'a [u8],
    /// IPv4 multicast TTL.
    pub ttl: Option<u8>,
    /// Number of addresses (multicast layering).
    pub count: Option<u32>,
}

impl<'a> Connection<'a> {
    pub fn parse(value: &'a [u8]) -> Option<Connection<'a>> {
        let mut it = value
            .split(|&b| is_ws(b))
            .filter(|t| !t.is_empty())
            .map(trim);
        let (net_type, addr_type, addr) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        let mut parts = addr.split(|&b| b == b'/');
        let address = parts.next().filter(|a| !a.is_empty())?;
        let first = parts.next();
        let second = parts.next();
        let (ttl, count) = if addr_type.eq_ignore_ascii_case(b"IP4") {
            (
                first.and_then(|t| u8::try_from(parse_u32(t)?).ok()),
                second.and_then(parse_u32),
            )
        } else {
            (None, first.and_then(parse_u32))
        };
        Some(Connection {
            net_type,
            addr_type,
            address,
            ttl,
            count,
        })
    }

    /// The address as an IP; `None` for FQDNs and malformed text.
    pub fn ip(&self) -> Option<IpAddr> {
        std::str::from_utf8(self.address).ok()?.parse().ok()
    }
}

/// Media direction attributes (RFC 8866 §6.7); sendrecv is the default when none is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn from_attr(name: &[u8]) -> Option<Direction> {
        Some(match name {
            b"sendrecv" => Direction::SendRecv,
            b"sendonly" => Direction::SendOnly,
            b"recvonly" => Direction::RecvOnly,
            b"inactive" => Direction::Inactive,
            _ => return None,
        })
    }
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpMap<'a> {
    pub payload_type: u8,
    /// As written ("PCMU", "pcmu", "telephone-event").
    pub encoding: &'a [u8],
    pub clock_rate: u32,
    /// Audio channels (the encoding parameters), when given.
    pub channels: Option<u16>,
}

impl<'a> RtpMap<'a> {
    /// Parses the attribute value `96 telephone-event/8000`.
    pub fn parse(value: &'a [u8]) -> Option<RtpMap<'a>> {
        let value = trim(value);
        let sp = value.iter().position(|&b| is_ws(b))?;
        let payload_type = u8::try_from(parse_u32(&value[..sp])?)
            .ok()
            .filter(|&pt| pt < 128)?;
        let mut parts = trim(&value[sp..]).split(|&b| b == b'/');
        let encoding = parts.next().filter(|e| !e.is_empty())?;
        let clock_rate = parse_u32(trim(parts.next()?))?;
        let channels = match parts.next() {
            Some(c) => Some(parse_u16(trim(c))?),
            None => None,
        };
        Some(RtpMap {
            payload_type,
            encoding,
            clock_rate,
            channels,
        })
    }
}

/// RFC 3551 static payload types (tables 4 and 5). G.722's RTP clock is 8000 though it samples at
/// 16 kHz (RFC 3551 §4.5.2, an error kept for compatibility).
pub fn static_payload(pt: u8) -> Option<RtpMap<'static>> {
    let (encoding, clock_rate, channels): (&'static [u8], u32, Option<u16>) = match pt {
        0 => (b"PCMU", 8000, Some(1)),
        3 => (b"GSM", 8000, Some(1)),
        4 => (b"G723", 8000, Some(1)),
        5 => (b"DVI4", 8000, Some(1)),
        6 => (b"DVI4", 16000, Some(1)),
        7 => (b"LPC", 8000, Some(1)),
        8 => (b"PCMA", 8000, Some(1)),
        9 => (b"G722", 8000, Some(1)),
        10 => (b"L16", 44100, Some(2)),
        11 => (b"L16", 44100, Some(1)),
        12 => (b"QCELP", 8000, Some(1)),
        13 => (b"CN", 8000, Some(1)),
        14 => (b"MPA", 90000, None),
        15 => (b"G728", 8000, Some(1)),
        16 => (b"DVI4", 11025, Some(1)),
        17 => (b"DVI4", 22050, Some(1)),
        18 => (b"G729", 8000, Some(1)),
        25 => (b"CelB", 90000, None),
        26 => (b"JPEG", 90000, None),
        28 => (b"nv", 90000, None),
        31 => (b"H261", 90000, None),
        32 => (b"MPV", 90000, None),
        33 => (b"MP2T", 90000, None),
        34 => (b"H263", 90000, None),
        _ => return None,
    };
    Some(RtpMap {
        payload_type: pt,
        encoding,
        clock_rate,
        channels,
    })
}

/// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rtcp<'a> {
    pub port: u16,
    pub connection: Option<Connection<'a>>,
}

/// One `m=` section: the media line's fields, its own `c=`, and its lines for lazy attribute reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaDescription<'a> {
    /// "audio", "video", "image", "application", ...
    pub media: &'a [u8],
    pub port: u16,
    /// `m=audio 49170/2 ...` gives 2; 1 when absent.
    pub port_count: u16,
    /// "RTP/AVP", "RTP/SAVP", "udptl", ...
    pub proto: &'a [u8],
    /// The format list as written, space-separated.
    pub formats: &'a [u8],
    /// The first media-level `c=`.
    pub connection: Option<Connection<'a>>,
    /// The section's lines, from the `m=` line to the next `m=` or the end.
    pub lines: &'a [u8],
}

impl<'a> MediaDescription<'a> {
    fn parse_m(value: &'a [u8], lines: &'a [u8]) -> Option<MediaDescription<'a>> {
        let value = trim(value);
        let mut tokens = value.split(|&b| is_ws(b)).filter(|t| !t.is_empty());
        let media = tokens.next()?;
        let port_text = tokens.next()?;
        let proto = tokens.next()?;
        let (port, port_count) = match port_text.iter().position(|&b| b == b'/') {
            Some(sl) => (
                parse_u16(&port_text[..sl])?,
                parse_u16(&port_text[sl + 1..])?,
            ),
            None => (parse_u16(port_text)?, 1),
        };
        // The formats run from the first token after proto to the end of the line.
        let proto_end = proto.as_ptr() as usize - value.as_ptr() as usize + proto.len();
        Some(MediaDescription {
            media,
            port,
            port_count,
            proto,
            formats: trim(&value[proto_end..]),
            connection: None,
            lines,
        })
    }

    /// The formats one by one (payload type numbers for RTP profiles).
    pub fn formats(&self) -> impl Iterator<Item = &'a [u8]> {
        self.formats.split(|&b| is_ws(b)).filter(|t| !t.is_empty())
    }
    /// The formats that are RTP payload type numbers (0..=127).
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + 'a {
        self.formats()
            .filter_map(|f| u8::try_from(parse_u32(f)?).ok().filter(|&pt| pt < 128))
    }
    /// `a=` lines of this section as (name, value); a property attribute has value `None`.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes { lines: self.lines }
    }
    /// The first attribute of this name: `Some(None)` for a property attribute.
    pub fn attribute(&self, name: &str) -> Option<Option<&'a [u8]>> {
        self.attributes()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }
    /// The media-level direction attribute, if any (see [`SessionDescription::direction_for`]).
    pub fn direction(&self) -> Option<Direction> {
        self.attributes()
            .find_map(|(n, v)| v.is_none().then(|| Direction::from_attr(n)).flatten())
    }
    /// Every `a=rtpmap` of this section that parses.
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap<'a>> {
        self.attributes()
            .filter(|(n, _)| *n == b"rtpmap")
            .filter_map(|(_, v)| RtpMap::parse(v?))
    }
    /// The mapping for a payload type: this section's `a=rtpmap`, else the RFC 3551 static table.
    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap<'a>> {
        self.rtpmaps()
            .find(|m| m.payload_type == pt)
            .or_else(|| static_payload(pt))
    }
    /// `a=rtcp` (RFC 3605).
    pub fn rtcp(&self) -> Option<Rtcp<'a>> {
        let v = trim(self.attribute("rtcp")??);
        let (port, rest) = match v.iter().position(|&b| is_ws(b)) {
            Some(sp) => (&v[..sp], trim(&v[sp..])),
            None => (v, &v[v.len()..]),
        };
        Some(Rtcp {
            port: parse_u16(port)?,
            connection: if rest.is_empty() {
                None
            } else {
                Some(Connection::parse(rest)?)
            },
        })
    }
    /// `a=rtcp-mux` (RFC 5761) present.
    pub fn rtcp_mux(&self) -> bool {
        self.attributes().any(|(n, _)| n == b"rtcp-mux")
    }
    /// `a=ptime` in milliseconds; a fractional value ("20.0") is cut to its integer part.
    pub fn ptime(&self) -> Option<u32> {
        let v = trim(self.attribute("ptime")??);
        let int = v.split(|&b| b == b'.').next()?;
        parse_u32(int)
    }
}

/// Iterator over the `a=` lines of a block of SDP lines.
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    lines: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (line, rest) = next_sdp_line(self.lines)?;
            self.lines = rest;
            if let Some(a) = line.strip_prefix(b"a=") {
                return Some(match a.iter().position(|&b| b == b':') {
                    Some(c) => (&a[..c], Some(&a[c + 1..])),
                    None => (a, None),
                });
            }
        }
    }
}

/// Splits off the next non-empty line (CRLF or LF), trimmed; `None` when no line is left.
fn next_sdp_line(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut s = s;
    loop {
        if s.is_empty() {
            return None;
        }
        let (line, rest) = match s.iter().position(|&b| b == b'\n') {
            Some(lf) => (&s[..lf], &s[lf + 1..]),
            None => (s, &s[s.len()..]),
        };
        let line = trim(line);
        if !line.is_empty() {
            return Some((line, rest));
        }
        s = rest;
    }
}

/// A parsed session description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription<'a> {
    pub raw: &'a [u8],
    /// The `v=` value ("0").
    pub version: &'a [u8],
    pub origin: Option<Origin<'a>>,
    pub session_name: Option<&'a [u8]>,
    /// The session-level `c=`.
    pub connection: Option<Connection<'a>>,
    /// Session-level lines: from `v=` up to the first `m=`.
    pub session_lines: &'a [u8],
    pub media: Vec<MediaDescription<'a>>,
    /// Lines that are not `<letter>=<value>`, and m=/o=/c= lines that do not parse.
    pub bad_lines: u32,
}

impl<'a> SessionDescription<'a> {
    /// The connection for a media section: its own `c=`, else the session-level one.
    pub fn connection_for(&self, media: &MediaDescription<'a>) -> Option<Connection<'a>> {
        media.connection.or(self.connection)
    }
    /// Session-level `a=` lines.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            lines: self.session_lines,
        }
    }
    /// The effective direction of a media section: media-level, else session-level, else sendrecv.
    pub fn direction_for(&self, media: &MediaDescription<'a>) -> Direction {
        media
            .direction()
            .or_else(|| {
                self.attributes()
                    .find_map(|(n, v)| v.is_none().then(|| Direction::from_attr(n)).flatten())
            })
            .unwrap_or(Direction::SendRecv)
    }
}

fn parse_origin(v: &[u8]) -> Option<Origin<'_>> {
    let mut t = v.split(|&b| is_ws(b)).filter(|t| !t.is_empty());
    let o = Origin {
        username: t.next()?,
        session_id: t.next()?,
        session_version: t.next()?,
        net_type: t.next()?,
        addr_type: t.next()?,
        address: t.next()?,
    };
    t.next().is_none().then_some(o)
}

/// Parses an SDP body. Line endings may be CRLF or bare LF; unknown line types are ignored, and
/// malformed lines are counted in `bad_lines` (a malformed `m=` line drops its whole section).
pub fn parse(body: &[u8]) -> Result<SessionDescription<'_>, SdpError> {
    let raw = trim(body);
    if raw.is_empty() {
        return Err(SdpError::Empty);
    }
    let (first, _) = next_sdp_line(raw).ok_or(SdpError::Empty)?;
    let version = first.strip_prefix(b"v=").ok_or(SdpError::NotSdp)?;
    let mut sd = SessionDescription {
        raw,
        version,
        origin: None,
        session_name: None,
        connection: None,
        session_lines: raw,
        media: Vec::new(),
        bad_lines: 0,
    };
    // Where each section starts, and whether the current section is a dropped (malformed) m=.
    let mut section_start: Option<usize> = None;
    let mut dropped = false;
    let mut rest = raw;
    while let Some((line, after)) = next_sdp_line(rest) {
        let line_start = line.as_ptr() as usize - raw.as_ptr() as usize;
        rest = after;
        let (kind, value) = match line {
            [k, b'=', v @ ..] if k.is_ascii_alphabetic() => (*k, v),
            _ => {
                sd.bad_lines += 1;
                continue;
            }
        };
        if kind == b'm' {
            match section_start {
                None => sd.session_lines = &raw[..line_start],
                Some(start) => close_section(&mut sd, dropped, &raw[start..line_start]),
            }
            section_start = Some(line_start);
            // `lines` is fixed when the section closes; the m= line alone for now.
            match MediaDescription::parse_m(value, line) {
                Some(m) => {
                    sd.media.push(m);
                    dropped = false;
                }
                None => {
                    sd.bad_lines += 1;
                    dropped = true;
                }
            }
            continue;
        }
        let in_media = section_start.is_some();
        match kind {
            b'o' if !in_media => match parse_origin(value) {
                Some(o) => sd.origin = Some(o),
                None => sd.bad_lines += 1,
            },
            b's' if !in_media => sd.session_name = Some(value),
            b'c' => match Connection::parse(value) {
                Some(c) if !in_media => {
                    sd.connection.get_or_insert(c);
                }
                Some(c) => {
                    if let (false, Some(m)) = (dropped, sd.media.last_mut()) {
                        m.connection.get_or_insert(c);
                    }
                }
                None => sd.bad_lines += 1,
            },
            _ => {}
        }
    }
    if let Some(start) = section_start {
        close_section(&mut sd, dropped, &raw[start..]);
    }
    Ok(sd)
}

fn close_section<'a>(sd: &mut SessionDescription<'a>, dropped: bool, lines: &'a [u8]) {
    if !dropped {
        if let Some(m) = sd.media.last_mut() {
            m.lines = lines;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &[u8] = b"v=0\r\n\
o=alice 2890844526 2890844527 IN IP4 host.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
a=sendrecv\r\n\
m=audio 49170 RTP/AVP 0 8 9 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=rtcp:53020 IN IP4 126.16.64.4\r\n\
m=video 51372/2 RTP/AVP 31 32\r\n\
c=IN IP6 2001:db8::2\r\n\
a=rtpmap:31 H261/90000\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
m=audio 0 RTP/AVP 96\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=inactive\r\n";

    #[test]
    fn offer_fields() {
        let sd = parse(OFFER).unwrap();
        assert_eq!(sd.version, b"0");
        let o = sd.origin.unwrap();
        assert_eq!(o.username, b"alice");
        assert_eq!(o.session_version, b"2890844527");
        assert_eq!(o.address, b"host.atlanta.example.com");
        assert_eq!(sd.session_name, Some(&b"-"[..]));
        assert_eq!(sd.bad_lines, 0);
        assert_eq!(sd.media.len(), 3);

        let a = &sd.media[0];
        assert_eq!(
            (a.media, a.port, a.port_count, a.proto),
            (&b"audio"[..], 49170, 1, &b"RTP/AVP"[..])
        );
        assert_eq!(a.payload_types().collect::<Vec<_>>(), vec![0, 8, 9, 101]);
        assert_eq!(a.connection, None);
        let c = sd.connection_for(a).unwrap();
        assert_eq!(c.ip(), Some("192.0.2.101".parse().unwrap()));
        assert_eq!(a.direction(), None);
        assert_eq!(sd.direction_for(a), Direction::SendRecv);
        assert_eq!(a.ptime(), Some(20));
        let rtcp = a.rtcp().unwrap();
        assert_eq!(rtcp.port, 53020);
        assert_eq!(rtcp.connection.unwrap().address, b"126.16.64.4");
        assert!(!a.rtcp_mux());
        assert_eq!(a.rtpmap(101).unwrap().encoding, b"telephone-event");
        // PT 8 and 9 have no rtpmap line: the static table answers, G.722 at an 8000 RTP clock.
        assert_eq!(a.rtpmap(8).unwrap().encoding, b"PCMA");
        let g722 = a.rtpmap(9).unwrap();
        assert_eq!((g722.encoding, g722.clock_rate), (&b"G722"[..], 8000));
        assert_eq!(a.rtpmap(100), None);
        assert_eq!(a.attribute("fmtp"), Some(Some(&b"101 0-15"[..])));

        let v = &sd.media[1];
        assert_eq!((v.port, v.port_count), (51372, 2));
        assert_eq!(
            sd.connection_for(v).unwrap().ip(),
            Some("2001:db8::2".parse().unwrap())
        );
        assert_eq!(sd.direction_for(v), Direction::RecvOnly);
        assert!(v.rtcp_mux());
        assert_eq!(v.rtcp(), None);
        assert_eq!(v.rtpmap(31).unwrap().clock_rate, 90000);
        // Attributes of one section do not leak into the next.
        assert_eq!(v.rtpmap(101), None);

        let opus = sd.media[2].rtpmap(96).unwrap();
        assert_eq!(
            (opus.encoding, opus.clock_rate, opus.channels),
            (&b"opus"[..], 48000, Some(2))
        );
        assert_eq!(sd.direction_for(&sd.media[2]), Direction::Inactive);
        assert!(
            sd.media[2].lines.ends_with(b"a=inactive\r\n")
                || sd.media[2].lines.ends_with(b"a=inactive")
        );
    }

    #[test]
    fn lf_only_multicast_and_bad_lines() {
        let body = b"v=0\no=- 1 1 IN IP4 10.0.0.1\ns=x\nc=IN IP4 224.2.1.1/127/3\ngarbage\nm=audio nope RTP/AVP 0\nc=IN IP4 10.9.9.9\na=rtpmap:0 PCMU/8000\nm=audio 5004 RTP/AVP 0\n";
        let sd = parse(body).unwrap();
        let c = sd.connection.unwrap();
        assert_eq!(
            (c.address, c.ttl, c.count),
            (&b"224.2.1.1"[..], Some(127), Some(3))
        );
        // "garbage" and the bad m= line; the dropped section's c= does not attach anywhere.
        assert_eq!(sd.bad_lines, 2);
        assert_eq!(sd.media.len(), 1);
        assert_eq!(sd.media[0].port, 5004);
        assert_eq!(sd.media[0].connection, None);
        assert_eq!(
            sd.connection_for(&sd.media[0]).unwrap().address,
            b"224.2.1.1"
        );
    }

    #[test]
    fn not_sdp() {
        assert_eq!(parse(b""), Err(SdpError::Empty));
        assert_eq!(parse(b"\r\n  \r\n"), Err(SdpError::Empty));
        assert_eq!(parse(b"hello world"), Err(SdpError::NotSdp));
        assert_eq!(parse(b"<xml/>\nv=0\n"), Err(SdpError::NotSdp));
    }

    #[test]
    fn rtpmap_and_static_table() {
        assert_eq!(RtpMap::parse(b"128 X/8000"), None);
        assert_eq!(RtpMap::parse(b"96 X"), None);
        assert_eq!(RtpMap::parse(b"96 X/8000/z"), None);
        assert_eq!(static_payload(18).unwrap().encoding, b"G729");
        assert_eq!(static_payload(13).unwrap().encoding, b"CN");
        assert_eq!(static_payload(96), None);
        assert_eq!(static_payload(1), None);
    }

    #[test]
    fn connection_forms() {
        assert_eq!(Connection::parse(b"IN IP4"), None);
        assert_eq!(Connection::parse(b"IN IP4 1.2.3.4 extra"), None);
        let c = Connection::parse(b"IN IP6 ff15::101/3").unwrap();
        assert_eq!(
            (c.address, c.ttl, c.count),
            (&b"ff15::101"[..], None, Some(3))
        );
        let c = Connection::parse(b"IN IP4 pbx.example.com").unwrap();
        assert_eq!(c.ip(), None);
    }
}
