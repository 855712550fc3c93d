#!/usr/bin/env bash
# One command for the PyPSA comparison: builds volta, installs PyPSA (linopy,
# HiGHS) into a virtual environment, then runs the differential test.
#
#   benches/pypsa/run.sh                       # 20 random cases + campus
#   benches/pypsa/run.sh --random 100 --seed 7 # any differential.py options
#   benches/pypsa/run.sh bench                 # the peer benchmark (bench.py)
#   benches/pypsa/run.sh market --books 20     # welfare clearing against highspy
#   benches/pypsa/run.sh model --random 8      # written LP models solved by highspy
#   benches/pypsa/run.sh stochastic            # two-stage plans against PyPSA's stochastic form
#   benches/pypsa/run.sh dispatch              # the dispatch benchmark set (Kazarlis 10-100 units)
#
# The venv lives in $VOLTA_PYPSA_VENV (default ~/.cache/volta/venv-pypsa).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${VOLTA_PYPSA_VENV:-$HOME/.cache/volta/venv-pypsa}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import pypsa, highspy' 2>/dev/null \
   || ! cmp -s "$here/requirements.txt" "$venv/.volta-requirements"; then
  echo "pypsa: installing $(grep -v '^#' "$here/requirements.txt" | tr '\n' ' ')into $venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/.volta-requirements"
fi

(cd "$root" && cargo build --quiet --locked -p volta-cli)
target="${CARGO_TARGET_DIR:-$root/target}"
export VOLTA_BIN="$target/debug/volta"

cd "$here"
if [ "${1:-}" = market ]; then
  shift
  exec "$venv/bin/python" market_welfare.py "$@"
fi
if [ "${1:-}" = stochastic ]; then
  shift
  exec "$venv/bin/python" stochastic.py "$@"
fi
if [ "${1:-}" = dispatch ]; then
  shift
  exec "$venv/bin/python" dispatch_bench.py "$@"
fi
if [ "${1:-}" = model ]; then
  shift
  exec "$venv/bin/python" model_export.py --case "$root/datasets/cases/campus.toml" \
    --case "$root/datasets/cases/islanded.toml" "$@"
fi
if [ "${1:-}" = bench ]; then
  shift
  exec "$venv/bin/python" bench.py --case "$root/datasets/cases/campus.toml" "$@"
fi
exec "$venv/bin/python" differential.py --case "$root/datasets/cases/campus.toml" --hot-starts-only "$@"
