//! RFC 3551 payload types as Wireshark 4.0 tabulates them: clock rates, the short names tshark
//! prints, its default bindings of dynamic types, and RFC 4733 event codes.
//!
//! `sip::sdp::static_payload` is a second RFC 3551 table, of SDP's `a=rtpmap` defaults: it follows
//! the RFC (no PT 19, which RFC 3551 reserves), while this one follows what tshark prints and counts
//! (PT 19 as the old comfort-noise type), so the two differ on purpose.

pub(crate) const PT_CN: u8 = 13;
pub(crate) const PT_CN_OLD: u8 = 19;

/// RFC 3551 clock rates as Wireshark 4.0 tabulates them (PT 12 QCELP and 19 CN included).
pub fn static_clock_rate(pt: u8) -> u32 {
    match pt {
        0..=5 | 7..=9 | 12 | 13 | 15 | 18 | 19 => 8000,
        6 => 16000,
        10 | 11 => 44100,
        14 | 25 | 26 | 28 | 31..=34 => 90000,
        16 => 11025,
        17 => 22050,
        _ => 0,
    }
}

/// The short names tshark prints in its Payload column for static and unmapped dynamic types.
pub fn short_payload_name(pt: u8) -> &'static str {
    const NAMES: [&str; 35] = [
        "g711U",
        "fs-1016",
        "g721",
        "GSM",
        "g723",
        "DVI4 8k",
        "DVI4 16k",
        "Exp. from Xerox PARC",
        "g711A",
        "g722",
        "16-bit audio, stereo",
        "16-bit audio, monaural",
        "Qualcomm",
        "CN",
        "MPEG-I/II Audio",
        "g728",
        "DVI4 11k",
        "DVI4 22k",
        "g729",
        "CN(old)",
        "Unassigned",
        "Unassigned",
        "Unassigned",
        "Unassigned",
        "Unassigned",
        "CellB",
        "JPEG",
        "Unassigned",
        "NV",
        "Unassigned",
        "Unassigned",
        "h261",
        "MPEG-I/II Video",
        "MPEG-II streams",
        "h263",
    ];
    const DYN: [&str; 32] = [
        "RTPType-96",
        "RTPType-97",
        "RTPType-98",
        "RTPType-99",
        "RTPType-100",
        "RTPType-101",
        "RTPType-102",
        "RTPType-103",
        "RTPType-104",
        "RTPType-105",
        "RTPType-106",
        "RTPType-107",
        "RTPType-108",
        "RTPType-109",
        "RTPType-110",
        "RTPType-111",
        "RTPType-112",
        "RTPType-113",
        "RTPType-114",
        "RTPType-115",
        "RTPType-116",
        "RTPType-117",
        "RTPType-118",
        "RTPType-119",
        "RTPType-120",
        "RTPType-121",
        "RTPType-122",
        "RTPType-123",
        "RTPType-124",
        "RTPType-125",
        "RTPType-126",
        "RTPType-127",
    ];
    match pt {
        0..=34 => NAMES[usize::from(pt)],
        72..=76 => "Reserved for RTCP conflict avoidance",
        96..=127 => DYN[usize::from(pt - 96)],
        _ => "Unassigned",
    }
}

/// Dynamic payload types that tshark 4.0's default preferences bind without SDP: 99 to the
/// RFC 2198 redundancy dissector and 100/101 to RFC 2833 events ("rtpevent").
pub(crate) fn default_dynamic_name(pt: u8) -> Option<&'static str> {
    match pt {
        99 => Some("rtp.rfc2198"),
        100 | 101 => Some("rtpevent"),
        _ => None,
    }
}

/// Wireshark's IANA media-subtype clock table, matched as a case-insensitive prefix of the name
/// and scanned from the end (so "AMR-WB" is found before "AMR").
pub(crate) fn dynamic_clock_rate(name: &str) -> u32 {
    const TABLE: [(&str, u32); 37] = [
        ("AMR", 8000),
        ("AMR-WB", 16000),
        ("BMPEG", 90000),
        ("BT656", 90000),
        ("DV", 90000),
        ("EVRC", 8000),
        ("EVRC0", 8000),
        ("EVRC1", 8000),
        ("EVRCB", 8000),
        ("EVRCB0", 8000),
        ("EVRCB1", 8000),
        ("EVRCWB", 16000),
        ("EVRCWB0", 16000),
        ("EVRCWB1", 16000),
        ("EVS", 16000),
        ("G7221", 16000),
        ("G726-16", 8000),
        ("G726-24", 8000),
        ("G726-32", 8000),
        ("G726-40", 8000),
        ("G729D", 8000),
        ("G729E", 8000),
        ("GSM-EFR", 8000),
        ("H263-1998", 90000),
        ("H263-2000", 90000),
        ("H264", 90000),
        ("MP1S", 90000),
        ("MP2P", 90000),
        ("MP4V-ES", 90000),
        ("mpa-robust", 90000),
        ("pointer", 90000),
        ("raw", 90000),
        ("red", 1000),
        ("SMV", 8000),
        ("SMV0", 8000),
        ("t140", 1000),
        ("telephone-event", 8000),
    ];
    TABLE
        .iter()
        .rev()
        .find(|(p, _)| starts_with_ci(name, p))
        .map_or(0, |&(_, r)| r)
}

pub(crate) fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// RFC 4733 event codes 0..=16 as characters.
pub fn dtmf_char(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        16 => Some('!'), // flash
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_table_matches_wireshark() {
        assert_eq!(static_clock_rate(0), 8000);
        assert_eq!(static_clock_rate(10), 44100);
        assert_eq!(static_clock_rate(34), 90000);
        assert_eq!(static_clock_rate(96), 0);
        assert_eq!(dynamic_clock_rate("AMR-WB"), 16000);
        assert_eq!(dynamic_clock_rate("amr"), 8000);
        // Wireshark 4.0 has no opus entry (later versions do).
        assert_eq!(dynamic_clock_rate("OPUS"), 0);
        assert_eq!(dynamic_clock_rate("speex"), 0);
    }
}
