#!/usr/bin/env bash
# The main job on the embedded defaults: check the example cases.
# Usage: scripts/run.sh [volta arguments]   (default: validate the examples)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

if (($#)); then
  exec cargo run --quiet --locked --bin volta -- "$@"
fi
exec cargo run --quiet --locked --bin volta -- validate datasets/cases/campus.toml datasets/cases/islanded.toml
