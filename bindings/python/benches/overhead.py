"""Benchmark (not a test): the cost of calling the core from Python.

1. Overhead of a Python call over the Rust call on the campus case: the
   wall time of `volta.schedule` minus the time the Rust library itself
   reports for building and solving (what a Rust caller would pay).
2. Parallelism: the same 4 schedules on a thread pool of 1 and of 2
   threads (one solver thread each); the GIL is released while solving.

    python bindings/python/benches/overhead.py [repeats]
"""

from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import volta

ROOT = Path(__file__).resolve().parents[3]


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    case = volta.Case.from_file(ROOT / "datasets" / "cases" / "campus.toml")
    overheads, walls = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        raw = volta._native.schedule(case._native, "cost", None, None, 1e-4, 1)
        wall = time.perf_counter() - start
        result = volta.Schedule._from_native(raw)
        core = raw["build_seconds"] + raw["solve_seconds"]
        walls.append(wall)
        overheads.append(wall - core)
        assert result.status == "optimal"
    print(f"campus: Python call {statistics.median(walls):.3f} s, of which outside the Rust build+solve "
          f"{1000 * statistics.median(overheads):.1f} ms (pricing and conversion to numpy included)")

    kazarlis = volta.Case.from_file(ROOT / "datasets" / "cases" / "benchmarks" / "kazarlis10.toml")
    jobs = [kazarlis] * 4
    times = {}
    for workers in (1, 2):
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda c: volta.schedule(c, gap=1e-4, threads=1), jobs))
        times[workers] = time.perf_counter() - start
    print(f"4 Kazarlis schedules: 1 thread {times[1]:.2f} s, 2 threads {times[2]:.2f} s, "
          f"speed-up {times[1] / times[2]:.2f}x")


if __name__ == "__main__":
    main()
