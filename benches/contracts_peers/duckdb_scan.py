"""DuckDB on Parquet against Volta's rollups for the contract-month query.

Converts the generator's monthly CSV readings into one Parquet file (once),
then for the same random contract-months sums the delivered energy by
scanning that file in DuckDB, and asks `volta contracts stats` (rollups in
its database) for the same month; reports both latencies and checks that
the energies agree to the watt-hour. Each CSV is one load with no
corrections, so the raw sum is the latest revision's.
"""

import argparse
import pathlib
import random
import statistics
import subprocess
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import duckdb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("readings", type=pathlib.Path, help="directory of readings-*.csv")
    parser.add_argument("database", help="volta's database URL with the same portfolio")
    parser.add_argument("--volta", required=True)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--zone", default="Australia/Melbourne")
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    parquet = args.readings / "readings.parquet"
    con = duckdb.connect()
    if not parquet.exists():
        started = time.perf_counter()
        con.execute(
            f"COPY (SELECT meter, CAST(start AS TIMESTAMPTZ) AS start, "
            f"CAST(round(energy_kwh * 1000) AS BIGINT) AS energy_wh, quality "
            f"FROM read_csv('{args.readings}/readings-*.csv', header = true, "
            f"columns = {{'meter': 'VARCHAR', 'start': 'VARCHAR', 'energy_kwh': 'DECIMAL(18,3)', 'quality': 'VARCHAR'}})) "
            f"TO '{parquet}' (FORMAT parquet)"
        )
        print(f"wrote {parquet} in {time.perf_counter() - started:.1f} s")
    rows = con.execute(f"SELECT COUNT(*), COUNT(DISTINCT meter) FROM '{parquet}'").fetchone()
    print(f"{rows[0]} readings of {rows[1]} meters in {parquet} ({parquet.stat().st_size / 1e6:.0f} MB)")

    zone = ZoneInfo(args.zone)
    rng = random.Random(args.seed)
    meters = [f"m{n:05d}" for n in range(1, rows[1] + 1)]
    duck, volta, disagreements = [], [], 0
    for _ in range(args.samples):
        meter = rng.choice(meters)
        month = rng.randint(1, 12)
        first = datetime(args.year, month, 1, tzinfo=zone)
        end = datetime(args.year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
        started = time.perf_counter()
        (wh,) = con.execute(
            f"SELECT CAST(COALESCE(SUM(energy_wh), 0) AS BIGINT) FROM '{parquet}' "
            "WHERE meter = ? AND start >= ? AND start < ?",
            [meter, first, end],
        ).fetchone()
        duck.append(time.perf_counter() - started)
        last_day = (end - first).days
        started = time.perf_counter()
        out = subprocess.run(
            [args.volta, "contracts", "--database", args.database, "stats", "--contract", "c" + meter[1:],
             "--from", f"{args.year}-{month:02d}-01", "--to", f"{args.year}-{month:02d}-{last_day:02d}"],
            check=True, capture_output=True, text=True,
        ).stdout
        volta.append(time.perf_counter() - started)
        delivered = out.splitlines()[1].split()[2]
        kwh, frac = delivered.split(".")
        if int(kwh) * 1000 + int(frac) != wh:
            disagreements += 1
            print(f"disagree: {meter} {month}: duckdb {wh} Wh, volta {delivered} kWh")
    print(
        f"{args.samples} contract-months: duckdb on parquet mean {statistics.mean(duck) * 1e3:.1f} ms, "
        f"p50 {statistics.median(duck) * 1e3:.1f} ms; volta contracts stats (a process per query: start, open, "
        f"rollups) mean {statistics.mean(volta) * 1e3:.1f} ms; delivered energy disagreements: {disagreements}"
    )


if __name__ == "__main__":
    main()
