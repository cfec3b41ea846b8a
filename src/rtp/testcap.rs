//! Test helper: the UDP datagrams of a capture, read through the real `source` and `decode`
//! stages, with the time of the capture's first packet (tshark's time origin).

use std::net::IpAddr;
use std::path::Path;

use crate::decode::{DecodeConfig, Decoder, Transport};
use crate::source::open_capture;

pub struct Udp {
    pub ts_ns: i64,
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

pub fn read_udp(path: &str) -> (i64, Vec<Udp>) {
    let mut reader = open_capture(Path::new(path), 0).unwrap_or_else(|e| panic!("{path}: {e}"));
    // tshark would not look inside HEP for RTP streams either.
    let mut decoder = Decoder::new(DecodeConfig {
        hep: false,
        ..DecodeConfig::new(crate::sip::stream_start)
    });
    let mut origin = None;
    let mut out = Vec::new();
    while let Some(pkt) = reader
        .next_packet()
        .unwrap_or_else(|e| panic!("{path}: {e}"))
    {
        origin.get_or_insert(pkt.ts_ns);
        decoder.decode(&pkt, |d| {
            if d.transport == Transport::Udp {
                out.push(Udp {
                    ts_ns: d.ts_ns,
                    src: d.src,
                    src_port: d.src_port,
                    dst: d.dst,
                    dst_port: d.dst_port,
                    payload: d.payload.to_vec(),
                });
            }
        });
    }
    (origin.unwrap_or(0), out)
}
