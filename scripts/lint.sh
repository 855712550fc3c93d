#!/usr/bin/env bash
# Formatting, clippy (warnings as errors) and the crates' dependency lanes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/lanes.sh
