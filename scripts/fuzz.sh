#!/usr/bin/env bash
# Run every fuzz target (fuzz/src/lib.rs) for SECONDS each with the seeded mutation driver; exits 1
# on any panic or slow input (saved under fuzz/artifacts/<target>/). Runs on the stable toolchain.
# Usage: scripts/fuzz.sh [SECONDS] [SEED] [TARGET...]   e.g. scripts/fuzz.sh 600 $RANDOM sip decode
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
seed=${2:-6}
shift $(( $# > 2 ? 2 : $# ))
# shares target/ with the main crate: the fuzz crate pins the same Cargo.lock, so no dependency rebuilds
export CARGO_TARGET_DIR="$PWD/target"
(cd fuzz && cargo build --quiet --locked)
exec "$CARGO_TARGET_DIR/debug/sipidx-fuzz" --seconds "$secs" --seed "$seed" "$@"
