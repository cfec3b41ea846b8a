//! The stateful decoder: one per worker; holds IP fragment and TCP stream state with hard bounds.
//! Plain UDP goes from link header to sink without allocating; state is touched only by fragments,
//! TCP segments of tracked SIP streams, and compressed HEP.
use std::net::IpAddr;

use super::defrag::{Defrag, FragKey, Fragment};
use super::link::{self, LinkError, Network};
use super::tcp::{FlowKey, Reassembler, Segment, StartRule};
use super::{gre, hep, ipv4, ipv6, tcp, udp};
use super::{Datagram, Encap, Transport};
use crate::source::{Packet, PacketLocation};

#[derive(Clone, Debug)]
pub struct DecodeConfig {
    /// Decode HEP v2/v3 found in UDP/TCP payloads on any port.
    pub hep: bool,
    /// Bytes buffered for IP fragments awaiting reassembly, over all datagrams.
    pub max_fragment_bytes: usize,
    /// Incomplete fragment sets are dropped after this long (capture time).
    pub fragment_timeout_ns: i64,
    /// TCP connections tracked at once; the oldest is evicted beyond that.
    pub max_tcp_streams: usize,
    /// Bytes buffered per TCP direction awaiting a complete SIP message.
    pub max_tcp_buffer: usize,
    /// Idle TCP connections are forgotten after this long (capture time).
    pub tcp_timeout_ns: i64,
    /// Where a SIP message starts in a TCP stream: pass `sip::stream_start`, the parser's own rule
    /// (decode sits below `sip` and does not name it, so the caller hands it down).
    pub stream_start: StartRule,
}

impl DecodeConfig {
    /// The usual limits, framing TCP streams with `stream_start`.
    pub fn new(stream_start: StartRule) -> Self {
        DecodeConfig {
            stream_start,
            hep: true,
            max_fragment_bytes: 64 << 20,
            fragment_timeout_ns: 30_000_000_000,
            max_tcp_streams: 65_536,
            max_tcp_buffer: 1 << 20,
            tcp_timeout_ns: 300_000_000_000,
        }
    }
}

/// Counters per reason; the hot path counts, it never formats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    pub packets: u64,
    pub unsupported_link: u64,
    pub malformed_link: u64,
    pub malformed_ip: u64,
    pub non_ip: u64,
    pub other_ip_proto: u64,
    pub malformed_udp: u64,
    pub malformed_tcp: u64,
    pub fragments: u64,
    pub fragments_reassembled: u64,
    pub fragments_dropped: u64,
    pub tcp_segments: u64,
    pub tcp_retransmissions: u64,
    pub tcp_out_of_order: u64,
    pub tcp_messages: u64,
    pub tcp_bytes_dropped: u64,
    pub tcp_streams_evicted: u64,
    pub hep_packets: u64,
    pub malformed_hep: u64,
    pub datagrams: u64,
    /// GRE other than RFC 2784/2890 version 0 carrying IP, Ethernet or ERSPAN; or tunnels nested
    /// deeper than the bound.
    pub unsupported_tunnel: u64,
}

impl DecodeStats {
    /// The counts added since `earlier`, a snapshot of the same decoder.
    pub fn since(&self, earlier: &DecodeStats) -> DecodeStats {
        DecodeStats {
            packets: self.packets - earlier.packets,
            unsupported_link: self.unsupported_link - earlier.unsupported_link,
            malformed_link: self.malformed_link - earlier.malformed_link,
            malformed_ip: self.malformed_ip - earlier.malformed_ip,
            non_ip: self.non_ip - earlier.non_ip,
            other_ip_proto: self.other_ip_proto - earlier.other_ip_proto,
            malformed_udp: self.malformed_udp - earlier.malformed_udp,
            malformed_tcp: self.malformed_tcp - earlier.malformed_tcp,
            fragments: self.fragments - earlier.fragments,
            fragments_reassembled: self.fragments_reassembled - earlier.fragments_reassembled,
            fragments_dropped: self.fragments_dropped - earlier.fragments_dropped,
            tcp_segments: self.tcp_segments - earlier.tcp_segments,
            tcp_retransmissions: self.tcp_retransmissions - earlier.tcp_retransmissions,
            tcp_out_of_order: self.tcp_out_of_order - earlier.tcp_out_of_order,
            tcp_messages: self.tcp_messages - earlier.tcp_messages,
            tcp_bytes_dropped: self.tcp_bytes_dropped - earlier.tcp_bytes_dropped,
            tcp_streams_evicted: self.tcp_streams_evicted - earlier.tcp_streams_evicted,
            hep_packets: self.hep_packets - earlier.hep_packets,
            malformed_hep: self.malformed_hep - earlier.malformed_hep,
            datagrams: self.datagrams - earlier.datagrams,
            unsupported_tunnel: self.unsupported_tunnel - earlier.unsupported_tunnel,
        }
    }
}

/// Tunnels inside tunnels beyond this are not followed.
const MAX_DEPTH: u8 = 8;
/// Expiry sweeps run at most this often (capture time).
const SWEEP_INTERVAL_NS: i64 = 1_000_000_000;

const IPPROTO_IPIP: u8 = 4;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_IPV6: u8 = 41;
const IPPROTO_GRE: u8 = 47;
const IPPROTO_SCTP: u8 = 132;

/// What is known about a packet on the way down, besides its bytes.
#[derive(Clone, Copy)]
struct Meta<'l> {
    ts_ns: i64,
    encap: Encap,
    vlan: Option<u16>,
    locations: &'l [PacketLocation],
    depth: u8,
}

pub struct Decoder {
    config: DecodeConfig,
    stats: DecodeStats,
    defrag: Defrag,
    tcp: Reassembler,
    /// Reused for inflated HEP payloads.
    inflated: Vec<u8>,
    next_sweep_ns: i64,
    /// File of the last packet and the latest capture time seen, to notice a file that does not
    /// continue the one before it.
    file_id: u32,
    latest_ns: i64,
}

impl Decoder {
    pub fn new(config: DecodeConfig) -> Self {
        Decoder {
            defrag: Defrag::new(config.max_fragment_bytes, config.fragment_timeout_ns),
            tcp: Reassembler::new(
                config.stream_start,
                config.max_tcp_streams,
                config.max_tcp_buffer,
                config.tcp_timeout_ns,
            ),
            config,
            stats: DecodeStats::default(),
            inflated: Vec::new(),
            next_sweep_ns: i64::MIN,
            file_id: 0,
            latest_ns: i64::MIN,
        }
    }

    /// Decode one captured packet; `sink` is called for each UDP datagram, each complete SIP message
    /// framed out of a TCP stream, and each HEP-carried payload that the packet completes.
    pub fn decode<F: FnMut(&Datagram<'_>)>(&mut self, packet: &Packet<'_>, mut sink: F) {
        self.stats.packets += 1;
        if packet.location.file_id != self.file_id {
            self.file_id = packet.location.file_id;
            if packet.ts_ns < self.latest_ns {
                // A file that starts before the previous one ended does not continue it (the same
                // capture given twice, or another capture point): its TCP streams and fragments
                // start afresh, or each of its segments would pass for a retransmission.
                self.defrag.finish(&mut self.stats);
                self.tcp.finish(&mut self.stats);
                self.next_sweep_ns = i64::MIN;
                self.latest_ns = i64::MIN;
            }
        }
        self.latest_ns = self.latest_ns.max(packet.ts_ns);
        if packet.ts_ns >= self.next_sweep_ns {
            self.next_sweep_ns = packet.ts_ns.saturating_add(SWEEP_INTERVAL_NS);
            self.defrag.expire(packet.ts_ns, &mut self.stats);
            self.tcp.expire(packet.ts_ns, &mut self.stats);
        }
        let l3 = match link::parse(packet.link_type, packet.data) {
            Ok(l3) => l3,
            Err(e) => {
                self.count_link(e);
                return;
            }
        };
        let mut meta = Meta {
            ts_ns: packet.ts_ns,
            encap: Encap::default(),
            vlan: l3.vlan,
            locations: std::slice::from_ref(&packet.location),
            depth: 0,
        };
        if l3.vlan.is_some() {
            meta.encap.insert(Encap::VLAN);
        }
        self.network(l3.net, l3.bytes, meta, &mut sink);
    }

    /// End of input: buffered partial data is dropped and counted.
    pub fn finish<F: FnMut(&Datagram<'_>)>(&mut self, sink: F) {
        // Nothing buffered is complete: fragments lack pieces, TCP messages lack bytes.
        let _ = sink;
        self.defrag.finish(&mut self.stats);
        self.tcp.finish(&mut self.stats);
    }

    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    fn count_link(&mut self, e: LinkError) {
        match e {
            LinkError::Unsupported => self.stats.unsupported_link += 1,
            LinkError::Malformed => self.stats.malformed_link += 1,
            LinkError::NonIp => self.stats.non_ip += 1,
        }
    }

    #[inline]
    fn network<F: FnMut(&Datagram<'_>)>(
        &mut self,
        net: Network,
        b: &[u8],
        m: Meta<'_>,
        sink: &mut F,
    ) {
        match net {
            Network::Ipv4 => self.ipv4(b, m, sink),
            Network::Ipv6 => self.ipv6(b, m, sink),
        }
    }

    #[inline(always)]
    fn ipv4<F: FnMut(&Datagram<'_>)>(&mut self, b: &[u8], m: Meta<'_>, sink: &mut F) {
        let Ok(ip) = ipv4::parse(b) else {
            self.stats.malformed_ip += 1;
            return;
        };
        let (src, dst) = (IpAddr::V4(ip.src), IpAddr::V4(ip.dst));
        if !ip.is_fragment() {
            return self.transport(src, dst, ip.protocol, ip.payload, m, sink);
        }
        let key = FragKey {
            src,
            dst,
            identification: u32::from(ip.identification),
            protocol: ip.protocol,
        };
        self.fragment(
            key,
            ip.fragment_offset,
            ip.more_fragments,
            ip.payload,
            m,
            sink,
        );
    }

    fn ipv6<F: FnMut(&Datagram<'_>)>(&mut self, b: &[u8], m: Meta<'_>, sink: &mut F) {
        let Ok(ip) = ipv6::parse(b) else {
            self.stats.malformed_ip += 1;
            return;
        };
        let (src, dst) = (IpAddr::V6(ip.src), IpAddr::V6(ip.dst));
        self.ipv6_chain(src, dst, ip.next_header, ip.payload, m, sink);
    }

    fn ipv6_chain<F: FnMut(&Datagram<'_>)>(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        next_header: u8,
        b: &[u8],
        m: Meta<'_>,
        sink: &mut F,
    ) {
        match ipv6::walk(next_header, b) {
            Ok(ipv6::Walk::Upper { protocol, payload }) => {
                self.transport(src, dst, protocol, payload, m, sink)
            }
            Ok(ipv6::Walk::Fragment {
                next_header,
                offset,
                more,
                identification,
                data,
            }) => {
                let key = FragKey {
                    src,
                    dst,
                    identification,
                    protocol: next_header,
                };
                self.fragment(key, offset, more, data, m, sink);
            }
            Ok(ipv6::Walk::Opaque) => self.stats.other_ip_proto += 1,
            Err(_) => self.stats.malformed_ip += 1,
        }
    }

    fn fragment<F: FnMut(&Datagram<'_>)>(
        &mut self,
        key: FragKey,
        offset: u32,
        more: bool,
        data: &[u8],
        m: Meta<'_>,
        sink: &mut F,
    ) {
        self.stats.fragments += 1;
        let f = Fragment {
            key,
            offset,
            more,
            data,
            ts_ns: m.ts_ns,
            locations: m.locations,
        };
        let Some(whole) = self.defrag.push(f, &mut self.stats) else {
            return;
        };
        let m = Meta {
            locations: &whole.locations,
            ..m
        };
        if key.src.is_ipv6() {
            // The fragmentable part may itself start with extension headers.
            self.ipv6_chain(key.src, key.dst, key.protocol, &whole.data, m, sink);
        } else {
            self.transport(key.src, key.dst, key.protocol, &whole.data, m, sink);
        }
        self.defrag.recycle(whole);
    }

    #[inline(always)]
    fn transport<F: FnMut(&Datagram<'_>)>(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        b: &[u8],
        m: Meta<'_>,
        sink: &mut F,
    ) {
        match protocol {
            IPPROTO_UDP => self.udp(src, dst, b, m, sink),
            IPPROTO_TCP => self.tcp(src, dst, b, m, sink),
            IPPROTO_IPIP | IPPROTO_IPV6 | IPPROTO_GRE => self.tunnel(protocol, b, m, sink),
            _ => self.stats.other_ip_proto += 1,
        }
    }

    /// IP in IP and GRE. Kept out of line: it closes the loop back to `ipv4`, and a call here lets
    /// the plain path (link, IP, UDP) be inlined into `decode` as one function.
    #[inline(never)]
    fn tunnel<F: FnMut(&Datagram<'_>)>(
        &mut self,
        protocol: u8,
        b: &[u8],
        mut m: Meta<'_>,
        sink: &mut F,
    ) {
        if m.depth >= MAX_DEPTH {
            self.stats.unsupported_tunnel += 1;
            return;
        }
        m.depth += 1;
        if protocol == IPPROTO_GRE {
            return self.gre(b, m, sink);
        }
        m.encap.insert(Encap::IPIP);
        if protocol == IPPROTO_IPIP {
            self.ipv4(b, m, sink)
        } else {
            self.ipv6(b, m, sink)
        }
    }

    fn gre<F: FnMut(&Datagram<'_>)>(&mut self, b: &[u8], mut m: Meta<'_>, sink: &mut F) {
        m.encap.insert(Encap::GRE);
        match gre::parse(b) {
            Ok(gre::Inner::Ipv4(ip)) => self.ipv4(ip, m, sink),
            Ok(gre::Inner::Ipv6(ip)) => self.ipv6(ip, m, sink),
            Ok(gre::Inner::Ethernet { frame, erspan }) => {
                if erspan {
                    m.encap.insert(Encap::ERSPAN);
                }
                match link::ethernet(frame) {
                    Ok(l3) => {
                        if l3.vlan.is_some() {
                            m.vlan = l3.vlan;
                            m.encap.insert(Encap::VLAN);
                        }
                        self.network(l3.net, l3.bytes, m, sink);
                    }
                    Err(e) => self.count_link(e),
                }
            }
            Err(gre::GreError::Malformed) => self.stats.malformed_ip += 1,
            Err(gre::GreError::Unsupported) => self.stats.unsupported_tunnel += 1,
        }
    }

    #[inline(always)]
    fn udp<F: FnMut(&Datagram<'_>)>(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        b: &[u8],
        m: Meta<'_>,
        sink: &mut F,
    ) {
        let Ok(u) = udp::parse(b) else {
            self.stats.malformed_udp += 1;
            return;
        };
        if self.config.hep && hep::looks_like(u.payload) && self.hep(u.payload, m, sink) {
            return;
        }
        self.stats.datagrams += 1;
        sink(&Datagram {
            ts_ns: m.ts_ns,
            src,
            dst,
            src_port: u.src_port,
            dst_port: u.dst_port,
            transport: Transport::Udp,
            encap: m.encap,
            vlan: m.vlan,
            payload: u.payload,
            locations: m.locations,
            hep: None,
        });
    }

    fn tcp<F: FnMut(&Datagram<'_>)>(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        b: &[u8],
        m: Meta<'_>,
        sink: &mut F,
    ) {
        let Ok(t) = tcp::parse(b) else {
            self.stats.malformed_tcp += 1;
            return;
        };
        self.stats.tcp_segments += 1;
        if self.config.hep && hep::looks_like(t.payload) && self.hep(t.payload, m, sink) {
            return;
        }
        let key = FlowKey {
            src,
            dst,
            src_port: t.src_port,
            dst_port: t.dst_port,
        };
        let seg = Segment {
            key,
            seq: t.seq,
            flags: t.flags,
            payload: t.payload,
            ts_ns: m.ts_ns,
            locations: m.locations,
        };
        let mut emitted = 0;
        self.tcp
            .segment(seg, &mut self.stats, |payload, locations| {
                emitted += 1;
                sink(&Datagram {
                    ts_ns: m.ts_ns,
                    src,
                    dst,
                    src_port: t.src_port,
                    dst_port: t.dst_port,
                    transport: Transport::Tcp,
                    encap: m.encap,
                    vlan: m.vlan,
                    payload,
                    locations,
                    hep: None,
                })
            });
        self.stats.datagrams += emitted;
    }

    /// Decodes every HEP packet in `b` (a TCP segment may carry several); true if any decoded.
    fn hep<F: FnMut(&Datagram<'_>)>(&mut self, b: &[u8], m: Meta<'_>, sink: &mut F) -> bool {
        let mut rest = b;
        let mut any = false;
        while !rest.is_empty() {
            let h = match hep::parse(rest) {
                Ok(h) if h.len > 0 => h,
                _ => {
                    self.stats.malformed_hep += 1;
                    break;
                }
            };
            rest = &rest[h.len.min(rest.len())..];
            let transport = match h.protocol {
                IPPROTO_UDP => Transport::Udp,
                IPPROTO_TCP => Transport::Tcp,
                IPPROTO_SCTP => Transport::Sctp,
                _ => {
                    self.stats.malformed_hep += 1;
                    continue;
                }
            };
            let payload = match h.payload {
                hep::HepPayload::Plain(p) => p,
                hep::HepPayload::Compressed(z) => {
                    if hep::inflate(z, &mut self.inflated).is_err() {
                        self.stats.malformed_hep += 1;
                        continue;
                    }
                    &self.inflated
                }
            };
            any = true;
            self.stats.hep_packets += 1;
            self.stats.datagrams += 1;
            let mut encap = m.encap;
            encap.insert(Encap::HEP);
            sink(&Datagram {
                ts_ns: h.ts_ns.unwrap_or(m.ts_ns),
                src: h.src,
                dst: h.dst,
                src_port: h.src_port,
                dst_port: h.dst_port,
                transport,
                encap,
                vlan: h.vlan.or(m.vlan),
                payload,
                locations: m.locations,
                hep: Some(h.info),
            });
            if !hep::looks_like(rest) {
                if !rest.is_empty() {
                    self.stats.malformed_hep += 1;
                }
                break;
            }
        }
        any
    }
}

#[cfg(test)]
#[path = "decoder_tests.rs"]
mod tests;
