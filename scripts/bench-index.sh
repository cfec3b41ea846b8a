#!/usr/bin/env bash
# Indexing throughput of `sipidx index` against `tshark -q -z sip,stat` on the same generated trunk
# archive, side by side in one run, with sipidx's peak anonymous memory.
#
#   scripts/bench-index.sh [SIZE] [RING_SIZE] [TSHARK_FILES]
#     SIZE          archive size (default 2GB), RING_SIZE per ring file (default 100MB);
#     TSHARK_FILES  ring files tshark reads (default 2: at ~30 MB/s tshark would need minutes for
#                   the whole archive; its MB/s is measured on those files, and the ratio uses it).
# Env: BENCH_DIR (default target/bench), NO_BUILD=1 to use an existing target/release-lto/sipidx.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-2GB}
RING=${2:-100MB}
TFILES=${3:-2}
BENCH_DIR=${BENCH_DIR:-target/bench}
RING_DIR="$BENCH_DIR/ring-$SIZE-$RING"
DB="$BENCH_DIR/index-bench.db"
mkdir -p "$BENCH_DIR"
[ "${NO_BUILD:-}" = 1 ] || cargo build --profile release-lto --quiet
BIN=target/release-lto/sipidx

if [ ! -f "$RING_DIR/.complete" ]; then
  rm -rf "$RING_DIR"; mkdir -p "$RING_DIR"
  echo "generating $SIZE trunk archive in $RING ring files under $RING_DIR ..." >&2
  python3 scripts/gen-trunk.py --size "$SIZE" --ring-dir "$RING_DIR" --ring-size "$RING" \
    --ring-style numbered --seed 7 >&2
  touch "$RING_DIR/.complete"
fi
files=( "$RING_DIR"/*.pcap )
total=$(cat "${files[@]}" | wc -c)
packets=$(capinfos -M -c -T "${files[@]}" 2>/dev/null | awk -F'\t' 'NR>1 {s+=$2} END {print s+0}')
echo "date:     $(date -u +%FT%TZ)"
echo "machine:  nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "archive:  ${#files[@]} files, $total bytes, $packets packets"
cat "${files[@]}" > /dev/null   # same warm page cache for both tools

rm -rf "$DB"
sip_line=$(python3 scripts/peak_rss.py --stdout "$BENCH_DIR/index.json" -- \
  "$BIN" index --db "$DB" --settle 0s --quiet --json "$RING_DIR" 2>&1 >/dev/null | grep peak_rss)
s_wall=$(sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' <<<"$sip_line")
s_anon=$(sed -n 's/.*rss_anon_kb=\([0-9]*\).*/\1/p' <<<"$sip_line")
s_msgs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sip_messages"])' "$BENCH_DIR/index.json")
db_bytes=$(du -sb "$DB" | cut -f1)
# the same archive indexed SIP-only (--no-media): the job tshark's sip,stat does
rm -rf "$DB"
nm_line=$(python3 scripts/peak_rss.py --stdout /dev/null -- \
  "$BIN" index --db "$DB" --settle 0s --quiet --no-media "$RING_DIR" 2>&1 >/dev/null | grep peak_rss)
n_wall=$(sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' <<<"$nm_line")
n_anon=$(sed -n 's/.*rss_anon_kb=\([0-9]*\).*/\1/p' <<<"$nm_line")

tfiles=( "${files[@]:0:$TFILES}" )
tbytes=$(cat "${tfiles[@]}" | wc -c)
t0=$(date +%s.%N)
tmsgs=0
for f in "${tfiles[@]}"; do
  n=$(tshark -r "$f" -q -z sip,stat 2>/dev/null | awk '/Number of SIP messages:/ {print $5}')
  tmsgs=$((tmsgs + ${n:-0}))
done
t1=$(date +%s.%N)
t_wall=$(echo "$t1 - $t0" | bc -l)

python3 - "$total" "$s_wall" "$s_anon" "$s_msgs" "$db_bytes" "$tbytes" "$t_wall" "$tmsgs" "$TFILES" "$n_wall" "$n_anon" <<'PY'
import sys
total, s_wall, s_anon, s_msgs, db_bytes, tbytes, t_wall, tmsgs, tfiles, n_wall, n_anon = sys.argv[1:]
total=int(total); s_wall=float(s_wall); s_anon=int(s_anon); db_bytes=int(db_bytes)
n_wall=float(n_wall); n_anon=int(n_anon); n_mbs = total/1e6/n_wall
tbytes=int(tbytes); t_wall=float(t_wall)
s_mbs = total/1e6/s_wall; t_mbs = tbytes/1e6/t_wall
print(f"{'tool':10} {'bytes':>12} {'wall_s':>8} {'MB/s':>8} {'peak_RssAnon_MB':>16} {'sip_msgs':>9}")
print(f"{'sipidx':10} {total:>12} {s_wall:>8.2f} {s_mbs:>8.1f} {s_anon/1024:>16.1f} {s_msgs:>9}  (SIP + full RTP/RTCP analysis)")
print(f"{'sipidx':10} {total:>12} {n_wall:>8.2f} {n_mbs:>8.1f} {n_anon/1024:>16.1f} {s_msgs:>9}  (--no-media: SIP only)")
print(f"{'tshark':10} {tbytes:>12} {t_wall:>8.2f} {t_mbs:>8.1f} {'':>16} {tmsgs:>9}  (first {tfiles} ring files)")
print(f"sipidx/tshark throughput ratio, SIP only: {n_mbs/t_mbs:.1f}x (target >= 30x)")
print(f"sipidx/tshark throughput ratio, SIP + media: {s_mbs/t_mbs:.1f}x")
print(f"DB size: {db_bytes} bytes = {100*db_bytes/total:.2f}% of the pcap bytes")
PY
