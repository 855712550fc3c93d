#!/usr/bin/env bash
# The whole test suite: every Rust crate's unit, integration and doc tests.
# Usage: scripts/test.sh [extra nextest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

cargo test --workspace --locked --doc
cargo nextest run --workspace --locked --no-fail-fast "$@"
