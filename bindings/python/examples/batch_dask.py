"""Fan a batch of cases out over Dask workers (a local cluster; no cluster needed).

    pip install "dask[distributed]"     # besides the volta package
    python bindings/python/examples/batch_dask.py [n_cases]

Builds variants of the campus case (battery sizes from 0 to 2 MWh), schedules
them on a local Dask cluster of two worker processes, and prints the cost of
each: the value of storage for this site. Cases and results are plain
picklable objects, so the same code runs on Ray or on a real cluster.
"""

from __future__ import annotations

import sys
from pathlib import Path

import volta

ROOT = Path(__file__).resolve().parents[3]


def variant(base: dict, battery_kwh: float) -> volta.Case:
    document = {**base, "name": f"campus_battery_{battery_kwh:.0f}"}
    document["assets"] = [dict(a) for a in base["assets"]]
    for asset in document["assets"]:
        if asset["id"] == "battery":
            asset["energy_capacity_kwh"] = max(battery_kwh, 1.0)
            asset["charge_power_kw"] = asset["discharge_power_kw"] = max(battery_kwh / 2, 0.5)
    return volta.Case.from_dict(document)


def solve(case: volta.Case) -> tuple[str, float, str]:
    plan = volta.schedule(case, gap=1e-3)
    return case.name, plan.cost, plan.status


def main() -> None:
    from dask.distributed import Client, LocalCluster

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    base = volta.Case.from_file(ROOT / "datasets" / "cases" / "campus.toml").to_dict()
    cases = [variant(base, 2000.0 * k / max(n - 1, 1)) for k in range(n)]
    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
        for name, cost, status in client.gather(client.map(solve, cases)):
            print(f"{name:<24} {status:<10} {cost:12,.2f} AUD")


if __name__ == "__main__":
    main()
