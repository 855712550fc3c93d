#!/usr/bin/env bash
# Formatting, clippy (warnings as errors), the crates' dependency lanes, and
# the API contract (buf lint and breaking).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/lanes.sh
scripts/buf.sh
