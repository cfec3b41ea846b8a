//! TCP header view (RFC 9293) and a per-direction stream reassembler that frames SIP messages.
//!
//! Hand-written because it is deliberately narrow: a direction is tracked only from a segment that
//! starts with a SIP start line, so other TCP (HTTP on 5060, TLS) costs one lookup. Retransmitted
//! bytes (whole or partial) are counted and dropped, first-arrived bytes win; out-of-order segments
//! wait in a small bounded list; streams are bounded in number (least recently used evicted), in
//! buffered bytes per direction (a message that cannot fit drops the direction) and in idle time.
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::sipframe::{self, Frame};
use super::wire::{be16, be32};
use super::DecodeStats;
use crate::source::PacketLocation;
use crate::vocab::Start;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
/// Out-of-order segments held per direction while waiting for a gap to fill.
const MAX_PENDING: usize = 32;
/// A gap still open after this long (capture time) was lost by the capture, not reordered: the
/// partial message before it is dropped and reading resumes after it.
const GAP_TIMEOUT_NS: i64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tcp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub flags: u8,
    pub payload: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

pub(crate) fn parse(data: &[u8]) -> Result<Tcp<'_>, Malformed> {
    let Some(h) = data.get(..20) else {
        return Err(Malformed);
    };
    let offset = usize::from(h[12] >> 4) * 4;
    if offset < 20 || offset > data.len() {
        return Err(Malformed);
    }
    Ok(Tcp {
        src_port: be16([h[0], h[1]]),
        dst_port: be16([h[2], h[3]]),
        seq: be32([h[4], h[5], h[6], h[7]]),
        flags: h[13],
        payload: &data[offset..],
    })
}

/// One direction of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FlowKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
}

impl FlowKey {
    fn reverse(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
        }
    }
}

struct Pending {
    seq: u32,
    data: Vec<u8>,
    locations: Vec<PacketLocation>,
}

#[derive(Default)]
struct Direction {
    /// Sequence number of the next byte expected in order.
    next_seq: u32,
    /// In-order bytes from the start of the current message.
    buf: Vec<u8>,
    /// Records that contributed to `buf`, with the [start, end) of `buf` each one supplied.
    locations: Vec<PacketLocation>,
    spans: Vec<(usize, usize)>,
    /// Length of the message at the front of `buf`, once its header block was read.
    msg_len: Option<usize>,
    scanned: usize,
    pending: Vec<Pending>,
    pending_bytes: usize,
    /// When the oldest still-open gap appeared.
    gap_since: i64,
    last_ts: i64,
    tick: u64,
}

impl Direction {
    fn held(&self) -> u64 {
        (self.buf.len() + self.pending_bytes) as u64
    }

    fn append(&mut self, data: &[u8], locations: &[PacketLocation]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(data);
        for l in locations {
            self.locations.push(*l);
            self.spans.push((start, start + data.len()));
        }
        self.next_seq = self.next_seq.wrapping_add(data.len() as u32);
    }

    /// Removes the first `n` bytes of `buf`, keeping the records that still supplied bytes after.
    fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
        let mut kept = 0;
        for i in 0..self.spans.len() {
            let (s, e) = self.spans[i];
            if e > n {
                self.spans[kept] = (s.saturating_sub(n), e - n);
                self.locations[kept] = self.locations[i];
                kept += 1;
            }
        }
        self.spans.truncate(kept);
        self.locations.truncate(kept);
        self.msg_len = None;
        self.scanned = 0;
    }
}

/// What one segment looked like to the reassembler.
#[derive(Clone, Copy)]
pub(crate) struct Segment<'a> {
    pub key: FlowKey,
    pub seq: u32,
    pub flags: u8,
    pub payload: &'a [u8],
    pub ts_ns: i64,
    pub locations: &'a [PacketLocation],
}

pub(crate) struct Reassembler {
    dirs: HashMap<FlowKey, Direction>,
    /// Last use, oldest first: eviction and idle timeout walk it from the front.
    lru: BTreeMap<u64, FlowKey>,
    tick: u64,
    max_streams: usize,
    framing: Framing,
    timeout_ns: i64,
}

/// Says whether a stream opens with a message at the given bytes. The rule is the protocol's, not
/// decode's: the caller passes SIP's (`sip::stream_start`), so TCP finds what UDP finds.
pub type StartRule = fn(&[u8]) -> Start;

/// What framing needs besides the bytes: the start rule and the per-direction buffer cap.
#[derive(Clone, Copy)]
struct Framing {
    start: StartRule,
    max_buffer: usize,
}

enum After {
    Keep,
    Drop,
}

impl Reassembler {
    pub fn new(start: StartRule, max_streams: usize, max_buffer: usize, timeout_ns: i64) -> Self {
        Reassembler {
            dirs: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            max_streams: max_streams.max(1),
            framing: Framing { start, max_buffer },
            timeout_ns,
        }
    }

    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.dirs.len()
    }

    /// Feeds one segment; `emit(message, locations)` is called for each SIP message it completes.
    pub fn segment<F: FnMut(&[u8], &[PacketLocation])>(
        &mut self,
        seg: Segment<'_>,
        stats: &mut DecodeStats,
        mut emit: F,
    ) {
        if seg.flags & RST != 0 {
            self.remove(&seg.key, stats);
            self.remove(&seg.key.reverse(), stats);
            return;
        }
        if self.dirs.is_empty() && seg.payload.is_empty() {
            return;
        }
        let mut seq = seg.seq;
        if seg.flags & SYN != 0 {
            seq = seq.wrapping_add(1);
        }
        if !self.dirs.contains_key(&seg.key) {
            // Keep-alive CRLFs may precede the first message we see.
            let lead = seg
                .payload
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if (self.framing.start)(&seg.payload[lead..]) == Start::No || seg.payload.len() == lead
            {
                return;
            }
            self.open(seg.key, seq, stats);
        }
        self.tick += 1;
        let tick = self.tick;
        let Some(d) = self.dirs.get_mut(&seg.key) else {
            return;
        };
        self.lru.remove(&d.tick);
        d.tick = tick;
        self.lru.insert(tick, seg.key);
        d.last_ts = seg.ts_ns;

        let after = feed(d, seq, seg, self.framing, stats, &mut emit);
        let closed =
            seg.flags & FIN != 0 && seq.wrapping_add(seg.payload.len() as u32) == d.next_seq;
        if matches!(after, After::Drop) || closed {
            self.remove(&seg.key, stats);
        }
    }

    /// Forgets directions idle for longer than the timeout.
    pub fn expire(&mut self, now_ns: i64, stats: &mut DecodeStats) {
        while let Some((_, key)) = self.lru.first_key_value() {
            let key = *key;
            let idle = self
                .dirs
                .get(&key)
                .is_none_or(|d| d.last_ts.saturating_add(self.timeout_ns) < now_ns);
            if !idle {
                break;
            }
            self.remove(&key, stats);
        }
    }

    /// End of input: partial messages are dropped and counted.
    pub fn finish(&mut self, stats: &mut DecodeStats) {
        for (_, d) in self.dirs.drain() {
            stats.tcp_bytes_dropped += d.held();
        }
        self.lru.clear();
    }

    fn open(&mut self, key: FlowKey, next_seq: u32, stats: &mut DecodeStats) {
        while self.dirs.len() >= self.max_streams {
            let Some((_, victim)) = self.lru.pop_first() else {
                break;
            };
            if let Some(d) = self.dirs.remove(&victim) {
                stats.tcp_streams_evicted += 1;
                stats.tcp_bytes_dropped += d.held();
            }
        }
        self.dirs.insert(
            key,
            Direction {
                next_seq,
                ..Direction::default()
            },
        );
    }

    fn remove(&mut self, key: &FlowKey, stats: &mut DecodeStats) {
        if let Some(d) = self.dirs.remove(key) {
            self.lru.remove(&d.tick);
            stats.tcp_bytes_dropped += d.held();
        }
    }
}

/// Signed distance from `b` to `a` in sequence space.
fn seq_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

fn feed<F: FnMut(&[u8], &[PacketLocation])>(
    d: &mut Direction,
    seq: u32,
    seg: Segment<'_>,
    framing: Framing,
    stats: &mut DecodeStats,
    emit: &mut F,
) -> After {
    let (payload, locations) = (seg.payload, seg.locations);
    if !d.pending.is_empty() && seg.ts_ns.saturating_sub(d.gap_since) > GAP_TIMEOUT_NS {
        skip_gap(d, stats);
        if let After::Drop = drain_and_frame(d, framing, stats, emit) {
            return After::Drop;
        }
    }
    if payload.is_empty() {
        return After::Keep;
    }
    let diff = seq_diff(seq, d.next_seq);
    if diff > 0 {
        stats.tcp_out_of_order += 1;
        if d.pending
            .iter()
            .any(|p| p.seq == seq && p.data.len() >= payload.len())
        {
            stats.tcp_retransmissions += 1;
            return After::Keep;
        }
        if d.pending.len() >= MAX_PENDING || d.held() as usize + payload.len() > framing.max_buffer
        {
            stats.tcp_bytes_dropped += payload.len() as u64;
            return After::Drop;
        }
        if d.pending.is_empty() {
            d.gap_since = seg.ts_ns;
        }
        d.pending_bytes += payload.len();
        d.pending.push(Pending {
            seq,
            data: payload.to_vec(),
            locations: locations.to_vec(),
        });
        return After::Keep;
    }
    let overlap = diff.unsigned_abs() as usize;
    if overlap > 0 {
        stats.tcp_retransmissions += 1;
        if overlap >= payload.len() {
            return After::Keep;
        }
    }
    if append_checked(d, &payload[overlap..], locations, framing.max_buffer, stats).is_err() {
        return After::Drop;
    }
    drain_and_frame(d, framing, stats, emit)
}

/// Gives up on the bytes of the oldest gap: drops the partial message before it and moves
/// `next_seq` to the earliest pending segment.
fn skip_gap(d: &mut Direction, stats: &mut DecodeStats) {
    let next = d.next_seq;
    let Some(earliest) = d
        .pending
        .iter()
        .map(|p| p.seq)
        .min_by_key(|&s| seq_diff(s, next))
    else {
        return;
    };
    stats.tcp_bytes_dropped += d.buf.len() as u64;
    d.consume(d.buf.len());
    d.next_seq = earliest;
}

fn drain_and_frame<F: FnMut(&[u8], &[PacketLocation])>(
    d: &mut Direction,
    framing: Framing,
    stats: &mut DecodeStats,
    emit: &mut F,
) -> After {
    // Pending segments that the new bytes reached.
    while let Some(i) = d
        .pending
        .iter()
        .position(|p| seq_diff(p.seq, d.next_seq) <= 0)
    {
        let p = d.pending.swap_remove(i);
        d.pending_bytes -= p.data.len();
        let skip = seq_diff(d.next_seq, p.seq) as usize;
        if skip >= p.data.len() {
            stats.tcp_retransmissions += 1;
            continue;
        }
        if append_checked(d, &p.data[skip..], &p.locations, framing.max_buffer, stats).is_err() {
            return After::Drop;
        }
    }
    frame_messages(d, framing, stats, emit)
}

fn append_checked(
    d: &mut Direction,
    data: &[u8],
    locations: &[PacketLocation],
    max_buffer: usize,
    stats: &mut DecodeStats,
) -> Result<(), ()> {
    if d.held() as usize + data.len() > max_buffer {
        stats.tcp_bytes_dropped += data.len() as u64;
        return Err(());
    }
    d.append(data, locations);
    Ok(())
}

fn frame_messages<F: FnMut(&[u8], &[PacketLocation])>(
    d: &mut Direction,
    framing: Framing,
    stats: &mut DecodeStats,
    emit: &mut F,
) -> After {
    loop {
        if d.msg_len.is_none() {
            let crlf = d
                .buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if crlf > 0 {
                d.consume(crlf);
            }
            if d.buf.is_empty() {
                return After::Keep;
            }
            match (framing.start)(&d.buf) {
                Start::Yes => {}
                Start::Incomplete => return After::Keep,
                // Lost framing (garbage, or a message we only saw the middle of): stop until a
                // segment starts with a SIP line again.
                Start::No => return After::Drop,
            }
            match sipframe::frame(&d.buf, d.scanned, framing.max_buffer) {
                Frame::Length(n) => d.msg_len = Some(n),
                Frame::NeedMore { scanned } => {
                    d.scanned = scanned;
                    return After::Keep;
                }
                Frame::TooLarge => return After::Drop,
            }
        }
        let n = d.msg_len.unwrap_or(0);
        if d.buf.len() < n {
            return After::Keep;
        }
        let k = d.spans.partition_point(|s| s.0 < n);
        emit(&d.buf[..n], &d.locations[..k]);
        stats.tcp_messages += 1;
        d.consume(n);
    }
}

#[cfg(test)]
pub(crate) fn build(src_port: u16, dst_port: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = src_port.to_be_bytes().to_vec();
    v.extend_from_slice(&dst_port.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0, 0x50, flags | 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key() -> FlowKey {
        FlowKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            src_port: 40000,
            dst_port: 5060,
        }
    }

    fn loc(n: u64) -> PacketLocation {
        PacketLocation {
            file_id: 1,
            offset: n,
            record_len: 0,
        }
    }

    type Out = Vec<(Vec<u8>, Vec<u64>)>;

    fn feed_all(r: &mut Reassembler, st: &mut DecodeStats, segs: &[(u32, u8, &[u8])]) -> Out {
        let mut out = Vec::new();
        for (i, (seq, flags, p)) in segs.iter().enumerate() {
            let l = [loc(i as u64)];
            r.segment(
                Segment {
                    key: key(),
                    seq: *seq,
                    flags: *flags,
                    payload: p,
                    ts_ns: i as i64,
                    locations: &l,
                },
                st,
                |m, ls| out.push((m.to_vec(), ls.iter().map(|l| l.offset).collect())),
            );
        }
        out
    }

    const INVITE: &[u8] = b"INVITE sip:b@x SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 5\r\n\r\nhello";
    const OK: &[u8] = b"SIP/2.0 200 OK\r\nl: 0\r\n\r\n";
    const ACK: &[u8] = b"ACK sip:b@x SIP/2.0\r\nVia: x\r\n\r\n";

    #[test]
    fn header_parse() {
        let seg = build(1, 2, 77, SYN, b"pl");
        let t = parse(&seg).unwrap();
        assert_eq!(
            (t.src_port, t.dst_port, t.seq, t.flags & SYN, t.payload),
            (1, 2, 77, SYN, &b"pl"[..])
        );
        assert_eq!(parse(&seg[..19]), Err(Malformed));
        let mut bad = seg.clone();
        bad[12] = 0x40;
        assert_eq!(parse(&bad), Err(Malformed));
    }

    #[test]
    fn several_messages_in_one_segment_with_keepalives() {
        let mut r = Reassembler::new(crate::sip::stream_start, 8, 1 << 16, 1_000_000);
        let mut st = DecodeStats::default();
        let mut seg = INVITE.to_vec();
        seg.extend_from_slice(b"\r\n\r\n");
        seg.extend_from_slice(OK);
        seg.extend_from_slice(ACK);
        let out = feed_all(&mut r, &mut st, &[(1000, 0, &seg)]);
        let msgs: Vec<&[u8]> = out.iter().map(|m| m.0.as_slice()).collect();
        assert_eq!(msgs, vec![INVITE, OK, ACK]);
        assert!(out.iter().all(|m| m.1 == vec![0]));
        assert_eq!(st.tcp_messages, 3);
    }

    #[test]
    fn one_message_over_three_segments_then_retransmissions() {
        let mut r = Reassembler::new(crate::sip::stream_start, 8, 1 << 16, 1_000_000);
        let mut st = DecodeStats::default();
        let (a, b) = INVITE.split_at(10);
        let (b, c) = b.split_at(30);
        let s0 = 5u32;
        let s1 = s0 + a.len() as u32;
        let s2 = s1 + b.len() as u32;
        let out = feed_all(
            &mut r,
            &mut st,
            &[
                (s0, 0, a),
                (s1, 0, b),
                // exact retransmission of the second segment
                (s1, 0, b),
                (s2, 0, c),
                // a partial overlap carrying the old tail and a new message
                (s2, 0, &[c, OK].concat()),
            ],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], (INVITE.to_vec(), vec![0, 1, 3]));
        assert_eq!(out[1], (OK.to_vec(), vec![4]));
        assert_eq!(st.tcp_retransmissions, 2);
    }

    #[test]
    fn out_of_order_segment_waits_for_the_gap() {
        let mut r = Reassembler::new(crate::sip::stream_start, 8, 1 << 16, 1_000_000);
        let mut st = DecodeStats::default();
        let (a, b) = INVITE.split_at(20);
        let (b, c) = b.split_at(20);
        let s1 = 100 + a.len() as u32;
        let s2 = s1 + b.len() as u32;
        let out = feed_all(&mut r, &mut st, &[(100, 0, a), (s2, 0, c), (s1, 0, b)]);
        assert_eq!(out, vec![(INVITE.to_vec(), vec![0, 2, 1])]);
        assert_eq!(st.tcp_out_of_order, 1);
    }

    #[test]
    fn a_gap_never_filled_is_skipped_after_a_while() {
        let mut r = Reassembler::new(crate::sip::stream_start, 8, 1 << 16, i64::MAX / 2);
        let mut st = DecodeStats::default();
        let lost = 40u32;
        let s_ok = 1 + 20 + lost;
        let s_ack = s_ok + OK.len() as u32;
        let mut out = Vec::new();
        for (seq, p, ts) in [
            (1, &INVITE[..20], 0),
            (s_ok, OK, 1),
            (s_ack, ACK, 2_000_000_000),
        ] {
            let l = [loc(ts as u64)];
            let seg = Segment {
                key: key(),
                seq,
                flags: 0,
                payload: p,
                ts_ns: ts,
                locations: &l,
            };
            r.segment(seg, &mut st, |m, _| out.push(m.to_vec()));
        }
        assert_eq!(out, vec![OK.to_vec(), ACK.to_vec()]);
        assert_eq!(st.tcp_bytes_dropped, 20);
    }

    #[test]
    fn gigantic_content_length_is_not_buffered() {
        let mut r = Reassembler::new(crate::sip::stream_start, 8, 4096, 1_000_000);
        let mut st = DecodeStats::default();
        let big = b"MESSAGE sip:b@x SIP/2.0\r\nContent-Length: 5000000000\r\n\r\nxxxx";
        let out = feed_all(
            &mut r,
            &mut st,
            &[(1, 0, big), (1 + big.len() as u32, 0, &[b'x'; 3000])],
        );
        assert!(out.is_empty());
        assert_eq!(r.tracked(), 0);
        assert!(st.tcp_bytes_dropped >= big.len() as u64);
        // a header block that never ends is bounded too
        let mut r = Reassembler::new(crate::sip::stream_start, 8, 4096, 1_000_000);
        let head = b"INVITE sip:b@x SIP/2.0\r\nX: ";
        let segs: Vec<(u32, u8, &[u8])> = (0..10)
            .map(|i| {
                (
                    if i == 0 {
                        0
                    } else {
                        head.len() as u32 + (i - 1) * 1000
                    },
                    0,
                    if i == 0 { &head[..] } else { &[b'y'; 1000][..] },
                )
            })
            .collect();
        assert!(feed_all(&mut r, &mut st, &segs).is_empty());
        assert_eq!(r.tracked(), 0);
    }

    #[test]
    fn non_sip_ignored_and_fin_rst_close() {
        let mut r = Reassembler::new(crate::sip::stream_start, 8, 1 << 16, 1_000_000);
        let mut st = DecodeStats::default();
        let out = feed_all(
            &mut r,
            &mut st,
            &[(1, 0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), (0, SYN, b"")],
        );
        assert!(out.is_empty());
        assert_eq!(r.tracked(), 0);
        let out = feed_all(&mut r, &mut st, &[(1, FIN, OK)]);
        assert_eq!(out.len(), 1);
        assert_eq!(r.tracked(), 0);
        let (a, _) = INVITE.split_at(30);
        feed_all(&mut r, &mut st, &[(1, 0, a)]);
        assert_eq!(r.tracked(), 1);
        feed_all(&mut r, &mut st, &[(1 + 30, RST, b"")]);
        assert_eq!(r.tracked(), 0);
        assert_eq!(st.tcp_bytes_dropped, 30);
    }

    #[test]
    fn streams_bounded_lru_and_idle_timeout() {
        let mut r = Reassembler::new(crate::sip::stream_start, 2, 1 << 16, 100);
        let mut st = DecodeStats::default();
        let (a, _) = INVITE.split_at(30);
        for port in 0..3u16 {
            let mut k = key();
            k.src_port = port;
            let l = [loc(0)];
            r.segment(
                Segment {
                    key: k,
                    seq: 0,
                    flags: 0,
                    payload: a,
                    ts_ns: i64::from(port),
                    locations: &l,
                },
                &mut st,
                |_, _| {},
            );
        }
        assert_eq!(r.tracked(), 2);
        assert_eq!(st.tcp_streams_evicted, 1);
        r.expire(1_000, &mut st);
        assert_eq!(r.tracked(), 0);
        assert_eq!(st.tcp_bytes_dropped, 90);
    }
}
