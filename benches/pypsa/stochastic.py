"""Two-stage stochastic plans: Volta against PyPSA's stochastic optimisation
on the same scenarios.

`volta plan` forecasts the load of datasets/cases/site_day.toml (a linear
model of Victoria's demand, trained on the data before the planned day, scaled
to the site) and plans under K scenarios; it writes the scenarios it planned
under (scenario_series.csv) and its optimum (plan.json). The same case,
exported by `volta validate --export` and translated by volta_pypsa, becomes
a PyPSA network with those scenarios (`n.set_scenarios`, the load per
scenario). PyPSA decides all operation per scenario, so the first stage is
imposed on its linopy model:

- non-anticipativity: the engine's status equal in every scenario;
- with an imbalance penalty, a free nomination per grid and step, and each
  scenario's deviation of the grid's net import from it paid at the penalty
  (in the expected cost);
- with CVaR, PyPSA's own risk preference (alpha, omega) is Volta's (alpha,
  weight). PyPSA's CVaR counts only its own operating costs, so the CVaR
  runs carry no imbalance penalty.

Both solve to a zero MIP gap with HiGHS. Pass: every objective agrees within
1e-6 relative. Prints one row per run with both objectives and times.

    benches/pypsa/run.sh stochastic --scenarios 1 5 10 20
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import volta_pypsa

ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT / "datasets" / "cases" / "site_day.toml"
DATA = ROOT / "datasets" / "raw" / "vic_elecdemand_2014_halfhourly.csv"
ISSUE = "2014-11-12T00:00"
SCALE = 150.0
TOLERANCE = 1e-6


def volta(*args: str) -> subprocess.CompletedProcess:
    exe = os.environ.get("VOLTA_BIN", "volta")
    done = subprocess.run([exe, *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"volta {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def train(work: Path) -> Path:
    model = work / "vic.model.json"
    volta(
        "train", "--data", str(DATA), "--target", "demand_gw", "--time-column", "period_start_aest_assumed",
        "--timezone", "Australia/Brisbane", "--horizon", "48", "--model", "linear",
        "--quantiles", "0.1,0.5,0.9", "--train-until", "2014-11-11", "--model-file", str(model),
    )
    return model


def volta_plan(model: Path, k: int, penalty: float | None, cvar: tuple[float, float] | None, out: Path):
    args = [
        "plan", str(CASE), "--issue-time", ISSUE, "--forecast", f"site.demand_kw={model},{DATA},{SCALE}",
        "--scenarios", str(k), "--mip-gap", "0", "--out", str(out),
    ]
    if penalty is not None:
        args += ["--imbalance-penalty", str(penalty)]
    if cvar is not None:
        args += ["--cvar", f"{cvar[0]}:{cvar[1]}"]
    started = time.perf_counter()
    volta(*args)
    wall = time.perf_counter() - started
    plan = json.loads((out / "plan.json").read_text())
    series = pd.read_csv(out / "scenario_series.csv")
    return plan, series, wall


def pypsa_plan(case: dict, series: pd.DataFrame, penalty: float | None, cvar: tuple[float, float] | None):
    """The extensive form in PyPSA: (objective, build + solve seconds)."""
    started = time.perf_counter()
    net = volta_pypsa.to_network(case)
    h = float(net.snapshot_weightings.objective.iloc[0])
    probabilities = series.groupby("scenario", sort=False)["probability"].first()
    names = [str(s) for s in probabilities.index]
    if len(names) > 1:
        net.set_scenarios(dict(zip(names, probabilities.values)))
    for (scenario, name), rows in series.groupby(["scenario", "series"], sort=False):
        asset, field = name.split(".")
        if field != "demand_kw":
            raise volta_pypsa.Unsupported(f"{name}: only loads are replaced here")
        values = rows["value"].to_numpy(dtype=float)
        if len(names) > 1:
            net.loads_t.p_set.loc[:, (str(scenario), asset)] = values
        else:
            net.loads_t.p_set.loc[:, asset] = values
    if cvar is not None:
        net.set_risk_preference(alpha=cvar[0], omega=cvar[1])
    m = net.optimize.create_model(include_objective_constant=False)
    if len(names) > 1 and "Generator-status" in m.variables:
        status = m.variables["Generator-status"]
        first = status.sel(scenario=names[0])
        for s in names[1:]:
            m.add_constraints(status.sel(scenario=s) - first == 0, name=f"nonanticipativity-{s}")
    if penalty is not None:
        grids = [a["id"] for a in case["assets"] if a["type"] == "grid"]
        p = m.variables["Generator-p"]
        snapshots = net.snapshots
        for grid in grids:
            nomination = m.add_variables(coords=[snapshots], name=f"{grid}-nomination")
            for s, weight in zip(names, probabilities.values):
                pick = (lambda v: v.sel(scenario=s)) if len(names) > 1 else (lambda v: v)
                gens = pick(p)
                net_import = sum(
                    gens.sel(name=g) for g in (f"{grid}:import", f"{grid}:export") if g in gens.coords["name"].values
                )
                over = m.add_variables(lower=0, coords=[snapshots], name=f"{grid}-over-{s}")
                under = m.add_variables(lower=0, coords=[snapshots], name=f"{grid}-under-{s}")
                m.add_constraints(net_import - nomination - over + under == 0, name=f"{grid}-imbalance-{s}")
                m.objective = m.objective + (float(weight) * penalty * h) * (over.sum() + under.sum())
    status, condition = net.optimize.solve_model(
        solver_name="highs",
        solver_options={"mip_rel_gap": 0.0, "output_flag": False, "threads": 1},
    )
    seconds = time.perf_counter() - started
    if status != "ok":
        return None, seconds, str(condition)
    return float(m.objective.value), seconds, "optimal"


def main() -> int:
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", type=int, nargs="+", default=[1, 5, 10])
    ap.add_argument("--imbalance-penalty", type=float, default=0.1)
    ap.add_argument("--cvar", default="0.9:0.5", help="ALPHA:WEIGHT of the CVaR runs ('' for none)")
    args = ap.parse_args()
    cvar = tuple(float(x) for x in args.cvar.split(":")) if args.cvar else None
    runs = [(k, args.imbalance_penalty, None) for k in args.scenarios]
    if cvar is not None:
        runs += [(k, None, cvar) for k in args.scenarios if k > 1]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = train(work)
        exported = work / "site.json"
        volta("validate", "--export", str(exported), str(CASE))
        case = json.loads(exported.read_text())
        print("| scenarios | imbalance penalty | CVaR | Volta objective | PyPSA objective | rel. diff | "
              "Volta plan (s) | Volta solve (s) | PyPSA (s) |")
        print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
        for k, penalty, risk in runs:
            out = work / f"plan-{k}-{penalty}-{risk}"
            plan, series, wall = volta_plan(model, k, penalty, risk, out)
            theirs, seconds, outcome = pypsa_plan(case, series, penalty, risk)
            ours = plan["objective"]
            if theirs is None or ours is None:
                diff = float("inf")
            else:
                diff = abs(ours - theirs) / max(abs(theirs), 1.0)
            ok = diff <= TOLERANCE
            failures += not ok
            risk_text = f"{risk[0]}:{risk[1]}" if risk else "-"
            print(f"| {series['scenario'].nunique()} | {penalty if penalty is not None else '-'} | {risk_text} | "
                  f"{ours:.6f} | {theirs if theirs is None else f'{theirs:.6f}'} | {diff:.1e} | {wall:.2f} | "
                  f"{plan['solve_seconds']:.3f} | {seconds:.2f} |{'' if ok else ' MISMATCH (' + outcome + ')'}")
    if failures:
        print(f"stochastic: {failures} run(s) disagree beyond {TOLERANCE:g}", file=sys.stderr)
        return 1
    print(f"stochastic: {len(runs)} plans agree with PyPSA within {TOLERANCE:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
