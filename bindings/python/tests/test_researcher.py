"""What a researcher meets first: labelled results, honest errors at the
edges, and a case schema to discover from Python. Each test pins a defect
that was found by using the package as a PyPSA or skforecast user would."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

import volta
from _vic import COMMON, VIC

ROOT = Path(__file__).resolve().parents[3]
CASES = ROOT / "datasets" / "cases"
MELBOURNE = ZoneInfo("Australia/Melbourne")


@pytest.fixture(scope="module")
def campus() -> volta.Case:
    return volta.Case.from_file(CASES / "campus.toml")


@pytest.fixture(scope="module")
def plan(campus) -> volta.Schedule:
    return volta.schedule(campus, gap=1e-4)


@pytest.fixture(scope="module")
def vic():
    pd = pytest.importorskip("pandas")
    return pd.read_csv(VIC)


def _load(document: dict) -> dict:
    return next(a for a in document["assets"] if a["id"] == "campus_electric")


# ---- schedules ----------------------------------------------------------------------


def test_schedule_tables_are_in_the_case_time_zone(plan):
    frame = plan.to_pandas()
    assert str(frame.index.tz) == "Australia/Melbourne"
    # The campus week starts at local midnight (AEDT), not at 13:00 UTC.
    assert frame.index[0] == dt.datetime(2014, 11, 3, tzinfo=MELBOURNE)
    assert frame.index[0].hour == 0
    polars = plan.to_polars("prices")
    assert polars["time"].dtype.time_zone == "Australia/Melbourne"
    assert polars["time"][0].hour == 0


def test_to_pandas_refuses_what_is_not_a_time_series(plan):
    with pytest.raises(ValueError, match="cost_table"):
        plan.to_pandas("cost_by_category")
    with pytest.raises(ValueError, match="flows, storage_kwh"):
        plan.to_polars("status")


def test_the_cost_table_adds_up_to_the_cost_once(plan):
    table = plan.cost_table()
    assert list(table.columns) == ["asset", "category", "amount"]
    assert table["amount"].sum() == pytest.approx(plan.cost, rel=1e-9)
    by_category = table.groupby("category")["amount"].sum()
    for category, amount in plan.cost_by_category.items():
        assert by_category[category] == pytest.approx(amount, rel=1e-9, abs=1e-9)


def test_plot_draws_a_bus_and_names_the_buses_when_asked_for_another(plan, tmp_path):
    import matplotlib  # a test requirement: the plot is checked, never skipped
    matplotlib.use("Agg")
    ax = plan.plot("elec")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "utility" in labels and "pv_roofs" in labels
    ax.figure.savefig(tmp_path / "elec.png")
    assert (tmp_path / "elec.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="the buses are"):
        plan.plot("steam")


def test_schedule_takes_a_path_or_a_dict(campus):
    by_path = volta.schedule(str(CASES / "benchmarks" / "kazarlis10.toml"), gap=1e-4)
    assert by_path.status in ("optimal", "within_gap")
    with pytest.raises(TypeError, match="a case file's path or a case dict"):
        volta.schedule(42)
    with pytest.raises(volta.CaseError):
        volta.schedule(str(CASES / "no_such_case.toml"))


def test_a_co2_price_with_the_cost_objective_prices_emissions(campus):
    cheap = volta.schedule(campus, gap=1e-6)
    priced = volta.schedule(campus, co2_price=0.5, gap=1e-6)
    weighted = volta.schedule(campus, objective="weighted", co2_price=0.5, gap=1e-6)
    # Not ignored: the price moves the plan towards less CO2, as weighted does.
    assert priced.co2_kg < cheap.co2_kg
    assert priced.objective == pytest.approx(weighted.objective, rel=1e-6)
    assert priced.objective == pytest.approx(priced.cost + 0.5 * priced.co2_kg, rel=1e-6)


# ---- cases from Python values --------------------------------------------------------


def test_nan_and_infinity_are_reported_with_path_and_index(campus):
    document = campus.to_dict()
    demand = np.array(_load(document)["demand_kw"], dtype=float)
    demand[[5, 17]] = [math.nan, math.inf]
    _load(document)["demand_kw"] = demand
    next(a for a in document["assets"] if a["id"] == "utility")["import_price"] = float("nan")
    with pytest.raises(volta.CaseError) as err:
        volta.Case.from_dict(document)
    problems = dict(err.value.problems)
    assert "assets.campus_electric.demand_kw[5]" in problems, problems
    assert "index 5, 17" in problems["assets.campus_electric.demand_kw[5]"]
    assert "assets.utility.import_price" in problems
    assert "JSON" not in str(err.value)


def test_datetimes_and_timedeltas_are_accepted_where_text_is(campus):
    pd = pytest.importorskip("pandas")
    document = campus.to_dict()
    document["time"]["start"] = pd.Timestamp("2014-11-03 00:00")
    document["time"]["step"] = dt.timedelta(hours=1)
    assert volta.Case.from_dict(document).summary == campus.summary
    document["time"]["start"] = dt.datetime(2014, 11, 3, tzinfo=MELBOURNE)
    assert volta.Case.from_dict(document).summary == campus.summary
    document["time"]["start"] = np.datetime64("2014-11-03T00:00")
    assert volta.Case.from_dict(document).summary == campus.summary


def test_a_time_indexed_series_is_aligned_to_the_grid_or_refused(campus):
    pd = pytest.importorskip("pandas")
    document = campus.to_dict()
    demand = np.array(_load(document)["demand_kw"], dtype=float)
    local = pd.date_range("2014-11-03", periods=168, freq="h", tz="Australia/Melbourne")
    # The same instants in another zone, in reverse order, with a day more: aligned.
    series = pd.Series(demand, index=local.tz_convert("UTC")).iloc[::-1]
    extra = pd.Series([1e6] * 24, index=pd.date_range(local[-1] + pd.Timedelta(hours=1), periods=24, freq="h"))
    _load(document)["demand_kw"] = pd.concat([series, extra])
    assert volta.Case.from_dict(document).to_dict() == campus.to_dict()
    # Naive and zone-aware times in one index: refused, not guessed.
    _load(document)["demand_kw"] = pd.concat([series, extra.tz_localize(None)])
    with pytest.raises(volta.CaseError, match="mixes naive and zone-aware times"):
        volta.Case.from_dict(document)
    # A naive index is read in the case's time zone.
    _load(document)["demand_kw"] = pd.Series(demand, index=local.tz_localize(None))
    assert volta.Case.from_dict(document).to_dict() == campus.to_dict()
    # Starting a day late (the defect: it was used by position): refused, naming the first missing step.
    _load(document)["demand_kw"] = pd.Series(demand, index=local + pd.Timedelta(days=1))
    with pytest.raises(volta.CaseError) as err:
        volta.Case.from_dict(document)
    (path, message), = err.value.problems
    assert path == "assets.campus_electric.demand_kw"
    assert "no value at 2014-11-03T00:00:00+11:00" in message and "24 of the case's 168 steps" in message
    # Finer than the grid: refused with the way out.
    fine = pd.Series(np.repeat(demand, 4), index=pd.date_range(local[0], periods=672, freq="15min"))
    _load(document)["demand_kw"] = fine
    with pytest.raises(volta.CaseError, match=r"resample it first \(e.g. series.resample\('1h'\).mean\(\)\)"):
        volta.Case.from_dict(document)


def test_every_unknown_field_is_reported_at_once_with_a_suggestion(campus):
    document = campus.to_dict()
    battery = next(a for a in document["assets"] if a["type"] == "storage")
    battery["energy_capacity_kw"] = battery.pop("energy_capacity_kwh")
    battery["charge_eficiency"] = 0.95
    battery["colour"] = "green"
    del battery["bus"]
    with pytest.raises(volta.CaseError) as err:
        volta.Case.from_dict(document)
    problems = dict(err.value.problems)
    base = f"assets.{battery['id']}"
    # ... and every required field the asset lacks, in the same round trip.
    assert problems[f"{base}.bus"] == problems[f"{base}.energy_capacity_kwh"] == "is required"
    assert "did you mean `energy_capacity_kwh`?" in problems[f"{base}.energy_capacity_kw"]
    assert "did you mean `charge_efficiency`?" in problems[f"{base}.charge_eficiency"]
    assert "did you mean" not in problems[f"{base}.colour"]


def test_replace_changes_a_field_by_its_path(campus):
    battery = next(a for a in campus.to_dict()["assets"] if a["type"] == "storage")
    bigger = campus.replace({f"assets.{battery['id']}.energy_capacity_kwh": 2 * battery["energy_capacity_kwh"]})
    changed = next(a for a in bigger.to_dict()["assets"] if a["id"] == battery["id"])
    assert changed["energy_capacity_kwh"] == 2 * battery["energy_capacity_kwh"]
    assert campus.replace(name="renamed").name == "renamed"
    with pytest.raises(volta.CaseError, match="no item with this id"):
        campus.replace({"assets.flux_capacitor.capacity_kw": 1})
    with pytest.raises(volta.CaseError, match="energy_capacity_kwh"):
        campus.replace({f"assets.{battery['id']}.energy_capacity_kwh": -1})


# ---- the schema -----------------------------------------------------------------------


def test_fields_describe_every_asset_type_with_units_and_defaults():
    pytest.importorskip("pandas")
    kinds = volta.fields()
    assert {"load", "renewable", "thermal", "grid", "converter", "storage", "time", "buses"} <= set(kinds.index)
    storage = volta.fields("storage")
    assert storage.loc["energy_capacity_kwh", "unit"] == "kWh"
    assert storage.loc["energy_capacity_kwh", "required"]
    assert storage.loc["charge_efficiency", "default"] == 1.0
    assert "efficiency" in storage.loc["charge_efficiency", "description"].lower()
    assert volta.fields("commitment").shape[0] > 0
    with pytest.raises(ValueError, match="storage"):
        volta.fields("flux_capacitor")
    assert volta.schema() == volta.case_schema()


# ---- forecasting ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(vic):
    return volta.ForecastModel.train(vic, train_until="2014-12-30", model="linear", quantiles=[0.1, 0.9], **COMMON)


def test_forecasts_are_labelled_frames_in_local_time(vic, model):
    forecast = model.forecast(vic, "2014-12-31T00:00")
    frame = forecast.to_pandas()
    assert list(frame.columns) == ["point", "q0.1", "q0.9"]
    assert str(frame.index.tz) == "Australia/Brisbane"
    assert frame.index[0] == dt.datetime(2014, 12, 31, tzinfo=ZoneInfo("Australia/Brisbane"))
    assert frame.index[-1] - frame.index[0] == dt.timedelta(hours=23, minutes=30)
    assert frame.attrs["issue"] == frame.index[0]
    assert (frame["q0.1"] <= frame["q0.9"]).all()
    polars = forecast.to_polars()
    assert polars.columns == ["issue", "time", "point", "q0.1", "q0.9"]
    assert polars["time"].dtype.time_zone == "Australia/Brisbane"
    assert model.horizon == 48 and model.quantiles == [0.1, 0.9] and model.model == "linear"
    assert model.trained_until == dt.datetime(2014, 12, 31, tzinfo=ZoneInfo("Australia/Brisbane"))


def test_a_saved_model_finds_its_time_column_again(vic, model, tmp_path):
    path = tmp_path / "vic.model.json"
    model.save(path)
    loaded = volta.ForecastModel.load(path)  # no time= (the defect: KeyError 'timestamp')
    np.testing.assert_array_equal(loaded.forecast(vic, "2014-12-31T00:00").point, model.forecast(vic, "2014-12-31T00:00").point)


def test_a_forecast_beyond_the_data_raises_naming_the_last_observation(vic, model):
    with pytest.raises(volta.ForecastError, match="after the end of the data"):
        model.forecast(vic, "2016-06-01T00:00")
    # Right after the data, the known-ahead temperature is missing over the horizon.
    with pytest.raises(volta.ForecastError, match=r"temperature_c.*known ahead.*last value is at 2014-12-31T23:30"):
        model.forecast(vic, "2015-01-01T00:00")


def test_backtests_come_back_as_a_long_labelled_table(vic):
    bt = volta.backtest(vic, train_until="2014-12-01", model="naive_week", quantiles=[0.1, 0.9], **COMMON)
    frame = bt.to_pandas()
    n, h = bt.point.shape
    assert len(frame) == n * h
    assert list(frame.columns) == ["issue", "lead", "time", "actual", "flagged", "point", "q0.1", "q0.9"]
    assert not frame["flagged"].any()
    first = frame.iloc[0]
    # Trained on the data up to the end of 1 December; the first forecast is for the next day.
    assert first["issue"] == dt.datetime(2014, 12, 2, tzinfo=ZoneInfo("Australia/Brisbane"))
    assert frame.iloc[h - 1]["time"] - first["issue"] == dt.timedelta(hours=23, minutes=30)
    assert np.mean(np.abs(frame["actual"] - frame["point"]) / frame["actual"]) * 100 == pytest.approx(
        bt.metrics["mape"], rel=1e-6
    )
    polars = bt.to_polars()
    assert polars.columns == list(frame.columns)
    assert polars["issue"].dtype.time_zone == "Australia/Brisbane"
    assert polars["time"].to_list() == list(frame["time"])
    np.testing.assert_array_equal(polars["point"].to_numpy(), frame["point"].to_numpy())


def test_options_are_typed_and_misspellings_are_named(vic):
    options = volta.ForecastOptions(model="naive_week", horizon=48)
    bt = volta.backtest(vic, train_until="2014-12-01", options=options, **{k: v for k, v in COMMON.items() if k != "horizon"})
    assert bt.point.shape[1] == 48
    with pytest.raises(volta.ForecastError, match="did you mean 'quantiles'"):
        volta.backtest(vic, train_until="2014-12-01", quantile=[0.5], **COMMON)
