#!/usr/bin/env python3
"""Generate a large, realistic SIP trunk capture between two SBCs, fast.

What is simulated (all deterministic for a given --seed):
  * two SBCs, A 198.51.100.10 and B 203.0.113.20, SIP on 5060, Ethernet/IPv4;
  * --calls concurrent calls (default 2000), Poisson arrivals at the rate that
    keeps that many up (Little's law with --mean-duration, default 90s),
    60% A->B, 40% B->A; with the default warm start the capture opens with the
    calls already up (their INVITEs precede the capture, as on a real trunk);
  * call outcomes: ~78% answered INVITE(SDP)/100/180 or 183(SDP, early
    media)/200(SDP)/ACK ... BYE/200 (either side hangs up), 8% 486 Busy Here,
    7% CANCEL/200/487, 4% 503 (Retry-After), 3% 404; 1% of INVITEs are
    retransmitted once after 500 ms (Timer A); every non-2xx final gets its ACK;
  * 10% of calls signal over a persistent SIP/TCP connection (A->B:5060 and
    B->A:5060, established before the capture, the peer ACKs each segment);
  * OPTIONS pings both ways every 30 s, a REGISTER/401/REGISTER/200 from A to
    B every 300 s, and a few scanner INVITEs (User-Agent: friendly-scanner)
    from outside addresses, half answered 403;
  * RTP both directions, PCMU (70%) or PCMA, 20 ms/160 bytes, from even ports;
    per-stream loss 0-3% (~0.5% average), ~0.1% of packets reordered (one
    packet arrives after its successor), arrival jitter of 0.3-3 ms; 2% of
    answered calls are one-way (B sends no RTP); 5% of calls send RFC 4733
    DTMF digits (events with growing duration, end packet sent 3 times with
    the same sequence number);
  * RTCP SR (or RR for a receive-only side) + SDES CNAME every ~5 s per stream,
    on RTP port + 1, with a report block on the reverse stream;
  * --no-rtp leaves out all media (RTP, RTCP, DTMF): a SIP-only archive, e.g.
    --no-rtp --calls 10000 --mean-duration 30s gives ~2,300 SIP messages/s.

Speed: RTP frames are prebuilt per stream (pcap record header, Ethernet, IPv4,
UDP, RTP, payload) and copied into a large output buffer, then only the
timestamps, IP id/checksum (incremental) and RTP sequence/timestamp are patched
with struct.pack_into; UDP checksums are 0 (allowed for IPv4).  Time advances
in 20 ms ticks: in each tick every live stream emits one packet at its phase
plus jitter, SIP/RTCP events falling in the tick are merged, and the tick is
sorted once, so capture timestamps never go backwards.

Output: a classic little-endian microsecond pcap (LINKTYPE_ETHERNET).
  --out FILE                  one file
  --ring-dir DIR --ring-size 100MB [--ring-style tcpdump|numbered]
                              rotate like tcpdump -C: trunk.pcap0, trunk.pcap1,
                              ... (tcpdump) or trunk-0001.pcap ... (numbered)
  --size 500MB                stop before the total would exceed this many bytes
  --duration 60s              or stop after this much capture time
Sizes take units B, KB, MB, GB (10^3) or KiB, MiB, GiB (2^10); a bare number is
bytes.  Durations take ms, s, m, h; a bare number is seconds.

Example:  scripts/gen-trunk.py --size 500MB --out target/bench/trunk.pcap --seed 1
"""

import argparse
import array
import heapq
import os
import random
import re
import struct
import sys
import time

EPOCH_US = 1_705_312_800 * 10**6  # 2024-01-15T10:00:00Z
TICK_US = 20_000

SBC = {"A": ("198.51.100.10", bytes.fromhex("02005e000a0a")),
       "B": ("203.0.113.20", bytes.fromhex("02005e000b14"))}
SCANNER_UA = "friendly-scanner"

REC = struct.Struct("<II")          # pcap record ts_sec, ts_usec
IPPATCH = struct.Struct(">HHBBH")   # IPv4 id, flags/frag, ttl, proto, checksum
RTPPATCH = struct.Struct(">HI")     # RTP sequence number, timestamp
DTMFPATCH = struct.Struct(">BHIIBBH")  # M|PT, seq, ts, ssrc, event, E|vol, duration


def parse_size(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 500MB, 1GiB)")
    unit = (m.group(2) or "B").upper().rstrip("B") or "B"
    mult = {"B": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
            "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}[unit]
    return int(float(m.group(1)) * mult)


def parse_duration(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (e.g. 90s, 15m)")
    return float(m.group(1)) * {"ms": 1e-3, "s": 1, "m": 60, "h": 3600}[m.group(2) or "s"]


def ip_sum(hdr):
    """Ones'-complement sum of a header, folded, not inverted."""
    s = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def inet(ip):
    return bytes(int(x) for x in ip.split("."))


def l2l3(src_ip, dst_ip, src_mac, dst_mac, proto, l4len, tos=0xB8):
    """Ethernet + IPv4 header (id 0, checksum 0) and the header's partial sum;
    DSCP EF (0xB8) for media, CS3 (0x60) for signalling."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + l4len, 0, 0x4000,
                     64, proto, 0, inet(src_ip), inet(dst_ip))
    return dst_mac + src_mac + b"\x08\x00" + ip, ip_sum(ip)


def fold_csum(base, ipid):
    s = base + ipid
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_csum(src_ip, dst_ip, segment):
    data = inet(src_ip) + inet(dst_ip) + struct.pack("!BBH", 0, 6, len(segment)) + segment
    if len(data) & 1:
        data += b"\0"
    a = array.array("H", data)
    if sys.byteorder == "little":
        a.byteswap()
    s = sum(a)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Host:
    """Per-address IPv4 id counter, like a kernel's."""

    def __init__(self, ip, mac, rng):
        self.ip, self.mac, self.ipid = ip, mac, rng.randrange(65536)

    def next_id(self):
        self.ipid = (self.ipid + 1) & 0xFFFF
        return self.ipid


# --------------------------------------------------------------------------
# RTP streams: the hot path
# --------------------------------------------------------------------------
_MULAW_NOISE = bytes(b | 0x80 for b in range(256))
_ALAW_NOISE = bytes(b ^ 0x55 | 0x40 for b in range(256))


# What Stream.anomaly() tells the hot loop to do with this tick's packet.
LOST, HOLD, HELD_OUT, DTMF = 1, 2, 3, 4


class Stream:
    """One RTP stream: a prebuilt frame plus the little state patched per packet.

    The hot loop only decrements `anom`; loss, reordering and DTMF are handled
    in anomaly() when it reaches zero, so the common packet costs one copy and
    three pack_into calls."""

    __slots__ = ("n", "kt", "tmpl", "dtmf_tmpl", "ssrc", "seq", "rts", "ipbase", "dtmf_ipbase", "dtmf_ts",
                 "anom", "rate", "loss_share", "held", "alive", "dtmf", "dtmf_sent", "lost", "start_tick",
                 "pt", "src", "dst", "sport", "dport", "cname", "peer", "sends")

    def __init__(self, rng, src, dst, sport, dport, pt, jtab, loss_mean, cname, tick, sends=True):
        self.src, self.dst, self.sport, self.dport, self.pt = src, dst, sport, dport, pt
        self.ssrc = rng.getrandbits(32)
        self.seq = rng.randrange(65536)
        self.rts = rng.getrandbits(32)
        # Noise-like G.711 bytes (no silence runs), fixed per stream.
        rtp_payload = rng.randbytes(160).translate(_MULAW_NOISE if pt == 0 else _ALAW_NOISE)
        self.tmpl, self.ipbase = self._frame(struct.pack("!BBHII", 0x80, pt, 0, 0, self.ssrc) + rtp_payload)
        self.dtmf_tmpl, self.dtmf_ipbase = self._frame(struct.pack("!BBHII", 0x80, 101, 0, 0, self.ssrc) + bytes(4))
        self.n = len(self.tmpl)
        self.dtmf_ts = 0
        # Sort keys (arrival offset in the 20 ms tick << 20) for 64 ticks: a
        # phase plus jitter clamped to +-4.9 ms keeps arrivals inside the tick,
        # so sorting one tick at a time orders the whole capture.
        phase = rng.randrange(5000, 15000)
        start = rng.randrange(4096)
        self.kt = [(phase + jtab[(start + k) & 4095]) << 20 for k in range(64)]
        self.rate = (1.0 / loss_mean if loss_mean else 0.0) + 0.001  # + ~0.1% reordering
        self.loss_share = (1.0 / loss_mean if loss_mean else 0.0) / self.rate
        self.anom = self._next(rng)
        self.held = None
        self.alive = True
        self.dtmf = None
        self.dtmf_sent = self.lost = 0
        self.start_tick = tick
        self.cname = cname
        self.peer = None
        self.sends = sends

    def _next(self, rng):
        return 1 + int(rng.expovariate(self.rate))

    def anomaly(self, rng, seq, rts):
        if self.held is not None:
            self.anom = 1 if self.dtmf else self._next(rng)
            return HELD_OUT
        if self.dtmf:
            self.anom = 1
            return DTMF
        self.anom = self._next(rng)
        if rng.random() < self.loss_share:
            self.lost += 1
            return LOST
        # This packet arrives after its successor, in the next tick.
        self.held = (seq, rts)
        self.anom = 1
        return HOLD

    def sent(self, tick):
        """Packets sent so far: one per tick, less the lost ones."""
        return max(0, tick - self.start_tick - self.lost)

    def _frame(self, udp_payload):
        """pcap record header + frame, and the IPv4 header's partial checksum."""
        ulen = 8 + len(udp_payload)
        l23, base = l2l3(self.src.ip, self.dst.ip, self.src.mac, self.dst.mac, 17, ulen)
        frame = l23 + struct.pack("!HHHH", self.sport, self.dport, ulen, 0) + udp_payload
        return bytearray(struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame), base


# --------------------------------------------------------------------------
# SIP rendering
# --------------------------------------------------------------------------
def render(start, headers, body=b""):
    lines = [start] + [f"{n}: {v}" for n, v in headers]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sdp(ip, port, sess, pts, ptime=20, direction="sendrecv"):
    names = {0: "PCMU/8000", 8: "PCMA/8000"}
    fmt = " ".join(str(p) for p in pts) + " 101"
    lines = ["v=0", f"o=SBC {sess} {sess} IN IP4 {ip}", "s=SBC", f"c=IN IP4 {ip}", "t=0 0",
             f"m=audio {port} RTP/AVP {fmt}"]
    lines += [f"a=rtpmap:{p} {names[p]}" for p in pts]
    lines += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", f"a=ptime:{ptime}", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()


class Dialog:
    """Header state of one SIP dialog from `uac` (caller side) to `uas`."""

    def __init__(self, gen, uac, uas, from_user, to_user, transport, call_id=None, ua="SBC-A/5.2"):
        rng = gen.rng
        self.gen, self.uac, self.uas = gen, uac, uas
        self.from_user, self.to_user, self.transport = from_user, to_user, transport
        self.call_id = call_id or f"{rng.getrandbits(64):016x}-{rng.getrandbits(32):08x}@{uac.ip}"
        self.from_tag = f"{rng.getrandbits(40):010x}"
        self.to_tag = f"{rng.getrandbits(40):010x}"
        self.uas_cseq = rng.randrange(100, 900)
        self.ua = ua
        self.sport = gen.scanner_port(rng) if ua == SCANNER_UA else 5060

    def branch(self):
        return f"z9hG4bK{self.gen.rng.getrandbits(56):014x}"

    def via(self, host, port, br):
        return f"SIP/2.0/{self.transport} {host.ip}:{port};branch={br}"

    def from_hdr(self, tagged=True):
        return f"<sip:{self.from_user}@{self.uac.ip};user=phone>" + (f";tag={self.from_tag}" if tagged else "")

    def to_hdr(self, tagged=True):
        return f"<sip:{self.to_user}@{self.uas.ip};user=phone>" + (f";tag={self.to_tag}" if tagged else "")

    def request(self, method, cseq, br, body=b"", to_tagged=True, reverse=False, extra=()):
        tp = ";transport=tcp" if self.transport == "TCP" else ""
        if not reverse:
            ruri = f"sip:{self.to_user}@{self.uas.ip}:5060{tp}"
            h = [("Via", self.via(self.uac, self.sport, br)), ("Max-Forwards", "70"),
                 ("From", self.from_hdr()), ("To", self.to_hdr(to_tagged))]
            contact = f"<sip:{self.from_user}@{self.uac.ip}:{self.sport}{tp}>"
        else:  # request from the callee inside the dialog (BYE)
            ruri = f"sip:{self.from_user}@{self.uac.ip}:{self.sport}{tp}"
            h = [("Via", self.via(self.uas, 5060, br)), ("Max-Forwards", "70"),
                 ("From", self.to_hdr()), ("To", self.from_hdr())]
            contact = f"<sip:{self.to_user}@{self.uas.ip}:5060{tp}>"
        h += [("Call-ID", self.call_id), ("CSeq", f"{cseq} {method}")]
        if method in ("INVITE", "OPTIONS", "REGISTER"):
            h.append(("Contact", contact))
        if method == "INVITE":
            h += [("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, UPDATE, INFO"),
                  ("Supported", "timer, 100rel, replaces"),
                  ("P-Asserted-Identity", f"<sip:{self.from_user}@{self.uac.ip};user=phone>")]
        h += list(extra) + [("User-Agent", self.ua)]
        if body:
            h.append(("Content-Type", "application/sdp"))
        return render(f"{method} {ruri} SIP/2.0", h, body)

    def response(self, code, reason, method, cseq, br, body=b"", to_tagged=True, reverse=False, extra=()):
        if not reverse:
            h = [("Via", self.via(self.uac, self.sport, br) + f";received={self.uac.ip}"),
                 ("From", self.from_hdr()), ("To", self.to_hdr(to_tagged))]
        else:
            h = [("Via", self.via(self.uas, 5060, br)), ("From", self.to_hdr()), ("To", self.from_hdr())]
        h += [("Call-ID", self.call_id), ("CSeq", f"{cseq} {method}")]
        if method == "INVITE" and 100 < code < 300:
            tp = ";transport=tcp" if self.transport == "TCP" else ""
            h.append(("Contact", f"<sip:{self.to_user}@{self.uas.ip}:5060{tp}>"))
        h += list(extra) + [("Server", f"SBC-{'A' if self.uas.ip == SBC['A'][0] else 'B'}/5.2")]
        if body:
            h.append(("Content-Type", "application/sdp"))
        return render(f"SIP/2.0 {code} {reason}", h, body)


class TcpConn:
    """A long-lived SIP/TCP connection (set up before the capture starts)."""

    def __init__(self, rng, client, server):
        self.ends = {client.ip: (client, rng.randrange(32768, 60999)), server.ip: (server, 5060)}
        self.seq = {client.ip: rng.getrandbits(32), server.ip: rng.getrandbits(32)}

    def frame(self, src, dst, payload):
        s_host, sport = self.ends[src.ip]
        d_host, dport = self.ends[dst.ip]
        flags = 0x18 if payload else 0x10
        seg = struct.pack("!HHIIBBHHH", sport, dport, self.seq[src.ip], self.seq[dst.ip], 0x50, flags,
                          501, 0, 0) + payload
        c = tcp_csum(src.ip, dst.ip, seg)
        seg = seg[:16] + struct.pack("!H", c) + seg[18:]
        self.seq[src.ip] = (self.seq[src.ip] + len(payload)) & 0xFFFFFFFF
        return ip_frame(src, dst, 6, seg)


def ip_frame(src, dst, proto, l4, tos=0x60):
    l23, base = l2l3(src.ip, dst.ip, src.mac, dst.mac, proto, len(l4), tos)
    ipid = src.next_id()
    b = bytearray(l23 + l4)
    IPPATCH.pack_into(b, 18, ipid, 0x4000, 64, proto, fold_csum(base, ipid))
    return bytes(b)


def udp_frame(src, dst, sport, dport, payload, tos=0x60):
    return ip_frame(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload, tos)


# --------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------
class Writer:
    """Buffered pcap output, one file or a tcpdump -C style ring."""

    BUF = 8 << 20

    def __init__(self, args):
        self.args = args
        self.buf = bytearray(self.BUF)
        self.pos = 0
        self.total = 0
        self.file_bytes = 0
        self.files = []
        self.fh = None
        self.max_total = args.size if args.size else 1 << 62
        self.ring = args.ring_size if args.ring_dir else 1 << 62
        self.done = False
        self._open()

    def _name(self, n):
        a = self.args
        if not a.ring_dir:
            return a.out
        if a.ring_style == "numbered":
            return os.path.join(a.ring_dir, f"trunk-{n + 1:04d}.pcap")
        return os.path.join(a.ring_dir, f"trunk.pcap{n}")

    def _open(self):
        name = self._name(len(self.files))
        d = os.path.dirname(name)
        if d:
            os.makedirs(d, exist_ok=True)
        self.fh = open(name, "wb")
        self.files.append(name)
        hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
        self.fh.write(hdr)
        self.file_bytes = len(hdr)
        self.total += len(hdr)

    def limit(self):
        """Highest buffer position a record may end at before flush() must run."""
        room_file = self.ring - self.file_bytes
        room_total = self.max_total - self.total
        return min(self.BUF, room_file, room_total)

    def flush(self, need):
        """Write out the buffer; rotate or stop if a record of `need` bytes does not fit."""
        if self.pos:
            self.fh.write(memoryview(self.buf)[:self.pos])
            self.file_bytes += self.pos
            self.total += self.pos
            self.pos = 0
        if self.total + need > self.max_total:
            self.done = True
        elif self.file_bytes + need > self.ring:
            if self.total + 24 + need > self.max_total:
                self.done = True  # no room for another file header and record
            else:
                self.fh.close()
                self._open()
        return self.limit()

    def close(self):
        self.flush(0)
        self.fh.close()


class Generator:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        rng = self.rng
        self.hosts = {k: Host(ip, mac, rng) for k, (ip, mac) in SBC.items()}
        self.tcp = {"A": TcpConn(rng, self.hosts["A"], self.hosts["B"]),
                    "B": TcpConn(rng, self.hosts["B"], self.hosts["A"])}
        self.streams = []
        self.died = False
        self.tick = 0
        self.events = []      # heap of (ts_us, n, fn, args)
        self.evn = 0
        self.rtp_port = {"A": 10000, "B": 20000}
        # Jitter tables (us): most streams are clean, a few are noisy.
        self.jtabs = []
        for sd in (300, 300, 300, 800, 800, 3000):
            self.jtabs.append([int(max(-4900, min(4900, rng.gauss(0, sd)))) for _ in range(4096)])
        self.loss_means = [0, 0, 1000, 500, 200, 200, 100, 33]  # ~0.5% on average
        self.stats = {"calls": 0, "answered": 0, "failed": 0, "sip": 0, "rtp": 0, "rtcp": 0,
                      "scanner": 0, "dtmf": 0}
        self.scan_hosts = [Host(f"45.{134 + i}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                                bytes.fromhex(f"02005e99{i:02x}01"), rng) for i in range(4)]

    # ---- scheduling -------------------------------------------------------
    def at(self, ts_us, fn, *a):
        self.evn += 1
        heapq.heappush(self.events, (ts_us, self.evn, fn, a))

    def scanner_port(self, rng):
        return rng.randrange(5061, 5099)

    def number(self):
        r = self.rng
        return "+49" + str(r.randrange(2, 10)) + "".join(str(r.randrange(10)) for _ in range(r.randrange(8, 11)))

    def next_rtp_port(self, side):
        p = self.rtp_port[side]
        base = 10000 if side == "A" else 20000
        self.rtp_port[side] = base + (p + 2 - base) % 30000
        return p

    # ---- calls -------------------------------------------------------------
    def new_call(self, now, warm_remaining=None):
        rng = self.rng
        self.stats["calls"] += 1
        caller = "A" if rng.random() < 0.6 else "B"
        callee = "B" if caller == "A" else "A"
        uac, uas = self.hosts[caller], self.hosts[callee]
        transport = "TCP" if rng.random() < self.args.tcp_share else "UDP"
        d = Dialog(self, uac, uas, self.number(), self.number(), transport,
                   ua=f"SBC-{caller}/5.2")
        d.owner = caller
        pt = 0 if rng.random() < 0.7 else 8
        call = {"d": d, "pt": pt, "streams": [], "caller": caller, "callee": callee}
        if warm_remaining is not None:
            # Call set up before the capture: media only, then the hangup.
            self.start_media(now, call, both=True)
            self.at(now + warm_remaining, self.hangup, call)
            self.stats["answered"] += 1
            return
        self.plan_invite(now, call)

    def plan_invite(self, t, call):
        rng, d = self.rng, call["d"]
        br = d.branch()
        call["br"] = br
        call["a_port"] = self.next_rtp_port(call["caller"])
        call["b_port"] = self.next_rtp_port(call["callee"])
        offer = sdp(d.uac.ip, call["a_port"], rng.randrange(10**9), (call["pt"], 8 if call["pt"] == 0 else 0))
        invite = d.request("INVITE", 1, br, offer, to_tagged=False,
                           extra=(("Session-Expires", "1800"),))
        self.at(t, self.sip_ev, d, "ab", invite)
        t100 = t + rng.randrange(2000, 30000)
        if rng.random() < 0.01:  # Timer A: the 100 is late, the INVITE goes again
            self.at(t + 500_000, self.sip_ev, d, "ab", invite)
            t100 = t + 500_000 + rng.randrange(5000, 60000)
        self.at(t100, self.sip_ev, d, "ba", d.response(100, "Trying", "INVITE", 1, br, to_tagged=False))
        r = rng.random()
        t_ring = t100 + rng.randrange(50_000, 900_000)
        if r < 0.78:
            early = rng.random() < 0.1
            answer = sdp(d.uas.ip, call["b_port"], rng.randrange(10**9), (call["pt"],))
            if early:
                self.at(t_ring, self.sip_ev, d, "ba", d.response(183, "Session Progress", "INVITE", 1, br, answer))
                self.at(t_ring + 20_000, self.start_media_ev, call, False)
            else:
                self.at(t_ring, self.sip_ev, d, "ba", d.response(180, "Ringing", "INVITE", 1, br))
            t200 = t_ring + int(rng.expovariate(1 / 6.0) * 1e6) + 500_000
            self.at(t200, self.sip_ev, d, "ba", d.response(200, "OK", "INVITE", 1, br, answer))
            self.at(t200 + rng.randrange(5000, 60000), self.sip_ev, d, "ab", d.request("ACK", 1, d.branch()))
            self.at(t200 + 40_000, self.start_media_ev, call, True)
            dur = max(3.0, min(1200.0, rng.expovariate(1 / self.args.mean_duration)))
            self.at(t200 + int(dur * 1e6), self.hangup, call)
            self.stats["answered"] += 1
            return
        self.stats["failed"] += 1
        if r < 0.86:
            self.at(t_ring, self.sip_ev, d, "ba", d.response(180, "Ringing", "INVITE", 1, br))
            final, t_fin = (486, "Busy Here"), t_ring + rng.randrange(1_000_000, 8_000_000)
        elif r < 0.93:
            self.at(t_ring, self.sip_ev, d, "ba", d.response(180, "Ringing", "INVITE", 1, br))
            t_c = t_ring + rng.randrange(2_000_000, 25_000_000)
            self.at(t_c, self.sip_ev, d, "ab", d.request("CANCEL", 1, br, to_tagged=False))
            self.at(t_c + 8000, self.sip_ev, d, "ba", d.response(200, "OK", "CANCEL", 1, br))
            final, t_fin = (487, "Request Terminated"), t_c + 12000
        elif r < 0.97:
            final, t_fin = (503, "Service Unavailable"), t100 + rng.randrange(10_000, 200_000)
        else:
            final, t_fin = (404, "Not Found"), t100 + rng.randrange(10_000, 100_000)
        extra = (("Retry-After", "30"),) if final[0] == 503 else ()
        self.at(t_fin, self.sip_ev, d, "ba", d.response(final[0], final[1], "INVITE", 1, br, extra=extra))
        ack = d.request("ACK", 1, br)  # ACK to a non-2xx reuses the INVITE's branch
        self.at(t_fin + rng.randrange(1000, 20000), self.sip_ev, d, "ab", ack)

    def sip_ev(self, ts, frames, d, direction, msg):
        src, dst = (d.uac, d.uas) if direction == "ab" else (d.uas, d.uac)
        sp, dp = (d.sport, 5060) if direction == "ab" else (5060, d.sport)
        if d.transport == "TCP":
            conn = self.tcp[d.owner]
            frames.append((ts, conn.frame(src, dst, msg)))
            frames.append((ts + 300 + self.rng.randrange(700), conn.frame(dst, src, b"")))
        else:
            frames.append((ts, udp_frame(src, dst, sp, dp, msg)))
        self.stats["sip"] += 1

    def start_media_ev(self, ts, frames, call, both):
        self.start_media(ts, call, both)

    def start_media(self, ts, call, both):
        if self.args.no_rtp:  # SIP only: no streams, so no RTP, RTCP or DTMF either
            return
        rng, d = self.rng, call["d"]
        if "a_port" not in call:
            call["a_port"] = self.next_rtp_port(call["caller"])
            call["b_port"] = self.next_rtp_port(call["callee"])
        have = {id(s.src) for s in call["streams"]}
        one_way = call.setdefault("one_way", rng.random() < 0.02)
        loss = lambda: rng.choice(self.loss_means)  # noqa: E731
        jt = lambda: rng.choice(self.jtabs)  # noqa: E731
        new = []
        if id(d.uas) not in have:
            new.append(Stream(rng, d.uas, d.uac, call["b_port"], call["a_port"], call["pt"], jt(), loss(),
                              f"sbc@{d.uas.ip}", self.tick, sends=not one_way))
        if both and id(d.uac) not in have:
            new.append(Stream(rng, d.uac, d.uas, call["a_port"], call["b_port"], call["pt"], jt(), loss(),
                              f"sbc@{d.uac.ip}", self.tick))
        for s in new:
            call["streams"].append(s)
            if s.sends:
                self.streams.append(s)
            self.at(ts + rng.randrange(1_000_000, 5_000_000), self.rtcp_ev, s)
        if len(call["streams"]) == 2:
            a, b = call["streams"]
            a.peer, b.peer = b, a
        if both and rng.random() < 0.05 and call["streams"]:
            self.at(ts + rng.randrange(2_000_000, 20_000_000), self.dtmf_ev, call["streams"][-1])

    def hangup(self, ts, frames, call):
        d, rng = call["d"], self.rng
        for s in call["streams"]:
            s.alive = False
        self.died = True
        if rng.random() < 0.55:
            br = d.branch()
            self.sip_ev(ts, frames, d, "ab", d.request("BYE", 2, br))
            self.at(ts + rng.randrange(3000, 40000), self.sip_ev, d, "ba", d.response(200, "OK", "BYE", 2, br))
        else:
            br = d.branch()
            self.sip_ev(ts, frames, d, "ba", d.request("BYE", d.uas_cseq, br, reverse=True))
            self.at(ts + rng.randrange(3000, 40000), self.sip_ev, d, "ab",
                    d.response(200, "OK", "BYE", d.uas_cseq, br, reverse=True))

    def dtmf_ev(self, ts, frames, stream):
        if stream.alive and stream.sends:
            digits = [self.rng.randrange(12) for _ in range(self.rng.randrange(1, 5))]
            plan = []
            for ev in digits:
                # (event, E|volume, duration, first, repeat): the end packet
                # goes three times with one sequence number (RFC 4733 2.5.1.4).
                plan += [(ev, 10, 160 * (k + 1), k == 0, False) for k in range(7)]
                plan += [(ev, 0x80 | 10, 160 * 8, False, k > 0) for k in range(3)]
                plan += [None] * 5  # inter-digit gap: audio
            plan.reverse()  # popped from the end
            stream.dtmf = plan
            stream.anom = 1
            self.stats["dtmf"] += len(digits)

    def rtcp_ev(self, ts, frames, s):
        if not s.alive:
            return
        rng = self.rng
        ntp_sec = ts // 10**6 + 2_208_988_800
        ntp_frac = ((ts % 10**6) << 32) // 10**6
        blocks = b""
        rc = 0
        tick = self.tick
        if s.peer is not None and s.peer.sends and s.peer.sent(tick):
            p = s.peer
            expected = p.sent(tick) + p.lost
            frac = min(255, (p.lost * 256) // expected)
            jitter = rng.randrange(8, 40)
            blocks = struct.pack("!IIIIII", p.ssrc, (frac << 24) | (p.lost & 0xFFFFFF), p.seq & 0xFFFF,
                                 jitter, 0, 0)
            rc = 1
        if s.sends:
            sent = s.sent(tick)
            octets = (sent - s.dtmf_sent) * 160 + s.dtmf_sent * 4
            body = struct.pack("!IIIIII", s.ssrc, ntp_sec, ntp_frac, s.rts, sent, octets)
            pkt = struct.pack("!BBH", 0x80 | rc, 200, (4 + len(body) + len(blocks)) // 4 - 1) + body + blocks
        else:
            pkt = struct.pack("!BBHI", 0x80 | rc, 201, (8 + len(blocks)) // 4 - 1, s.ssrc) + blocks
        cname = s.cname.encode()
        sdes = struct.pack("!IBB", s.ssrc, 1, len(cname)) + cname + b"\0"
        sdes += b"\0" * ((-len(sdes)) % 4)
        pkt += struct.pack("!BBH", 0x81, 202, len(sdes) // 4) + sdes
        frames.append((ts, udp_frame(s.src, s.dst, s.sport + 1, s.dport + 1, pkt, tos=0xB8)))
        self.stats["rtcp"] += 1
        self.at(ts + rng.randrange(4_500_000, 5_500_000), self.rtcp_ev, s)

    def options_ev(self, ts, frames, side):
        src = self.hosts[side]
        dst = self.hosts["B" if side == "A" else "A"]
        d = Dialog(self, src, dst, "ping", "ping", "UDP", ua=f"SBC-{side}/5.2")
        br = d.branch()
        self.sip_ev(ts, frames, d, "ab", d.request("OPTIONS", 1, br, to_tagged=False))
        self.at(ts + self.rng.randrange(500, 5000), self.sip_ev, d, "ba",
                d.response(200, "OK", "OPTIONS", 1, br, to_tagged=True))
        self.at(ts + 30_000_000, self.options_ev, side)

    def register_ev(self, ts, frames):
        a, b = self.hosts["A"], self.hosts["B"]
        d = Dialog(self, a, b, "trunk-a", "trunk-a", "UDP")
        d.to_user = d.from_user
        rng = self.rng
        nonce = f"{rng.getrandbits(128):032x}"
        br1, br2 = d.branch(), d.branch()
        reg = lambda cseq, br, auth: d.request("REGISTER", cseq, br, to_tagged=False, extra=(  # noqa: E731
            ("Expires", "600"),) + ((("Authorization",
                                      f'Digest username="trunk-a", realm="{b.ip}", nonce="{nonce}", '
                                      f'uri="sip:{b.ip}", response="{rng.getrandbits(128):032x}", '
                                      'algorithm=MD5'),) if auth else ()))
        self.sip_ev(ts, frames, d, "ab", reg(1, br1, False))
        self.at(ts + 3000, self.sip_ev, d, "ba", d.response(401, "Unauthorized", "REGISTER", 1, br1, extra=(
            ("WWW-Authenticate", f'Digest realm="{b.ip}", nonce="{nonce}", algorithm=MD5'),)))
        self.at(ts + 9000, self.sip_ev, d, "ab", reg(2, br2, True))
        self.at(ts + 14000, self.sip_ev, d, "ba", d.response(200, "OK", "REGISTER", 2, br2,
                                                              extra=(("Expires", "600"),)))
        self.at(ts + 300_000_000, self.register_ev)

    def scanner_ev(self, ts, frames):
        rng = self.rng
        src = rng.choice(self.scan_hosts)
        d = Dialog(self, src, self.hosts["B"], str(rng.randrange(100, 1000)), str(rng.randrange(100, 10000)),
                   "UDP", ua=SCANNER_UA)
        br = d.branch()
        self.sip_ev(ts, frames, d, "ab", d.request("INVITE", 1, br, to_tagged=False))
        if rng.random() < 0.5:
            self.at(ts + rng.randrange(500, 3000), self.sip_ev, d, "ba",
                    d.response(403, "Forbidden", "INVITE", 1, br))
        self.stats["scanner"] += 1
        self.at(ts + int(rng.expovariate(1 / 20.0) * 1e6) + 1, self.scanner_ev)

    def arrival_ev(self, ts, frames):
        self.new_call(ts)
        rate = self.args.calls / self.args.mean_duration
        self.at(ts + int(self.rng.expovariate(rate) * 1e6) + 1, self.arrival_ev)

    # ---- main loop ----------------------------------------------------------
    def run(self, writer):
        args, rng = self.args, self.rng
        t = EPOCH_US
        if not args.cold_start:
            for _ in range(args.calls):
                self.new_call(t, warm_remaining=int(rng.expovariate(1 / args.mean_duration) * 1e6) + 20_000)
        self.at(t + rng.randrange(1_000_000), self.arrival_ev)
        self.at(t + rng.randrange(30_000_000), self.options_ev, "A")
        self.at(t + rng.randrange(30_000_000), self.options_ev, "B")
        self.at(t + rng.randrange(60_000_000), self.register_ev)
        self.at(t + rng.randrange(10_000_000), self.scanner_ev)
        end_us = EPOCH_US + int(args.duration * 1e6) if args.duration else 1 << 62

        buf = writer.buf
        limit = writer.limit()
        pos = 0
        rec_pack, ip_pack, rtp_pack = REC.pack_into, IPPATCH.pack_into, RTPPATCH.pack_into
        dtmf_pack, frame_hdr = DTMFPATCH.pack_into, struct.Struct("<IIII").pack_into
        events = self.events
        n_rtp = 0
        tick = 0
        while not writer.done and t < end_us:
            self.tick = tick
            tick_end = t + TICK_US
            frames = []
            while events and events[0][0] < tick_end:
                ts, _, fn, a = heapq.heappop(events)
                fn(max(ts, t), frames, *a)
            streams = self.streams
            if self.died:
                streams = self.streams = [s for s in streams if s.alive]
                self.died = False
            ns = len(streams)
            tk = tick & 63
            keys = [s.kt[tk] | i for i, s in enumerate(streams)]
            for j, (ts, fr) in enumerate(frames):
                off = min(max(ts - t, 0), TICK_US - 1)
                keys.append((off << 20) | (ns + j))
            keys.sort()
            sec, usec0 = divmod(t, 10**6)
            for k in keys:
                i = k & 0xFFFFF
                usec = usec0 + (k >> 20)
                s_ = sec
                if usec >= 1_000_000:
                    usec -= 1_000_000
                    s_ += 1
                if i >= ns:  # SIP, RTCP: prebuilt by the event
                    fr = frames[i - ns][1]
                    n = 16 + len(fr)
                    if pos + n > limit:
                        writer.pos = pos
                        limit = writer.flush(n)
                        pos = 0
                        if writer.done:
                            break
                    frame_hdr(buf, pos, s_, usec, len(fr), len(fr))
                    buf[pos + 16:pos + n] = fr
                    pos += n
                    continue
                s = streams[i]
                s.seq = seq = (s.seq + 1) & 0xFFFF
                s.rts = rts = (s.rts + 160) & 0xFFFFFFFF
                act = s.anom - 1
                s.anom = act
                if act:
                    act = 0
                else:
                    act = s.anomaly(rng, seq, rts)
                    if act == LOST or act == HOLD:
                        continue
                    step = s.dtmf.pop() if act == DTMF else None
                    if act == DTMF and not s.dtmf:
                        s.anom = s._next(rng)
                    if step is not None:  # None: an audio packet between digits
                        ev, flags, dur, first, repeat = step
                        if repeat:
                            s.seq = seq = (seq - 1) & 0xFFFF
                        if first:
                            s.dtmf_ts = rts
                        tmpl = s.dtmf_tmpl
                        n = len(tmpl)
                        if pos + n > limit:
                            writer.pos = pos
                            limit = writer.flush(n)
                            pos = 0
                            if writer.done:
                                break
                        buf[pos:pos + n] = tmpl
                        rec_pack(buf, pos, s_, usec)
                        src = s.src
                        src.ipid = ipid = (src.ipid + 1) & 0xFFFF
                        ip_pack(buf, pos + 34, ipid, 0x4000, 64, 17, fold_csum(s.dtmf_ipbase, ipid))
                        dtmf_pack(buf, pos + 59, (0x80 if first else 0) | 101, seq, s.dtmf_ts,
                                  s.ssrc, ev, flags, dur)
                        pos += n
                        s.dtmf_sent += 1
                        n_rtp += 1
                        continue
                # The common case: copy the template, patch four fields.
                n = s.n
                if pos + n > limit:
                    writer.pos = pos
                    limit = writer.flush(n)
                    pos = 0
                    if writer.done:
                        break
                buf[pos:pos + n] = s.tmpl
                rec_pack(buf, pos, s_, usec)
                src = s.src
                src.ipid = ipid = (src.ipid + 1) & 0xFFFF
                c = s.ipbase + ipid
                ip_pack(buf, pos + 34, ipid, 0x4000, 64, 17, ~((c & 0xFFFF) + (c >> 16)) & 0xFFFF)
                rtp_pack(buf, pos + 60, seq, rts)
                pos += n
                n_rtp += 1
                if act == HELD_OUT:  # the packet held back last tick follows its successor
                    hseq, hrts = s.held
                    s.held = None
                    if pos + n > limit:
                        writer.pos = pos
                        limit = writer.flush(n)
                        pos = 0
                        if writer.done:
                            break
                    buf[pos:pos + n] = s.tmpl
                    rec_pack(buf, pos, s_, usec)
                    src.ipid = ipid = (src.ipid + 1) & 0xFFFF
                    ip_pack(buf, pos + 34, ipid, 0x4000, 64, 17, fold_csum(s.ipbase, ipid))
                    rtp_pack(buf, pos + 60, hseq, hrts)
                    pos += n
                    n_rtp += 1
            t = tick_end
            tick += 1
        writer.pos = pos
        self.stats["rtp"] = n_rtp
        self.stats["capture_seconds"] = (t - EPOCH_US) / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output pcap file")
    ap.add_argument("--ring-dir", help="write a ring of files into this directory instead of --out")
    ap.add_argument("--ring-size", type=parse_size, default=parse_size("100MB"),
                    help="size of each ring file (default 100MB)")
    ap.add_argument("--ring-style", choices=("tcpdump", "numbered"), default="tcpdump",
                    help="tcpdump: trunk.pcap0, trunk.pcap1 ...; numbered: trunk-0001.pcap ...")
    ap.add_argument("--size", type=parse_size, help="stop before the output exceeds this size (e.g. 500MB)")
    ap.add_argument("--duration", type=parse_duration, help="stop after this much capture time (e.g. 60s)")
    ap.add_argument("--calls", type=int, default=2000, help="concurrent calls (default 2000)")
    ap.add_argument("--mean-duration", type=parse_duration, default=90.0,
                    help="mean answered call duration (default 90s)")
    ap.add_argument("--tcp-share", type=float, default=0.10, help="share of calls signalled over TCP")
    ap.add_argument("--cold-start", action="store_true", help="start with no calls up (default: warm)")
    ap.add_argument("--no-rtp", action="store_true",
                    help="SIP only: no RTP, RTCP or DTMF (a SIP-heavy archive for index/search benchmarks)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if bool(args.out) == bool(args.ring_dir):
        ap.error("give exactly one of --out or --ring-dir")
    if not args.size and not args.duration:
        ap.error("give --size and/or --duration")
    gen = Generator(args)
    w = Writer(args)
    t0, c0 = time.perf_counter(), time.process_time()
    gen.run(w)
    w.close()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    st = gen.stats
    pkts = st["rtp"] + st["sip"] + st["rtcp"]
    print(f"wrote {w.total} bytes in {len(w.files)} file(s), ~{pkts} packets "
          f"({st['capture_seconds']:.1f} s of capture) in {dt:.1f} s: {pkts / dt:,.0f} packets/s, "
          f"{w.total / dt / 1e6:.1f} MB/s (CPU {cpu:.1f} s: {pkts / cpu:,.0f} packets/s)", file=sys.stderr)
    print("  " + ", ".join(f"{k}={v}" for k, v in st.items() if k != "capture_seconds"), file=sys.stderr)


if __name__ == "__main__":
    main()
