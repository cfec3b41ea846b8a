#!/usr/bin/env python3
"""Craft testdata/hostile/: captures built to break a pcap/SIP indexer (issue #6).

Deterministic (fixed timestamps, seeded PRNG) so reruns give byte-identical files. Records are
packed with struct rather than scapy: 100k-packet files take seconds this way, minutes with scapy.
Every file ends with a valid "sentinel" SIP OPTIONS whose Call-ID is `sentinel-<file stem>`, so a
test can check that the rest of the file after the hostile part is still read. The bulky cases are
zstd-compressed (the readers take .zst) to keep the suite under 3 MB.

Usage: scripts/craft_hostile.py [OUTDIR]   (default testdata/hostile)
       scripts/craft_hostile.py --call-ids N PER_FILE OUTDIR   (N distinct Call-IDs as ring files)
"""
import json
import os
import random
import struct
import subprocess
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "testdata", "hostile")
LINK_ETH, LINK_RAW = 1, 101
T0 = 1_700_000_000  # 2023-11-14


def pcap_header(link=LINK_ETH, snaplen=65535):
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, link)


def record(data, sec=T0, usec=0, caplen=None, orig_len=None):
    caplen = len(data) if caplen is None else caplen
    orig_len = len(data) if orig_len is None else orig_len
    return struct.pack("<IIII", sec & 0xFFFFFFFF, usec & 0xFFFFFFFF, caplen & 0xFFFFFFFF, orig_len & 0xFFFFFFFF) + data


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(a):
    return bytes(int(x) for x in a.split("."))


def ipv4(src, dst, proto, payload, ident=0, mf=False, frag_off=0, total=None):
    total = 20 + len(payload) if total is None else total
    ff = (0x2000 if mf else 0) | (frag_off & 0x1FFF)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total & 0xFFFF, ident & 0xFFFF, ff, 64, proto, 0, ip4(src), ip4(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def udp(sport, dport, payload):
    # checksum 0: "not computed", legal for IPv4
    return struct.pack("!HHHH", sport, dport, (8 + len(payload)) & 0xFFFF, 0) + payload


SYN, FIN, ACK, PSH = 0x02, 0x01, 0x10, 0x08


def tcp(sport, dport, seq, flags, payload=b"", ack=0):
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack, 5 << 4, flags, 65535, 0, 0) + payload


def eth(payload):
    return b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00" + payload


def options(call_id, n=0, src="192.0.2.1", dst="192.0.2.2", transport="UDP", extra=b"", body=b"", ctype=None):
    head = (
        f"OPTIONS sip:probe@{dst} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {src}:5060;branch=z9hG4bK{n}x\r\n"
        f"From: <sip:a@{src}>;tag={n}\r\n"
        f"To: <sip:probe@{dst}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 OPTIONS\r\n"
    ).encode()
    if ctype:
        head += f"Content-Type: {ctype}\r\n".encode()
    return head + extra + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def sip_udp(msg, src="192.0.2.1", dst="192.0.2.2", sport=5060, dport=5060, raw=False):
    pkt = ipv4(src, dst, 17, udp(sport, dport, msg))
    return pkt if raw else eth(pkt)


def sentinel(stem, raw=False, sec=T0 + 100):
    return record(sip_udp(options(f"sentinel-{stem}@hostile"), raw=raw), sec=sec)


def write(name, data, zst=False):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(bytes(data))
    if zst:
        subprocess.run(["zstd", "-q", "-19", "-T2", "-f", "--rm", path, "-o", path + ".zst"], check=True)
        path += ".zst"
    return os.path.basename(path)


def many_call_ids_record(i):
    """The i-th OPTIONS of the many-Call-IDs cases: Call-ID `c<i>`, 1000 per second of capture time."""
    msg = f"OPTIONS sip:p SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK{i}\r\nFrom: <sip:a@h>;tag={i}\r\nTo: <sip:p@h>\r\nCall-ID: c{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n".encode()
    return record(sip_udp(msg, src="192.0.2.3", raw=True), sec=T0 + i // 1000, usec=i % 1000 * 1000)


def many_call_ids(outdir, total, per_file):
    """`total` OPTIONS with distinct Call-IDs as ring files of `per_file` each (`ring-00000.pcap`...),
    too big to commit (1M is 226 MB): made at test time. Prints the file names."""
    os.makedirs(outdir, exist_ok=True)
    header = pcap_header(link=LINK_RAW)
    for n, first in enumerate(range(0, total, per_file)):
        name = os.path.join(outdir, f"ring-{n:05d}.pcap")
        with open(name, "wb") as f:
            f.write(header)
            f.write(b"".join(many_call_ids_record(i) for i in range(first, min(first + per_file, total))))
        print(name)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--call-ids":
        # scripts/craft_hostile.py --call-ids N PER_FILE OUTDIR
        many_call_ids(sys.argv[4], int(sys.argv[2]), int(sys.argv[3]))
        return
    os.makedirs(OUT, exist_ok=True)
    manifest = {}
    rnd = random.Random(6)

    # 1. absurd caplen: a caplen no snaplen allows; nothing after it can be located (pcap has no
    # resync marker), so the reader must stop there, say so, and keep what came before.
    stem = "caplen-absurd"
    d = bytearray(pcap_header() + sentinel(stem))
    d += record(b"\0" * 64, caplen=0xFFFFFF00)
    d += record(sip_udp(options("after-corrupt@hostile")))
    manifest[write(stem + ".pcap", d)] = "valid OPTIONS, record with caplen 0xFFFFFF00, unreachable OPTIONS"

    # 2. absurd orig_len: wire lengths of 4 GiB and 0 around sane caplens; caplen is what counts.
    stem = "len-absurd"
    d = bytearray(pcap_header())
    d += record(sip_udp(options("len-huge@hostile")), orig_len=0xFFFFFFFF)
    d += record(sip_udp(options("len-zero@hostile", n=1)), orig_len=0)
    d += sentinel(stem)
    manifest[write(stem + ".pcap", d)] = "OPTIONS with orig_len 0xFFFFFFFF and 0, then sentinel"

    # 3. zero-length records and 256 KiB records (the largest caplen a reader should believe).
    stem = "records-zero-256k"
    d = bytearray(pcap_header(snaplen=262144))
    for i in range(1000):
        d += record(b"", usec=i)
    big = eth(ipv4("192.0.2.9", "192.0.2.2", 17, udp(5060, 5060, b"INVITE " + b"A" * 65000)))
    d += record(big + bytes(262144 - len(big)))  # IPv4 can carry 64 KiB; the rest is trailer
    d += record(bytes(rnd.getrandbits(8) for _ in range(4096)) * 64)  # 256 KiB of noise, no valid link
    d += sentinel(stem)
    manifest[write(stem + ".pcap", d)] = "1000 zero-length records, two 256 KiB records, sentinel"

    # 4. timestamps backwards, at the epoch, at the u32 end (2106), with an impossible usec field.
    stem = "timestamps"
    d = bytearray(pcap_header())
    for i, (sec, usec) in enumerate(
        [(T0, 0), (T0 - 86400 * 365, 0), (0, 0), (0xFFFFFFFF, 999999), (T0, 0xFFFFFFFF), (T0 - 1, 0)]
    ):
        d += record(sip_udp(options(f"ts-{i}@hostile", n=i)), sec=sec, usec=usec)
    d += sentinel(stem, sec=T0 - 5)
    manifest[write(stem + ".pcap", d)] = "6 OPTIONS at 2023, 2022, 1970, 2106, usec 0xFFFFFFFF, 2023-1s; sentinel"

    # 5. endless fragments: 15k first fragments that never get a second, plus one datagram fed 5k
    # middle fragments that never get a last one.
    stem = "frag-endless"
    d = bytearray(pcap_header(link=LINK_RAW))
    for i in range(15000):
        d += record(ipv4("198.51.100.1", "192.0.2.2", 17, b"\x13\xc4\x13\xc4\0\0\0\0", ident=i, mf=True), usec=i)
    for i in range(5000):
        d += record(ipv4("198.51.100.2", "192.0.2.2", 17, b"INVITE s", ident=7, mf=True, frag_off=i), usec=i)
    d += sentinel(stem, raw=True)
    manifest[write(stem + ".pcap", d)] = "15k never-completed first fragments, 5k-fragment endless datagram, sentinel"

    # 6. overlapping, duplicated and out-of-range fragments of SIP messages.
    stem = "frag-overlap"
    d = bytearray(pcap_header())
    msg = udp(5060, 5060, options("frag-overlap-1@hostile", n=1))
    # offsets in 8-byte units: [0,64), [48,112) overlapping with different bytes, [64,end)
    d += record(eth(ipv4("192.0.2.5", "192.0.2.2", 17, msg[:64], ident=100, mf=True)))
    d += record(eth(ipv4("192.0.2.5", "192.0.2.2", 17, b"X" * 64, ident=100, mf=True, frag_off=6)))
    d += record(eth(ipv4("192.0.2.5", "192.0.2.2", 17, msg[64:], ident=100, frag_off=8)))
    # same first fragment twice, then a last fragment that ends past 65535 bytes
    msg2 = udp(5060, 5060, options("frag-overlap-2@hostile", n=2))
    d += record(eth(ipv4("192.0.2.6", "192.0.2.2", 17, msg2[:64], ident=101, mf=True)))
    d += record(eth(ipv4("192.0.2.6", "192.0.2.2", 17, msg2[:64], ident=101, mf=True)))
    d += record(eth(ipv4("192.0.2.6", "192.0.2.2", 17, b"Z" * 64, ident=101, frag_off=8190)))
    # a last fragment at offset 0 (MF=0 and offset 0 is a whole datagram) followed by a stray tail
    d += record(eth(ipv4("192.0.2.7", "192.0.2.2", 17, msg[64:], ident=102, frag_off=8)))
    d += record(eth(ipv4("192.0.2.7", "192.0.2.2", 17, msg[64:], ident=102, frag_off=8)))
    # a fragment whose IP total length is smaller than its header
    d += record(eth(ipv4("192.0.2.8", "192.0.2.2", 17, msg[:64], ident=103, mf=True, total=12)))
    d += sentinel(stem)
    manifest[write(stem + ".pcap", d)] = "overlapping, duplicate, past-64KiB, stray-tail and short fragments; sentinel"

    # 7. a TCP stream announcing Content-Length 1 GB, then sending 2 MB of body (compresses to nothing).
    stem = "tcp-huge-content-length"
    d = bytearray(pcap_header(link=LINK_RAW))
    c, s = "203.0.113.1", "192.0.2.2"
    d += record(ipv4(c, s, 6, tcp(40000, 5060, 1000, SYN)))
    head = options("huge-cl@hostile", transport="TCP")[: -len(b"Content-Length: 0\r\n\r\n")]
    head += b"Content-Type: application/sdp\r\nContent-Length: 1000000000\r\n\r\n"
    seq = 1001
    d += record(ipv4(c, s, 6, tcp(40000, 5060, seq, PSH | ACK, head)))
    seq += len(head)
    chunk = b"v" * 1400
    for i in range(1500):
        d += record(ipv4(c, s, 6, tcp(40000, 5060, seq, ACK, chunk)), usec=i)
        seq += len(chunk)
    # a second, sane TCP stream afterwards
    m = options("sentinel-tcp-after-huge@hostile", transport="TCP", src="203.0.113.2")
    d += record(ipv4("203.0.113.2", s, 6, tcp(40001, 5060, 1, SYN)), sec=T0 + 1)
    d += record(ipv4("203.0.113.2", s, 6, tcp(40001, 5060, 2, PSH | ACK, m)), sec=T0 + 1)
    d += sentinel(stem, raw=True)
    manifest[write(stem + ".pcap", d, zst=True)] = "TCP INVITE with Content-Length 1e9 and 2.1 MB of body, sane TCP OPTIONS, sentinel"

    # 8. 100k half-open TCP streams: each a SYN-less segment carrying the start of a request.
    stem = "tcp-half-open"
    d = bytearray(pcap_header(link=LINK_RAW))
    for i in range(100_000):
        src = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        d += record(ipv4(src, "192.0.2.2", 6, tcp(1024 + i % 60000, 5060, i, PSH | ACK, b"INVITE sip:x SIP/2.0\r\nCall-ID: ")), usec=i % 1000000)
    m = options("sentinel-tcp-after-half-open@hostile", transport="TCP", src="203.0.113.3")
    d += record(ipv4("203.0.113.3", "192.0.2.2", 6, tcp(40002, 5060, 1, PSH | ACK, m)), sec=T0 + 1)
    d += sentinel(stem, raw=True)
    manifest[write(stem + ".pcap", d, zst=True)] = "100k half-open TCP streams with an unfinished request each, TCP OPTIONS, sentinel"

    # 9. 100k distinct Call-IDs in tiny OPTIONS (1M would not fit the size budget even compressed:
    # tests/integration/hostile.rs makes its 1M case at test time with --call-ids).
    stem = "many-call-ids"
    d = bytearray(pcap_header(link=LINK_RAW))
    for i in range(100_000):
        d += many_call_ids_record(i)
    d += sentinel(stem, raw=True, sec=T0 + 200)
    manifest[write(stem + ".pcap", d, zst=True)] = "100,000 OPTIONS with distinct Call-IDs, sentinel"

    # 10. 10k headers in one message (one 60 KB UDP datagram).
    stem = "headers-10k"
    d = bytearray(pcap_header())
    d += record(sip_udp(options("headers-10k@hostile", extra=b"X:1\r\n" * 10_000)))
    d += sentinel(stem)
    manifest[write(stem + ".pcap", d)] = "OPTIONS with 10,000 extension headers, sentinel"

    # 11. binary garbage on 5060 over UDP and TCP, some of it starting like SIP.
    stem = "garbage-5060"
    d = bytearray(pcap_header(link=LINK_RAW))
    prefixes = [b"", b"INVITE ", b"SIP/2.0 ", b"OPTIONS sip:", b"SIP/2.0 200 OK\r\nContent-Length: 99999999\r\n\r\n"]
    tcp_seq = {}
    for i in range(1200):
        n = rnd.randrange(0, 700)
        payload = rnd.choice(prefixes) + bytes(rnd.getrandbits(8) for _ in range(n))
        if i % 3:
            d += record(ipv4("198.51.100.9", "192.0.2.2", 17, udp(5060 + i % 2, 5060, payload)), usec=i)
        else:
            port = 30000 + i % 7
            seq = tcp_seq.get(port, 1)
            d += record(ipv4("198.51.100.9", "192.0.2.2", 6, tcp(port, 5060, seq, PSH | ACK, payload)), usec=i)
            tcp_seq[port] = seq + len(payload)
    d += sentinel(stem, raw=True)
    manifest[write(stem + ".pcap", d)] = "1200 random payloads (some starting like SIP) on UDP/TCP 5060, sentinel"

    # 12. an INVITE whose SDP has 1000 media lines.
    stem = "sdp-1000-media"
    sdp = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    sdp += b"".join(b"m=audio %d RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n" % (10000 + 2 * i) for i in range(1000))
    d = bytearray(pcap_header())
    d += record(sip_udp(options("sdp-1000@hostile", body=sdp, ctype="application/sdp")))
    d += sentinel(stem)
    manifest[write(stem + ".pcap", d)] = "OPTIONS with an SDP body of 1000 m= lines, sentinel"

    with open(os.path.join(OUT, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
