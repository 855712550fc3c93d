"""Peer benchmark: Volta against PyPSA (linopy + HiGHS) on the same work.

Workloads, all from one case file (the campus by default):

- week_milp: the case as it is (cold starts replaced by hot ones, which PyPSA
  cannot state), unit commitment included: 168 hourly steps.
- year_lp:   the week tiled to 52 weeks (8,736 steps), commitment removed:
  the one-year LP of the criterion benches.

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


def tile_year(case: dict, weeks: int = 52) -> dict:
    """The case repeated `weeks` times, without unit commitment."""
    year = copy.deepcopy(case)
    n = None
    for asset in year["assets"]:
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
    year["name"] = f"{case.get('name', 'case')}_year"
    return year


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volta", default=os.environ.get("VOLTA_BIN", "volta"))
    parser.add_argument("--case", type=Path, required=True, help="the case to benchmark (a week, hourly)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        week = differential.hot_starts_only(differential.export(args.volta, args.case, work / "week.json"))
        (work / "week.json").write_text(json.dumps(week))
        year = tile_year(week)
        (work / "year.json").write_text(json.dumps(year))
        for name, case, path in (("week_milp", week, work / "week.json"), ("year_lp", year, work / "year.json")):
            ours, peer = [], []
            for _ in range(args.repeat):
                v = differential.run_volta(args.volta, path, threads=1)
                p = differential.run_pypsa(case, threads=1)
                ours.append(v["wall_seconds"])
                peer.append(p["wall_seconds"])
            row = {
                "workload": name,
                "volta_seconds": statistics.median(ours),
                "pypsa_seconds": statistics.median(peer),
                "volta_objective": v.get("objective"),
                "pypsa_objective": p["objective"],
            }
            row["ratio"] = row["pypsa_seconds"] / row["volta_seconds"]
            rows.append(row)
            print(f"{name:<10} volta {row['volta_seconds']:8.2f} s  pypsa {row['pypsa_seconds']:8.2f} s  "
                  f"pypsa/volta {row['ratio']:6.1f}x  objectives {row['volta_objective']:.4f} / "
                  f"{row['pypsa_objective']:.4f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
