#!/usr/bin/env bash
# The contract statistics peer: the contract-month query answered by DuckDB
# scanning a Parquet copy of the raw readings, beside volta's answer from
# its rollups for the same contract-months (checked to agree).
#   benches/contracts_peers/run.sh READINGS_DIR DATABASE_URL [--samples N]
# READINGS_DIR holds the generator's readings-*.csv; DATABASE_URL the same
# portfolio imported with `volta contracts` (tenant `default`).
# The venv lives in $VOLTA_PEERS_VENV (default ~/.cache/volta/venv-contract-peers).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${VOLTA_PEERS_VENV:-$HOME/.cache/volta/venv-contract-peers}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! cmp -s "$here/requirements.txt" "$venv/.volta-requirements"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/.volta-requirements"
fi
(cd "$root" && cargo build --quiet --locked --release --workspace --bin volta)
target="${CARGO_TARGET_DIR:-$root/target}"
exec "$venv/bin/python" "$here/duckdb_scan.py" --volta "$target/release/volta" "$@"
