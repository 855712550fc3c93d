"""The Python API against the same golden cases as the Rust tests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import volta

CASES = Path(__file__).resolve().parents[3] / "datasets" / "cases"


@pytest.fixture(scope="module")
def campus() -> volta.Case:
    return volta.Case.from_file(CASES / "campus.toml")


def test_kazarlis_reaches_the_published_optimum():
    # Kazarlis et al. (1996), 10 units, 24 h: best known 563,937.7. The MILP
    # takes the quadratic costs as 8 chords, slightly above the curves; the
    # schedule's exact cost is the published optimum (rounded to 0.1 $).
    case = volta.Case.from_file(CASES / "benchmarks" / "kazarlis10.toml")
    result = volta.schedule(case, gap=1e-6)
    assert result.status == "optimal"
    assert -1e-6 <= (result.objective - 563_937.7) / 563_937.7 <= 2e-5
    assert result.cost == pytest.approx(result.objective, rel=1e-9)
    assert result.exact_cost == pytest.approx(563_937.7, abs=0.05)
    assert result.exact_lower_bound <= 563_937.7 <= result.cost


def test_a_solver_strategy_is_used_reported_and_checked():
    case = volta.Case.from_file(CASES / "benchmarks" / "kazarlis10.toml")
    chosen = volta.schedule(case, gap=1e-6)
    assert set(chosen.strategy) == {"lp_method", "presolve", "heuristic_effort", "mip_start"}
    set_ = volta.schedule(
        case, gap=1e-6, lp_method="ipm", presolve=False, heuristic_effort=0.3, mip_start="rounding"
    )
    assert set_.strategy == {"lp_method": "ipm", "presolve": False, "heuristic_effort": 0.3, "mip_start": "rounding"}
    assert set_.objective == pytest.approx(chosen.objective, rel=1e-6)
    # The Kazarlis relaxation is 1 % below the optimum: nothing it proves at 1e-6.
    assert not set_.proven_by_relaxation and not chosen.proven_by_relaxation
    # A start the relaxation proves within a loose gap is the answer.
    loose = volta.schedule(case, gap=0.05, mip_start="rounding")
    assert loose.proven_by_relaxation and loose.best_bound <= chosen.objective <= loose.objective
    assert loose.objective <= 1.05 * chosen.objective
    with pytest.raises(volta.SolverError, match="mip_start"):
        volta.schedule(case, mip_start="lp")
    with pytest.raises(volta.SolverError, match="strategy.heuristic_effort"):
        volta.schedule(case, heuristic_effort=1.5)
    with pytest.raises(volta.SolverError, match="lp_method"):
        volta.schedule(case, lp_method="barrier")


def test_start_up_trajectories_and_start_cost_tiers_from_python():
    # Kazarlis 10 with trajectories on its slow units: off, a unit gives its
    # trajectory's output (unit_1: 50 and 100 MW before it is up).
    case = volta.Case.from_file(CASES / "benchmarks" / "kazarlis10-trajectories.toml")
    result = volta.schedule(case)
    assert result.status in ("optimal", "within_gap")
    on_trajectory = [
        unit
        for unit, on in result.commitment.items()
        if np.any((~on) & (result.flows[f"{unit}:system"] > 1.0))
    ]
    assert on_trajectory, "some unit passes through a start-up or shut-down"
    # A start priced by its tier: one dear hour served from 3 h off (warm).
    doc = {
        "name": "tiers",
        "time": {"start": "2024-01-01T00:00", "timezone": "UTC", "step": "1h", "steps": 1},
        "buses": [{"id": "elec", "carrier": "electricity"}],
        "assets": [
            {"id": "site", "type": "load", "bus": "elec", "demand_kw": 100},
            {"id": "utility", "type": "grid", "bus": "elec", "import_price": 10},
            {
                "id": "genset", "type": "thermal", "bus": "elec", "capacity_kw": 100, "min_power_kw": 50,
                "efficiency": 0.5, "fuel_carrier": "gas", "fuel_price": 0.1,
                "commitment": {
                    "start_cost": 5,
                    "start_costs_by_hours_off": [[2, 20], [6, 50]],
                    "initial": {"on": False, "hours_in_state": 3},
                },
            },
        ],
    }
    assert volta.schedule(volta.Case.from_dict(doc)).cost == pytest.approx(40.0)
    doc["assets"][2]["commitment"]["start_costs_by_hours_off"] = [[6, 50], [2, 20]]
    with pytest.raises(volta.CaseError) as err:
        volta.Case.from_dict(doc)
    assert any("start_costs_by_hours_off" in path for path, _ in err.value.problems)


def test_identical_units_as_a_fleet_or_apart_reach_one_optimum():
    # Kazarlis 20: two copies of each unit. Each unit has its own schedule
    # either way.
    case = volta.Case.from_file(CASES / "benchmarks" / "kazarlis20.toml")
    fleet = volta.schedule(case, gap=1e-5)
    apart = volta.schedule(case, gap=1e-5, separate_units=True)
    assert fleet.cost == pytest.approx(apart.cost, rel=3e-5)
    assert set(fleet.commitment) == set(apart.commitment)
    assert "unit_20" in fleet.commitment


def test_campus_balances_every_bus_at_every_step(campus):
    result = volta.schedule(campus)
    assert result.status == "optimal"
    assert len(result.times) == 168
    assert result.cost == pytest.approx(result.objective, rel=1e-6)
    assert sum(result.cost_by_category.values()) == pytest.approx(result.cost, rel=1e-9)
    buses = {key.split(":")[1] for key in result.flows}
    for bus in buses:
        net = sum(v for k, v in result.flows.items() if k.endswith(f":{bus}")) + result.unserved_kw[bus]
        assert np.abs(net).max() < 1e-5, bus
    assert set(result.prices) == buses
    assert result.commitment["chp"].dtype == bool
    frame = result.to_pandas()
    assert frame.shape == (168, len(result.flows))
    assert result.to_polars("storage_kwh").columns[0] == "time"


def test_objectives_trade_cost_against_co2(campus):
    cheap = volta.schedule(campus)
    clean = volta.schedule(campus, objective="co2")
    assert clean.co2_kg < cheap.co2_kg and clean.cost > cheap.cost
    mid = volta.schedule(campus, objective="weighted", co2_price=0.05)
    assert clean.co2_kg - 1e-6 <= mid.co2_kg <= cheap.co2_kg + 1e-6


def test_an_invalid_case_lists_every_problem_with_its_path():
    with pytest.raises(volta.CaseError) as err:
        volta.Case.from_file(CASES / "invalid" / "structure.toml")
    paths = [path for path, _ in err.value.problems]
    assert "assets.turbine.type" in paths and "assets.battery.energy_capacity_kwh" in paths
    assert isinstance(err.value, volta.VoltaError)


def test_infeasibility_is_a_status_with_an_explanation():
    result = volta.schedule(volta.Case.from_file(CASES / "infeasible" / "short_heat.toml"))
    assert result.status == "infeasible"
    assert "heat bus" in result.infeasibility and "short by" in result.infeasibility
    assert result.flows == {}


def test_bad_options_raise_solver_errors(campus):
    with pytest.raises(volta.SolverError, match="objective"):
        volta.schedule(campus, objective="money")
    with pytest.raises(volta.SolverError, match="mip_gap"):
        volta.schedule(campus, gap=2.0)
    # One rule in every front door: weighted needs a price, co2 takes none.
    with pytest.raises(volta.SolverError, match="^co2_price: the weighted objective needs a CO2 price"):
        volta.schedule(campus, objective="weighted")
    with pytest.raises(volta.SolverError, match="^co2_price: a CO2 price goes with"):
        volta.schedule(campus, objective="co2", co2_price=0.1)


def test_cases_round_trip_through_dicts_with_any_series_type(campus):
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    document = campus.to_dict()
    assert volta.Case.from_dict(document).to_dict() == document
    load = next(a for a in document["assets"] if a["id"] == "campus_electric")
    for series in (np.asarray(load["demand_kw"]), pd.Series(load["demand_kw"]), pl.Series(load["demand_kw"])):
        load["demand_kw"] = series
        assert volta.Case.from_dict(document).summary == campus.summary


def test_schedules_in_a_thread_pool_agree(campus):
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: volta.schedule(campus, gap=1e-4, threads=1), range(2)))
    assert results[0].objective == pytest.approx(results[1].objective, rel=1e-4)


def test_pareto_and_rolling_horizon(campus):
    front = volta.pareto(campus, n=3, gap=1e-3)
    assert len(front) >= 2
    assert front[0]["cost"] <= front[-1]["cost"] and front[0]["co2_kg"] >= front[-1]["co2_kg"]
    rolled = volta.rolling_horizon(campus, horizon_steps=48, commit_steps=24, gap=1e-3)
    assert rolled.status in ("optimal", "within_gap")
    assert len(rolled.times) == 168
    # Without commit_steps, half the window is kept, as in the CLI and gRPC.
    default = volta.rolling_horizon(campus, horizon_steps=48, gap=1e-3)
    assert default.cost == pytest.approx(rolled.cost, rel=1e-9)
    # Windows started from scratch find the same plan to within the gap.
    cold = volta.rolling_horizon(campus, horizon_steps=48, gap=1e-3, warm_start=False)
    assert cold.cost == pytest.approx(rolled.cost, rel=2e-3)
    # Seven windows; the six after the first start from the one before (the
    # first counts too when the relaxation proves its own rounding), and
    # those whose start the relaxation proves within the gap skip the MIP.
    warm = rolled.rolling["warm_started_windows"]
    assert rolled.rolling["windows"] == 7 and warm in (6, 7)
    assert 0 < rolled.rolling["proven_by_relaxation_windows"] <= warm
    # Cold windows check their own rounded relaxation: the start counts where it is the answer.
    assert cold.rolling["warm_started_windows"] == cold.rolling["proven_by_relaxation_windows"]
    # The whole week's LP relaxation bounds the stitched plan from below.
    bounded = volta.rolling_horizon(campus, horizon_steps=48, gap=1e-3, lower_bound=True)
    assert bounded.best_bound < bounded.cost
    assert bounded.gap == pytest.approx((bounded.cost - bounded.best_bound) / bounded.cost, rel=1e-9)
    assert bounded.gap < 0.05
    assert rolled.best_bound is None


def test_a_week_in_blocks(campus):
    blocks = volta.decompose(campus, blocks=3)
    assert blocks.status in ("optimal", "within_gap")
    assert len(blocks.times) == 168
    # The relaxation bounds the stitched week; the week solved whole sits between.
    whole = volta.schedule(campus, gap=1e-6)
    assert blocks.best_bound <= whole.cost <= blocks.cost <= 1.015 * whole.cost
    assert blocks.gap == pytest.approx((blocks.cost - blocks.best_bound) / blocks.cost, rel=1e-9)
    with pytest.raises(volta.SolverError, match="use at most 3"):
        volta.decompose(campus, blocks=4)
    with pytest.raises(volta.SolverError, match="longest minimum up or down time"):
        volta.decompose(campus, blocks=2, seam_steps=2)


def test_cases_and_results_pickle_for_worker_pools(campus):
    import pickle

    again = pickle.loads(pickle.dumps(campus))
    assert again.to_dict() == campus.to_dict()
    result = volta.schedule(volta.Case.from_file(CASES / "benchmarks" / "kazarlis10.toml"), gap=1e-4)
    copy = pickle.loads(pickle.dumps(result))
    assert copy.objective == result.objective
    np.testing.assert_array_equal(copy.flows["unit_1:system"], result.flows["unit_1:system"])


def test_ctrl_c_interrupts_a_long_solve():
    import os
    import signal
    import threading

    import time

    # A process started in the background by a non-interactive shell (as CI
    # may be) inherits SIGINT ignored, and Python then installs no handler:
    # give it Python's own for this test, which is about Volta's polling.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    sent = []
    timer = threading.Timer(0.3, lambda: (sent.append(time.monotonic()), os.kill(os.getpid(), signal.SIGINT)))
    start = time.monotonic()
    timer.start()
    try:
        # Kazarlis 40 to a zero gap: far longer than the 0.3 s to the signal.
        volta.schedule(volta.Case.from_file(CASES / "benchmarks" / "kazarlis40.toml"), gap=0.0)
    except KeyboardInterrupt:
        # Within a few polls of the signal, not at the end of the solve.
        assert time.monotonic() - sent[0] < 2.0
    else:
        when = f"{sent[0] - start:.2f} s" if sent else "never"
        pytest.fail(f"the solve ran to its end ({time.monotonic() - start:.2f} s); SIGINT sent at {when}")
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)


def test_write_model_gives_the_lp_that_schedule_solves(tmp_path):
    campus = Path(__file__).resolve().parents[3] / "datasets" / "cases" / "campus.toml"
    lp = tmp_path / "campus.lp"
    volta.write_model(campus, lp)
    text = lp.read_text()
    assert text.startswith('\\ Volta dispatch model of case "campus"')
    assert "utility.import(0)" in text and "elec.balance(167)" in text and text.rstrip().endswith("End")
    mps = tmp_path / "campus.mps"
    volta.write_model(campus, mps)
    text = mps.read_text()
    assert "NAME volta" in text and " N obj" in text and text.rstrip().endswith("ENDATA")
    with pytest.raises(volta.VoltaError, match="name the file"):
        volta.write_model(campus, tmp_path / "campus.txt")
