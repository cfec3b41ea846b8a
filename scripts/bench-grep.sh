#!/usr/bin/env bash
# Benchmark `sipidx grep --count` against sipgrep and tshark on one SIP trunk capture.
#
# Generates (if absent) a ${BENCH_SIZE:-500MB} trunk capture with scripts/gen-trunk.py under
# ${BENCH_DIR:-target/bench}, warms the page cache, then runs each tool on the same cached file
# under scripts/peak_rss.py and prints wall time, MB/s, packets/s, peak RssAnon, VmHWM, the SIP
# message count each tool reports, and the time ratios sipidx/sipgrep and sipidx/tshark, with
# the machine (nproc, CPU model) and the date.
#
# Environment:
#   BENCH_DIR   where the capture lives (default target/bench)
#   BENCH_SIZE  capture size for gen-trunk.py (default 500MB)
#   BENCH_SEED  gen-trunk.py --seed (default 1)
#   SIPIDX      the sipidx binary (default target/release-lto/sipidx; built with
#               `cargo build --profile release-lto` when missing, unless NO_BUILD=1)
#   TOOLS       which tools to run (default "sipidx sipgrep tshark")
#
# Commands timed:
#   sipidx grep --count F
#   sipgrep -I F -C           (stdout kept: messages are counted from its "U|T date" header lines)
#   tshark -r F -Y sip -T fields -e sip.Call-ID   (stdout kept: one line per frame, Call-IDs of
#                                                   several messages in a frame are comma-joined)
# Counting output costs the peers one write per message, which is what they do anyway; sipidx
# --count prints one number.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$root/target/bench}
BENCH_SIZE=${BENCH_SIZE:-500MB}
BENCH_SEED=${BENCH_SEED:-1}
SIPIDX=${SIPIDX:-$root/target/release-lto/sipidx}
TOOLS=${TOOLS:-"sipidx sipgrep tshark"}

mkdir -p "$BENCH_DIR"
F="$BENCH_DIR/trunk-$BENCH_SIZE-seed$BENCH_SEED.pcap"
if [[ ! -s "$F" ]]; then
    echo "generating $F ..." >&2
    python3 "$here/gen-trunk.py" --size "$BENCH_SIZE" --seed "$BENCH_SEED" --out "$F.tmp"
    mv "$F.tmp" "$F"
fi

# Packet count, computed once (a pcap record walk) and cached beside the file.
if [[ ! -s "$F.packets" || "$F.packets" -ot "$F" ]]; then
    python3 - "$F" > "$F.packets" <<'EOF'
import struct, sys
with open(sys.argv[1], "rb") as fh:
    hdr = fh.read(24)
    e = "<" if hdr[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    n = 0
    while True:
        rh = fh.read(16)
        if len(rh) < 16:
            break
        fh.seek(struct.unpack(e + "IIII", rh)[2], 1)
        n += 1
print(n)
EOF
fi
packets=$(cat "$F.packets")
bytes=$(stat -c %s "$F")

if [[ " $TOOLS " == *" sipidx "* && ! -x "$SIPIDX" ]]; then
    if [[ "${NO_BUILD:-0}" == 1 ]]; then
        echo "no sipidx binary at $SIPIDX (NO_BUILD=1): skipping it" >&2
        TOOLS=${TOOLS//sipidx/}
    else
        (cd "$root" && cargo build --profile release-lto) >&2
    fi
fi

echo "warming the page cache ..." >&2
cat "$F" > /dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run NAME CMD... -> sets WALL RSS HWM EXIT for NAME, stdout in $tmp/NAME.out
run() {
    local name=$1
    shift
    python3 "$here/peak_rss.py" --stdout "$tmp/$name.out" -- "$@" 2> "$tmp/$name.err" || true
    local line
    line=$(grep '^peak_rss:' "$tmp/$name.err" | tail -1)
    WALL[$name]=$(sed -E 's/.*wall_s=([0-9.]+).*/\1/' <<< "$line")
    RSS[$name]=$(sed -E 's/.*rss_anon_kb=([0-9]+).*/\1/' <<< "$line")
    HWM[$name]=$(sed -E 's/.*vmhwm_kb=([0-9]+).*/\1/' <<< "$line")
    EXIT[$name]=$(sed -E 's/.*exit=(-?[0-9]+).*/\1/' <<< "$line")
}

declare -A WALL RSS HWM EXIT COUNT CMD
for tool in $TOOLS; do
    case $tool in
        sipidx)
            CMD[$tool]="$SIPIDX grep --count $F"
            run sipidx "$SIPIDX" grep --count "$F"
            COUNT[$tool]=$(grep -Eo '[0-9]+' "$tmp/sipidx.out" | tail -1 || true)
            ;;
        sipgrep)
            CMD[$tool]="sipgrep -I $F -C"
            run sipgrep sipgrep -I "$F" -C
            COUNT[$tool]=$(grep -cE '^[UT] [0-9]{4}/' "$tmp/sipgrep.out" || true)
            ;;
        tshark)
            CMD[$tool]="tshark -r $F -Y sip -T fields -e sip.Call-ID"
            run tshark tshark -r "$F" -Y sip -T fields -e sip.Call-ID
            COUNT[$tool]=$(awk -F, 'NF { n += NF } END { print n + 0 }' "$tmp/tshark.out")
            ;;
        *) echo "unknown tool $tool" >&2; exit 2 ;;
    esac
    if [[ "${EXIT[$tool]}" != 0 ]]; then
        echo "warning: $tool exited ${EXIT[$tool]}: $(grep -v '^peak_rss:' "$tmp/$tool.err" | tail -3)" >&2
    fi
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "# sipidx grep benchmark"
echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine:  nproc=$(nproc), $cpu, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "capture:  $F ($bytes bytes, $packets packets; page cache warm)"
echo "versions: $("$SIPIDX" --version 2>/dev/null || echo 'sipidx ?'); $(sipgrep -V 2>&1 | head -1); $(tshark --version 2>/dev/null | head -1)"
echo
printf '%-8s %9s %9s %12s %14s %12s %12s  %s\n' tool wall_s MB/s packets/s peak_RssAnon_MB VmHWM_MB sip_msgs command
for tool in $TOOLS; do
    w=${WALL[$tool]}
    awk -v t="$tool" -v w="$w" -v b="$bytes" -v p="$packets" -v r="${RSS[$tool]}" -v h="${HWM[$tool]}" \
        -v c="${COUNT[$tool]:-?}" -v cmd="${CMD[$tool]}" 'BEGIN {
        printf "%-8s %9.2f %9.1f %12.0f %14.1f %12.1f %12s  %s\n", t, w, b / w / 1e6, p / w, r / 1024, h / 1024, c, cmd }'
done
echo
if [[ -n "${WALL[sipidx]:-}" && "${EXIT[sipidx]}" != 0 ]]; then
    echo "sipidx failed (exit ${EXIT[sipidx]}): no ratios"
elif [[ -n "${WALL[sipidx]:-}" ]]; then
    for peer in sipgrep tshark; do
        [[ -n "${WALL[$peer]:-}" ]] || continue
        awk -v a="${WALL[sipidx]}" -v b="${WALL[$peer]}" -v ra="${RSS[sipidx]}" -v rb="${RSS[$peer]}" -v p="$peer" 'BEGIN {
            printf "sipidx/%-7s wall-time ratio %.3f (speed-up %.2fx), peak RssAnon ratio %.3f\n", p, a / b, b / a, (rb > 0 ? ra / rb : 0) }'
    done
fi
# SIP message counts should agree; say so when they do not (sipgrep prints each message it
# reassembles from TCP once, tshark counts one per frame-message; see README of testdata/crafted).
counts=$(for tool in $TOOLS; do echo "${COUNT[$tool]:-?}"; done | sort -u | wc -l)
if [[ "$counts" == 1 ]]; then
    echo "SIP message counts agree: $(for tool in $TOOLS; do echo -n "$tool=${COUNT[$tool]} "; done)"
else
    echo "SIP message counts DIFFER: $(for tool in $TOOLS; do echo -n "$tool=${COUNT[$tool]:-?} "; done)"
fi
