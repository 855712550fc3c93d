"""Schedule the campus case from Python, plot its electricity dispatch, and
backtest a load forecast of Victoria's demand.

    pip install matplotlib        # besides the volta package
    python bindings/python/examples/campus.py [out.png]

Prints the status, cost and CO2 of the cost-optimal week, the cost of a
weighted cost + CO2 objective, and draws the electricity bus as a stacked
area plot (supply above zero, consumption below) with the battery level.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import volta

ROOT = Path(__file__).resolve().parents[3]


def main() -> None:
    case = volta.Case.from_file(ROOT / "datasets" / "cases" / "campus.toml")
    print(case)
    plan = volta.schedule(case, gap=1e-4)
    print(f"{plan.status}: cost {plan.cost:,.2f}, CO2 {plan.co2_kg / 1000:,.1f} t, solved in {plan.solve_seconds:.2f} s")
    green = volta.schedule(case, objective="weighted", co2_price=0.08, gap=1e-4)
    # The campus has little room to cut CO2: the CHP already runs all week.
    print(f"with a carbon price of 0.08 per kg: objective {green.objective:,.2f}, "
          f"cost {green.cost:,.2f}, CO2 {green.co2_kg / 1000:,.1f} t")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = plan.to_pandas()
    elec = frame[[c for c in frame.columns if c.endswith(":elec")]]
    supply = elec.clip(lower=0)
    use = elec.clip(upper=0)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(14, 8), sharex=True, height_ratios=[3, 1])
    colors = [f"C{i}" for i in range(len(elec.columns))]  # one colour per asset, above and below zero
    top.stackplot(elec.index, supply.T.values, labels=[c.split(":")[0] for c in supply.columns], colors=colors)
    top.stackplot(elec.index, use.T.values, colors=colors)
    top.axhline(0, color="black", linewidth=0.5)
    top.set_ylabel("kW into (+) and out of (−) the electricity bus")
    top.legend(loc="upper left", ncol=4, fontsize=8)
    bottom.plot(frame.index, plan.storage_kwh["battery"], color="tab:green")
    bottom.set_ylabel("battery, kWh")
    bottom.set_xlabel("time (UTC)")
    fig.suptitle(f"campus, cost-optimal week: {plan.cost:,.0f} AUD, {plan.co2_kg / 1000:,.0f} t CO2")
    out = sys.argv[1] if len(sys.argv) > 1 else "campus_dispatch.png"
    fig.savefig(out, dpi=110, bbox_inches="tight")
    print(f"plot: {out} ({np.count_nonzero(plan.commitment['chp'])} CHP hours)")

    # Day-ahead load forecasting on the real data the campus profile comes from.
    import pandas as pd

    demand = pd.read_csv(ROOT / "datasets" / "raw" / "vic_elecdemand_2014_halfhourly.csv")
    bt = volta.backtest(
        demand, target="demand_gw", time="period_start_aest_assumed", timezone="Australia/Brisbane",
        exog=["temperature_c"], known_ahead=["temperature_c"], temperature="temperature_c", holidays="AU-VIC",
        horizon=48, train_until="2014-10-31", model="gbdt", quantiles=[0.1, 0.5, 0.9],
    )
    m = bt.metrics
    print(f"backtest {bt.model}: MAPE {m['mape']:.2f} %, rMAE {m['rmae']:.2f}, "
          f"P10-P90 coverage {100 * m['intervals'][0]['observed']:.1f} % over {len(bt.issues)} days (ex post)")


if __name__ == "__main__":
    main()
