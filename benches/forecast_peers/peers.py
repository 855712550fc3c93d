"""Forecasting peers on the issue's protocol, and Volta on the same work.

Protocol (Victoria 2014 half-hourly demand, datasets/raw): train on the
data up to 2014-10-31, then issue a day-ahead forecast at 00:00 for every day
of November and December 2014, 48 half-hours each. The measured temperature
is used as if it were a forecast, so every score is ex post.

Peers, each trained once on the same training data:
- weekly seasonal naive (the same half-hour one week earlier);
- skforecast 0.26 ForecasterRecursive with LightGBM (lags 1, 2, 48 and 336,
  temperature and calendar as exogenous variables), backtested with
  `backtesting_forecaster` (steps 48, no refit);
- mlforecast 1.1 with LightGBM (lags 48, 96 and 336, a one-day rolling mean,
  temperature and calendar features), `cross_validation` (61 windows of 48,
  no refit).

Volta runs `volta backtest` on the same file and protocol for each of its
models, with calibrated P10/P50/P90 (which the peers do not compute), and
its GBDT once more for point forecasts only, the peers' work. The table
gives MAPE, MAE and the wall time of training plus forecasting (Volta: its
own fit and predict seconds, and the whole process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "datasets" / "raw" / "vic_elecdemand_2014_halfhourly.csv"
TEST_START = pd.Timestamp("2014-11-01 00:00")
H = 48


def load() -> pd.DataFrame:
    df = pd.read_csv(DATA)
    df["ds"] = pd.to_datetime(df["period_start_aest_assumed"])
    df = df.set_index("ds").asfreq("30min")
    return df[["demand_gw", "temperature_c", "workday"]]


def calendar(index: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step_of_day": index.hour * 2 + index.minute // 30,
            "weekday": index.dayofweek,
            "month": index.month,
        },
        index=index,
    )


def scores(actual: np.ndarray, forecast: np.ndarray) -> dict:
    err = actual - forecast
    return {
        "mape": float(np.mean(np.abs(err / actual)) * 100),
        "mae": float(np.mean(np.abs(err))),
        "n": int(len(actual)),
    }


def naive_week(df: pd.DataFrame) -> dict:
    start = time.perf_counter()
    test = df.loc[TEST_START:]
    forecast = df["demand_gw"].shift(336).loc[TEST_START:]
    return {"model": "naive_week (python)", **scores(test["demand_gw"].values, forecast.values),
            "seconds": time.perf_counter() - start}


def skforecast_lgbm(df: pd.DataFrame) -> dict:
    from lightgbm import LGBMRegressor
    from skforecast.model_selection import TimeSeriesFold, backtesting_forecaster
    from skforecast.recursive import ForecasterRecursive

    exog = pd.concat([df[["temperature_c", "workday"]], calendar(df.index)], axis=1)
    start = time.perf_counter()
    forecaster = ForecasterRecursive(
        estimator=LGBMRegressor(n_estimators=400, learning_rate=0.05, num_leaves=31, verbose=-1, random_state=7),
        lags=[1, 2, 48, 336],
    )
    cv = TimeSeriesFold(steps=H, initial_train_size=int((df.index < TEST_START).sum()), refit=False)
    _, predictions = backtesting_forecaster(
        forecaster=forecaster, y=df["demand_gw"], exog=exog, cv=cv, metric="mean_absolute_error",
        show_progress=False,
    )
    seconds = time.perf_counter() - start
    pred = predictions["pred"].reindex(df.loc[TEST_START:].index)
    return {"model": "skforecast + LightGBM", **scores(df.loc[TEST_START:, "demand_gw"].values, pred.values),
            "seconds": seconds}


def mlforecast_lgbm(df: pd.DataFrame) -> dict:
    from lightgbm import LGBMRegressor
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean

    long = pd.DataFrame({
        "unique_id": "vic",
        "ds": df.index,
        "y": df["demand_gw"].values,
        "temperature_c": df["temperature_c"].values,
        "workday": df["workday"].values,
    })
    cal = calendar(df.index).reset_index(drop=True)
    long = pd.concat([long, cal], axis=1)
    start = time.perf_counter()
    mlf = MLForecast(
        models={"lgbm": LGBMRegressor(n_estimators=400, learning_rate=0.05, num_leaves=31, verbose=-1, random_state=7)},
        freq="30min",
        lags=[48, 96, 336],
        lag_transforms={48: [RollingMean(window_size=48)]},
    )
    windows = int((df.index >= TEST_START).sum()) // H
    cv = mlf.cross_validation(long, n_windows=windows, h=H, step_size=H, refit=False, static_features=[])
    seconds = time.perf_counter() - start
    cv = cv.set_index("ds").sort_index()
    return {"model": "mlforecast + LightGBM", **scores(cv["y"].values, cv["lgbm"].values), "seconds": seconds}


def volta(binary: str, model: str, quantiles: bool = True) -> dict:
    args = [
        binary, "backtest", "--data", str(DATA), "--time-column", "period_start_aest_assumed",
        "--timezone", "Australia/Brisbane", "--target", "demand_gw", "--exog", "temperature_c",
        "--known-ahead", "temperature_c", "--temperature", "temperature_c", "--holidays", "AU-VIC",
        "--horizon", "48", "--issue-time", "00:00", "--train-until", "2014-10-31", "--model", model,
    ]
    if quantiles:
        args += ["--quantiles", "0.1,0.5,0.9"]
    start = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    s = json.loads(out.stdout)
    row = {
        "model": f"volta {s['model']}" + ("" if quantiles else " (point only)"), "mape": s["mape"], "mae": s["mae"],
        "n": s["n_points"], "seconds": s["fit_seconds"] + s["predict_seconds"], "process_seconds": wall,
    }
    if quantiles:
        row["coverage_p10_p90"] = s["intervals"][0]["observed"]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volta", default=os.environ.get("VOLTA_BIN", "volta"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    df = load()
    rows = [naive_week(df), skforecast_lgbm(df), mlforecast_lgbm(df)]
    for model in ("naive_week", "vanilla", "linear", "gbdt"):
        rows.append(volta(args.volta, model))
    # The peers forecast points only: the same work for Volta.
    rows.append(volta(args.volta, "gbdt", quantiles=False))
    print(f"{'model':<26} {'MAPE %':>7} {'MAE GW':>7} {'points':>6} {'train+forecast s':>17}  P10–P90")
    for r in rows:
        cov = f"{100 * r['coverage_p10_p90']:.1f} %" if "coverage_p10_p90" in r else ""
        print(f"{r['model']:<26} {r['mape']:7.2f} {r['mae']:7.4f} {r['n']:6d} {r['seconds']:17.2f}  {cov}")
    best_peer = min((r for r in rows if not r["model"].startswith("volta") and "naive" not in r["model"]),
                    key=lambda r: r["mape"])
    ours = next(r for r in rows if r["model"] == "volta gbdt")
    point = next(r for r in rows if r["model"] == "volta gbdt (point only)")
    print(f"\nvolta gbdt against the best peer ({best_peer['model']}): MAPE {ours['mape']:.2f} % vs "
          f"{best_peer['mape']:.2f} %; on the same work (point forecasts) {best_peer['seconds'] / point['seconds']:.1f}x "
          f"faster (whole volta process: {best_peer['seconds'] / point['process_seconds']:.1f}x); with calibrated "
          f"P10/P50/P90 as well {best_peer['seconds'] / ours['seconds']:.1f}x "
          f"(whole process: {best_peer['seconds'] / ours['process_seconds']:.1f}x)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
