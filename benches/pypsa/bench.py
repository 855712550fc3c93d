"""Peer benchmark: Volta against PyPSA (linopy + HiGHS) on the same work.

Workloads, all from one case file (the campus by default):

- week_milp: the case as it is (cold starts replaced by hot ones, which PyPSA
  cannot state), unit commitment included: 168 hourly steps.
- year_lp:   the week tiled to 52 weeks (8,736 steps), commitment removed:
  the one-year LP of the criterion benches.
- year_milp: with --year-milp, the week tiled to 52 weeks with its unit
  commitment (8,736 binaries), solved by both to a 1e-4 gap within
  --time-limit (a zero gap is out of reach for a year): each tool as its
  users run it, Volta with its own strategy, PyPSA with HiGHS's defaults.
  Long: PyPSA's part takes minutes; one run unless --repeat says more.

Each workload is solved by both tools `--repeat` times with one solver
thread, to a zero MIP gap; the table gives the median wall time of each, the
ratio PyPSA/Volta and both objectives (which must agree). Volta's time is
the whole `volta schedule` process (reading the case, building, solving,
writing the JSON summary; prices off); PyPSA's is `Network.optimize` on a
network already built in memory (linopy model, HiGHS, reading the solution
back), so the comparison leaves PyPSA's own case reading out.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

import differential

logging.getLogger("pypsa.consistency").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", category=FutureWarning)


def tile_year(case: dict, weeks: int = 52, commitment: bool = False) -> dict:
    """The case repeated `weeks` times, without unit commitment unless `commitment`."""
    year = copy.deepcopy(case)
    n = None
    for asset in year["assets"]:
        if not commitment:
            asset.pop("commitment", None)
            asset.pop("min_power_kw", None)
        for key, value in list(asset.items()):
            if isinstance(value, list) and value and isinstance(value[0], (int, float)):
                n = len(value)
                asset[key] = value * weeks
        for port in asset.get("outputs", []):
            if isinstance(port.get("efficiency"), list):
                port["efficiency"] = port["efficiency"] * weeks
    time = year["time"]
    time.pop("days", None)
    time.pop("end", None)
    time["steps"] = (n or 168) * weeks
    year["name"] = f"{case.get('name', 'case')}_year{'_uc' if commitment else ''}"
    return year


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volta", default=os.environ.get("VOLTA_BIN", "volta"))
    parser.add_argument("--case", type=Path, required=True, help="the case to benchmark (a week, hourly)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs of each workload, median reported (default 3; 1 for --year-milp)")
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    parser.add_argument("--year-milp", action="store_true",
                        help="also the year with unit commitment to a 1e-4 gap (long; one run unless --repeat)")
    parser.add_argument("--time-limit", type=float, default=900.0,
                        help="seconds each tool may take on the year with commitment (default 900)")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        week = differential.hot_starts_only(differential.export(args.volta, args.case, work / "week.json"))
        (work / "week.json").write_text(json.dumps(week))
        year = tile_year(week)
        (work / "year.json").write_text(json.dumps(year))
        # (name, case, its file, gap, time limit, runs)
        workloads = [("week_milp", week, work / "week.json", 0.0, None, args.repeat or 3),
                     ("year_lp", year, work / "year.json", 0.0, None, args.repeat or 3)]
        if args.year_milp:
            year_uc = tile_year(week, commitment=True)
            (work / "year_uc.json").write_text(json.dumps(year_uc))
            workloads.append(("year_milp", year_uc, work / "year_uc.json", 1e-4, args.time_limit, args.repeat or 1))
        agree = True
        for name, case, path, gap, limit, runs in workloads:
            ours, peer = [], []
            for _ in range(runs):
                v = differential.run_volta(args.volta, path, threads=1, gap=gap, time_limit=limit)
                p = differential.run_pypsa(case, threads=1, gap=gap, time_limit=limit)
                ours.append(v["wall_seconds"])
                peer.append(p["wall_seconds"])
            row = {
                "workload": name,
                "volta_seconds": statistics.median(ours),
                "pypsa_seconds": statistics.median(peer),
                "volta_status": v.get("status"),
                "pypsa_status": p["status"],
                "volta_objective": v.get("objective"),
                "pypsa_objective": p["objective"],
            }
            row["ratio"] = row["pypsa_seconds"] / row["volta_seconds"]
            # Both within `gap` of the optimum: within about twice it of each other.
            a, b = row["volta_objective"], row["pypsa_objective"]
            row["agree"] = a is not None and b is not None and abs(a - b) <= max(2 * gap, 1e-6) * max(abs(a), 1.0)
            agree = agree and row["agree"]
            rows.append(row)
            print(f"{name:<10} volta {row['volta_seconds']:8.2f} s ({row['volta_status']})  "
                  f"pypsa {row['pypsa_seconds']:8.2f} s ({row['pypsa_status']})  pypsa/volta {row['ratio']:6.1f}x  "
                  f"objectives {a} / {b}{'' if row['agree'] else '  DISAGREE'}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
