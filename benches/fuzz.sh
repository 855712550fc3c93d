#!/usr/bin/env bash
# The long run of the gRPC fuzz campaign (service/cli/tests/grpc/fuzz.rs):
# CASES generated requests per RPC (default 2000) against a real
# `volta serve`, then the outcome table (cases and status codes per RPC,
# distinct fields named in errors) that the README reports.
# Usage: benches/fuzz.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export VOLTA_FUZZ_CASES="${1:-2000}"
# A fresh seed each long run (the test suite's is fixed); a failure prints
# the minimal failing request, and VOLTA_FUZZ_SEED=<n> replays a run.
export VOLTA_FUZZ_SEED="${VOLTA_FUZZ_SEED:-random}"
start=$(date +%s)
cargo test -p volta-cli --locked --test grpc -- fuzz::every_rpc_survives_hostile_requests --exact --nocapture \
  2>&1 | tee "$CARGO_TARGET_DIR/fuzz.log" | grep -E '^(fuzz:|\||test result|.*panicked)'
echo "fuzz: the whole log is $CARGO_TARGET_DIR/fuzz.log"
echo "fuzz: ${VOLTA_FUZZ_CASES} cases per RPC in $(( $(date +%s) - start )) s"
