#!/usr/bin/env bash
# Builds the `volta` Python package into a virtual environment (maturin,
# dev profile, sharing the cargo target directory) and runs its pytest suite.
# The venv lives in $VOLTA_PY_VENV (default ~/.cache/volta/venv-py).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
venv="${VOLTA_PY_VENV:-$HOME/.cache/volta/venv-py}"
req=bindings/python/requirements-dev.txt
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! cmp -s "$req" "$venv/.volta-requirements"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.volta-requirements"
fi
(cd bindings/python && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" maturin develop --quiet --locked)
"$venv/bin/python" -m pytest -q bindings/python/tests "$@"
