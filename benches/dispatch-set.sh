#!/usr/bin/env bash
# The dispatch benchmark set in one command (a benchmark, not a test, and a
# long one on a 2-core machine: the campus year as one MILP took about 3
# minutes on 2026-12-06 and 20 s on one thread since MIPs are not presolved
# and large ones start from their rounded relaxation (2026-12-07), and the
# islanded year's rolling horizon had not finished after 24 minutes when
# first tried, 2026-12-06).
#
#   benches/dispatch-set.sh            # release build of the benchmark binaries
#   PROFILE=dev benches/dispatch-set.sh
#
# 1. Unit commitment at growing size (Kazarlis 10, 20, 40 and 100 units over
#    24 h, the campus week, the islanded microgrid's three days): Volta with
#    fleets, Volta with the units apart, and HiGHS reading the model Volta
#    writes (benches/pypsa/run.sh dispatch).
# 2. The campus year with the CHP under commitment: one MILP, the rolling
#    horizon and 52 weekly blocks (decompose-year), and as an LP.
# 3. The islanded microgrid (three diesels under commitment) for 363 days at
#    30-minute steps: the rolling horizon and blocks of a week and of 3 days.
# 4. Rolling horizons started warm against cold: the campus year and a week
#    of the Kazarlis day (rolling-year).
# Every stitched schedule is checked against the case's invariants.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source scripts/env.sh
profile="${PROFILE:-release}"
cargo build --locked --profile "$profile" -p volta-benches --bin decompose-year --bin rolling-year
dir="$CARGO_TARGET_DIR/$([ "$profile" = dev ] && echo debug || echo "$profile")"

echo "## 1. Unit commitment at growing size"
benches/pypsa/run.sh dispatch --campus --islanded
echo "## 2. The campus year"
"$dir/decompose-year" --blocks 52 --whole-limit 300
"$dir/decompose-year" --lp --blocks 52 --whole-limit 300
echo "## 3. The islanded microgrid for a year"
"$dir/decompose-year" --case islanded.toml --copies 121 --blocks 52,121
echo "## 4. Rolling horizons, warm and cold"
"$dir/rolling-year"
"$dir/rolling-year" --case benchmarks/kazarlis10.toml --copies 7
