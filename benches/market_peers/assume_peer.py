"""Volta's call auction against ASSUME's on the same books.

For books of 1,000 to N bids (one hourly product, the same random limit
orders as Volta's criterion bench draws them: buyers around 0.12, sellers
around 0.08 per kWh), the orders are written as CSV for `volta market clear
--mechanism pay-as-clear` (its clearing time, without reading the file, is
what it reports on stderr) and handed as an orderbook to ASSUME's
`PayAsClearRole.clear` (assume-framework 0.6.0), timed around the call in
one run. Each side clears the book `--repeat` times in one process (ASSUME
on a fresh copy of the orders each time, copied outside the timing): the
first call is the cold one, the median of the others the steady state a
running service sees. Printed per size: both times of both, their ratios,
both prices and volumes. The price rules differ (ASSUME: the highest accepted offer;
Volta: where excess demand crosses zero), so prices are shown, not
required to agree; volumes must.

    python assume_peer.py --volta target/release/volta --sizes 1000,10000,100000
"""

import argparse
import copy
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta

from dateutil import rrule as rr
from pathlib import Path

from assume.common.market_objects import MarketConfig, MarketProduct
from assume.markets.clearing_algorithms.simple import PayAsClearRole

START = datetime(2024, 6, 3, 12)


def book(n: int, seed: int):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        buy = rng.random() < 0.5
        base = 0.12 if buy else 0.08
        price = round(base - 0.04 + rng.randrange(800) * 0.0001, 4)
        kwh = round((500 + rng.randrange(100) * 50) / 1000, 3)
        out.append((i + 1, f"p{i % 1000}", "buy" if buy else "sell", price, kwh))
    return out


def run_volta(volta: str, rows, directory: Path, repeat: int):
    path = directory / "book.csv"
    with path.open("w") as f:
        f.write("id,participant,start,node,side,price,kwh\n")
        for oid, who, side, price, kwh in rows:
            f.write(f"{oid},{who},2024-06-03T12:00:00Z,z,{side},{price},{kwh}\n")
    command = [volta, "market", "clear", str(path), "--repeat", str(repeat)]
    proc = subprocess.run(command, capture_output=True, text=True, check=True)
    first = float(proc.stderr.split("orders in ")[1].split(" ms")[0]) / 1e3
    median = float(proc.stderr.split("median ")[1].split(" ms")[0]) / 1e3 if repeat > 1 else first
    fields = proc.stdout.splitlines()[1].split()
    return first, median, float(fields[1]) if fields[1] != "none" else None, float(fields[2])


def run_assume(rows, repeat: int):
    product = (START, START + timedelta(hours=1), None)
    hours = rr.rrule(rr.HOURLY, dtstart=START - timedelta(hours=1), until=START + timedelta(days=1))
    config = MarketConfig(market_id="local", opening_hours=hours, market_products=[MarketProduct(timedelta(hours=1), 1, timedelta(hours=1))],
                          maximum_bid_volume=1e9, maximum_bid_price=1e6, minimum_bid_price=-1e6)
    role = PayAsClearRole(config)
    orders = [
        {"start_time": product[0], "end_time": product[1], "only_hours": None, "price": price,
         "volume": kwh if side == "sell" else -kwh, "agent_addr": who, "bid_id": str(oid)}
        for oid, who, side, price, kwh in rows
    ]
    times = []
    for _ in range(repeat):
        book = copy.deepcopy(orders)
        started = time.perf_counter()
        accepted, _, meta, _ = role.clear(book, [product])
        times.append(time.perf_counter() - started)
    volume = meta[0]["supply_volume"] if meta else 0.0
    price = max((o["accepted_price"] for o in accepted), default=None)
    rest = sorted(times[1:]) or times
    return times[0], rest[len(rest) // 2], price, volume


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volta", required=True)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=21, help="clearings per side and size (the first is the cold one)")
    args = parser.parse_args()
    print(f"{'bids':>9} {'volta cold':>11} {'assume cold':>12} {'ratio':>7} {'volta warm':>11} {'assume warm':>12} {'ratio':>7}"
          f" {'volta price':>12} {'assume price':>13} {'volta kWh':>12} {'assume kWh':>12}")
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(s) for s in args.sizes.split(",")]:
            rows = book(n, args.seed)
            v_cold, v_warm, v_price, v_kwh = run_volta(args.volta, rows, Path(tmp), args.repeat)
            a_cold, a_warm, a_price, a_kwh = run_assume(rows, args.repeat)
            same = abs(v_kwh - a_kwh) <= 1e-6 * max(1.0, a_kwh)
            bad += not same
            print(f"{n:>9} {v_cold * 1e3:>9.3f}ms {a_cold * 1e3:>10.3f}ms {a_cold / v_cold:>7.1f}"
                  f" {v_warm * 1e3:>9.3f}ms {a_warm * 1e3:>10.3f}ms {a_warm / v_warm:>7.1f}"
                  f" {v_price!s:>12} {a_price!s:>13} {v_kwh:>12.3f} {a_kwh:>12.3f}"
                  + ("" if same else "  VOLUMES DIFFER"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
