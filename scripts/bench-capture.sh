#!/usr/bin/env bash
# Benchmark `sipidx capture` against `tcpdump -w`, side by side in the same run, on the loopback
# interface: a corpus-derived SIP/RTP trunk capture is replayed at top speed with tcpreplay, and
# both capturers see the same packets (each has its own AF_PACKET socket).
#
# Generates (if absent) a ${BENCH_SIZE:-100MB} trunk capture with scripts/gen-trunk.py under
# ${BENCH_DIR:-target/bench}, starts both capturers with the same snaplen, kernel buffer and
# rotation size, replays the file ${BENCH_LOOPS:-3} times with `tcpreplay -i lo -t`, stops both
# with SIGTERM, and prints per tool: packets written, packets/s over the replay, kernel drops
# (pcap_stats ps_drop), and the ratios sipidx/tcpdump; then the machine and the date.
#
# Needs root (or CAP_NET_RAW+CAP_NET_ADMIN) for capturing and replaying; sends only on lo.
#
# Environment:
#   BENCH_DIR    where the trunk capture and the rings live (default target/bench)
#   BENCH_SIZE   trunk size for gen-trunk.py (default 100MB)
#   BENCH_LOOPS  tcpreplay --loop count (default 3)
#   BENCH_BUFFER kernel buffer for both, in KiB (default 32768 = 32MiB)
#   SIPIDX       the sipidx binary (default target/release-lto/sipidx; built when missing unless NO_BUILD=1)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$root/target/bench}
BENCH_SIZE=${BENCH_SIZE:-100MB}
BENCH_LOOPS=${BENCH_LOOPS:-3}
BENCH_BUFFER=${BENCH_BUFFER:-32768}
SIPIDX=${SIPIDX:-$root/target/release-lto/sipidx}

for t in tcpreplay tcpdump python3; do
    command -v "$t" >/dev/null || { echo "bench-capture: $t is not installed" >&2; exit 2; }
done
if [[ ! -x "$SIPIDX" ]]; then
    [[ "${NO_BUILD:-0}" == 1 ]] && { echo "bench-capture: no $SIPIDX" >&2; exit 2; }
    (cd "$root" && cargo build --profile release-lto)
fi

mkdir -p "$BENCH_DIR"
F="$BENCH_DIR/trunk-$BENCH_SIZE-seed1.pcap"
if [[ ! -s "$F" ]]; then
    echo "generating $F ..." >&2
    python3 "$here/gen-trunk.py" --size "$BENCH_SIZE" --seed 1 --out "$F.tmp"
    mv "$F.tmp" "$F"
fi

run=$(mktemp -d "$BENCH_DIR/capture-run.XXXXXX")
cleanup() {
    [[ -n "${sip_pid:-}" ]] && kill "$sip_pid" 2>/dev/null || true
    [[ -n "${tcd_pid:-}" ]] && kill "$tcd_pid" 2>/dev/null || true
    rm -rf "$run"
}
trap cleanup EXIT
mkdir -p "$run/sipidx" "$run/tcpdump"

# Same snaplen, buffer and rotation size for both; no filter (the trunk is all there is on lo,
# apart from whatever else runs on this machine, which both see alike).
"$SIPIDX" capture -i lo -w "$run/sipidx" -s 262144 -B "$BENCH_BUFFER" -C 100MB \
    --stats-interval 0 --stats-json >"$run/sipidx.json" 2>"$run/sipidx.err" &
sip_pid=$!
# -Z root: Debian's tcpdump otherwise switches to user tcpdump, who cannot write here.
tcpdump -i lo -w "$run/tcpdump/trunk.pcap" -s 262144 -B "$BENCH_BUFFER" -C 100 -Z root \
    >/dev/null 2>"$run/tcpdump.err" &
tcd_pid=$!
# wait until both have their sockets open
for _ in $(seq 100); do
    grep -q "capturing from" "$run/sipidx.err" 2>/dev/null && grep -q "listening on" "$run/tcpdump.err" 2>/dev/null && break
    sleep 0.1
done
sleep 0.5
for p in "$sip_pid" "$tcd_pid"; do
    kill -0 "$p" 2>/dev/null || { cat "$run/sipidx.err" "$run/tcpdump.err" >&2; exit 2; }
done

echo "replaying $F x$BENCH_LOOPS on lo at top speed ..." >&2
t0=$(date +%s.%N)
tcpreplay -i lo -t --loop "$BENCH_LOOPS" "$F" >"$run/tcpreplay.out" 2>&1
t1=$(date +%s.%N)
sleep 1   # let the last blocks reach both writers
kill -TERM "$sip_pid" "$tcd_pid"
wait "$sip_pid" || true
wait "$tcd_pid" || true
sip_pid= tcd_pid=

sent=$(grep -oE 'Actual: [0-9]+ packets' "$run/tcpreplay.out" | grep -oE '[0-9]+' || echo 0)
secs=$(python3 -c "print(f'{$t1 - $t0:.3f}')")

python3 - "$run" "$sent" "$secs" <<'PY'
import json, re, sys, pathlib
run, sent, secs = pathlib.Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
last = [json.loads(l) for l in (run / "sipidx.json").read_text().splitlines() if l.strip()][-1]
src = last["sources"][0]
sip = {"packets": src["packets"], "drops": src["kernel_drops"], "ifdrops": src["if_drops"],
       "bytes": sum(p.stat().st_size for p in (run / "sipidx").iterdir())}
err = (run / "tcpdump.err").read_text()
num = lambda pat: int(re.search(pat, err).group(1)) if re.search(pat, err) else 0
tcd = {"packets": num(r"(\d+) packets? captured"), "drops": num(r"(\d+) packets? dropped by kernel"),
       "ifdrops": num(r"(\d+) packets? dropped by interface"),
       "bytes": sum(p.stat().st_size for p in (run / "tcpdump").iterdir())}
print(f"replayed {sent} packets in {secs:.2f}s ({sent / secs:,.0f} packets/s offered)")
print(f"{'tool':8} {'captured':>10} {'packets/s':>12} {'kernel drops':>13} {'if drops':>9} {'MB written':>11}")
for name, r in (("sipidx", sip), ("tcpdump", tcd)):
    print(f"{name:8} {r['packets']:>10} {r['packets'] / secs:>12,.0f} {r['drops']:>13} {r['ifdrops']:>9} {r['bytes'] / 1e6:>11.1f}")
ratio = sip["packets"] / tcd["packets"] if tcd["packets"] else float("nan")
print(f"ratio sipidx/tcpdump: captured {ratio:.3f}, kernel drops {sip['drops']} vs {tcd['drops']}")
PY
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ)"
