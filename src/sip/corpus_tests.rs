//! The parser against the corpus: payloads of testdata/corpus captures (hex fixtures in
//! src/sip/testdata) checked field by field against tshark's reading of the same packets.
use crate::sip::lex::trim;
use crate::sip::sdp::Direction;
use crate::sip::*;

fn hex_lines(text: &str) -> Vec<Vec<u8>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            (0..l.len() / 2)
                .map(|i| u8::from_str_radix(&l[2 * i..2 * i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

fn fixture(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/src/sip/testdata/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    hex_lines(&std::fs::read_to_string(path).unwrap())
}

/// Call-IDs per the tshark oracle: `count callid` lines, the empty Call-ID included.
fn expected_callids(name: &str) -> std::collections::BTreeMap<String, usize> {
    let path = format!(
        "{}/testdata/corpus/expected/{name}.sip_callids.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let l = l.trim_start();
            let (n, id) = l.split_once(' ').unwrap_or((l, ""));
            (id.to_string(), n.parse().unwrap())
        })
        .collect()
}

#[test]
fn corpus_call_ids_match_tshark() {
    let dir = format!("{}/src/sip/testdata", env!("CARGO_MANIFEST_DIR"));
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(pcap) = name.strip_suffix(".hex") else {
            continue;
        };
        files += 1;
        let mut got = std::collections::BTreeMap::new();
        for payload in fixture(pcap) {
            assert!(!payload.is_empty());
            let id = match parse(&payload) {
                Ok(m) => {
                    assert!(looks_like_sip(&payload), "{pcap}");
                    assert!(m.consumed <= payload.len() && m.raw.len() <= m.consumed);
                    assert_eq!(m.bad_header_lines, 0, "{pcap}");
                    if let (Some(cl), false) = (m.content_length, m.body_truncated) {
                        assert_eq!(m.body.len(), cl as usize, "{pcap}");
                    }
                    // Only the junk capture's REGISTER lacks these (and its Call-ID).
                    let complete = m.cseq.is_some() && m.from.is_some() && m.to.is_some();
                    assert_eq!(complete, m.call_id.is_some(), "{pcap}");
                    if let Some(sdp) = m.sdp() {
                        assert!(sdp.is_ok(), "{pcap}");
                    }
                    String::from_utf8(m.call_id.unwrap_or_default().to_vec()).unwrap()
                }
                Err(_) => String::new(),
            };
            *got.entry(id).or_insert(0usize) += 1;
        }
        assert_eq!(got, expected_callids(pcap), "{pcap}");
    }
    assert!(files >= 18);
}

#[test]
fn corpus_compact_form_invite() {
    let p = fixture("sip-compact-form-invite.pcap");
    let m = parse(&p[0]).unwrap();
    assert_eq!(m.call_id, Some(&b"105090259-446faf7a@192.168.1.2"[..]));
    assert_eq!(
        m.via_branch,
        Some(&b"z9hG4bKnp104984053-44ce4a41192.168.1.2"[..])
    );
    assert_eq!(m.from.unwrap().tag, Some(&b"6433ef9"[..]));
    assert_eq!(m.to.unwrap().uri.unwrap().user, Some(&b"97239287044"[..]));
    assert_eq!(
        (m.content_type, m.content_length),
        (Some(&b"application/sdp"[..]), Some(272))
    );
    assert_eq!(m.header("Content-Type"), m.header("c"));
    // Content-Length says 272 but 372 bytes follow: like tshark, the body stops at 272, which
    // cuts the SDP inside its z= line, before any m= line.
    assert_eq!((m.body.len(), m.body_truncated), (272, false));
    assert!(m.body.ends_with(b"z=2882844"));
    let sdp = m.sdp().unwrap().unwrap();
    assert_eq!(sdp.origin.unwrap().username, b"SIPPS");
    assert_eq!(sdp.connection.unwrap().address, b"192.168.1.2");
    assert!(sdp.media.is_empty());
    // The bytes on the wire do hold the media description.
    let wire = sdp::parse(&p[0][p[0].len() - 372..]).unwrap();
    assert_eq!(wire.media.len(), 1);
    let (sdp, audio) = (&wire, &wire.media[0]);
    assert_eq!((audio.media, audio.port), (&b"audio"[..], 30000));
    assert_eq!(
        audio.payload_types().collect::<Vec<_>>(),
        vec![0, 8, 97, 2, 3]
    );
    assert_eq!(audio.rtpmap(0).unwrap().encoding, b"pcmu");
    assert_eq!(audio.rtpmap(8).unwrap().encoding, b"PCMA");
    assert_eq!(audio.rtpmap(97), None);
    assert_eq!(sdp.direction_for(audio), Direction::SendRecv);
    assert_eq!(sdp.connection_for(audio).unwrap().address, b"192.168.1.2");
}

#[test]
fn corpus_multi_value_headers() {
    let p = fixture("sip-header-multi-value-invite.pcap");
    let m = parse(&p[0]).unwrap();
    // Two To headers, one compact: the first is the To, both are listed.
    assert_eq!(m.to.unwrap().uri.unwrap().user, Some(&b"97239287044"[..]));
    let tos: Vec<&[u8]> = m.headers_named("To").collect();
    assert_eq!(
        tos,
        vec![
            &b"<sip:97239287044@voip.brujula.net>"[..],
            b"<sip:12345@voip.brujula.net>"
        ]
    );
    assert_eq!(m.header_values("Allow").count(), 8);
}

#[test]
fn corpus_invite_sdp_200() {
    let p = fixture("sip-invite-sdp-200.pcap");
    // Both bodies are longer than their Content-Length (272), as in the compact-form capture;
    // tshark and `body` stop at 272, so the SDP checks read what follows the empty line.
    fn wire_sdp<'p>(payload: &'p [u8], m: &Message) -> SessionDescription<'p> {
        let after_headers = m.raw.len() - m.body.len();
        sdp::parse(&payload[after_headers..]).unwrap()
    }
    let invite = parse(&p[0]).unwrap();
    assert_eq!(invite.body.len(), 272);
    assert!(invite.sdp().unwrap().unwrap().media.is_empty());
    let sdp = wire_sdp(&p[0], &invite);
    assert_eq!(sdp.media.len(), 1);
    assert_eq!(sdp.media[0].connection.unwrap().address, b"192.168.1.2");
    assert_eq!(sdp.media[0].rtpmap(0).unwrap().clock_rate, 8000);
    let ok = parse(&p[1]).unwrap();
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.cseq.unwrap().method, b"INVITE");
    let sdp = wire_sdp(&p[1], &ok);
    let ports: Vec<u16> = sdp.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, vec![30000, 20000]);
    assert_eq!(sdp.media[1].connection, None);
    assert_eq!(
        sdp.connection_for(&sdp.media[1]).unwrap().ip(),
        Some("192.168.1.2".parse().unwrap())
    );
}

#[test]
fn corpus_invalid_content_length() {
    let p = fixture("sip-invalid-content-length.pcap");
    for (payload, status) in p.iter().zip([None, Some(200)]) {
        let m = parse(payload).unwrap();
        assert_eq!(m.status(), status);
        assert_eq!(m.call_id, Some(&b"a84b4c76e66710@10.0.0.1"[..]));
        assert!(m.content_length_invalid);
        assert_eq!((m.content_length, m.body), (None, &b""[..]));
    }
    assert_eq!(parse(&p[1]).unwrap().to.unwrap().tag, Some(&b"abc123"[..]));
}

#[test]
fn corpus_junk_before_request() {
    // The capture's first datagram is four NUL bytes; tshark's SIP filter skips it too.
    assert_eq!(parse(&[0; 4]).unwrap_err(), ParseError::NotSip);
    assert!(!looks_like_sip(&[0; 4]));
    // The REGISTER that follows has no Call-ID (tshark's empty Call-ID entry).
    let p = fixture("sip-junk-before-request.pcap");
    let m = parse(&p[0]).unwrap();
    assert_eq!(
        (m.method(), m.call_id, m.expires),
        (Some(&b"REGISTER"[..]), None, Some(3600))
    );
    assert_eq!(m.request_uri().unwrap().port, Some(5060));
}

#[test]
fn corpus_sdp_media_lines_match_tshark() {
    let mut checked = 0;
    for pcap in [
        "sip-cancel-487.pcap",
        "sip-ipv6-fragmented-sll-prack-update.pcap",
        "sip-rawip-linktype-register-auth-invite.pcap",
        "sip-rtp-single-call.pcap",
        "sip-rtp-t38-fax-488-options.pcap",
        "sip-simple-invite-bye.pcap",
        "sip-sipp-5-calls.pcap",
        "sip-udp-invite-register-cloudshark.pcap",
        "sip-udp-ipv4-fragmented-call.pcap",
        "sip-udp-register-invite-cancel-auth-mixed.pcap",
    ] {
        let path = format!(
            "{}/src/sip/testdata/{pcap}.sdp_media.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        let expected = std::fs::read_to_string(path).unwrap();
        let payloads = fixture(pcap);
        assert_eq!(expected.lines().count(), payloads.len(), "{pcap}");
        for (payload, want) in payloads.iter().zip(expected.lines()) {
            let m = parse(payload).unwrap();
            let got: Vec<&[u8]> = match m.sdp() {
                Some(sdp) => sdp
                    .unwrap()
                    .media
                    .iter()
                    .map(|md| {
                        let first = md.lines.split(|&b| b == b'\n').next().unwrap();
                        trim(&first[2..])
                    })
                    .collect(),
                None => Vec::new(),
            };
            // tshark lists m= lines whose port is not a number ("m=audio $ ..."); they are dropped here.
            let want: Vec<&[u8]> = want
                .split(',')
                .filter(|w| !w.is_empty() && !w.contains(" $ "))
                .map(str::as_bytes)
                .collect();
            assert_eq!(got, want, "{pcap}");
            checked += got.len();
        }
    }
    assert!(checked >= 60, "{checked}");
}

/// The TCP framer and the parser agree on the start line of every corpus payload (keep-alive CR/LF
/// before it skipped, as the reassembler does): what UDP finds, TCP finds, and nothing more.
#[test]
fn the_framer_and_the_parser_agree_on_every_corpus_start_line() {
    let dir = format!("{}/src/sip/testdata", env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(pcap) = name.strip_suffix(".hex") else {
            continue;
        };
        for payload in fixture(pcap) {
            let rest = &payload[payload
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count()..];
            let parser = looks_like_sip(&payload);
            assert_eq!(stream_start(rest) == Start::Yes, parser, "{pcap}");
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} start lines");
}
