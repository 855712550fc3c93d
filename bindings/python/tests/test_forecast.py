"""Forecasting from Python gives the numbers of the Rust core."""

from __future__ import annotations


import numpy as np
import pytest

import volta

from _vic import COMMON, VIC as DATA


@pytest.fixture(scope="module", params=["pandas", "polars"])
def frame(request):
    if request.param == "pandas":
        pd = pytest.importorskip("pandas")
        return pd.read_csv(DATA)
    pl = pytest.importorskip("polars")
    return pl.read_csv(DATA)


def test_weekly_naive_reproduces_the_protocol_baseline(frame):
    bt = volta.backtest(frame, train_until="2014-10-31", model="naive_week", **COMMON)
    assert bt.point.shape == (61, 48)
    assert bt.metrics["mape"] == pytest.approx(7.197, abs=0.01)
    assert bt.issues[0] == "2014-10-31T14:00:00+00:00"  # midnight AEST


def test_quantiles_come_out_ordered(frame):
    bt = volta.backtest(frame, train_until="2014-10-31", model="linear", quantiles=[0.1, 0.5, 0.9], **COMMON)
    assert bt.quantiles.shape == (61, 48, 3)
    assert np.all(np.diff(bt.quantiles, axis=2) >= 0)
    assert 0.6 < bt.metrics["intervals"][0]["observed"] < 0.95


def test_a_saved_model_forecasts_the_next_day(tmp_path, frame):
    model = volta.ForecastModel.train(
        frame, train_until="2014-12-30", model="linear", quantiles=[0.1, 0.9], **COMMON
    )
    path = tmp_path / "model.json"
    model.save(path)
    loaded = volta.ForecastModel.load(path, time="period_start_aest_assumed")
    f = loaded.forecast(frame, "2014-12-31T00:00")
    point, quantiles = f.point, f.quantiles
    again = model.forecast(frame, "2014-12-31T00:00").point
    assert point.shape == (48,) and quantiles.shape == (48, 2)
    np.testing.assert_array_equal(point, again)
    assert np.all(quantiles[:, 0] <= quantiles[:, 1])


def test_bad_input_raises_forecast_errors(frame):
    with pytest.raises(volta.ForecastError, match="demand_mw"):
        volta.backtest(frame, train_until="2014-10-31", **{**COMMON, "target": "demand_mw"})
    with pytest.raises(volta.ForecastError, match="horizons|horizon"):
        volta.backtest(frame, train_until="2014-10-31", **{**COMMON, "horizon": 0})
    with pytest.raises(volta.ForecastError, match="model"):
        volta.backtest(frame, train_until="2014-10-31", model="prophet", **COMMON)
    with pytest.raises(volta.ForecastError, match="calibrate_by"):
        volta.backtest(frame, train_until="2014-10-31", calibrate_by="humidity", **COMMON)
    with pytest.raises(volta.ForecastError, match="calibrate_by"):
        volta.backtest(
            frame, train_until="2014-10-31", quantiles=[0.1, 0.9], calibrate_by="temperature",
            **{**COMMON, "known_ahead": []},
        )
