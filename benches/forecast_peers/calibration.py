"""How the interval calibration was chosen: time-series cross-validation
inside 2014, then the issue's test period once.

Each fold trains on Victoria's 2014 demand up to the end of March, May, July
or August and backtests day-ahead forecasts (00:00, 48 half-hours) over the
next two months, so the issue's test period (November and December) plays
no part in the choice. For each calibration variant given on the command
line (extra `volta backtest` flags), prints P10-P90 coverage, the share of
actuals below P10 and above P90, mean pinball loss and MAPE per fold, then
the same on the test period when `--test` is given. The last columns are the
coverage on days by their peak temperature (mild below 22 C, warm 22-30 C,
hot 30 C and above), with the number of such days: intervals that are
calibrated on average can still fail on the days that matter.

    python benches/forecast_peers/calibration.py --volta target/debug/volta \\
        "" "--calibration-folds 4" "--calibration-folds 4 --calibrate-by temperature"
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "datasets" / "raw" / "vic_elecdemand_2014_halfhourly.csv"
FOLDS = [("2014-04-01", "2014-06-01"), ("2014-06-01", "2014-08-01"),
         ("2014-08-01", "2014-10-01"), ("2014-09-01", "2014-11-01")]
TEST = ("2014-11-01", None)


def run(volta: str, extra: str, train_until: str, test_until: str | None) -> dict:
    args = [
        volta, "backtest", "--data", str(DATA), "--time-column", "period_start_aest_assumed",
        "--timezone", "Australia/Brisbane", "--target", "demand_gw", "--exog", "temperature_c",
        "--known-ahead", "temperature_c", "--temperature", "temperature_c", "--holidays", "AU-VIC",
        "--horizon", "48", "--issue-time", "00:00", "--model", "gbdt", "--quantiles", "0.1,0.5,0.9",
        "--train-until", train_until, *shlex.split(extra),
    ]
    if test_until:
        args += ["--test-until", test_until]
    with tempfile.TemporaryDirectory() as out_dir:
        start = time.perf_counter()
        out = subprocess.run([*args, "--out", out_dir], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if out.returncode != 0:
            sys.exit(f"{' '.join(args)}\n{out.stderr}")
        s = json.loads(out.stdout)
        by_weather = coverage_by_weather(Path(out_dir) / "forecasts.csv")
    interval = s["intervals"][0]
    return {
        "coverage": interval["observed"],
        "below": s["coverage"]["0.1"],
        "above": 1 - s["coverage"]["0.9"],
        "pinball": sum(s["pinball"].values()) / len(s["pinball"]),
        "mape": s["mape"],
        "seconds": seconds,
        "by_weather": by_weather,
    }


def coverage_by_weather(forecasts: Path) -> dict:
    """P10-P90 coverage and days, by the issued day's peak temperature."""
    temperature = {}
    with DATA.open() as f:
        for row in csv.DictReader(f):
            temperature[row["period_start_aest_assumed"][:16]] = float(row["temperature_c"])
    with forecasts.open() as f:
        rows = list(csv.DictReader(f))
    peak = collections.defaultdict(lambda: -99.0)
    for row in rows:
        peak[row["issue"]] = max(peak[row["issue"]], temperature[row["time"][:16].replace("T", " ")])
    groups = collections.defaultdict(lambda: [0, 0])
    for row in rows:
        t = peak[row["issue"]]
        group = "hot" if t >= 30 else "warm" if t >= 22 else "mild"
        groups[group][0] += 1
        groups[group][1] += float(row["q0.1"]) <= float(row["actual"]) <= float(row["q0.9"])
    return {g: (covered / n, n // 48) for g, (n, covered) in groups.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volta", default="volta")
    parser.add_argument("--test", action="store_true", help="also run the test period (once, after choosing)")
    parser.add_argument("variants", nargs="+", help="extra volta backtest flags per variant ('' for the defaults)")
    args = parser.parse_args()
    periods = FOLDS + ([TEST] if args.test else [])
    print(f"{'variant':<52} {'period':<10} {'P10-P90':>7} {'<P10':>6} {'>P90':>6} {'pinball':>8} {'MAPE':>5} {'s':>5}"
          "  mild / warm / hot days")
    for extra in args.variants:
        for train_until, test_until in periods:
            r = run(args.volta, extra, train_until, test_until)
            label = "test" if test_until is None else train_until[:7]
            weather = " / ".join(
                f"{100 * r['by_weather'][g][0]:.1f}% ({r['by_weather'][g][1]})" if g in r["by_weather"] else "-"
                for g in ("mild", "warm", "hot"))
            print(f"{extra or '(defaults)':<52} {label:<10} {100 * r['coverage']:6.1f}% {100 * r['below']:5.1f}% "
                  f"{100 * r['above']:5.1f}% {r['pinball']:8.4f} {r['mape']:5.2f} {r['seconds']:5.1f}  {weather}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
