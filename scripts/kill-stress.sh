#!/usr/bin/env bash
# Crash safety under load: SIGKILLs `sipidx index` at random moments while an archive grows file
# by file (symlinks into a work dir), runs `verify` after each kill, completes with a clean run,
# and compares streams and messages byte for byte with a clean index of the same files.
#
#   scripts/kill-stress.sh SRC_DIR [ROUNDS]
# Env: BIN (default target/release/sipidx), WORK (default target/kill-stress).
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=${1:?usage: scripts/kill-stress.sh SRC_DIR [ROUNDS]}
ROUNDS=${2:-20}
BIN=${BIN:-target/release/sipidx}
W=${WORK:-target/kill-stress}
rm -rf "$W"; mkdir -p "$W/arch"
files=( "$SRC"/*.pcap* )
link_first() { for f in "${files[@]:0:$1}"; do [ -e "$W/arch/$(basename "$f")" ] || ln -s "$(realpath "$f")" "$W/arch/"; done; }
link_first "${#files[@]}"
"$BIN" index --db "$W/clean" --settle 0s --quiet "$W/arch" || exit 2
rm -f "$W"/arch/*
kills=0; bad=0
for i in $(seq 0 "$ROUNDS"); do
  k=$(( i / 2 + 1 )); [ "$k" -gt "${#files[@]}" ] && k=${#files[@]}
  link_first "$k"
  "$BIN" index --db "$W/db" --settle 0s --quiet "$W/arch" & pid=$!
  sleep "0.$(( RANDOM % 3 ))$(( RANDOM % 9 + 1 ))"
  kill -9 "$pid" 2>/dev/null && kills=$((kills + 1)); wait "$pid" 2>/dev/null
  "$BIN" verify --db "$W/db" > "$W/verify.txt" 2>&1; rc=$?
  # 0: clean, 1: an interrupted run the next one rolls back; anything else is damage
  if [ "$rc" -gt 1 ]; then echo "verify exit $rc after kill $i:"; head "$W/verify.txt"; bad=1; fi
done
link_first "${#files[@]}"
"$BIN" index --db "$W/db" --settle 0s --quiet "$W/arch" || { echo "the run after the kills failed"; exit 1; }
"$BIN" verify --db "$W/db" > /dev/null 2>&1 || { echo "verify after the last run failed"; bad=1; }
for t in streams search; do
  extra=(); [ "$t" = search ] && extra=(--limit 100000000)
  "$BIN" "$t" --db "$W/clean" --json "${extra[@]}" | sort > "$W/$t.clean"
  "$BIN" "$t" --db "$W/db" --json "${extra[@]}" | sort > "$W/$t.killed"
  if cmp -s "$W/$t.clean" "$W/$t.killed"; then
    echo "$t: identical ($(wc -l < "$W/$t.clean") rows)"
  else
    echo "$t: DIFFERENT"; bad=1
  fi
done
echo "kills: $kills"
exit "$bad"
