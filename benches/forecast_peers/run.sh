#!/usr/bin/env bash
# One command for the forecasting peer benchmark: builds volta (release, for
# honest timings), installs skforecast, mlforecast and LightGBM into a venv,
# and runs peers.py on the Victoria protocol.
#   benches/forecast_peers/run.sh [--json out.json]
# The venv lives in $VOLTA_PEERS_VENV (default ~/.cache/volta/venv-peers).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${VOLTA_PEERS_VENV:-$HOME/.cache/volta/venv-peers}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! cmp -s "$here/requirements.txt" "$venv/.volta-requirements"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/.volta-requirements"
fi
profile="${VOLTA_PROFILE:-release}"
# --workspace: the same feature unification as the test build, so polars is not rebuilt.
(cd "$root" && cargo build --quiet --locked --profile "$profile" --workspace --bin volta)
target="${CARGO_TARGET_DIR:-$root/target}"
dir="$profile"; [ "$profile" = dev ] && dir=debug
exec "$venv/bin/python" "$here/peers.py" --volta "$target/$dir/volta" "$@"
