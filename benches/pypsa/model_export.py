"""The model Volta writes (`volta schedule --write-model FILE.lp`, or
FILE.mps) is the model it solves: HiGHS, reading the LP file alone and the
MPS file alone (highspy, no Volta in between), must reach the objective
`volta schedule` reports, within a
relative tolerance (1e-6 by default), on the example cases and on random
cases (random_cases.py, which include unit commitment, storage, CHP and
heat pumps).

Exit status 0 when every case agrees, 1 otherwise.
Run it through ./run.sh model, which builds Volta and installs highspy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import tempfile
from pathlib import Path

import highspy

from random_cases import random_case


def volta_with_model(volta: str, case: Path, lp: Path) -> float | None:
    proc = subprocess.run(
        [volta, "schedule", str(case), "--gap", "0", "--no-prices", "--threads", "1", "--write-model", str(lp)],
        capture_output=True, text=True,
    )
    if proc.returncode not in (0, 3):  # 3: solved, no schedule (infeasible)
        raise RuntimeError(f"volta failed on {case}: {proc.stderr.strip()}")
    return json.loads(proc.stdout).get("objective")


def highs_on_file(lp: Path) -> tuple[str, float | None, int, int]:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("threads", 1)
    if h.readModel(str(lp)) != highspy.HighsStatus.kOk:
        raise RuntimeError(f"HiGHS cannot read {lp}")
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    value = h.getInfo().objective_function_value if status == "Optimal" else None
    return status, value, h.getNumCol(), h.getNumRow()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volta", default=os.environ.get("VOLTA_BIN", "volta"), help="the volta binary")
    parser.add_argument("--case", action="append", default=[], type=Path, help="a Volta case file (repeatable)")
    parser.add_argument("--random", type=int, default=8, help="number of random cases (default 8)")
    parser.add_argument("--seed", type=int, default=1, help="first random seed (default 1)")
    parser.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance (default 1e-6)")
    args = parser.parse_args()

    differ = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        jobs = [(p.stem, p) for p in args.case]
        for seed in range(args.seed, args.seed + args.random):
            path = work / f"random_{seed}.json"
            path.write_text(json.dumps(random_case(seed, 24), indent=1))
            jobs.append((f"random_{seed}", path))
        for name, path in jobs:
            lp = work / f"{name}.lp"
            ours = volta_with_model(args.volta, path, lp)
            status, theirs, cols, rows = highs_on_file(lp)
            # The same model in free MPS: HiGHS reads it to the same optimum.
            mps = work / f"{name}.mps"
            volta_with_model(args.volta, path, mps)
            mps_status, from_mps, mps_cols, mps_rows = highs_on_file(mps)
            if ours is None or theirs is None:
                same = ours is None and theirs is None and from_mps is None
                rel = 0.0
            else:
                rel = max(abs(ours - theirs), abs(ours - (from_mps if from_mps is not None else math.inf)))
                rel /= max(1.0, abs(ours))
                same = rel <= args.rtol and (mps_cols, mps_rows) == (cols, rows)
            differ += not same
            shown = lambda v: "-" if v is None else f"{v:.6f}"  # noqa: E731
            print(
                f"{name:<14} {'agree' if same else 'DIFFER':<6} volta {shown(ours):>14}  "
                f"highs on the file {shown(theirs):>14} ({status}, {cols} columns, {rows} rows), on the MPS "
                f"{shown(from_mps):>14}  rel {rel:.1e}",
                flush=True,
            )
    print(f"model export: {len(jobs) - differ} of {len(jobs)} cases agree")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
