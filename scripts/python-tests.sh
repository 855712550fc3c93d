#!/usr/bin/env bash
# Builds the `volta` Python package into a virtual environment (maturin,
# dev profile, sharing the cargo target directory) and runs its pytest suite.
# Then builds the wheel a researcher installs with pip and checks it in a
# second, fresh environment that has no Rust toolchain: the installed wheel
# must import, plan and report without anything from the source tree.
# The venvs live in $VOLTA_PY_VENV (default ~/.cache/volta/venv-py) and
# $VOLTA_PY_VENV-wheel.
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

# The wheel, from the same dev-profile build (a release wheel is the same
# command with --release), installed where no cargo or rustc can be found.
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
(cd bindings/python && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" \
  maturin build --quiet --locked --profile dev --out "$wheels")
wheel=$(ls "$wheels"/volta-*.whl)
wvenv="$venv-wheel"
[ -x "$wvenv/bin/python" ] || python3 -m venv "$wvenv"
grep '^numpy==' "$req" | cmp -s - "$wvenv/.volta-requirements" || {
  "$wvenv/bin/pip" install --quiet --disable-pip-version-check "$(grep '^numpy==' "$req")"
  grep '^numpy==' "$req" >"$wvenv/.volta-requirements"
}
root="$PWD"
(cd "$wheels" && env -i HOME="$HOME" PATH=/usr/bin:/bin LANG=C.UTF-8 sh -c '
  ! command -v cargo >/dev/null && ! command -v rustc >/dev/null || { echo "a Rust toolchain is on the PATH" >&2; exit 1; }
  "$0/bin/pip" uninstall --quiet --yes volta 2>/dev/null || true
  "$0/bin/pip" install --quiet --disable-pip-version-check --no-index --find-links . volta
  "$0/bin/python" "$1/bindings/python/wheel/smoke.py" "$1"
'  "$wvenv" "$root")
echo "wheel: $(basename "$wheel") installs and runs without a Rust toolchain"
