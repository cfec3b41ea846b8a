//! H.248/MEGACO text encoding (ITU-T H.248.1 Annex B, RFC 3525): the SDP that a media gateway
//! controller puts in Local and Remote descriptors, the only part the media pass needs.
//!
//! Why here: a media gateway's RTP (and T.38) ports are announced by MEGACO, not SIP, on trunks
//! where a softswitch drives the gateway; Wireshark sets up RTP/T.38 conversations from this SDP,
//! so the streams' analysis (and T.38 taking a port over) depends on it. Hand-written: the
//! descriptors are brace-delimited text around plain SDP, and no crate parses H.248 text.

/// True when a UDP payload is a MEGACO text message: it starts (after white space) with the
/// version token `MEGACO/` or its compact form `!/` (H.248.1 B.2, `MegacopToken`).
pub fn looks_like_megaco(payload: &[u8]) -> bool {
    let p = trim_start(payload);
    p.starts_with(b"!/") || (p.len() >= 7 && p[..7].eq_ignore_ascii_case(b"MEGACO/"))
}

/// The SDP session descriptions in a message's Local (`Local`/`L`) and Remote (`Remote`/`R`)
/// descriptors, in message order. A descriptor may hold several sessions back to back (each
/// from its own `v=` line), as gateways list audio and T.38 alternatives.
pub fn session_descriptions(payload: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < payload.len() {
        // a descriptor token starts after a delimiter: `{`, `,` or white space
        let at_token =
            i == 0 || matches!(payload[i - 1], b'{' | b',' | b' ' | b'\t' | b'\r' | b'\n');
        if !at_token {
            i += 1;
            continue;
        }
        let Some(open) = descriptor_open(&payload[i..]) else {
            i += 1;
            continue;
        };
        let body_start = i + open;
        // SDP has no braces: the descriptor ends at the next `}`
        let Some(len) = payload[body_start..].iter().position(|&b| b == b'}') else {
            break;
        };
        split_sessions(&payload[body_start..body_start + len], &mut out);
        i = body_start + len + 1;
    }
    out
}

/// If `p` starts with `Local`, `L`, `Remote` or `R` (any case), white space and `{`: the offset
/// just past the brace.
fn descriptor_open(p: &[u8]) -> Option<usize> {
    let word_len = p.iter().position(|b| !b.is_ascii_alphabetic())?;
    let word = &p[..word_len];
    let named = [&b"local"[..], b"l", b"remote", b"r"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w));
    if !named {
        return None;
    }
    let rest = &p[word_len..];
    let ws = rest.iter().position(|b| !b" \t\r\n".contains(b))?;
    (rest[ws] == b'{').then_some(word_len + ws + 1)
}

/// Cuts a descriptor's text at each `v=` line start into its sessions; text before the first
/// `v=` is dropped (white space after the brace).
fn split_sessions<'a>(text: &'a [u8], out: &mut Vec<&'a [u8]>) {
    let mut starts: Vec<usize> = Vec::new();
    for (i, _) in text.iter().enumerate() {
        let line_start = i == 0 || text[i - 1] == b'\n';
        if line_start && text[i..].starts_with(b"v=") {
            starts.push(i);
        } else if line_start {
            // leading blanks before `v=` on the first line (`l { \n v=0`)
            let blanks = text[i..]
                .iter()
                .take_while(|b| matches!(b, b' ' | b'\t'))
                .count();
            if blanks > 0 && text[i + blanks..].starts_with(b"v=") {
                starts.push(i + blanks);
            }
        }
    }
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(text.len());
        out.push(&text[s..end]);
    }
}

fn trim_start(p: &[u8]) -> &[u8] {
    let n = p.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &p[n..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::sdp;

    // Shapes from a real softswitch/gateway exchange (corpus sip-rtp-t38-fax-488-options.pcap,
    // frames 1434/1435): compact request with `L{`/`R{`, pretty reply with `l {`/`r {`.
    const REQUEST: &[u8] =
        b"!/1 <iMSS>\nT=555282751{C=191{MF=RTP/1727{M{O{MO=SR,RV=ON,RG=ON},L{v=0\n\
c=IN IP4 10.23.1.52\nm=audio 16756 RTP/AVP 8 102\na=rtpmap:102 telephone-event/8000\n\
v=0\nc=IN IP4 10.23.1.52\nm=image 16756 udptl t38\n},R{v=0\no=- 754617316 4 IN IP4 10.35.60.100\n\
s=-\nc=IN IP4 10.35.60.100\nt=0 0\nm=audio 15580 RTP/AVP 8 102\n}}}}}";
    const REPLY: &[u8] = b"!/1 [10.23.1.42]:2944 P = 555282751{ C = 191 {mf=RTP/1727  { m { l { \n\
v=0\no=- 191 1228500780 IN IP4 10.23.1.52\ns=-\nc=IN IP4 10.23.1.52\nt=0 0\n\
m=audio 16756 RTP/AVP 8 102\na=rtpmap:102 telephone-event/8000/1\n\
v=0\no=- 0 0 IN IP4 -\ns=-\nc=IN IP4 10.23.1.52\nt=0 0\nm=image 16756 UDPTL t38\n } ,r { \n\
v=0\nc=IN IP4 10.35.60.100\nt=0 0\nm=audio 15580 RTP/AVP 8 102\n }  }  } }}";

    fn media_of(p: &[u8]) -> Vec<(String, u16, String)> {
        session_descriptions(p)
            .into_iter()
            .flat_map(|s| {
                let d = sdp::parse(s).expect("SDP");
                d.media
                    .iter()
                    .map(|m| {
                        let ip = d.connection_for(m).and_then(|c| c.ip()).unwrap();
                        (
                            String::from_utf8_lossy(m.media).into_owned(),
                            m.port,
                            ip.to_string(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn local_and_remote_sessions_in_both_encodings() {
        assert!(looks_like_megaco(REQUEST) && looks_like_megaco(REPLY));
        assert!(looks_like_megaco(b"MEGACO/1 [10.0.0.1]:2944\nReply=1{}"));
        assert!(!looks_like_megaco(b"INVITE sip:a@b SIP/2.0\r\n"));
        let want = vec![
            ("audio".to_string(), 16756, "10.23.1.52".to_string()),
            ("image".to_string(), 16756, "10.23.1.52".to_string()),
            ("audio".to_string(), 15580, "10.35.60.100".to_string()),
        ];
        assert_eq!(media_of(REQUEST), want);
        assert_eq!(media_of(REPLY), want);
    }

    #[test]
    fn other_descriptors_and_empty_ones_give_nothing() {
        // Media, LocalControl, Events, a Remote with no SDP, and words merely ending in L or R
        let p = b"MEGACO/1 [1.2.3.4]:2944\nTransaction=1{Context=2{Modify=RTP/1{Media{\
LocalControl{Mode=SendReceive},Remote{}},Events=3{al/on}}},MR{v=0\n}}";
        assert!(session_descriptions(p).is_empty());
        assert!(session_descriptions(b"").is_empty());
        // an unterminated descriptor is dropped, not read to the end of the datagram
        assert!(
            session_descriptions(b"!/1 x L{v=0\nc=IN IP4 1.2.3.4\nm=audio 4 RTP/AVP 0\n")
                .is_empty()
        );
    }
}
