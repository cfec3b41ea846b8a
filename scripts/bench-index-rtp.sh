#!/usr/bin/env bash
# RTP analysis throughput: `sipidx index` (SIP + full RTP/RTCP analysis) against
# `tshark -q -o rtp.heuristic_rtp:TRUE -z rtp,streams` on the same generated RTP-heavy trunk
# archive, side by side in one run, with sipidx's peak anonymous memory (scripts/peak_rss.py).
#
#   scripts/bench-index-rtp.sh [SIZE] [RING_SIZE] [TSHARK_FILES]
#     SIZE          archive size (default 2GB; generation is slow on a busy machine, 500MB works)
#     RING_SIZE     per ring file (default: SIZE/20 so there are >= 20 files)
#     TSHARK_FILES  ring files tshark reads per round (default 1: at ~30 MB/s tshark would take
#                   minutes on the whole; its MB/s is measured on those files and the ratio uses
#                   it; on the whole 2 GB merged into one file tshark ran at 29.7 MB/s, within the
#                   per-file spread, so a ring file is a fair sample)
# Env: BENCH_DIR (default target/bench), NO_BUILD=1 to use an existing target/release-lto/sipidx,
#      CALLS (concurrent calls, default 3000: thousands of concurrent streams),
#      ROUNDS (paired sipidx/tshark rounds, default 3; tshark takes the next ring file each round).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-2GB}
bytes_of() { python3 -c 'import re,sys; m=re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMG]?)B?", sys.argv[1].upper()); print(int(float(m[1])*{"":1,"K":1e3,"M":1e6,"G":1e9}[m[2]]))' "$1"; }
SIZE_B=$(bytes_of "$SIZE")
RING=${2:-$((SIZE_B / 20 / 1000000))MB}
TFILES=${3:-1}
CALLS=${CALLS:-3000}
BENCH_DIR=${BENCH_DIR:-target/bench}
RING_DIR="$BENCH_DIR/rtp-ring-$SIZE-$RING-$CALLS"
DB="$BENCH_DIR/index-rtp-bench.db"
mkdir -p "$BENCH_DIR"
[ "${NO_BUILD:-}" = 1 ] || cargo build --profile release-lto --quiet
BIN=target/release-lto/sipidx

if [ ! -f "$RING_DIR/.complete" ]; then
  rm -rf "$RING_DIR"; mkdir -p "$RING_DIR"
  echo "generating $SIZE RTP-heavy trunk archive ($CALLS concurrent calls) in $RING ring files under $RING_DIR ..." >&2
  g0=$(date +%s)
  python3 scripts/gen-trunk.py --size "$SIZE" --calls "$CALLS" --ring-dir "$RING_DIR" \
    --ring-size "$RING" --ring-style numbered --seed 11 >&2
  echo "generated in $(( $(date +%s) - g0 )) s" >&2
  touch "$RING_DIR/.complete"
fi
files=( "$RING_DIR"/*.pcap )
total=$(cat "${files[@]}" | wc -c)
echo "date:     $(date -u +%FT%TZ)"
echo "machine:  nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "archive:  ${#files[@]} files, $total bytes"
cat "${files[@]}" > /dev/null   # same warm page cache for both tools

# Paired rounds: each runs sipidx on the whole archive, then tshark on the next ring file(s),
# back to back, so both see the same machine state; the ratio is taken per round. The host is
# shared and its speed drifts by tens of percent within minutes, which one pair cannot tell
# from a real difference.
ROUNDS=${ROUNDS:-3}
rounds_file="$BENCH_DIR/index-rtp-rounds.txt"
: > "$rounds_file"
for ((r = 0; r < ROUNDS; r++)); do
  rm -rf "$DB"
  sip_line=$(python3 scripts/peak_rss.py --stdout "$BENCH_DIR/index-rtp.json" -- \
    "$BIN" index --db "$DB" --settle 0s --quiet --json "$RING_DIR" 2>&1 >/dev/null | grep peak_rss)
  s_wall=$(sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' <<<"$sip_line")
  s_anon=$(sed -n 's/.*rss_anon_kb=\([0-9]*\).*/\1/p' <<<"$sip_line")
  read -r s_streams s_rtp <<<"$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["rtp_streams"], j["rtp_packets"])' "$BENCH_DIR/index-rtp.json")"

  first=$(( (r * TFILES) % ${#files[@]} ))
  tfiles=( "${files[@]:$first:$TFILES}" )
  tbytes=$(cat "${tfiles[@]}" | wc -c)
  t_line=$(for f in "${tfiles[@]}"; do echo "$f"; done | python3 scripts/peak_rss.py --stdout "$BENCH_DIR/tshark-rtp.txt" -- \
    bash -c 'while read -r f; do tshark -r "$f" -q -o rtp.heuristic_rtp:TRUE -z rtp,streams; done' 2>&1 | grep peak_rss)
  t_wall=$(sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' <<<"$t_line")
  t_anon=$(sed -n 's/.*rss_anon_kb=\([0-9]*\).*/\1/p' <<<"$t_line")
  t_streams=$(grep -c ' 0x' "$BENCH_DIR/tshark-rtp.txt" || true)
  echo "$total $s_wall $s_anon $s_streams $s_rtp $tbytes $t_wall $t_anon $t_streams ${tfiles[0]##*/}" >> "$rounds_file"
done

python3 - "$rounds_file" "$TFILES" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
tfiles = sys.argv[2]
print(f"{'round':6} {'tool':7} {'bytes':>12} {'wall_s':>7} {'MB/s':>7} {'peak_RssAnon_MB':>16} {'streams':>8}")
ratios = []
for i, (total, s_wall, s_anon, s_streams, s_rtp, tbytes, t_wall, t_anon, t_streams, tfile) in enumerate(rows, 1):
    s_mbs = int(total) / 1e6 / float(s_wall)
    t_mbs = int(tbytes) / 1e6 / float(t_wall)
    ratios.append(s_mbs / t_mbs)
    print(f"{i:<6} {'sipidx':7} {int(total):>12} {float(s_wall):>7.2f} {s_mbs:>7.1f} {int(s_anon)/1024:>16.1f} {s_streams:>8}  ({s_rtp} RTP packets analysed)")
    print(f"{i:<6} {'tshark':7} {int(tbytes):>12} {float(t_wall):>7.2f} {t_mbs:>7.1f} {int(t_anon)/1024:>16.1f} {t_streams:>8}  ({tfiles} ring file(s) from {tfile}; per MB)")
    print(f"{i:<6} ratio {ratios[-1]:.1f}x")
print(f"sipidx/tshark throughput ratio: median {statistics.median(ratios):.1f}x, min {min(ratios):.1f}x, "
      f"max {max(ratios):.1f}x over {len(ratios)} paired rounds (target >= 30x)")
PY
