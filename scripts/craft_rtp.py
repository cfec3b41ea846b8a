#!/usr/bin/env python3
"""Craft the deterministic RTP/RTCP test captures in testdata/rtp/ and their tshark oracles.

Every byte and timestamp is computed from constants (no randomness, no clock), so re-running
gives identical files. Usage: scripts/craft_rtp.py [--oracles]   (run from the repo root)
"""
import os
import struct
import subprocess
import sys

from scapy.all import Ether, IP, IPv6, UDP, Dot1Q, Raw, wrpcap  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "testdata", "rtp")
BASE_T = 1_700_000_000.0  # capture epoch of every file


def rtp(pt, seq, ts, ssrc, payload=b"", marker=False, csrcs=(), ext=None, pad=0, version=2):
    """RFC 3550 5.1 header + payload; ext = (profile, bytes multiple of 4); pad = padding octets."""
    b0 = (version << 6) | (0x20 if pad else 0) | (0x10 if ext else 0) | len(csrcs)
    b1 = (0x80 if marker else 0) | pt
    out = struct.pack("!BBHII", b0, b1, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
    for c in csrcs:
        out += struct.pack("!I", c)
    if ext:
        prof, data = ext
        out += struct.pack("!HH", prof, len(data) // 4) + data
    out += payload
    if pad:
        out += b"\x00" * (pad - 1) + bytes([pad])
    return out


def udp(src, sport, dst, dport, data, t, vlan=None):
    l3 = (IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst, id=0, flags=0))
    pkt = l3 / UDP(sport=sport, dport=dport) / Raw(data)
    eth = Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02")
    pkt = eth / Dot1Q(vlan=vlan) / pkt if vlan else eth / pkt
    pkt.time = round(BASE_T + t, 6)
    return pkt


def write(name, pkts):
    pkts.sort(key=lambda p: p.time)
    wrpcap(os.path.join(OUT, name), pkts)


G711 = b"\xff" * 160
A, B = "10.0.0.1", "10.0.0.2"


def jitter_us(i):
    """Deterministic arrival noise in microseconds: a fixed pseudo-random walk."""
    return ((i * 7919) % 23 - 11) * 137


def loss_dup_reorder():
    """PCMU with loss (seq 10,11,50 missing), a duplicate (20), a reorder (30<->31), late packet."""
    pkts = []
    order = [s for s in range(0, 100) if s not in (10, 11, 50)]
    i30, i31 = order.index(30), order.index(31)
    order[i30], order[i31] = order[i31], order[i30]
    order.insert(order.index(20) + 1, 20)
    for n, s in enumerate(order):
        t = s * 0.020 + jitter_us(n) / 1e6 + (0.002 if n > 40 else 0)
        if s == 70:
            t += 0.045  # one late packet: arrival jitter spike
        pkts.append(udp(A, 40000, B, 50000, rtp(0, 1000 + s, 8000 + s * 160, 0x11111111, G711,
                                                  marker=(s == 0)), t))
    write("rtp-loss-dup-reorder.pcap", pkts)


def seq_wrap():
    """G.711A whose sequence wraps 65535 -> 0 and whose timestamp wraps 2^32 -> 0."""
    pkts = []
    for k in range(120):
        seq = 65480 + k
        ts = 0xFFFFF000 + k * 160
        t = 0.5 + k * 0.020 + jitter_us(k) / 1e6
        pkts.append(udp(A, 40002, B, 50002, rtp(8, seq, ts, 0x22222222, G711), t))
    write("rtp-seq-wrap.pcap", pkts)


def ssrc_change_marker_cn():
    """Same 5-tuple: SSRC A for 40 pkts, then SSRC B; talkspurts with marker, comfort noise PT 13."""
    pkts = []
    t = 0.0
    seq, ts = 200, 50000
    for k in range(40):
        marker = k in (0, 25)
        pt = 13 if 15 <= k < 20 else 0
        if 20 <= k < 25:  # silence: no packets, timestamps advance
            ts += 160
            t += 0.020
            continue
        payload = b"\x40" if pt == 13 else G711
        pkts.append(udp(A, 40004, B, 50004, rtp(pt, seq, ts, 0x33333333, payload, marker), t + jitter_us(k) / 1e6))
        seq += 1
        ts += 160
        t += 0.020
    seq, ts = 9000, 123456
    for k in range(30):
        pkts.append(udp(A, 40004, B, 50004, rtp(0, seq + k, ts + k * 160, 0x44444444, G711, k == 0),
                        t + 0.010 + k * 0.020 + jitter_us(k + 3) / 1e6))
    write("rtp-ssrc-change-marker-cn.pcap", pkts)


def dtmf_event(event, end, volume, duration):
    return struct.pack("!BBH", event, (0x80 if end else 0) | volume, duration)


def dtmf_rfc2833():
    """PCMU on PT 0 and RFC 4733 events on PT 101 in one SSRC: digit 5, 3 end packets (same seq)."""
    pkts = []
    ssrc = 0x55555555
    seq = 300
    for k in range(60):
        t = k * 0.020 + jitter_us(k) / 1e6
        ts = 1000 + k * 160
        if 20 <= k < 30:
            # event started at ts of packet 20; duration grows by 160 per packet
            ev_ts = 1000 + 20 * 160
            dur = (k - 20 + 1) * 160
            last = k == 29
            pkts.append(udp(A, 40006, B, 50006, rtp(101, seq, ev_ts, ssrc, dtmf_event(5, last, 10, dur),
                                                      marker=(k == 20)), t))
            if last:  # RFC 4733 2.5.1.4: the end packet is retransmitted (same seq, same ts)
                for r in (1, 2):
                    pkts.append(udp(A, 40006, B, 50006, rtp(101, seq, ev_ts, ssrc,
                                                              dtmf_event(5, True, 10, dur)), t + r * 0.005))
        else:
            pkts.append(udp(A, 40006, B, 50006, rtp(0, seq, ts, ssrc, G711, marker=(k == 30)), t))
        seq += 1
    write("rtp-dtmf-rfc2833.pcap", pkts)


def ntp(t):
    secs = int(t) + 2208988800
    frac = int((t - int(t)) * (1 << 32)) & 0xFFFFFFFF
    return secs, frac


def rtcp_hdr(count, pt, words):
    return struct.pack("!BBH", 0x80 | count, pt, words)


def report_block(ssrc, frac, cum, ext_seq, jitter, lsr, dlsr):
    return struct.pack("!IB", ssrc, frac) + struct.pack("!i", cum)[1:] + struct.pack("!IIII", ext_seq, jitter, lsr, dlsr)


def sdes_cname(ssrc, cname):
    item = bytes([1, len(cname)]) + cname
    chunk = struct.pack("!I", ssrc) + item + b"\x00"
    chunk += b"\x00" * ((4 - len(chunk) % 4) % 4)
    return rtcp_hdr(1, 202, len(chunk) // 4) + chunk


def sr(ssrc, t, rtp_ts, pkts, octets, blocks):
    secs, frac = ntp(BASE_T + t)
    body = struct.pack("!IIIIII", ssrc, secs, frac, rtp_ts, pkts, octets) + b"".join(blocks)
    return rtcp_hdr(len(blocks), 200, (len(body) + 4) // 4 - 1) + body


def rr(ssrc, blocks):
    body = struct.pack("!I", ssrc) + b"".join(blocks)
    return rtcp_hdr(len(blocks), 201, (len(body) + 4) // 4 - 1) + body


def bye(ssrcs, reason=b""):
    body = b"".join(struct.pack("!I", s) for s in ssrcs)
    if reason:
        r = bytes([len(reason)]) + reason
        r += b"\x00" * ((4 - len(r) % 4) % 4)
        body += r
    return rtcp_hdr(len(ssrcs), 203, len(body) // 4) + body


def app(ssrc, subtype, name, data):
    body = struct.pack("!I", ssrc) + name + data
    return rtcp_hdr(subtype, 204, len(body) // 4) + body


def mid32(t):
    secs, frac = ntp(BASE_T + t)
    return ((secs & 0xFFFF) << 16) | (frac >> 16)


def rtcp_compound():
    """RTP both ways + RTCP on port+1: SR (3 report blocks) + SDES CNAME + BYE, RR (2 blocks) + APP."""
    pkts = []
    sa, sb = 0x0A0A0A0A, 0x0B0B0B0B
    for k in range(50):
        pkts.append(udp(A, 40010, B, 50010, rtp(0, 10 + k, 160 * k, sa, G711), k * 0.020 + jitter_us(k) / 1e6))
        pkts.append(udp(B, 50010, A, 40010, rtp(0, 500 + k, 9999 + 160 * k, sb, G711), 0.003 + k * 0.020))
    # A's SR at t=0.5 (NTP mid = X); B's RR at t=0.8 with LSR = X, DLSR = 0.25 s -> RTT = 0.05 s
    t_sr = 0.5
    blocks = [report_block(sb, 0, 0, 520, 12, 0, 0),
              report_block(0x0C0C0C0C, 25, 3, 70000, 40, 0x12345678, 0x00010000),
              report_block(0x0D0D0D0D, 255, -2, 65540, 7, 0, 0)]
    pkts.append(udp(A, 40011, B, 50011, sr(sa, t_sr, 4000, 25, 4000, blocks) + sdes_cname(sa, b"alice@10.0.0.1"), t_sr))
    lsr = mid32(t_sr)
    dlsr = int(0.25 * 65536)
    t_rr = 0.8
    rb = [report_block(sa, 12, 1, 50, 33, lsr, dlsr), report_block(0x0E0E0E0E, 0, 0, 10, 0, 0, 0)]
    pkts.append(udp(B, 50011, A, 40011, rr(sb, rb) + sdes_cname(sb, b"bob@10.0.0.2") + app(sb, 3, b"TEST", b"\x01\x02\x03\x04"), t_rr))
    pkts.append(udp(A, 40011, B, 50011, sr(sa, 1.0, 8000, 50, 8000, []) + sdes_cname(sa, b"alice@10.0.0.1") + bye([sa], b"done"), 1.0))
    write("rtcp-compound-sr-rr-sdes-bye.pcap", pkts)


def xr_block(bt, type_specific, payload):
    return struct.pack("!BBH", bt, type_specific, len(payload) // 4) + payload


def rtcp_xr():
    """RR + XR(VoIP Metrics, Receiver Reference Time, DLRR, Statistics Summary, Loss RLE)."""
    pkts = []
    sa = 0x0A0A0A0A
    src = 0x0B0B0B0B
    for k in range(25):
        pkts.append(udp(A, 40020, B, 50020, rtp(18, 100 + k, 80 * k * 2, src, b"\x00" * 20), k * 0.020))
    voip = struct.pack("!I", src) + bytes([
        12,   # loss rate 12/256
        3,    # discard rate 3/256
        40,   # burst density
        2,    # gap density
    ]) + struct.pack("!HH", 120, 5000) + struct.pack("!HH", 35, 60) + bytes([
        0x100 - 70,  # signal level -70 dBm -> two's complement
        0x100 - 60,  # noise level -60 dBm
        25,   # RERL
        16,   # Gmin
        82,   # R factor
        127,  # ext R factor: unavailable
        41,   # MOS-LQ 4.1
        39,   # MOS-CQ 3.9
        0b11010101,  # RX config: PLC=3 (standard), JBA=1 (non-adaptive)... JB rate=5
        0,    # reserved
    ]) + struct.pack("!HHH", 40, 80, 120)
    rrt_secs, rrt_frac = ntp(BASE_T + 0.4)
    blocks = [
        xr_block(7, 0, voip),
        xr_block(4, 0, struct.pack("!II", rrt_secs, rrt_frac)),
        xr_block(5, 0, struct.pack("!III", src, 0x11112222, 0x00008000)),
        xr_block(6, 0b11100000, struct.pack("!IHH", src, 100, 124) + struct.pack("!IIII", 1, 2, 3, 4)
                 + struct.pack("!IIII", 0, 0, 0, 0) + bytes([64, 62, 1, 0])),
        xr_block(1, 0, struct.pack("!IHH", src, 100, 124) + struct.pack("!HH", 0xC00F, 0x0000)),
    ]
    body = struct.pack("!I", sa) + b"".join(blocks)
    xr = rtcp_hdr(0, 207, (len(body) + 4) // 4 - 1) + body
    rrp = rr(sa, [report_block(src, 12, 3, 124, 80, 0, 0)])
    pkts.append(udp(A, 50021, B, 40021, rrp + xr, 0.4))
    # a stand-alone XR (first packet type 207): tshark treats 0x80|79 as RTCP, never as RTP
    pkts.append(udp(A, 50021, B, 40021, xr, 0.45))
    write("rtcp-xr-voip-metrics.pcap", pkts)


def pt_survey():
    """One 4-packet stream per payload type 0..127 (72..76 omitted): names and clock rates of tshark."""
    pkts = []
    for pt in range(128):
        if 72 <= pt <= 76:
            continue
        for k in range(4):
            t = pt * 0.001 + k * 0.020 + (0.0013 if k == 2 else 0)
            pkts.append(udp("10.1.0.1", 20000 + 2 * pt, "10.1.0.2", 30000 + 2 * pt,
                            rtp(pt, 10 + k, 1000 + 160 * k, 0x1000 + pt, b"\x00" * 20), t))
    write("rtp-pt-survey.pcap", pkts)


def heuristic_edges():
    """Both directions on one port pair with far-apart timestamps (tshark shares one conversation),
    CSRCs + header extension + padding, VLAN, IPv6, a v1 packet, PT 72 and marker+PT 64."""
    pkts = []
    for k in range(30):
        pkts.append(udp(A, 41000, B, 51000, rtp(0, 7 + k, 100 + 160 * k, 0x66666666, G711,
                                                  csrcs=(1, 2), ext=(0xBEDE, b"\x10\xAA\x00\x00"), pad=4 if k % 3 == 0 else 0),
                        k * 0.020 + jitter_us(k) / 1e6, vlan=42))
        pkts.append(udp(B, 51000, A, 41000, rtp(8, 60000 + k, 0xC0000000 + 160 * k, 0x77777777, G711),
                        0.007 + k * 0.020 + jitter_us(k + 5) / 1e6, vlan=42))
    for k in range(10):
        pkts.append(udp("2001:db8::1", 42000, "2001:db8::2", 52001, rtp(9, k, 320 * k, 0x88888888, G711), 0.2 + k * 0.020))
    pkts.append(udp(A, 43000, B, 53000, rtp(0, 1, 1, 0x99999999, G711, version=1), 0.3))
    pkts.append(udp(A, 43002, B, 53002, rtp(72, 1, 1, 0x9999999A, G711), 0.31))
    pkts.append(udp(A, 43004, B, 53004, rtp(64, 1, 1, 0x9999999B, G711, marker=True), 0.32))
    pkts.append(udp(A, 43006, B, 53006, rtp(64, 1, 1, 0x9999999C, G711), 0.33))
    write("rtp-heuristic-edges.pcap", pkts)


def oracles():
    exp = os.path.join(OUT, "expected")
    os.makedirs(exp, exist_ok=True)
    for f in sorted(os.listdir(OUT)):
        if not f.endswith(".pcap"):
            continue
        out = subprocess.run(["tshark", "-r", os.path.join(OUT, f), "-q", "-o", "rtp.heuristic_rtp:TRUE",
                              "-z", "rtp,streams"], capture_output=True, check=True).stdout
        with open(os.path.join(exp, f + ".rtp_streams.txt"), "wb") as fh:
            fh.write(out)


def main():
    os.makedirs(OUT, exist_ok=True)
    loss_dup_reorder()
    seq_wrap()
    ssrc_change_marker_cn()
    dtmf_rfc2833()
    rtcp_compound()
    rtcp_xr()
    pt_survey()
    heuristic_edges()
    if "--oracles" in sys.argv:
        oracles()


if __name__ == "__main__":
    main()
