#!/usr/bin/env bash
# Volta as a distributed platform on this one machine, without containers:
# PostgreSQL and NATS (JetStream) as they run here, `volta migrate` once,
# three replicas of the stateless services (dispatch, forecast, contracts,
# which share the market ledger's partitions) and the trading leader, all
# loaded by benches/src/bin/platform-load.rs through client-side balanced
# channels. Twice: undisturbed, then with a replica killed half-way through
# each profile. Results (tables, per-second latency CSV, plots) go to
# results/platform/.
#
# Usage: deploy/local/run.sh [--seconds S] [--replicas N] [--profiles read,statistics,mixed]
#   (default 300 s per profile, as the seed platform's load test: about 35 minutes in all)
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh
source scripts/env.sh
source scripts/services.sh
cargo build --release --locked -p volta-cli -p volta-benches --bins
bin="${CARGO_TARGET_DIR:-target}/release"
out=results/platform
mkdir -p "$out"
base="${VOLTA_TEST_POSTGRES_URL%/*}"
for run in steady kill; do
  db="volta_platform_$$_$run"
  psql -q "$base/postgres" -c "CREATE DATABASE $db"
  extra=(); [ "$run" = kill ] && extra=(--kill)
  status=0
  "$bin/platform-load" --database "$base/$db" --nats "${VOLTA_TEST_NATS_URL:-nats://127.0.0.1:4222}" \
    --volta "$bin/volta" --out "$out" "${extra[@]}" "$@" | tee "$out/$run.txt" || status=$?
  psql -q "$base/postgres" -c "DROP DATABASE $db WITH (FORCE)"
  [ "$status" -eq 0 ] || exit "$status"
done
echo "platform: results in $out/"
