#!/usr/bin/env bash
# The dependency lanes of the workspace, checked from Cargo.lock (no build):
# - engine is the shared vocabulary and depends on no other Volta crate;
# - the LP layer (volta-lp) sees no other Volta crate;
# - dispatch and forecasting see only engine (dispatch also the LP layer),
#   never each other; planning is where they meet;
# - domain crates never see the service stack (gRPC, protobuf, HTTP, SQL)
#   nor Python (tokio is allowed: polars runs its I/O on it);
# - the API contract sees no storage, auth, metrics or command line; the
#   server runtime no command line or plots;
# - the Python bindings never link the server;
# - inside each crate, modules read top-down: none import each other in a
#   circle (scripts/module_cycles.py).
# A crate not in the workspace yet is skipped.
# Usage: scripts/lanes.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SERVICE_STACK='tonic|prost|sqlx|axum|hyper|pyo3'

members=$(cargo metadata --format-version 1 --no-deps --offline 2>/dev/null |
  python3 -c 'import json,sys; print("\n".join(p["name"] for p in json.load(sys.stdin)["packages"]))')

failed=0

check() {
  local crate=$1 allowed=$2 forbidden=$3
  if ! grep -qx "$crate" <<< "$members"; then
    echo "lanes: $crate is not in the workspace yet: skipped"
    return
  fi
  local deps
  deps=$(cargo tree --locked --offline -p "$crate" -e normal --prefix none -f '{p}' | awk '{print $1}' | sort -u)
  local volta
  volta=$(grep -E '^volta-' <<< "$deps" | grep -vx "$crate" || true)
  for dep in $volta; do
    if ! grep -qxE "$allowed" <<< "$dep"; then
      echo "lanes: $crate depends on $dep (allowed: ${allowed//|/, })" >&2
      failed=1
    fi
  done
  local bad
  bad=$(grep -xE "($forbidden)" <<< "$deps" || true)
  if [ -n "$bad" ]; then
    echo "lanes: $crate pulls in $(echo $bad | tr ' ' ',') (its lane forbids them; cargo tree -i shows how)" >&2
    failed=1
  fi
}

check volta-engine 'none' "$SERVICE_STACK|polars|good_lp|highs"
check volta-lp 'none' "$SERVICE_STACK|polars|linfa"
check volta-dispatch 'volta-engine|volta-lp' "$SERVICE_STACK|polars|linfa"
check volta-forecasting 'volta-engine' "$SERVICE_STACK|good_lp|highs"
check volta-contracts 'volta-engine' "$SERVICE_STACK"
check volta-trading 'volta-engine|volta-lp|volta-dispatch|volta-forecasting|volta-contracts' "$SERVICE_STACK"
check volta-planning 'volta-engine|volta-lp|volta-dispatch|volta-forecasting' "$SERVICE_STACK"
check volta-api 'volta-engine|volta-lp|volta-dispatch|volta-forecasting|volta-contracts|volta-trading|volta-planning' 'sqlx|pyo3|clap|plotters|prometheus-client|jsonwebtoken'
check volta-server 'volta-engine|volta-lp|volta-dispatch|volta-forecasting|volta-contracts|volta-trading|volta-planning|volta-api' 'pyo3|clap|plotters'
check volta-python 'volta-engine|volta-lp|volta-dispatch|volta-forecasting|volta-planning' 'volta-api|volta-server|volta-cli|tonic|sqlx|axum|hyper'

if ! python3 scripts/module_cycles.py engine lp dispatch forecasting planning trading contracts service/api service/server service/cli datasets; then
  failed=1
fi

if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "lanes: every crate keeps to its lane, and its modules read top-down"
