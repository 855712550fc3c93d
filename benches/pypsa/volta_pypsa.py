"""Translate a Volta case into an equivalent PyPSA network.

The input is a *resolved* case: the JSON that `volta validate --export`
writes, with every series inline and every default spelled out. The output
is a `pypsa.Network` whose optimal objective equals Volta's cost objective
for the same case, so that the two tools can be compared number for number.

Mapping (Volta -> PyPSA), per time step of `h` hours:

- bus                  -> Bus; with a value of lost load, a "lost load"
                          Generator at that price on every bus.
- load                 -> Load (p_set = demand); a curtailable load adds a
                          Generator at its own value of lost load, limited to
                          `max_share` of the demand.
- renewable            -> Generator (p_max_pu = availability; p_min_pu too
                          when it must be taken).
- grid                 -> an import Generator and an export Generator
                          (p_min_pu = -1, p_max_pu = 0, marginal cost = the
                          export price, so exports earn). A peak-demand
                          charge makes the import capacity extendable at a
                          capital cost equal to the charge: PyPSA then prices
                          the highest import exactly as Volta does.
- thermal unit         -> Generator; fuel cost folded into the marginal cost
                          (fuel price x heat rate) and, for a fuel curve with
                          an intercept, the stand-by cost (price x intercept).
                          Fuel drawn from a bus makes it a Link instead.
- converter            -> Link with bus0 = first input, one further port per
                          output (positive efficiency) and per extra input
                          (negative efficiency).
- storage              -> a Store on its own bus with a charging and a
                          discharging Link; the final state is imposed by the
                          Store's energy bounds at the last snapshot, and a
                          periodic one is a cyclic Store. PyPSA applies no
                          standing loss to `e_initial` in the first snapshot,
                          so e_initial is the initial level after one step's
                          loss (unless initial_loss is false). Limits at the
                          store (power_side) set the links' p_nom on their
                          store side.
- unit commitment      -> committable=True, start-up and shut-down costs,
                          min up/down times, up/down_time_before and p_init
                          from the initial state, ramp limits including the
                          start-up and shut-down allowances.

Anything PyPSA cannot state the same way raises `Unsupported` naming the
field, so that a comparison is never made between two different models:
cold-start costs, fuel curves with more than one segment, shiftable loads,
spinning-reserve requirements, `no_simultaneous` storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pypsa


class Unsupported(Exception):
    """A case feature with no exact PyPSA counterpart."""


@dataclass
class Grid:
    snapshots: pd.Index
    h: float

    @property
    def n(self) -> int:
        return len(self.snapshots)


def steps_covering(hours: float, h: float) -> int:
    """Volta's rule: the number of steps that cover `hours`."""
    return math.ceil(hours / h - 1e-9) if hours > 0 else 0


def series(value, n: int) -> np.ndarray:
    """A profile (a number or an inline list) as an array of length n."""
    if isinstance(value, (int, float)):
        return np.full(n, float(value))
    if isinstance(value, list):
        if len(value) != n:
            raise ValueError(f"series of length {len(value)}, expected {n}")
        return np.asarray(value, dtype=float)
    raise Unsupported(f"profile {value!r} is not inline: export the case with `volta validate --export`")


def time_grid(case: dict) -> Grid:
    time = case["time"]
    step = time["step"]
    units = {"min": 1 / 60, "h": 1.0}
    for suffix, scale in units.items():
        if step.endswith(suffix) and step[: -len(suffix)].replace(".", "").isdigit():
            h = float(step[: -len(suffix)]) * scale
            break
    else:
        raise Unsupported(f"time.step {step!r}")
    n = None
    for asset in case["assets"]:
        for key in ("demand_kw", "availability", "import_price"):
            if isinstance(asset.get(key), list):
                n = len(asset[key])
                break
        if n:
            break
    if n is None:
        if "steps" in time:
            n = int(time["steps"])
        elif "days" in time:
            n = int(round(time["days"] * 24 / h))
        else:
            raise Unsupported("time grid without inline series, steps or days")
    return Grid(pd.RangeIndex(n, name="snapshot"), h)


def to_network(case: dict) -> pypsa.Network:
    """The PyPSA network of a resolved Volta case."""
    if case.get("reserves"):
        raise Unsupported("reserves: PyPSA has no spinning-reserve constraint")
    grid = time_grid(case)
    n, h = grid.n, grid.h
    net = pypsa.Network()
    net.set_snapshots(grid.snapshots)
    net.snapshot_weightings.loc[:, :] = h
    net.add("Carrier", "AC")

    for bus in case["buses"]:
        net.add("Bus", bus["id"], carrier="AC")
    voll = (case.get("settings") or {}).get("value_of_lost_load")
    if voll is not None:
        for bus in case["buses"]:
            net.add("Generator", f"{bus['id']}:lost_load", bus=bus["id"], p_nom_extendable=True,
                    marginal_cost=float(voll))

    for asset in case["assets"]:
        kind = asset["type"]
        add = {
            "load": _load,
            "renewable": _renewable,
            "grid": _grid,
            "thermal": _thermal,
            "converter": _converter,
            "storage": _storage,
        }.get(kind)
        if add is None:
            raise Unsupported(f"assets.{asset['id']}: type {kind!r}")
        add(net, asset, n, h)
    return net


def _load(net, a, n, h):
    if a.get("shiftable"):
        raise Unsupported(f"assets.{a['id']}.shiftable")
    demand = series(a["demand_kw"], n)
    net.add("Load", a["id"], bus=a["bus"], p_set=demand)
    cut = a.get("curtailable")
    if cut:
        limit = demand * cut["max_share"]
        peak = float(limit.max())
        if peak > 0:
            net.add("Generator", f"{a['id']}:shed", bus=a["bus"], p_nom=peak,
                    p_max_pu=limit / peak, marginal_cost=series(cut["value_of_lost_load"], n))


def _renewable(net, a, n, h):
    avail = series(a["availability"], n)
    cap = float(a["capacity_kw"])
    net.add("Generator", a["id"], bus=a["bus"], p_nom=cap, p_max_pu=avail,
            p_min_pu=avail if not a.get("curtailable", True) else 0.0,
            marginal_cost=series(a.get("marginal_cost", 0.0), n))


def _grid(net, a, n, h):
    price = series(a["import_price"], n)
    limit = a.get("import_limit_kw")
    charge = float(a.get("peak_demand_charge", 0.0))
    if charge > 0:
        if isinstance(limit, list) and len(set(limit)) > 1:
            raise Unsupported(f"assets.{a['id']}: a peak-demand charge with a time-varying import limit")
        cap = math.inf if limit is None else float(series(limit, n)[0])
        net.add("Generator", f"{a['id']}:import", bus=a["bus"], p_nom_extendable=True, p_nom_max=cap,
                capital_cost=charge, marginal_cost=price)
    elif limit is None:
        net.add("Generator", f"{a['id']}:import", bus=a["bus"], p_nom_extendable=True, marginal_cost=price)
    else:
        lim = series(limit, n)
        top = float(lim.max())
        if top > 0:
            net.add("Generator", f"{a['id']}:import", bus=a["bus"], p_nom=top, p_max_pu=lim / top,
                    marginal_cost=price)
    export = series(a.get("export_limit_kw", 0.0), n)
    top = float(export.max())
    if top > 0:
        net.add("Generator", f"{a['id']}:export", bus=a["bus"], p_nom=top, p_min_pu=-export / top,
                p_max_pu=0.0, marginal_cost=series(a.get("export_price", 0.0), n))


def _commitment(a, p_nom, min_power, h, scale):
    """PyPSA unit-commitment attributes; `scale` turns rated kW into the
    component's own per-unit of `p_nom` (p_init is absolute, not per unit)."""
    uc = a.get("commitment")
    if not uc:
        ramps = {}
        if a.get("ramp_up_kw_per_h") is not None:
            ramps["ramp_limit_up"] = a["ramp_up_kw_per_h"] * h * scale
        if a.get("ramp_down_kw_per_h") is not None:
            ramps["ramp_limit_down"] = a["ramp_down_kw_per_h"] * h * scale
        return ramps
    cold = uc.get("cold_start_cost")
    if cold is not None and uc.get("cold_start_after_h") is not None and cold > uc["start_cost"]:
        raise Unsupported(f"assets.{a['id']}.commitment.cold_start_cost: PyPSA has one start-up cost")
    init = uc.get("initial") or {}
    on = bool(init.get("on", False))
    hours = init.get("hours_in_state")
    before = 10**6 if hours is None else steps_covering(hours, h) if hours > 0 else 0
    attrs = {
        "committable": True,
        "p_min_pu": min_power * scale,
        "start_up_cost": uc.get("start_cost", 0.0),
        "shut_down_cost": uc.get("shutdown_cost", 0.0),
        "min_up_time": steps_covering(uc.get("min_up_h", 0.0), h),
        "min_down_time": steps_covering(uc.get("min_down_h", 0.0), h),
        "up_time_before": before if on else 0,
        "down_time_before": 0 if on else before,
    }
    if on:
        power0 = init.get("power_kw")
        attrs["p_init"] = (min_power if power0 is None else power0) * scale * p_nom
    ru, rd = a.get("ramp_up_kw_per_h"), a.get("ramp_down_kw_per_h")
    if ru is not None:
        attrs["ramp_limit_up"] = ru * h * scale
        attrs["ramp_limit_start_up"] = max(min_power, ru * h) * scale
    if rd is not None:
        attrs["ramp_limit_down"] = rd * h * scale
        attrs["ramp_limit_shut_down"] = max(min_power, rd * h) * scale
    return attrs


def _fuel_line(a):
    """(slope, intercept) of fuel against output, or None without fuel."""
    if a.get("fuel_curve"):
        pts = [p for p in a["fuel_curve"]]
        slopes = {round((q[1] - p[1]) / (q[0] - p[0]), 12) for p, q in zip(pts, pts[1:]) if q[0] > p[0]}
        if len(slopes) > 1:
            raise Unsupported(f"assets.{a['id']}.fuel_curve: {len(slopes)} segments")
        (slope,) = slopes
        return slope, pts[0][1] - slope * pts[0][0]
    if a.get("efficiency") is not None:
        return 1.0 / a["efficiency"], 0.0
    return None


def _thermal(net, a, n, h):
    cap = float(a["capacity_kw"])
    min_power = float(a.get("min_power_kw", 0.0)) if a.get("commitment") else 0.0
    mc = series(a.get("marginal_cost", 0.0), n)
    line = _fuel_line(a)
    if a.get("fuel_bus"):
        if line is None or line[1] != 0.0:
            raise Unsupported(f"assets.{a['id']}: fuel from a bus with a fuel curve intercept")
        eff = 1.0 / line[0]
        # The link's p0 is the fuel: per-unit limits are unchanged, absolute
        # ones (p_nom, p_init, costs per kWh) scale to the fuel.
        attrs = _commitment(a, cap / eff, min_power, h, 1.0 / cap)
        net.add("Link", a["id"], bus0=a["fuel_bus"], bus1=a["bus"], efficiency=eff, p_nom=cap / eff,
                marginal_cost=mc * eff, **attrs)
        return
    attrs = _commitment(a, cap, min_power, h, 1.0 / cap)
    if line is not None:
        slope, intercept = line
        price = series(a.get("fuel_price", 0.0), n)
        mc = mc + price * slope
        if intercept != 0.0:
            if not a.get("commitment"):
                raise Unsupported(f"assets.{a['id']}.fuel_curve: an intercept needs commitment")
            attrs["stand_by_cost"] = price * intercept
    net.add("Generator", a["id"], bus=a["bus"], p_nom=cap, marginal_cost=mc, **attrs)


def _converter(net, a, n, h):
    inputs, outputs = a["inputs"], a["outputs"]
    r0 = float(inputs[0].get("ratio", 1.0))
    effs = [series(o["efficiency"], n) for o in outputs]
    cap = float(a["capacity_kw"])
    # Bounds on p0 = r0·x from the rating of x (Volta rates x or eff0·x).
    rated_at_output = a.get("rated_at", "output") == "output"
    per_p0 = effs[0] / r0 if rated_at_output else np.full(n, 1.0 / r0)  # rated kW per kW of p0
    upper = cap / per_p0
    p_nom = float(upper.max())
    commitment = a.get("commitment")
    min_power = float(a.get("min_power_kw", 0.0)) if commitment else 0.0
    varying = len(set(per_p0.round(12))) > 1
    if varying and (commitment or a.get("ramp_up_kw_per_h") is not None or a.get("ramp_down_kw_per_h") is not None):
        raise Unsupported(f"assets.{a['id']}: ramps or commitment with a time-varying rated efficiency")
    scale = 1.0 / (float(per_p0[0]) * p_nom)
    attrs = _commitment(a, p_nom, min_power, h, scale)
    if varying:
        attrs["p_max_pu"] = upper / p_nom
    ports = {}
    k = 1
    for o, eff in zip(outputs, effs):
        suffix = "" if k == 1 else str(k)
        ports[f"bus{k}"] = o["bus"]
        ports[f"efficiency{suffix}"] = eff / r0
        k += 1
    for i in inputs[1:]:
        ports[f"bus{k}"] = i["bus"]
        ports[f"efficiency{k}"] = -float(i.get("ratio", 1.0)) / r0
        k += 1
    mc = series(a.get("marginal_cost", 0.0), n) / r0
    net.add("Link", a["id"], bus0=inputs[0]["bus"], p_nom=p_nom, marginal_cost=mc, **ports, **attrs)


def _storage(net, a, n, h):
    if a.get("no_simultaneous"):
        raise Unsupported(f"assets.{a['id']}.no_simultaneous")
    sid, cap = a["id"], float(a["energy_capacity_kwh"])
    store_bus = f"{sid}:energy"
    net.add("Bus", store_bus, carrier="AC")
    e_min = np.full(n, float(a.get("soc_min", 0.0)))
    e_max = np.full(n, float(a.get("soc_max", 1.0)))
    final = a.get("final_soc", "free")
    initial = float(a.get("initial_soc", 0.5))
    initial_loss = a.get("initial_loss", True)
    cyclic = final == "periodic"
    if final == "cyclic":
        e_min[-1] = e_max[-1] = initial
    elif isinstance(final, (int, float)):
        e_min[-1] = max(e_min[-1], float(final))
    elif cyclic and not initial_loss:
        # PyPSA's cyclic store loses the standing loss from the last level
        # to the first; a start exempt from it has no PyPSA form.
        raise Unsupported(f"assets.{sid}.initial_loss false with final_soc 'periodic'")
    elif final not in ("free", "periodic"):
        raise Unsupported(f"assets.{sid}.final_soc {final!r}")
    loss = float(a.get("standing_loss_per_h", 0.0))
    # Volta's first step loses energy on the initial level like any other
    # step (unless initial_loss is false); PyPSA applies no standing loss to
    # e_initial, so pass the level after that step's loss. A periodic store
    # is PyPSA's cyclic one (e_initial unused).
    e_initial = initial * cap * ((1 - loss) ** h if initial_loss else 1.0)
    start = {"e_cyclic": True} if cyclic else {"e_initial": e_initial}
    net.add("Store", sid, bus=store_bus, e_nom=cap, e_min_pu=e_min, e_max_pu=e_max, standing_loss=loss, **start)
    eta_c = float(a.get("charge_efficiency", 1.0))
    eta_d = float(a.get("discharge_efficiency", 1.0))
    # The links' p_nom is on their bus0: the site bus for charging, the store
    # for discharging. Volta's limits are at the bus, or with power_side
    # "store" at the store.
    at_store = a.get("power_side", "bus") == "store"
    charge_nom = float(a["charge_power_kw"]) / (eta_c if at_store else 1.0)
    discharge_nom = float(a["discharge_power_kw"]) / (1.0 if at_store else eta_d)
    net.add("Link", f"{sid}:charge", bus0=a["bus"], bus1=store_bus, efficiency=eta_c, p_nom=charge_nom)
    net.add("Link", f"{sid}:discharge", bus0=store_bus, bus1=a["bus"], efficiency=eta_d,
            p_nom=discharge_nom, marginal_cost=float(a.get("cycle_cost", 0.0)) * eta_d)


def solve(net: pypsa.Network, threads: int = 1, gap: float = 0.0,
          time_limit: float | None = None) -> tuple[str, float | None]:
    """Solve with HiGHS to `gap` (zero by default); returns (status, objective)."""
    options = {"mip_rel_gap": gap, "output_flag": False, "threads": threads}
    if time_limit is not None:
        options["time_limit"] = time_limit
    status, condition = net.optimize(
        solver_name="highs",
        include_objective_constant=False,
        solver_options=options,
        log_to_console=False,
        progress=False,
    )
    if status != "ok":
        return str(condition), None
    return "optimal", float(net.objective)
