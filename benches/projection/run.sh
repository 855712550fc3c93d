#!/usr/bin/env bash
# Projections against outcomes: a generated portfolio (10 contracts on the
# real load shapes, June 2023 to June 2024, seed 11) is loaded whole; for
# each contract and each month from February to June 2024, the month is
# projected as of its 15th (readings after the cut are ignored by the
# projection) and compared with the month's settled delivered energy.
# Prints one CSV row per projection, then the P10-P90 coverage and the
# error of the month's total. Usage: benches/projection/run.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
work=${1:-$(mktemp -d)}
cargo build --release -q -p volta-cli --bin volta -p volta-datasets --bin contract-portfolio
bin=$CARGO_TARGET_DIR/release
export VOLTA_DATABASE_URL=sqlite://$work/projection.db
"$bin/contract-portfolio" "$work" 10 2023-06-01 2024-06-30 11
"$bin/volta" contracts apply "$work/portfolio.toml" >/dev/null
"$bin/volta" contracts import prices spot "$work/spot.csv" >/dev/null
for f in "$work"/readings-*.csv; do "$bin/volta" contracts import readings "$f" >/dev/null; done
{
  echo "contract,month,point,p10,p50,p90,actual"
  for c in $(seq -f "c%05g" 1 10); do
    for m in 2024-02:29 2024-03:31 2024-04:30 2024-05:31 2024-06:30; do
      month=${m%:*}; last=${m#*:}
      actual=$("$bin/volta" contracts settle "$c" --from "$month-01" --to "$month-$last" --dry-run | awk '/delivered:/ {print $2}')
      out=$("$bin/volta" contracts project "$c" --from "$month-01" --to "$month-$last" --as-of "$month-15")
      row() { awk -v r="$1" '$1==r {print $2} $1" "$2==r {print $3}' <<< "$out"; }
      echo "$c,$month,$(row 'point forecast'),$(row P10),$(row P50),$(row P90),$actual"
    done
  done
} | tee "$work/projections.csv"
python3 - "$work/projections.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
f = lambda r, k: float(r[k])
n = len(rows)
inside = sum(f(r, "p10") <= f(r, "actual") <= f(r, "p90") for r in rows)
below = sum(f(r, "actual") < f(r, "p10") for r in rows)
error = lambda k: 100 * sum(abs(f(r, k) - f(r, "actual")) / f(r, "actual") for r in rows) / n
width = 100 * sum((f(r, "p90") - f(r, "p10")) / f(r, "actual") for r in rows) / n
print(f"{n} projections: actual inside P10-P90 {inside} ({100 * inside / n:.0f} %), below {below}, above {n - inside - below}")
print(f"month total error: point forecast {error('point'):.2f} %, P50 {error('p50'):.2f} %; P10-P90 width {width:.1f} % of the month")
PY
