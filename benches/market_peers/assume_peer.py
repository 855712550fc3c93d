"""Volta's call auction against ASSUME's on the same books.

For books of 1,000 to N bids (one hourly product, the same random limit
orders as Volta's criterion bench draws them: buyers around 0.12, sellers
around 0.08 per kWh), the orders are written as CSV for `volta market clear
--mechanism pay-as-clear` (its clearing time, without reading the file, is
what it reports on stderr) and handed as an orderbook to ASSUME's
`PayAsClearRole.clear` (assume-framework 0.6.0), timed around the call in
one run. Printed per size: both times, their ratio, both prices and
volumes. The price rules differ (ASSUME: the highest accepted offer;
Volta: where excess demand crosses zero), so prices are shown, not
required to agree; volumes must.

    python assume_peer.py --volta target/release/volta --sizes 1000,10000,100000
"""

import argparse
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


def run_volta(volta: str, rows, directory: Path):
    path = directory / "book.csv"
    with path.open("w") as f:
        f.write("id,participant,start,node,side,price,kwh\n")
        for oid, who, side, price, kwh in rows:
            f.write(f"{oid},{who},2024-06-03T12:00:00Z,z,{side},{price},{kwh}\n")
    proc = subprocess.run([volta, "market", "clear", str(path)], capture_output=True, text=True, check=True)
    ms = float(proc.stderr.split("orders in ")[1].split(" ms")[0])
    fields = proc.stdout.splitlines()[1].split()
    return ms / 1e3, float(fields[1]) if fields[1] != "none" else None, float(fields[2])


def run_assume(rows):
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
    started = time.perf_counter()
    accepted, _, meta, _ = role.clear(orders, [product])
    seconds = time.perf_counter() - started
    volume = meta[0]["supply_volume"] if meta else 0.0
    price = max((o["accepted_price"] for o in accepted), default=None)
    return seconds, price, volume


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volta", required=True)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"{'bids':>9} {'volta s':>10} {'assume s':>10} {'ratio':>8} {'volta price':>12} {'assume price':>13} {'volta kWh':>12} {'assume kWh':>12}")
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(s) for s in args.sizes.split(",")]:
            rows = book(n, args.seed)
            v_s, v_price, v_kwh = run_volta(args.volta, rows, Path(tmp))
            a_s, a_price, a_kwh = run_assume(rows)
            same = abs(v_kwh - a_kwh) <= 1e-6 * max(1.0, a_kwh)
            bad += not same
            print(f"{n:>9} {v_s:>10.4f} {a_s:>10.4f} {a_s / v_s:>8.1f} {v_price!s:>12} {a_price!s:>13} {v_kwh:>12.3f} {a_kwh:>12.3f}"
                  + ("" if same else "  VOLUMES DIFFER"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
