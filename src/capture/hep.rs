//! HEP collector: receives HEP v2/v3 over UDP and HEP3 over TCP, and writes each carried packet into
//! the `hep` ring rebuilt as it was on the wire (raw IPv4/IPv6 + UDP or TCP, original addresses,
//! ports and capture time), so every later stage reads it like any other capture.
//!
//! Rebuilt packets use LINKTYPE_RAW: HEP carries no MAC addresses and none are invented. What HEP
//! knows beyond the packet (capture id, node name, the agent's address, VLAN) goes into the pcapng
//! EPB comment and, for both formats, the side table `hep-nodes.jsonl`. TCP payloads get per-flow
//! sequence numbers that continue from one HEP packet to the next, so reassembly downstream works.
//! Not written (counted as `not_packet`): log lines (type 100), JSON reports (a `{` payload on a
//! non-SIP type) and transports other than UDP and TCP.
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::ring::{Annotation, Ring};
use super::{now_ns, CaptureError};
use crate::decode::hep::{self, HepPayload};

/// Where to listen for HEP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HepListen {
    Udp(SocketAddr),
    Tcp(SocketAddr),
}

impl std::str::FromStr for HepListen {
    type Err = String;
    /// `udp:ADDR:PORT` or `tcp:ADDR:PORT`; IPv6 as `udp:[::1]:9060`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (proto, addr) = s
            .split_once(':')
            .ok_or_else(|| format!("'{s}': expected udp:ADDR:PORT or tcp:ADDR:PORT"))?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|e| format!("'{s}': bad address '{addr}': {e}"))?;
        match proto.to_ascii_lowercase().as_str() {
            "udp" => Ok(HepListen::Udp(addr)),
            "tcp" => Ok(HepListen::Tcp(addr)),
            _ => Err(format!("'{s}': transport must be udp or tcp")),
        }
    }
}

/// HEP-specific counters; packets written are the `hep` ring's.
#[derive(Debug, Default)]
pub struct HepCounters {
    pub received: AtomicU64,
    pub rejected_auth: AtomicU64,
    pub malformed: AtomicU64,
    pub not_packet: AtomicU64,
    pub tcp_connections: AtomicU64,
}

/// Reasons a HEP packet is not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    Malformed,
    Auth,
    NotPacket,
}

/// Per-flow TCP sequence numbers are forgotten beyond this many flows.
const MAX_TCP_FLOWS: usize = 65_536;
const READ_TIMEOUT: Duration = Duration::from_millis(200);
/// A HEP3 frame cannot be longer than its 16-bit length.
const MAX_FRAME: usize = 65_535;

type Flow = (IpAddr, u16, IpAddr, u16);

/// Rebuilds wire packets from parsed HEP; holds the state that spans packets.
#[derive(Default)]
pub(crate) struct Rebuilder {
    inflated: Vec<u8>,
    pub packet: Vec<u8>,
    next_seq: HashMap<Flow, u32>,
    ip_id: u16,
}

fn checksum_add(mut sum: u32, b: &[u8]) -> u32 {
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn checksum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ip_bytes(a: &IpAddr) -> ([u8; 16], usize) {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v) => {
            b[..4].copy_from_slice(&v.octets());
            (b, 4)
        }
        IpAddr::V6(v) => (v.octets(), 16),
    }
}

impl Rebuilder {
    /// Parses one HEP packet and rebuilds the packet it carries into `self.packet`.
    pub fn rebuild<'a>(
        &mut self,
        data: &'a [u8],
        password: Option<&[u8]>,
    ) -> Result<hep::Hep<'a>, Skip> {
        let h = hep::parse(data).map_err(|_| Skip::Malformed)?;
        if let Some(pw) = password {
            if h.info.auth_key != Some(pw) {
                return Err(Skip::Auth);
            }
        }
        let payload: &[u8] = match h.payload {
            HepPayload::Plain(p) => p,
            HepPayload::Compressed(z) => {
                hep::inflate(z, &mut self.inflated).map_err(|_| Skip::Malformed)?;
                &self.inflated
            }
        };
        let sip = matches!(h.info.payload_type, None | Some(1));
        if h.info.payload_type == Some(100) || (!sip && payload.first() == Some(&b'{')) {
            return Err(Skip::NotPacket);
        }
        let (src, n) = ip_bytes(&h.src);
        let (dst, _) = ip_bytes(&h.dst);
        let (src, dst) = (&src[..n], &dst[..n]);
        let l4_len = match h.protocol {
            17 => 8,
            6 => 20,
            _ => return Err(Skip::NotPacket),
        };
        let seg_len = l4_len + payload.len();
        let out = &mut self.packet;
        out.clear();
        let l4_start;
        match h.src {
            IpAddr::V4(_) => {
                let total = 20 + seg_len;
                let total = u16::try_from(total).map_err(|_| Skip::Malformed)?;
                self.ip_id = self.ip_id.wrapping_add(1);
                out.extend_from_slice(&[0x45, 0]);
                out.extend_from_slice(&total.to_be_bytes());
                out.extend_from_slice(&self.ip_id.to_be_bytes());
                out.extend_from_slice(&[0x40, 0, 64, h.protocol, 0, 0]); // DF, TTL 64
                out.extend_from_slice(src);
                out.extend_from_slice(dst);
                let c = checksum_fold(checksum_add(0, &out[..20]));
                out[10..12].copy_from_slice(&c.to_be_bytes());
                l4_start = 20;
            }
            IpAddr::V6(_) => {
                let plen = u16::try_from(seg_len).map_err(|_| Skip::Malformed)?;
                out.extend_from_slice(&[0x60, 0, 0, 0]);
                out.extend_from_slice(&plen.to_be_bytes());
                out.extend_from_slice(&[h.protocol, 64]);
                out.extend_from_slice(src);
                out.extend_from_slice(dst);
                l4_start = 40;
            }
        }
        let (sp, dp) = (h.src_port.to_be_bytes(), h.dst_port.to_be_bytes());
        if h.protocol == 17 {
            out.extend_from_slice(&sp);
            out.extend_from_slice(&dp);
            out.extend_from_slice(&(seg_len as u16).to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        } else {
            if self.next_seq.len() >= MAX_TCP_FLOWS {
                self.next_seq.clear();
            }
            let flow = (h.src, h.src_port, h.dst, h.dst_port);
            let seq = *self.next_seq.entry(flow).or_insert_with(|| isn(&flow));
            self.next_seq
                .insert(flow, seq.wrapping_add(payload.len() as u32));
            let back = (h.dst, h.dst_port, h.src, h.src_port);
            let ack = *self.next_seq.entry(back).or_insert_with(|| isn(&back));
            out.extend_from_slice(&sp);
            out.extend_from_slice(&dp);
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(&ack.to_be_bytes());
            out.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]); // PSH|ACK
        }
        out.extend_from_slice(payload);
        // pseudo-header: addresses, protocol, length
        let mut sum = checksum_add(0, src);
        sum = checksum_add(sum, dst);
        sum += u32::from(h.protocol) + seg_len as u32;
        let mut c = checksum_fold(checksum_add(sum, &out[l4_start..]));
        if h.protocol == 17 && c == 0 {
            c = 0xffff; // 0 means "no checksum" in UDP
        }
        let at = l4_start + if h.protocol == 17 { 6 } else { 16 };
        out[at..at + 2].copy_from_slice(&c.to_be_bytes());
        Ok(h)
    }
}

/// A flow's first sequence number: derived from the flow, so reruns give the same files.
fn isn(f: &Flow) -> u32 {
    let s = format!("{f:?}");
    xxhash_rust::xxh3::xxh3_64(s.as_bytes()) as u32
}

/// The collector's shared state: one ring behind a lock, fed by every listener thread.
pub(crate) struct Collector {
    state: Mutex<State>,
    password: Option<Vec<u8>>,
    pub counters: HepCounters,
}

struct State {
    ring: Ring,
    rebuild: Rebuilder,
    comment: String,
    closed: bool,
}

impl Collector {
    pub fn new(ring: Ring, password: Option<Vec<u8>>) -> Collector {
        Collector {
            state: Mutex::new(State {
                ring,
                rebuild: Rebuilder::default(),
                comment: String::new(),
                closed: false,
            }),
            password,
            counters: HepCounters::default(),
        }
    }

    pub fn ring_counters(&self) -> Arc<super::ring::Counters> {
        self.lock().ring.counters.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One HEP packet from `agent`.
    pub fn handle(&self, data: &[u8], agent: SocketAddr) -> Result<(), CaptureError> {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        let mut st = self.lock();
        let st = &mut *st;
        if st.closed {
            return Ok(());
        }
        let h = match st.rebuild.rebuild(data, self.password.as_deref()) {
            Ok(h) => h,
            Err(s) => {
                let c = match s {
                    Skip::Malformed => &self.counters.malformed,
                    Skip::Auth => &self.counters.rejected_auth,
                    Skip::NotPacket => &self.counters.not_packet,
                };
                c.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        };
        let now = now_ns();
        let note = Annotation {
            capture_id: h.info.capture_id,
            node: h.info.node_name,
            agent,
            vlan: h.vlan,
        };
        st.comment.clear();
        let _ = write!(st.comment, "hep v{} agent={agent}", h.info.version);
        if let Some(id) = note.capture_id {
            let _ = write!(st.comment, " capture_id={id}");
        }
        if let Some(n) = note.node {
            let _ = write!(st.comment, " node={}", super::ring::lossy(n));
        }
        if let Some(v) = note.vlan {
            let _ = write!(st.comment, " vlan={v}");
        }
        let pkt = &st.rebuild.packet;
        st.ring.write(
            now,
            h.ts_ns.unwrap_or(now),
            pkt,
            pkt.len() as u32,
            Some(st.comment.as_bytes()),
            Some(&note),
        )
    }

    pub fn tick(&self, rotate_gen: u64) -> Result<(), CaptureError> {
        let mut st = self.lock();
        if st.closed {
            return Ok(());
        }
        st.ring.tick(now_ns(), rotate_gen)
    }

    /// Completes the current file; later packets are ignored.
    pub fn close(&self) -> Result<(), CaptureError> {
        let mut st = self.lock();
        st.closed = true;
        st.ring.close()
    }
}

/// A bound listener, opened before privileges are dropped.
pub(crate) enum Bound {
    Udp(UdpSocket),
    Tcp(TcpListener),
}

pub(crate) fn bind(l: &HepListen) -> Result<Bound, CaptureError> {
    let r = match *l {
        HepListen::Udp(a) => UdpSocket::bind(a).map(Bound::Udp),
        HepListen::Tcp(a) => TcpListener::bind(a).map(Bound::Tcp),
    };
    r.map_err(|e| CaptureError::HepBind {
        listen: format!("{l:?}"),
        source: e,
    })
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Runs one listener until `stop`; the first write error stops it and is returned.
pub(crate) fn spawn(
    b: Bound,
    c: Arc<Collector>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Result<(), CaptureError>> {
    thread::spawn(move || match b {
        Bound::Udp(s) => udp_loop(s, &c, &stop),
        Bound::Tcp(l) => tcp_accept_loop(l, &c, &stop),
    })
}

fn udp_loop(s: UdpSocket, c: &Collector, stop: &AtomicBool) -> Result<(), CaptureError> {
    s.set_read_timeout(Some(READ_TIMEOUT))
        .map_err(|e| CaptureError::io("configuring the HEP socket".into(), e))?;
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        match s.recv_from(&mut buf) {
            Ok((n, agent)) => c.handle(&buf[..n], agent)?,
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(CaptureError::io("receiving HEP".into(), e)),
        }
    }
    Ok(())
}

fn tcp_accept_loop(
    l: TcpListener,
    c: &Arc<Collector>,
    stop: &Arc<AtomicBool>,
) -> Result<(), CaptureError> {
    l.set_nonblocking(true)
        .map_err(|e| CaptureError::io("configuring the HEP listener".into(), e))?;
    let mut conns: Vec<JoinHandle<Result<(), CaptureError>>> = Vec::new();
    let mut result = Ok(());
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((s, agent)) => {
                c.counters.tcp_connections.fetch_add(1, Ordering::Relaxed);
                let (c, stop) = (c.clone(), stop.clone());
                conns.push(thread::spawn(move || tcp_conn(s, agent, &c, &stop)));
            }
            Err(e) if timed_out(&e) => thread::sleep(Duration::from_millis(50)),
            // A connection reset before accept, too many open files: keep listening.
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
        // reap finished connections; a write error in one stops the collector
        let mut i = 0;
        while i < conns.len() {
            if conns[i].is_finished() {
                if let Ok(Err(e)) = conns.swap_remove(i).join() {
                    stop.store(true, Ordering::Relaxed);
                    result = Err(e);
                }
            } else {
                i += 1;
            }
        }
    }
    for h in conns {
        if let Ok(Err(e)) = h.join() {
            result = result.and(Err(e));
        }
    }
    result
}

/// Reads HEP3 frames (each announces its own length) until the peer closes or sends garbage.
fn tcp_conn(
    mut s: TcpStream,
    agent: SocketAddr,
    c: &Collector,
    stop: &AtomicBool,
) -> Result<(), CaptureError> {
    if s.set_nonblocking(false).is_err() || s.set_read_timeout(Some(READ_TIMEOUT)).is_err() {
        return Ok(());
    }
    let mut buf: Vec<u8> = Vec::with_capacity(2 * MAX_FRAME);
    let mut chunk = vec![0u8; MAX_FRAME];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if timed_out(&e) => continue,
            Err(_) => return Ok(()),
        }
        let mut off = 0;
        while buf.len() - off >= 6 {
            let f = &buf[off..];
            let len = usize::from(u16::from_be_bytes([f[4], f[5]]));
            if !f.starts_with(b"HEP3") || len < 6 {
                // Lost framing cannot be recovered on a stream: drop the connection.
                c.counters.malformed.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            if f.len() < len {
                break;
            }
            c.handle(&f[..len], agent)?;
            off += len;
        }
        buf.drain(..off);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodeConfig, Decoder, Transport};
    use crate::source::{linktype, Packet, PacketLocation};

    /// Decodes a rebuilt packet with the project's own decoder (HEP decoding off, so what comes
    /// out is the rebuilt packet itself).
    fn decode(pkt: &[u8]) -> Vec<(IpAddr, u16, IpAddr, u16, Transport, Vec<u8>)> {
        let mut d = Decoder::new(DecodeConfig {
            hep: false,
            ..DecodeConfig::new(crate::sip::stream_start)
        });
        let p = Packet {
            ts_ns: 1,
            link_type: linktype::RAW,
            interface_id: 0,
            data: pkt,
            orig_len: pkt.len() as u32,
            location: PacketLocation::default(),
        };
        let mut out = Vec::new();
        d.decode(&p, |g| {
            out.push((
                g.src,
                g.src_port,
                g.dst,
                g.dst_port,
                g.transport,
                g.payload.to_vec(),
            ))
        });
        out
    }

    const SIP: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn udp_v4_rebuilt_with_valid_checksums() {
        let p = hep::build_v3(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            (5060, 5080),
            17,
            &[
                (0x000f, SIP),
                (0x000e, b"pw"),
                (0x000c, &7u32.to_be_bytes()),
            ],
        );
        let mut r = Rebuilder::default();
        let h = r.rebuild(&p, Some(b"pw")).unwrap();
        assert_eq!(h.info.capture_id, Some(7));
        let pkt = r.packet.clone();
        // IPv4 header and UDP (with pseudo-header) checksums verify to zero
        assert_eq!(checksum_fold(checksum_add(0, &pkt[..20])), 0);
        let mut sum = checksum_add(0, &pkt[12..20]);
        sum += 17 + (pkt.len() - 20) as u32;
        assert_eq!(checksum_fold(checksum_add(sum, &pkt[20..])), 0);
        let d = decode(&pkt);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!((d[0].1, d[0].3, d[0].4), (5060, 5080, Transport::Udp));
        assert_eq!(d[0].5, SIP);
        assert_eq!(r.rebuild(&p, Some(b"other")).unwrap_err(), Skip::Auth);
        assert_eq!(
            r.rebuild(&p[..p.len() - 2], None).unwrap_err(),
            Skip::Malformed
        );
    }

    #[test]
    fn tcp_sequence_continues_across_hep_packets() {
        let mut r = Rebuilder::default();
        let (a, b) = SIP.split_at(20);
        let mut got = Vec::new();
        let mut d = Decoder::new(DecodeConfig {
            hep: false,
            ..DecodeConfig::new(crate::sip::stream_start)
        });
        for part in [a, b] {
            let p = hep::build_v3(
                [1, 1, 1, 1],
                [2, 2, 2, 2],
                (5060, 5061),
                6,
                &[(0x000f, part)],
            );
            r.rebuild(&p, None).unwrap();
            let pkt = Packet {
                ts_ns: 1,
                link_type: linktype::RAW,
                interface_id: 0,
                data: &r.packet,
                orig_len: r.packet.len() as u32,
                location: PacketLocation::default(),
            };
            d.decode(&pkt, |g| got.push((g.transport, g.payload.to_vec())));
        }
        assert_eq!(got, vec![(Transport::Tcp, SIP.to_vec())]);
    }

    #[test]
    fn ipv6_and_skipped_payloads() {
        let mut v2 = vec![2, 40, 10, 17, 0x13, 0xc4, 0x13, 0xc5];
        v2.extend_from_slice(&[0xfd; 16]);
        v2.extend_from_slice(&[0xfe; 16]);
        v2.extend_from_slice(&[0; 12]);
        v2.extend_from_slice(SIP);
        let mut r = Rebuilder::default();
        r.rebuild(&v2, None).unwrap();
        let d = decode(&r.packet);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].1, d[0].3), (5060, 5061));
        assert!(d[0].2.is_ipv6());
        // HEPv2 has no auth key: a password rejects it
        assert_eq!(r.rebuild(&v2, Some(b"x")).unwrap_err(), Skip::Auth);
        let log = hep::build_v3(
            [1; 4],
            [2; 4],
            (1, 2),
            17,
            &[(0x000b, &[100]), (0x000f, b"log")],
        );
        assert_eq!(r.rebuild(&log, None).unwrap_err(), Skip::NotPacket);
        let json = hep::build_v3(
            [1; 4],
            [2; 4],
            (1, 2),
            17,
            &[(0x000b, &[5]), (0x000f, b"{}")],
        );
        assert_eq!(r.rebuild(&json, None).unwrap_err(), Skip::NotPacket);
        let sctp = hep::build_v3([1; 4], [2; 4], (1, 2), 132, &[(0x000f, SIP)]);
        assert_eq!(r.rebuild(&sctp, None).unwrap_err(), Skip::NotPacket);
    }

    #[test]
    fn listen_addresses_parse() {
        assert_eq!(
            "udp:127.0.0.1:9060".parse::<HepListen>(),
            Ok(HepListen::Udp("127.0.0.1:9060".parse().unwrap()))
        );
        assert!(matches!(
            "tcp:[::1]:9061".parse::<HepListen>(),
            Ok(HepListen::Tcp(_))
        ));
        assert!("sctp:1.2.3.4:1".parse::<HepListen>().is_err());
        assert!("udp:nohost".parse::<HepListen>().is_err());
    }
}
