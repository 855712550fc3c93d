"""Planning from Python gives the plan of the Rust core: a real forecast of
Victoria's demand drives a site's day-ahead plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import volta

from _vic import COMMON, VIC as DATA

SITE = str(Path(__file__).resolve().parents[3] / "datasets" / "cases" / "site_day.toml")


@pytest.fixture(scope="module")
def frame():
    pd = pytest.importorskip("pandas")
    return pd.read_csv(DATA)


@pytest.fixture(scope="module")
def model(frame):
    return volta.ForecastModel.train(frame, train_until="2014-11-11", model="linear", quantiles=[0.1, 0.5, 0.9], **COMMON)


def test_a_deterministic_plan_is_the_schedule_of_the_point_forecast(frame, model):
    made = volta.plan(SITE, {"site.demand_kw": (model, frame, 150.0)}, "2014-11-12T00:00")
    assert made.status == "optimal"
    point = made.forecasts["site.demand_kw"]["point"]
    assert point.shape == (24,)
    # Hourly means of the model's half-hourly forecast, scaled.
    raw = model.forecast(frame, "2014-11-12T00:00").point
    assert np.allclose(point, 150.0 * (raw[0::2] + raw[1::2]) / 2.0, rtol=1e-12)
    case = volta.Case.from_file(SITE).replace({"assets.site.demand_kw": point.tolist()})
    direct = volta.schedule(case, gap=1e-9)
    assert made.objective == pytest.approx(direct.cost, rel=1e-6)
    assert made.commitment["engine"].shape == (24,)


def test_a_stochastic_plan_reports_its_cost_distribution(frame, model):
    made = volta.plan(
        SITE, {"site.demand_kw": (model, frame, 150.0)}, "2014-11-12T00:00",
        scenarios=6, imbalance_penalty=0.1, cvar=(0.9, 0.3),
    )
    assert len(made.scenarios) == 6
    assert sum(s["probability"] for s in made.scenarios) == pytest.approx(1.0)
    assert made.cost_quantile(0.1) <= made.expected_cost <= made.cvar(0.9)
    with pytest.raises(volta.SolverError, match="alpha 1 outside"):
        made.cvar(1.0)
    assert made.nominations["grid"].shape == (24,)
    assert list(made.scenarios_frame().columns)[:3] == ["name", "probability", "cost"]


def test_progressive_hedging_brackets_the_extensive_plan(frame, model):
    args = (SITE, {"site.demand_kw": (model, frame, 150.0)}, "2014-11-12T00:00")
    extensive = volta.plan(*args, scenarios=6, imbalance_penalty=0.1, gap=0.0)
    hedged = volta.plan(*args, scenarios=6, imbalance_penalty=0.1, gap=0.0, hedging=30)
    assert extensive.hedging is None
    report = hedged.hedging
    assert report["iterations"] >= 1 and 0.0 <= report["gap"] < 1.0
    optimum = extensive.objective
    assert report["lower_bound"] <= optimum * (1 + 1e-7)
    assert report["upper_bound"] >= optimum * (1 - 1e-7)
    assert hedged.expected_cost == pytest.approx(report["upper_bound"], rel=1e-9)


def test_bad_forecasts_name_the_series(frame, model):
    with pytest.raises(volta.ForecastError, match="only a renewable has availability"):
        volta.plan(SITE, {"site.availability": (model, frame)}, "2014-11-12T00:00")
    # Issued inside the model's training data: it would plan a day it has seen.
    with pytest.raises(volta.ForecastError, match="would have seen the day it plans"):
        volta.plan(SITE, {"site.demand_kw": (model, frame)}, "2014-11-11T12:00")
    with pytest.raises(volta.ForecastError, match="expected \\(model, frame\\)"):
        volta.plan(SITE, {"site.demand_kw": (model,)}, "2014-11-12T00:00")
