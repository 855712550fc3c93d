"""Volta's welfare clearing against an independent formulation.

For random books over random networks (seeded), `volta market clear
--mechanism welfare` and the same problem written here directly against
HiGHS (highspy: divisible steps, binary blocks, a balance row per node and
hour, two capacity-bounded flow columns per line and hour with their fee)
must find the same welfare within 1e-6 relative. Blocks make some books
MILPs; both solve them to optimality.

    python market_welfare.py --books 20 --seed 1
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import highspy


def book(rng: random.Random):
    nodes = [f"n{i}" for i in range(rng.randint(1, 5))]
    lines = []
    for i in range(1, len(nodes)):  # a random tree, sometimes a loop more
        lines.append((f"l{i}", nodes[rng.randrange(i)], nodes[i], rng.randint(1, 30), rng.choice([0, 0, 0.002, 0.01])))
    if len(nodes) > 2 and rng.random() < 0.5:
        lines.append(("loop", nodes[0], nodes[-1], rng.randint(1, 10), 0.0))
    hours = [f"2024-06-03T{10 + h:02d}:00:00Z" for h in range(rng.randint(1, 3))]
    rows = []
    oid = 1
    for _ in range(rng.randint(2, 30)):
        rows.append((oid, f"p{oid}", rng.choice(hours), rng.choice(nodes), rng.choice(["buy", "sell"]),
                     rng.randint(2, 40) / 100, rng.randint(1, 20), ""))
        oid += 1
    for b in range(rng.choice([0, 0, 1, 2, 3])):
        side, price, node = rng.choice(["buy", "sell"]), rng.randint(5, 30) / 100, rng.choice(nodes)
        for h in rng.sample(hours, rng.randint(1, len(hours))):
            rows.append((oid, f"block{b}", h, node, side, price, rng.randint(1, 10), f"b{b}"))
            oid += 1
    return nodes, lines, hours, rows


def write(directory: Path, nodes, lines, rows):
    orders = directory / "orders.csv"
    with orders.open("w") as f:
        f.write("id,participant,start,node,side,price,kwh,block\n")
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")
    network = directory / "network.toml"
    with network.open("w") as f:
        f.write("nodes = [" + ", ".join(f'"{n}"' for n in nodes) + "]\n")
        for lid, a, b, cap, fee in lines:
            f.write(f'\n[[lines]]\nid = "{lid}"\nfrom = "{a}"\nto = "{b}"\ncapacity_kwh = {cap}\nfee = "{fee}"\n')
    return orders, network


def volta_welfare(volta: str, orders: Path, network: Path) -> float:
    proc = subprocess.run([volta, "market", "clear", str(orders), "--mechanism", "welfare", "--network", str(network)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip())
    return float(proc.stdout.split()[1].rstrip(";"))


def highs_welfare(nodes, lines, hours, rows) -> float:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    balance = {(t, n): ([], []) for t in hours for n in nodes}
    sign = {"buy": -1.0, "sell": 1.0}
    col = 0
    blocks = {}
    for oid, who, t, n, side, price, kwh, block in rows:
        if block:
            blocks.setdefault(block, []).append((t, n, side, price, kwh))
            continue
        h.addVar(0.0, 1.0)
        h.changeColCost(col, sign[side] * price * kwh)
        balance[(t, n)][0].append(col)
        balance[(t, n)][1].append(sign[side] * kwh)
        col += 1
    for members in blocks.values():
        h.addVar(0.0, 1.0)
        h.changeColIntegrality(col, highspy.HighsVarType.kInteger)
        h.changeColCost(col, sum(sign[side] * price * kwh for _, _, side, price, kwh in members))
        for t, n, side, _, kwh in members:
            balance[(t, n)][0].append(col)
            balance[(t, n)][1].append(sign[side] * kwh)
        col += 1
    for t in hours:
        for _, a, b, cap, fee in lines:
            for direction in (1.0, -1.0):
                h.addVar(0.0, float(cap))
                h.changeColCost(col, fee)
                balance[(t, a)][0].append(col)
                balance[(t, a)][1].append(-direction)
                balance[(t, b)][0].append(col)
                balance[(t, b)][1].append(direction)
                col += 1
    for (t, n), (idx, val) in balance.items():
        if idx:
            h.addRow(0.0, 0.0, len(idx), idx, val)
    h.run()
    status = h.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"highs: {h.modelStatusToString(status)}")
    return -h.getInfo().objective_function_value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volta", default=os.environ.get("VOLTA_BIN", "volta"))
    parser.add_argument("--books", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rtol", type=float, default=1e-6)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.books):
            nodes, lines, hours, rows = book(rng)
            orders, network = write(Path(tmp), nodes, lines, rows)
            ours = volta_welfare(args.volta, orders, network)
            theirs = highs_welfare(nodes, lines, hours, rows)
            blocks = len({r[7] for r in rows if r[7]})
            ok = abs(ours - theirs) <= args.rtol * max(1.0, abs(theirs)) + 5e-7
            failures += not ok
            print(f"book {k:<3} {len(rows):>3} orders {blocks} blocks {len(nodes)} nodes {len(lines)} lines  "
                  f"{'agree' if ok else 'DIFFER'}  volta {ours:.6f}  highspy {theirs:.6f}")
    print(f"market: {args.books - failures} of {args.books} books agree")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
