#!/usr/bin/env bash
# The main job on the embedded defaults: schedule the campus case into results/.
# Usage: scripts/run.sh [volta arguments]   (default: the campus schedule)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

if (($#)); then
  exec cargo run --quiet --locked --bin volta -- "$@"
fi
exec cargo run --quiet --locked --bin volta -- schedule datasets/cases/campus.toml --out results
