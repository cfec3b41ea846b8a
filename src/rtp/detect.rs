//! Is a UDP payload RTP, RTCP or neither? Two entry points: `classify_heuristic` for ports nobody
//! announced (Wireshark 4.0's `rtp_udp` heuristic) and `classify_known_flow` for SDP media ports.
//!
//! What Wireshark 4.0 accepts (learnt from packet-rtp.c `dissect_rtp_heur` and `dissect_rtp`):
//! version 2; payload type not 72..=76 (those are RTCP SR..APP with the marker bit); the CSRC
//! list and header extension fit; when P is set the last octet is a non-zero count that fits.
//! There is no port-parity test (tshark lists streams sent to odd ports). A packet that passes
//! with the marker set and a payload type in 64..=95 is handed to RTCP (RFC 5761 §4), so
//! XR (207), RTPFB (205) and PSFB (206) first packets are RTCP, never streams.
//! Not modelled: UDP ports that tshark gives to another dissector before heuristics run.

use super::RtpHeader;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Classification {
    Rtp,
    Rtcp,
    Neither,
}

/// RFC 5761 §4: payload types 64..=95 with the marker bit collide with RTCP packet types 192..=223.
fn rtcp_conflict(b1: u8) -> bool {
    b1 & 0x80 != 0 && (64..=95).contains(&(b1 & 0x7f))
}

/// Wireshark's heuristic for unannounced ports, then its RTCP heuristic.
pub fn classify_heuristic(payload: &[u8]) -> Classification {
    // Not checked here: `tshark_claims_port`, which needs the ports.
    if payload.len() >= 2 && payload[0] >> 6 == 2 && !(72..=76).contains(&(payload[1] & 0x7f)) {
        if let Ok(h) = RtpHeader::parse(payload) {
            if h.padding_valid() {
                return if rtcp_conflict(payload[1]) {
                    Classification::Rtcp
                } else {
                    Classification::Rtp
                };
            }
        }
    }
    if looks_like_rtcp(payload) {
        Classification::Rtcp
    } else {
        Classification::Neither
    }
}

/// A port announced in SDP: any version-2 packet is RTP unless its second octet is an RTCP type
/// (rtcp-mux, RFC 5761). Bad padding is tolerated as Wireshark does on a known conversation.
pub fn classify_known_flow(payload: &[u8]) -> Classification {
    if payload.len() >= 2 && payload[0] >> 6 == 2 && rtcp_conflict(payload[1]) {
        return Classification::Rtcp;
    }
    match RtpHeader::parse(payload) {
        Ok(_) => Classification::Rtp,
        Err(_) => Classification::Neither,
    }
}

/// UDP ports that tshark 4.0 hands to a port-registered dissector before any heuristic runs, so
/// its `rtp,streams` never sees RTP there. Not the whole table: the well-known range (tshark
/// registers most of it) and the registered ports common on VoIP networks.
pub fn tshark_claims_port(port: u16) -> bool {
    port < 1024
        || matches!(
            port,
            1719 | 1720
                | 1812
                | 1813
                | 1900
                | 2427
                | 2727
                | 3478
                | 4500
                | 5060
                | 5061
                | 5353
                | 5355
        )
}

/// Wireshark's `dissect_rtcp_heur`: version 2, first packet SR, RR, BYE, APP or PSFB, and a
/// length that is a multiple of four.
pub fn looks_like_rtcp(payload: &[u8]) -> bool {
    payload.len() >= 4
        && payload.len().is_multiple_of(4)
        && payload[0] >> 6 == 2
        && matches!(payload[1], 200 | 201 | 203 | 204 | 206)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(b0: u8, b1: u8) -> Vec<u8> {
        let mut v = vec![b0, b1, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        v.extend_from_slice(&[0xff; 20]);
        v
    }

    #[test]
    fn heuristic_matches_wireshark() {
        assert_eq!(classify_heuristic(&rtp(0x80, 0)), Classification::Rtp);
        assert_eq!(classify_heuristic(&rtp(0x80, 64)), Classification::Rtp);
        assert_eq!(
            classify_heuristic(&rtp(0x80, 0x80 | 64)),
            Classification::Rtcp
        );
        assert_eq!(classify_heuristic(&rtp(0x80, 72)), Classification::Neither);
        assert_eq!(classify_heuristic(&rtp(0x40, 0)), Classification::Neither);
        // XR first: 0x80|79 passes the RTP test and is handed to RTCP
        assert_eq!(classify_heuristic(&rtp(0x80, 207)), Classification::Rtcp);
        // SR: PT 72 with marker, rejected as RTP, accepted by the RTCP heuristic
        let mut sr = rtp(0x80, 200);
        sr.truncate(28);
        assert_eq!(classify_heuristic(&sr), Classification::Rtcp);
        // padding count zero: rejected
        let mut bad = rtp(0xa0, 0);
        *bad.last_mut().unwrap() = 0;
        assert_eq!(classify_heuristic(&bad), Classification::Neither);
        assert_eq!(classify_known_flow(&bad), Classification::Rtp);
        assert_eq!(classify_known_flow(&rtp(0x80, 72)), Classification::Rtp);
        assert_eq!(classify_heuristic(&[0x80]), Classification::Neither);
    }
}
