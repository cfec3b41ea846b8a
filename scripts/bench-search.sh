#!/usr/bin/env bash
# Benchmark `sipidx search` latency on a DB of ≥ 1 M SIP messages, and the DB size on disk.
#
# Generates (if absent) a SIP-only trunk archive with scripts/gen-trunk.py --no-rtp as a ring of
# files under ${BENCH_DIR:-target/bench}/search-ring, indexes it into a fresh DB, then times
#   sipidx search --from X      (X: 7 digits from the middle of a caller number: a trigram phrase)
#   sipidx search --call-id X
# ${RUNS:-21} times each (whole process: start, open the index, query, print up to --limit 100 rows
# as NDJSON to /dev/null) and prints the median, min and max latency (target: median < 50 ms), and
# the size of the text index and the Parquet tables as a fraction of the pcap bytes; then a
# 4-digit --from (thousands of matches: the first 100 rows and an exact count). As a peer,
# `sipidx grep --from X` over the same captures runs once, for the ratio.
#
# Environment:
#   BENCH_DIR       where the archive and DB live (default target/bench)
#   BENCH_DURATION  capture time to generate (default 500s: about 1.1 M SIP messages)
#   BENCH_SEED      gen-trunk.py --seed (default 1)
#   RUNS            timed runs per query (default 21)
#   REINDEX=1       rebuild the DB even when a finished one is there
#   SIPIDX          the sipidx binary (default target/release-lto/sipidx; built when missing unless
#                   NO_BUILD=1)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$root/target/bench}
BENCH_DURATION=${BENCH_DURATION:-500s}
BENCH_SEED=${BENCH_SEED:-1}
RUNS=${RUNS:-21}
SIPIDX=${SIPIDX:-$root/target/release-lto/sipidx}

if [[ ! -x "$SIPIDX" && "${NO_BUILD:-0}" != 1 ]]; then
    (cd "$root" && cargo build --profile release-lto)
fi

ring="$BENCH_DIR/search-ring-$BENCH_DURATION-seed$BENCH_SEED"
if [[ ! -s "$ring/.done" ]]; then
    rm -rf "$ring.tmp"
    mkdir -p "$ring.tmp"
    echo "generating $ring ..." >&2
    # 10000 concurrent calls of 30 s mean: ~330 call attempts/s, ~2,200 SIP messages/s.
    python3 "$here/gen-trunk.py" --no-rtp --calls 10000 --mean-duration 30s \
        --duration "$BENCH_DURATION" --seed "$BENCH_SEED" \
        --ring-dir "$ring.tmp" --ring-size 100MB --ring-style numbered
    rm -rf "$ring"
    mv "$ring.tmp" "$ring"
    date > "$ring/.done"
fi
pcap_bytes=$(find "$ring" -name '*.pcap' -printf '%s\n' | awk '{s += $1} END {print s}')
pcap_files=$(find "$ring" -name '*.pcap' | wc -l)

db="$BENCH_DIR/search-db-$BENCH_DURATION-seed$BENCH_SEED"
if [[ ! -s "$db/.bench-index-seconds" || "${REINDEX:-0}" == 1 ]]; then
    rm -rf "$db"
    t0=$(date +%s.%N)
    "$SIPIDX" index --quiet --settle 0s --db "$db" "$ring"
    t1=$(date +%s.%N)
    python3 -c "print(round($t1 - $t0, 2))" > "$db/.bench-index-seconds"
fi
index_s=$(cat "$db/.bench-index-seconds")

python3 - "$SIPIDX" "$db" "$RUNS" "$pcap_bytes" "$pcap_files" "$index_s" "$ring" <<'EOF'
import json, os, platform, statistics, subprocess, sys, time

sipidx, db, runs, pcap_bytes, pcap_files, index_s, ring = sys.argv[1:]
runs, pcap_bytes, pcap_files, index_s = int(runs), int(pcap_bytes), int(pcap_files), float(index_s)
cat = json.load(open(os.path.join(db, "catalog.json")))
messages = sum(f["sip_messages"] for f in cat["files"])
if messages < 1_000_000:
    sys.exit(f"only {messages} SIP messages indexed; raise BENCH_DURATION")

def du(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(d, f))
    return total

text_b, tables_b = du(os.path.join(db, "text")), du(os.path.join(db, "tables"))

# A message from the middle of the archive: its caller number and Call-ID are the needles.
mid = subprocess.run([sipidx, "search", "--db", db, "--json", "--method", "INVITE",
                      "--limit", "5000"], capture_output=True, text=True, check=True)
row = json.loads(mid.stdout.splitlines()[-1])
number = row["from_user"]
needle = number[3:10]  # 7 digits after +49
call_id = row["call_id"]

def timed(args):
    times, out = [], None
    for _ in range(runs):
        a = time.perf_counter()
        p = subprocess.run([sipidx] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - a) * 1000)
        if p.returncode not in (0, 1):
            sys.exit(f"{args}: exit {p.returncode}")
        out = p.stdout
    return times, len(out.splitlines())

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"sipidx search benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}, {platform.node()}: "
      f"{os.cpu_count()} CPUs ({cpu})")
print(f"archive: {pcap_files} files, {pcap_bytes / 1e6:.1f} MB, {messages:,} SIP messages "
      f"(SIP only, gen-trunk --no-rtp)")
print(f"index: {index_s:.1f} s ({pcap_bytes / 1e6 / index_s:.0f} MB/s, {messages / index_s:,.0f} messages/s)")
print(f"DB size: text index {text_b / 1e6:.1f} MB ({text_b / pcap_bytes:.1%} of pcap bytes), "
      f"tables {tables_b / 1e6:.1f} MB ({tables_b / pcap_bytes:.1%}), "
      f"together {(text_b + tables_b) / pcap_bytes:.1%}")
results = {}
for name, args in [
    (f"search --from {needle}", ["search", "--db", db, "--json", "--from", needle]),
    (f"search --call-id {call_id}", ["search", "--db", db, "--json", "--call-id", call_id]),
    # Not selective: thousands of matches, the first 100 in time order and an exact count.
    (f"search --from {needle[:4]}", ["search", "--db", db, "--json", "--from", needle[:4]]),
    (f"search --from {needle[:4]} --sort -time", ["search", "--db", db, "--json", "--from",
                                                 needle[:4], "--sort", "-time"]),
]:
    times, rows = timed(args)
    med = statistics.median(times)
    results[name] = med
    print(f"{name}: median {med:.1f} ms (min {min(times):.1f}, max {max(times):.1f}; "
          f"{runs} runs, {rows} rows) {'OK' if med < 50 else 'ABOVE the 50 ms target'}")

# The peer: the same --from straight from the captures, once.
files = sorted(os.path.join(ring, f) for f in os.listdir(ring) if f.endswith(".pcap"))
a = time.perf_counter()
g = subprocess.run([sipidx, "grep", "--count", "--from", needle] + files,
                   capture_output=True, text=True)
grep_ms = (time.perf_counter() - a) * 1000
print(f"peer: sipidx grep --count --from {needle} over the captures: {grep_ms:.0f} ms "
      f"({g.stdout.strip()} messages); search --from is {grep_ms / results[f'search --from {needle}']:.0f}x faster")
EOF
