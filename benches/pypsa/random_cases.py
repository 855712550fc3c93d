"""Random small multi-energy cases, as Volta case files (JSON).

Each case draws its own set of assets from the features both Volta and PyPSA
can state exactly (see volta_pypsa.py): electricity always, heat, cooling
and gas sometimes; fixed and curtailable loads; PV; a grid with time-of-use
prices, limits, exports and a peak-demand charge; thermal units under unit
commitment (min up/down times, start-up and shut-down costs, ramps, fuel
curves with a no-load intercept, any initial state); boilers, heat pumps with
a COP series, a CHP under commitment, chillers (an absorption chiller has two
inputs); batteries and heat stores with losses and free, cyclic or minimum
final states. A value of lost load on every bus keeps most cases feasible.
"""

from __future__ import annotations

import math
import random


def _profile(rng: random.Random, n: int, base: float, swing: float, noise: float, phase: float = 0.0) -> list[float]:
    out = []
    for t in range(n):
        hour = t % 24
        daily = math.sin(2 * math.pi * (hour - 6 + phase) / 24)
        out.append(round(max(0.0, base + swing * daily + rng.gauss(0, noise)), 3))
    return out


def _pv(rng: random.Random, n: int) -> list[float]:
    clouds = [rng.uniform(0.3, 1.0) for _ in range(n // 24 + 1)]
    out = []
    for t in range(n):
        hour = t % 24
        sun = max(0.0, math.sin(math.pi * (hour - 6) / 12)) if 6 <= hour <= 18 else 0.0
        out.append(round(min(1.0, sun * clouds[t // 24] * rng.uniform(0.8, 1.0)), 4))
    return out


def _commitment(rng: random.Random, min_power: float, capacity: float) -> dict:
    on = rng.random() < 0.4
    initial: dict = {"on": on, "hours_in_state": rng.randint(1, 6)}
    if on and rng.random() < 0.5:
        initial["power_kw"] = round(rng.uniform(min_power, capacity), 1)
    return {
        "min_up_h": rng.randint(1, 4),
        "min_down_h": rng.randint(1, 4),
        "start_cost": round(rng.uniform(0, 20), 2),
        "shutdown_cost": round(rng.choice([0, rng.uniform(0, 5)]), 2),
        "initial": initial,
    }


def _ramps(rng: random.Random, asset: dict, capacity: float) -> None:
    if rng.random() < 0.5:
        asset["ramp_up_kw_per_h"] = round(rng.uniform(0.3, 0.8) * capacity, 1)
        asset["ramp_down_kw_per_h"] = round(rng.uniform(0.3, 0.8) * capacity, 1)


def random_case(seed: int, steps: int = 24) -> dict:
    """One random case; the same seed gives the same case."""
    rng = random.Random(seed)
    n = steps
    buses = [{"id": "elec", "carrier": "electricity"}]
    assets: list[dict] = []
    peak = rng.uniform(60, 200)
    elec = _profile(rng, n, 0.7 * peak, 0.3 * peak, 0.05 * peak)
    load: dict = {"id": "elec_load", "type": "load", "bus": "elec", "demand_kw": elec}
    if rng.random() < 0.3:
        load["curtailable"] = {"value_of_lost_load": round(rng.uniform(0.5, 3), 2), "max_share": round(rng.uniform(0.1, 0.4), 2)}
    assets.append(load)

    price = [round(0.28 if 7 <= t % 24 < 22 else 0.12, 3) for t in range(n)]
    price = [round(p * rng.uniform(0.8, 1.2), 4) for p in price]
    grid: dict = {"id": "grid", "type": "grid", "bus": "elec", "import_price": price, "co2_kg_per_kwh": 0.8}
    if rng.random() < 0.5:
        grid["import_limit_kw"] = round(rng.uniform(0.6, 1.2) * peak, 1)
    if rng.random() < 0.5:
        grid["export_price"] = round(rng.uniform(0.0, 0.08), 3)
        grid["export_limit_kw"] = round(rng.uniform(10, 60), 1)
    if rng.random() < 0.5:
        grid["peak_demand_charge"] = round(rng.uniform(0.1, 2.0), 2)
    assets.append(grid)

    if rng.random() < 0.7:
        assets.append({
            "id": "pv", "type": "renewable", "bus": "elec",
            "capacity_kw": round(rng.uniform(0.2, 0.8) * peak, 1), "availability": _pv(rng, n),
            "curtailable": rng.random() < 0.8,
        })

    for k in range(rng.randint(0, 3)):
        cap = round(rng.uniform(0.2, 0.6) * peak, 1)
        pmin = round(rng.uniform(0.2, 0.5) * cap, 1)
        unit: dict = {"id": f"gen_{k}", "type": "thermal", "bus": "elec", "capacity_kw": cap,
                      "fuel_carrier": "gas", "fuel_price": round(rng.uniform(0.08, 0.14), 3)}
        if rng.random() < 0.6:
            unit["min_power_kw"] = pmin
            heat_rate = rng.uniform(2.2, 3.2)
            no_load = rng.uniform(0.05, 0.2) * cap
            unit["fuel_curve"] = [[pmin, round(no_load + heat_rate * pmin, 3)], [cap, round(no_load + heat_rate * cap, 3)]]
            unit["commitment"] = _commitment(rng, pmin, cap)
        else:
            unit["efficiency"] = round(rng.uniform(0.3, 0.42), 3)
        _ramps(rng, unit, cap)
        assets.append(unit)

    gas_needed = False
    if rng.random() < 0.7:
        buses.append({"id": "heat", "carrier": "heat"})
        hpeak = rng.uniform(40, 150)
        assets.append({"id": "heat_load", "type": "load", "bus": "heat",
                       "demand_kw": _profile(rng, n, 0.6 * hpeak, 0.3 * hpeak, 0.05 * hpeak, phase=12)})
        if rng.random() < 0.8:
            gas_needed = True
            assets.append({"id": "boiler", "type": "converter", "kind": "gas_boiler", "inputs": [{"bus": "gas"}],
                           "outputs": [{"bus": "heat", "efficiency": round(rng.uniform(0.85, 0.95), 3)}],
                           "capacity_kw": round(rng.uniform(0.5, 1.2) * hpeak, 1)})
        if rng.random() < 0.7:
            cop = [round(rng.uniform(2.5, 4.0), 3) for _ in range(n)]
            assets.append({"id": "heat_pump", "type": "converter", "kind": "heat_pump", "inputs": [{"bus": "elec"}],
                           "outputs": [{"bus": "heat", "efficiency": cop}],
                           "capacity_kw": round(rng.uniform(0.3, 0.8) * hpeak, 1)})
        if rng.random() < 0.6:
            gas_needed = True
            cap = round(rng.uniform(0.2, 0.5) * peak, 1)
            pmin = round(rng.uniform(0.3, 0.5) * cap, 1)
            chp = {"id": "chp", "type": "converter", "kind": "chp", "inputs": [{"bus": "gas"}],
                   "outputs": [{"bus": "elec", "efficiency": round(rng.uniform(0.3, 0.4), 3)},
                               {"bus": "heat", "efficiency": round(rng.uniform(0.4, 0.5), 3)}],
                   "capacity_kw": cap, "min_power_kw": pmin, "marginal_cost": round(rng.uniform(0, 0.01), 4),
                   "commitment": _commitment(rng, pmin, cap)}
            chp["commitment"]["initial"] = {"on": False, "hours_in_state": 10}
            _ramps(rng, chp, cap)
            assets.append(chp)
        if rng.random() < 0.5:
            assets.append({"id": "heat_store", "type": "storage", "bus": "heat",
                           "energy_capacity_kwh": round(rng.uniform(1, 3) * hpeak, 1),
                           "charge_power_kw": round(0.5 * hpeak, 1), "discharge_power_kw": round(0.5 * hpeak, 1),
                           "charge_efficiency": 0.98, "discharge_efficiency": 0.98,
                           "standing_loss_per_h": round(rng.uniform(0, 0.02), 4),
                           "initial_soc": round(rng.uniform(0.2, 0.8), 3),
                           "final_soc": rng.choice(["free", "cyclic", 0.3])})
        if rng.random() < 0.3:
            buses.append({"id": "cool", "carrier": "cooling"})
            cpeak = rng.uniform(20, 80)
            assets.append({"id": "cool_load", "type": "load", "bus": "cool", "demand_kw": _profile(rng, n, 0.5 * cpeak, 0.4 * cpeak, 0.05 * cpeak)})
            assets.append({"id": "chiller", "type": "converter", "kind": "electric_chiller", "inputs": [{"bus": "elec"}],
                           "outputs": [{"bus": "cool", "efficiency": round(rng.uniform(3, 5), 2)}],
                           "capacity_kw": round(0.7 * cpeak, 1)})
            assets.append({"id": "absorber", "type": "converter", "kind": "absorption_chiller",
                           "inputs": [{"bus": "heat"}, {"bus": "elec", "ratio": 0.02}],
                           "outputs": [{"bus": "cool", "efficiency": 0.7}], "capacity_kw": round(0.5 * cpeak, 1)})
    if gas_needed:
        buses.append({"id": "gas", "carrier": "gas"})
        assets.append({"id": "gas_supply", "type": "grid", "bus": "gas", "import_price": round(rng.uniform(0.04, 0.07), 4)})

    if rng.random() < 0.7:
        assets.append({"id": "battery", "type": "storage", "bus": "elec",
                       "energy_capacity_kwh": round(rng.uniform(0.5, 2) * peak, 1),
                       "charge_power_kw": round(rng.uniform(0.2, 0.5) * peak, 1),
                       "discharge_power_kw": round(rng.uniform(0.2, 0.5) * peak, 1),
                       "charge_efficiency": round(rng.uniform(0.9, 0.98), 3),
                       "discharge_efficiency": round(rng.uniform(0.9, 0.98), 3),
                       "standing_loss_per_h": round(rng.uniform(0, 0.002), 5),
                       "soc_min": 0.1, "soc_max": 0.95, "initial_soc": round(rng.uniform(0.2, 0.8), 3),
                       "final_soc": rng.choice(["free", "cyclic", 0.5]),
                       "cycle_cost": round(rng.uniform(0, 0.03), 4)})

    # Storage conventions, drawn from a stream of their own so that the
    # cases above stay what they were for earlier seeds.
    conventions = random.Random(seed * 7919 + 17)
    for asset in assets:
        if asset["type"] != "storage":
            continue
        if conventions.random() < 0.25:
            asset["final_soc"] = "periodic"
        elif conventions.random() < 0.3:
            asset["initial_loss"] = False
        if conventions.random() < 0.3:
            asset["power_side"] = "store"

    return {
        "name": f"random_{seed}",
        "description": f"random differential case, seed {seed}",
        "time": {"start": "2024-06-03T00:00", "timezone": "UTC", "step": "1h", "steps": n},
        "settings": {"value_of_lost_load": round(rng.uniform(2, 10), 2)},
        "buses": buses,
        "assets": assets,
    }
