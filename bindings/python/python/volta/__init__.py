"""Volta: plan and forecast multi-energy systems.

>>> import volta
>>> case = volta.Case.from_file("datasets/cases/campus.toml")
>>> result = volta.schedule(case, objective="cost", gap=1e-4)
>>> result.status, round(result.cost)
>>> result.flows["battery:elec"]          # numpy array, kW per step
>>> result.to_pandas()                    # one column per asset:bus flow

The native core is the same Rust library as the ``volta`` command line and
the gRPC services; this package only converts inputs and outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np

from . import _native
from .errors import CaseError, ForecastError, SolverError, VoltaError

__all__ = [
    "Backtest",
    "Case",
    "ForecastModel",
    "CaseError",
    "ForecastError",
    "Schedule",
    "SolverError",
    "VoltaError",
    "backtest",
    "case_schema",
    "pareto",
    "rolling_horizon",
    "schedule",
]
__version__ = _native.__version__


def _plain(value: Any) -> Any:
    """Series-like values (numpy, pandas, polars) as plain lists, for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "to_list"):  # pandas / polars Series
        return [float(v) for v in value.to_list()]
    if isinstance(value, np.ndarray):
        return value.astype(float).tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class Case:
    """A checked case: time grid, carriers, buses and assets.

    Build one with :meth:`from_file` or :meth:`from_dict`; an invalid case
    raises :class:`CaseError` listing every problem with its path.
    """

    def __init__(self, native: Any) -> None:
        self._native = native

    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> "Case":
        """Reads a TOML or JSON case file (and the CSV/Parquet series it references)."""
        return cls(_native.Case.from_file(str(path)))

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "Case":
        """A case from a dictionary in the case-file schema. Series may be
        lists, numpy arrays, pandas Series or polars Series."""
        return cls(_native.Case.from_json(json.dumps(_plain(document))))

    def to_dict(self) -> dict[str, Any]:
        """The case as a dictionary, every series inline and every default spelled out."""
        return json.loads(self._native.to_json())

    def validate(self) -> list[tuple[str, str]]:
        """Checks the case again (it was checked when built) and returns its warnings."""
        return Case.from_dict(self.to_dict()).warnings

    @property
    def name(self) -> str:
        return self._native.name

    @property
    def summary(self) -> str:
        return self._native.summary

    @property
    def warnings(self) -> list[tuple[str, str]]:
        """Legal but suspicious settings, as (path, message)."""
        return list(self._native.warnings)

    def __repr__(self) -> str:
        return repr(self._native)

    def __reduce__(self):
        # Picklable as its self-contained document, so cases travel to
        # process pools, Dask or Ray workers.
        return (Case.from_dict, (self.to_dict(),))


@dataclass
class Schedule:
    """The result of :func:`schedule` or :func:`rolling_horizon`.

    ``status`` is one of ``optimal``, ``within_gap``, ``time_limit``,
    ``iteration_limit``, ``memory_limit``, ``interrupted`` (the last four:
    stopped early, with the best schedule found by then, if any),
    ``infeasible`` and ``unbounded``; without a schedule (infeasible, say)
    the series are empty and ``infeasibility`` explains why.
    """

    status: str
    objective: float | None = None
    best_bound: float | None = None
    gap: float | None = None
    cost: float | None = None
    co2_kg: float | None = None
    solve_seconds: float = 0.0
    infeasibility: str | None = None
    times: list[str] = field(default_factory=list)
    cost_by_category: dict[str, float] = field(default_factory=dict)
    flows: dict[str, np.ndarray] = field(default_factory=dict)
    storage_kwh: dict[str, np.ndarray] = field(default_factory=dict)
    commitment: dict[str, np.ndarray] = field(default_factory=dict)
    prices: dict[str, np.ndarray] = field(default_factory=dict)
    unserved_kw: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def _from_native(cls, raw: dict[str, Any]) -> "Schedule":
        plan = raw.get("schedule") or {}
        return cls(
            status=raw["status"],
            objective=raw.get("objective"),
            best_bound=raw.get("best_bound"),
            gap=raw.get("gap"),
            cost=plan.get("cost"),
            co2_kg=plan.get("co2_kg"),
            solve_seconds=raw.get("solve_seconds", 0.0),
            infeasibility=raw.get("infeasibility"),
            times=plan.get("times", []),
            cost_by_category=plan.get("cost_by_category", {}),
            flows=plan.get("flows", {}),
            storage_kwh=plan.get("storage_kwh", {}),
            commitment=plan.get("commitment", {}),
            prices=plan.get("prices", {}),
            unserved_kw=plan.get("unserved_kw", {}),
        )

    def to_pandas(self, what: str = "flows"):
        """One of the series tables (``flows``, ``storage_kwh``, ``commitment``,
        ``prices``, ``unserved_kw``) as a pandas DataFrame indexed by time."""
        import pandas as pd

        index = pd.DatetimeIndex(pd.to_datetime(self.times, utc=True), name="time")
        return pd.DataFrame(getattr(self, what), index=index)

    def to_polars(self, what: str = "flows"):
        """The same table as a polars DataFrame with a ``time`` column."""
        import polars as pl

        columns: dict[str, Any] = {"time": self.times}
        columns.update(getattr(self, what))
        return pl.DataFrame(columns).with_columns(pl.col("time").str.to_datetime(time_zone="UTC"))


def schedule(
    case: Case,
    objective: str = "cost",
    *,
    co2_price: float | None = None,
    time_limit: float | None = None,
    gap: float | None = None,
    threads: int | None = None,
) -> Schedule:
    """Optimises the operation of ``case``.

    ``objective`` is ``cost``, ``co2`` (least emissions, then least cost) or
    ``weighted`` (cost plus ``co2_price`` per kg). ``time_limit`` (s) and
    ``gap`` (relative MIP gap) bound the effort; a time limit with a plan
    returns it with status ``time_limit``. The GIL is released while solving,
    so schedules in a thread pool run in parallel.
    """
    return Schedule._from_native(
        _native.schedule(case._native, objective, co2_price, time_limit, gap, threads)
    )


def case_schema() -> dict:
    """The case format as a JSON Schema (draft 2020-12): every section and
    asset type with its fields, types, defaults and descriptions. The same
    schema is published as ``docs/case.schema.json``; editors and
    ``jsonschema`` can check a case document against it. It describes the
    shape of a case; rules between fields (one fuel source, a series with
    one value per step) are checked by :class:`Case` with their paths."""
    return json.loads(_native.case_schema())


def pareto(case: Case, n: int = 10, *, time_limit: float | None = None, gap: float | None = None) -> list[dict]:
    """The cost–CO2 Pareto front by the epsilon-constraint method: ``n``
    points from the cheapest to the cleanest plan, dominated ones dropped."""
    return _native.pareto(case._native, n, time_limit, gap)


def rolling_horizon(
    case: Case,
    horizon_steps: int,
    commit_steps: int | None = None,
    objective: str = "cost",
    *,
    time_limit: float | None = None,
    gap: float | None = None,
) -> Schedule:
    """Simulates the case window by window (model-predictive control),
    carrying storage levels and unit states, and returns the stitched plan.
    Each window optimises ``horizon_steps`` and keeps ``commit_steps``
    (default: half the window, as the CLI and gRPC do)."""
    raw = _native.rolling_horizon(case._native, horizon_steps, commit_steps, objective, time_limit, gap)
    return Schedule._from_native(raw)


# ---- forecasting ------------------------------------------------------------------


def _columns(frame: Any, target: str, time: str, exog: list[str], known_ahead: list[str], timezone: str | None) -> dict:
    """A pandas or polars DataFrame as the native layer's columns: instants in
    seconds (naive times are wall-clock times in ``timezone``), floats."""
    if hasattr(frame, "to_pandas") and hasattr(frame, "schema"):  # polars
        import polars as pl

        t = frame[time]
        if t.dtype == pl.Utf8:
            t = t.str.to_datetime()
        if getattr(t.dtype, "time_zone", None) is None:
            t = t.dt.replace_time_zone(timezone or "UTC", ambiguous="earliest")
        seconds = t.dt.epoch("s").to_list()
        column = lambda name: frame[name].cast(pl.Float64).fill_null(float("nan")).to_list()  # noqa: E731
    else:
        import pandas as pd

        t = pd.to_datetime(frame[time])
        if t.dt.tz is None:
            t = t.dt.tz_localize(timezone or "UTC", ambiguous="infer", nonexistent="raise")
        # Whatever the resolution (pandas 3 infers it), count whole seconds.
        seconds = ((t.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).tolist()
        column = lambda name: frame[name].astype(float).tolist()  # noqa: E731
    missing = [c for c in [target, *exog] if c not in frame.columns]
    if missing:
        raise ForecastError(f"column {missing[0]!r} not found; the data has: {', '.join(map(str, frame.columns))}")
    return {
        "times_s": seconds,
        "target_name": target,
        "target": column(target),
        "exog": [(name, column(name)) for name in exog],
        "known_ahead": list(known_ahead),
        "timezone": timezone,
    }


@dataclass
class Backtest:
    """The outcome of :func:`backtest`: every forecast and its scores."""

    model: str
    metrics: dict[str, Any]
    issues: list[str]
    point: np.ndarray          # (forecasts, horizon)
    actual: np.ndarray         # (forecasts, horizon)
    quantiles: np.ndarray      # (forecasts, horizon, levels)
    fit_seconds: float


def backtest(
    frame: Any,
    *,
    target: str,
    time: str = "timestamp",
    exog: list[str] | tuple[str, ...] = (),
    known_ahead: list[str] | tuple[str, ...] = (),
    timezone: str | None = None,
    train_until: str,
    test_until: str | None = None,
    refit_every: int = 0,
    **options: Any,
) -> Backtest:
    """Rolling-origin backtest of a forecasting model on a pandas or polars
    DataFrame, exactly as ``volta backtest`` does it. ``options`` are the
    model options (``horizon``, ``issue_time``, ``model``, ``quantiles``,
    ``temperature``, ``holidays`` (a built-in calendar or a file of dates),
    ``holiday_dates`` (a list of ``YYYY-MM-DD``), ``latitude``/``longitude``,
    ``trees``, ``calibration_folds``, ``calibrate_by``, ...), as the CLI's flags.
    """
    cols = _columns(frame, target, time, list(exog), list(known_ahead), timezone)
    raw = _native.backtest(cols, json.dumps(options), train_until, refit_every, test_until)
    levels = len(options.get("quantiles", []))
    n, h = raw["point"].shape
    import datetime as _dt

    return Backtest(
        model=raw["model"],
        metrics=json.loads(raw["metrics"]),
        issues=[_dt.datetime.fromtimestamp(s, _dt.timezone.utc).isoformat() for s in raw["issues_s"]],
        point=raw["point"],
        actual=raw["actual"],
        quantiles=raw["quantiles"].reshape(n, h, levels),
        fit_seconds=raw["fit_seconds"],
    )


class ForecastModel:
    """A trained forecasting model: train, save, load, forecast."""

    def __init__(self, native: Any, time: str = "timestamp") -> None:
        self._native = native
        self._time = time

    @classmethod
    def train(
        cls,
        frame: Any,
        *,
        target: str,
        time: str = "timestamp",
        exog: list[str] | tuple[str, ...] = (),
        known_ahead: list[str] | tuple[str, ...] = (),
        timezone: str | None = None,
        train_until: str | None = None,
        **options: Any,
    ) -> "ForecastModel":
        """Trains on the frame's rows before ``train_until`` (all when ``None``)."""
        cols = _columns(frame, target, time, list(exog), list(known_ahead), timezone)
        return cls(_native.ForecastModel.train(cols, json.dumps(options), train_until), time)

    @classmethod
    def load(cls, path: str | PathLike[str], time: str = "timestamp") -> "ForecastModel":
        """Reads a model file written by :meth:`save` or ``volta train``."""
        return cls(_native.ForecastModel.load(str(path)), time)

    def save(self, path: str | PathLike[str]) -> None:
        """Writes the model file (versioned JSON, no pickles)."""
        self._native.save(str(path))

    def forecast(self, frame: Any, issue: str) -> tuple[np.ndarray, np.ndarray]:
        """Forecast issued at ``issue`` (ISO timestamp) from the frame's data
        known then: the point forecast per lead and the quantiles (lead, level)."""
        target, exog = self._native.columns
        cols = _columns(frame, target, self._time, [n for n, _ in exog], [n for n, k in exog if k],
                        self._native.timezone)
        import datetime as _dt

        stamp = _dt.datetime.fromisoformat(issue)
        if stamp.tzinfo is None:
            from zoneinfo import ZoneInfo

            stamp = stamp.replace(tzinfo=ZoneInfo(self._native.timezone))
        return self._native.forecast(cols, int(stamp.timestamp()))
