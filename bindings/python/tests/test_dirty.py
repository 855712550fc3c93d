"""Dirty data from Python is cleaned exactly as the CLI cleans a file: the
same flags, the same policies, and the same errors naming rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

import volta
from _vic import COMMON, VIC

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def vic():
    return pd.read_csv(VIC)


def _bt(frame, **kw):
    return volta.backtest(frame, train_until="2014-11-30", model="linear", **COMMON, **kw)


def test_an_inf_and_a_spike_are_flagged_by_time_and_never_fitted(vic):
    clean = _bt(vic)
    dirty = vic.copy()
    dirty.loc[48 * 300 + 5, "demand_gw"] = math.inf       # training
    dirty.loc[48 * 340 + 20, "demand_gw"] = 1e12          # a test-period actual
    bt = _bt(dirty)
    flags = bt.flags()
    kinds = dict(zip(flags["kind"], flags["action"]))
    assert kinds["non_finite"] == "excluded" and kinds["outlier"] == "excluded"
    assert str(flags.loc[flags["kind"] == "non_finite", "time"].iloc[0]) == "2014-10-28 02:30:00+10:00"
    # The flagged actual is not scored, and the table says which one it was.
    assert bt.metrics["flagged"] == 1
    table = bt.to_pandas()
    assert table["flagged"].sum() == 1 and math.isnan(table.loc[table["flagged"], "actual"].iloc[0])
    assert abs(bt.metrics["mape"] - clean.metrics["mape"]) <= 0.02 * clean.metrics["mape"]
    # Kept, the spike is scored and ruins the score: the fault is real.
    kept = _bt(dirty, outliers="keep")
    assert kept.metrics["mape"] > 100 * clean.metrics["mape"]


def test_naive_local_times_follow_the_dst_policies(vic):
    # Three weeks of the series as a meter in Melbourne would write it, with
    # a row for the hour clocks skip on 5 October 2014.
    part = vic.iloc[48 * 270 : 48 * 290].copy()
    times = pd.to_datetime(part["period_start_aest_assumed"]).dt.tz_localize("Australia/Brisbane")
    part["period_start_aest_assumed"] = times.dt.tz_convert("Australia/Melbourne").dt.tz_localize(None)
    skipped = part.iloc[[0]].assign(period_start_aest_assumed=pd.Timestamp("2014-10-05 02:30"), demand_gw=0.0)
    part = pd.concat([part, skipped]).sort_values("period_start_aest_assumed", kind="stable")
    opts = {**COMMON, "timezone": "Australia/Melbourne"}
    with pytest.raises(volta.ForecastError, match="2014-10-05T02:30:00 does not exist in Australia/Melbourne"):
        volta.ForecastModel.train(part, model="naive_week", **opts)
    model = volta.ForecastModel.train(part, model="naive_week", nonexistent_times="drop", **opts)
    assert model.horizon == 48
    with pytest.raises(volta.ForecastError, match="nonexistent_times: 'later' is not one of raise, drop, shift_forward"):
        volta.ForecastModel.train(part, model="naive_week", nonexistent_times="later", **opts)


def test_conflicting_duplicates_name_both_rows_or_merge_by_choice(vic, tmp_path):
    dup = pd.concat([vic, vic.iloc[[1000]].assign(demand_gw=vic["demand_gw"].iloc[1000] + 1.0)], ignore_index=True)
    with pytest.raises(volta.ForecastError, match=r"rows 1001 and 17521 both give 2014-01-21T20:00:00\+10:00"):
        _bt(dup)
    bt = _bt(dup, duplicates="mean")
    merged = bt.flags().query("kind == 'duplicate'")
    assert len(merged) == 1 and merged["value"].iloc[0] == pytest.approx(vic["demand_gw"].iloc[1000] + 0.5)
    # A model keeps its cleaning: forecasting from the same data merges alike.
    model = volta.ForecastModel.train(dup, model="linear", duplicates="mean", **COMMON)
    model.save(tmp_path / "m.json")
    again = volta.ForecastModel.load(tmp_path / "m.json")
    forecast = again.forecast(dup, "2014-12-31T00:00").to_pandas()
    assert np.isfinite(forecast["point"]).all()


def test_an_all_zero_target_has_no_mape(vic):
    zeros = vic.assign(demand_gw=0.0)
    bt = volta.backtest(zeros, train_until="2014-11-30", model="naive_week", **COMMON)
    assert bt.metrics["mape"] is None  # undefined, never 0
    assert bt.metrics["mae"] == 0.0


def test_inspect_lists_what_a_backtest_would_exclude(vic):
    dirty = vic.copy()
    dirty.loc[48 * 300 + 5, "demand_gw"] = math.inf
    dirty.loc[48 * 200 : 48 * 200 + 11, "demand_gw"] = 4.2  # a stuck meter, 6 hours
    q = volta.inspect(dirty, target="demand_gw", time="period_start_aest_assumed", timezone="Australia/Brisbane")
    assert q.by_kind["non_finite"] == 1 and q.by_kind["flat_line"] == 12
    assert q.report["excluded"] == 13
    excluded = q.flags().query("action == 'excluded'")
    assert len(excluded) == 13
    assert str(excluded["time"].iloc[0].tz) == "Australia/Brisbane"
    assert "13 target steps excluded" in q.summary
    with pytest.raises(volta.ForecastError, match="outliers: 'remove' is not one of drop, clip, keep"):
        volta.inspect(dirty, target="demand_gw", time="period_start_aest_assumed", outliers="remove")
