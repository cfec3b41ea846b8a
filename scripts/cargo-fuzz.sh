#!/usr/bin/env bash
# Coverage-guided fuzzing of every target in fuzz/fuzz_targets/ with libFuzzer (cargo-fuzz), each
# for SECONDS on one core; prints executions and coverage per target and exits 1 if any crashed
# (the input is saved under fuzz/artifacts/<target>/: make it a regression test in the module).
# cargo-fuzz needs nightly's -Z flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
# The corpus grows in fuzz/target/corpus/<target> (kept between runs, not committed); the
# checked-in seeds in fuzz/corpus/<target> are read, never written.
# Usage: scripts/cargo-fuzz.sh [SECONDS] [TARGET...]   e.g. scripts/cargo-fuzz.sh 180 sip packets
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-120}
shift $(( $# > 0 ? 1 : 0 ))
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
# the targets' scratch files (fuzz/src/lib.rs with_scratch) go here and are removed at the end
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch
cp Cargo.lock fuzz/Cargo.lock
cd fuzz
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
fi
cargo fuzz build -O >/dev/null
failed=()
for t in "${targets[@]}"; do
  mkdir -p "target/corpus/$t" "artifacts/$t"
  log="$scratch/$t.log"
  # one job on one core: the machine is shared; 10 s per input is a hang, 2 GiB RSS a leak
  if cargo fuzz run -O "$t" "target/corpus/$t" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
      -print_final_stats=1 >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "$t: $status, ${execs:-?} executions in ${secs}s, ${cov:-cov: ?} edges, corpus $(ls "target/corpus/$t" | wc -l) inputs"
  if [ "$status" = FAILED ]; then
    grep -E "panicked|ERROR|SUMMARY|Test unit written" "$log" | head -8 || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
