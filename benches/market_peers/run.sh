#!/usr/bin/env bash
# Volta's call auction against ASSUME's (assume-framework 0.6.0) on the same
# books, in one run: installs ASSUME into a venv of its own (it pins pandas,
# pyomo and more that the PyPSA venv must not see), builds volta in release.
#
#   benches/market_peers/run.sh [--sizes 1000,10000,100000]
#
# The venv lives in $VOLTA_ASSUME_VENV (default ~/.cache/volta/venv-assume).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${VOLTA_ASSUME_VENV:-$HOME/.cache/volta/venv-assume}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import assume' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check assume-framework==0.6.0
fi
(cd "$root" && source scripts/env.sh && cargo build --release --quiet --locked -p volta-cli --bin volta)
source "$root/scripts/env.sh"
exec "$venv/bin/python" "$here/assume_peer.py" --volta "$CARGO_TARGET_DIR/release/volta" "$@"
