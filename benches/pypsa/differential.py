"""Differential test: Volta against PyPSA (linopy + HiGHS) on the same cases.

For every case, Volta (`volta schedule`, cost objective, zero MIP gap) and
PyPSA (the translated network of volta_pypsa.py, HiGHS, zero MIP gap) solve
the same problem, and their optimal objectives must agree within a relative
tolerance (1e-6 by default). Both tools also report wall times, so one run
gives the correctness check and the speed ratio.

Cases: the files given with --case (translated where PyPSA can state them;
a case with an unsupported feature is reported as skipped, naming the
feature) and --random N cases drawn by random_cases.py from --seed on.

Exit status 0 when every compared case agrees, 1 otherwise.
Run it through ./run.sh, which builds Volta and installs PyPSA in a venv.
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

import volta_pypsa
from random_cases import random_case

# pandas 3 deprecation notices from PyPSA's importer say nothing about the comparison.
warnings.filterwarnings("ignore", category=FutureWarning)
# linopy and PyPSA log every solve at INFO; keep the table readable.
logging.basicConfig(level=logging.WARNING)
for noisy in ("linopy", "pypsa"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
# Links with fewer ports than others get NaN in the extra port columns, which
# PyPSA's consistency check reports although they are ignored.
logging.getLogger("pypsa.consistency").setLevel(logging.ERROR)


def export(volta: str, case: Path, out: Path) -> dict:
    """The resolved case (every series inline) through `volta validate --export`."""
    subprocess.run([volta, "validate", "--export", str(out), str(case)], check=True, capture_output=True)
    return json.loads(out.read_text())


def run_volta(volta: str, case: Path, threads: int, gap: float = 0.0, time_limit: float | None = None) -> dict:
    start = time.perf_counter()
    command = [volta, "schedule", str(case), "--gap", str(gap), "--no-prices", "--threads", str(threads)]
    if time_limit is not None:
        command += ["--time-limit", str(time_limit)]
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 3):  # 3: solved, no schedule (infeasible)
        raise RuntimeError(f"volta failed on {case}: {proc.stderr.strip()}")
    summary = json.loads(proc.stdout)
    summary["wall_seconds"] = wall
    return summary


def run_pypsa(case: dict, threads: int, gap: float = 0.0, time_limit: float | None = None) -> dict:
    net = volta_pypsa.to_network(case)
    start = time.perf_counter()
    status, objective = volta_pypsa.solve(net, threads, gap, time_limit)
    return {"status": status, "objective": objective, "wall_seconds": time.perf_counter() - start}


def hot_starts_only(case: dict) -> dict:
    """The case with every cold-start cost replaced by the hot one."""
    for asset in case["assets"]:
        uc = asset.get("commitment")
        if uc:
            uc.pop("cold_start_cost", None)
            uc.pop("cold_start_after_h", None)
    return case


def compare(name: str, path: Path, args: argparse.Namespace, work: Path) -> dict:
    volta, rtol, threads = args.volta, args.rtol, args.threads
    resolved = export(volta, path, work / f"{name}.json")
    if args.hot_starts_only:
        resolved = hot_starts_only(resolved)
        (work / f"{name}.json").write_text(json.dumps(resolved))
    row = {"case": name}
    try:
        peer = run_pypsa(resolved, threads)
    except volta_pypsa.Unsupported as why:
        row.update(result="skipped", reason=str(why))
        return row
    ours = run_volta(volta, work / f"{name}.json", threads)
    row.update(
        volta_status=ours["status"], pypsa_status=peer["status"],
        volta_objective=ours.get("objective"), pypsa_objective=peer["objective"],
        volta_seconds=ours["wall_seconds"], volta_solve_seconds=ours.get("solve_seconds"),
        pypsa_seconds=peer["wall_seconds"],
    )
    a, b = ours.get("objective"), peer["objective"]
    if a is None or b is None:
        agree = (a is None) and (b is None)
        row.update(result="agree" if agree else "DIFFER", rel_diff=None)
    else:
        rel = abs(a - b) / max(1.0, abs(b))
        row.update(result="agree" if rel <= rtol else "DIFFER", rel_diff=rel)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volta", default=os.environ.get("VOLTA_BIN", "volta"), help="the volta binary")
    parser.add_argument("--case", action="append", default=[], type=Path, help="a Volta case file (repeatable)")
    parser.add_argument("--random", type=int, default=20, help="number of random cases (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="first random seed (default 1)")
    parser.add_argument("--steps", type=int, default=24, help="steps of each random case (default 24)")
    parser.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance (default 1e-6)")
    parser.add_argument("--threads", type=int, default=1, help="solver threads for both tools (default 1)")
    parser.add_argument("--hot-starts-only", action="store_true",
                        help="replace cold-start costs by hot ones in every case, for both tools "
                             "(PyPSA has a single start-up cost)")
    parser.add_argument("--json", type=Path, help="write every row to this JSON file")
    parser.add_argument("--keep", type=Path, help="keep the generated case files in this directory")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        jobs = [(p.stem, p) for p in args.case]
        for seed in range(args.seed, args.seed + args.random):
            path = work / f"random_{seed}.source.json"
            path.write_text(json.dumps(random_case(seed, args.steps), indent=1))
            jobs.append((f"random_{seed}", path))
        for name, path in jobs:
            row = compare(name, path, args, work)
            rows.append(row)
            print(_line(row), flush=True)

    compared = [r for r in rows if r["result"] != "skipped"]
    differ = [r for r in compared if r["result"] != "agree"]
    solved = [r for r in compared if r.get("volta_objective") is not None and r.get("pypsa_objective") is not None]
    worst = max((r["rel_diff"] for r in solved), default=0.0)
    t_volta = sum(r["volta_seconds"] for r in solved)
    t_pypsa = sum(r["pypsa_seconds"] for r in solved)
    print(
        f"\n{len(compared)} compared, {len(differ)} differ, {len(rows) - len(compared)} skipped; "
        f"worst relative difference {worst:.2e} (tolerance {args.rtol:g})"
    )
    if solved:
        print(f"wall time over {len(solved)} solved cases: volta {t_volta:.2f} s, pypsa {t_pypsa:.2f} s "
              f"(pypsa/volta = {t_pypsa / t_volta:.2f})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 1 if differ else 0


def _line(row: dict) -> str:
    if row["result"] == "skipped":
        return f"{row['case']:<16} skipped: {row['reason']}"
    a, b = row.get("volta_objective"), row.get("pypsa_objective")
    fmt = lambda x: "-" if x is None else f"{x:.6f}"  # noqa: E731
    rel = "-" if row.get("rel_diff") is None else f"{row['rel_diff']:.1e}"
    return (f"{row['case']:<16} {row['result']:<6} volta {fmt(a):>14} ({row['volta_status']}, {row['volta_seconds']:.2f} s)  "
            f"pypsa {fmt(b):>14} ({row['pypsa_status']}, {row['pypsa_seconds']:.2f} s)  rel {rel}")


if __name__ == "__main__":
    sys.exit(main())
