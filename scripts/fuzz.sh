#!/usr/bin/env bash
# Run every fuzz target (fuzz/src/lib.rs) for SECONDS each with the seeded mutation driver; exits 1
# on any panic or slow input (saved under fuzz/artifacts/<target>/). Runs on the stable toolchain.
# Usage: scripts/fuzz.sh [SECONDS] [SEED] [TARGET...]   e.g. scripts/fuzz.sh 600 $RANDOM sip decode
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
seed=${2:-6}
shift $(( $# > 2 ? 2 : $# ))
# Shares target/ and the dependency versions of the main crate (its Cargo.lock, copied), so that
# only sipidx itself is rebuilt; cargo adds the fuzz crate's own entry to the copy.
export CARGO_TARGET_DIR="$PWD/target"
cp Cargo.lock fuzz/Cargo.lock
(cd fuzz && cargo build --quiet --no-default-features)
exec "$CARGO_TARGET_DIR/debug/sipidx-fuzz" --seconds "$secs" --seed "$seed" "$@"
