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

import datetime as _dt
import json
from dataclasses import dataclass, field
from os import PathLike
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from . import _document, _native
from .errors import CaseError, ForecastError, SolverError, VoltaError
from .schema import fields, schema

__all__ = [
    "Backtest",
    "Case",
    "Forecast",
    "ForecastModel",
    "CaseError",
    "ForecastError",
    "Schedule",
    "SolverError",
    "VoltaError",
    "DataQuality",
    "DayAheadPlan",
    "backtest",
    "case_schema",
    "decompose",
    "inspect",
    "fields",
    "pareto",
    "plan",
    "rolling_horizon",
    "schedule",
    "schema",
    "write_model",
]
__version__ = _native.__version__


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
        """A case from a dictionary in the case-file schema.

        Series may be lists, numpy arrays, polars Series or pandas Series; a
        pandas Series with a time index is aligned to the case's grid (naive
        times read in the case's time zone) or refused naming the first step
        it lacks. Times may be ``datetime``/``pandas.Timestamp`` values and
        steps ``timedelta``s. NaN, infinities and nulls are reported with
        their path and index, with every other problem, in one
        :class:`CaseError`."""
        return cls(_native.Case.from_json(json.dumps(_document.document(document), allow_nan=False)))

    def to_dict(self) -> dict[str, Any]:
        """The case as a dictionary, every series inline and every default spelled out."""
        return json.loads(self._native.to_json())

    def replace(self, changes: dict[str, Any] | None = None, /, **fields: Any) -> "Case":
        """A copy of the case with some fields changed, for parameter sweeps:
        ``case.replace({"assets.battery.energy_capacity_kwh": 400})`` (paths
        as in error messages: list items by id) or, for top-level fields,
        ``case.replace(name="bigger battery")``. The result is checked like
        any case; an unknown path raises :class:`CaseError` naming it."""
        doc = self.to_dict()
        for path, value in {**(changes or {}), **fields}.items():
            _set_path(doc, path, value)
        return Case.from_dict(doc)

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


def _set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Sets ``doc`` at a dotted path whose list items are named by id
    (``assets.battery.energy_capacity_kwh``) or index (``assets[2].bus``)."""
    import re

    node: Any = doc
    parts = [p for p in re.split(r"\.|(\[\d+\])", path) if p]
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1]).replace(".[", "[")
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(node, list) or index >= len(node):
                raise CaseError(f"{where}: no such item", [(where, "no such item")])
            key: Any = index
        elif isinstance(node, list):
            found = [i for i, item in enumerate(node) if isinstance(item, dict) and item.get("id") == part]
            if not found:
                ids = ", ".join(str(item.get("id")) for item in node if isinstance(item, dict))
                message = f"no item with this id; the ids are {ids}"
                raise CaseError(f"{where}: {message}", [(where, message)])
            key = found[0]
        elif isinstance(node, dict):
            if part not in node and not last:
                node[part] = {}
            key = part
        else:
            raise CaseError(f"{where}: not a table", [(where, "not a table")])
        if last:
            node[key] = value
        else:
            node = node[key]


def _as_case(case: "Case | str | PathLike[str] | dict[str, Any]") -> "Case":
    """A :class:`Case`, from a case, a case file's path or a case dictionary."""
    if isinstance(case, Case):
        return case
    if isinstance(case, (str, PathLike)):
        return Case.from_file(case)
    if isinstance(case, dict):
        return Case.from_dict(case)
    raise TypeError(f"expected a volta.Case, a case file's path or a case dict, not {type(case).__name__}")


# The time-series tables of a schedule (to_pandas, to_polars).
_SERIES_TABLES = ("flows", "storage_kwh", "commitment", "prices", "unserved_kw")


@dataclass
class Schedule:
    """The result of :func:`schedule`, :func:`rolling_horizon` or :func:`decompose`.

    ``status`` is one of ``optimal``, ``within_gap``, ``time_limit``,
    ``iteration_limit``, ``memory_limit``, ``interrupted`` (the last four:
    stopped early, with the best schedule found by then, if any),
    ``infeasible`` and ``unbounded``; without a schedule (infeasible, say)
    the series are empty and ``infeasibility`` explains why. With quadratic
    fuel curves (taken as linear pieces), ``exact_cost`` is the schedule's
    cost on the curves themselves and ``exact_lower_bound`` a proven lower
    bound on the exact optimum. ``strategy`` is how HiGHS was asked to solve
    (``lp_method``, ``presolve``, ``heuristic_effort``, ``mip_start``) where
    one solve made the schedule; ``proven_by_relaxation`` says that its MIP
    start was proven within the gap by the LP relaxation (``best_bound``),
    so the branch and bound did not run. A rolling run's ``rolling`` counts
    its ``windows``, the ``warm_started_windows`` and the
    ``proven_by_relaxation_windows``.
    """

    status: str
    timezone: str = "UTC"
    objective: float | None = None
    best_bound: float | None = None
    gap: float | None = None
    cost: float | None = None
    co2_kg: float | None = None
    solve_seconds: float = 0.0
    infeasibility: str | None = None
    exact_cost: float | None = None
    exact_lower_bound: float | None = None
    strategy: dict[str, Any] | None = None
    proven_by_relaxation: bool = False
    rolling: dict[str, int] | None = None
    times: list[str] = field(default_factory=list)
    cost_by_category: dict[str, float] = field(default_factory=dict)
    costs: list[tuple[str | None, str, float]] = field(default_factory=list)
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
            timezone=plan.get("timezone", "UTC"),
            objective=raw.get("objective"),
            best_bound=raw.get("best_bound"),
            gap=raw.get("gap"),
            cost=plan.get("cost"),
            co2_kg=plan.get("co2_kg"),
            solve_seconds=raw.get("solve_seconds", 0.0),
            infeasibility=raw.get("infeasibility"),
            exact_cost=raw.get("exact_cost"),
            exact_lower_bound=raw.get("exact_lower_bound"),
            strategy=raw.get("strategy"),
            proven_by_relaxation=raw.get("proven_by_relaxation", False),
            rolling=raw.get("rolling"),
            times=plan.get("times", []),
            cost_by_category=plan.get("cost_by_category", {}),
            costs=[tuple(c) for c in plan.get("costs", [])],
            flows=plan.get("flows", {}),
            storage_kwh=plan.get("storage_kwh", {}),
            commitment=plan.get("commitment", {}),
            prices=plan.get("prices", {}),
            unserved_kw=plan.get("unserved_kw", {}),
        )

    def _table(self, what: str) -> dict[str, np.ndarray]:
        if what not in _SERIES_TABLES:
            hint = " (costs: see cost_table())" if what in ("cost_by_category", "costs") else ""
            raise ValueError(f"{what!r} is not a time-series table; use one of {', '.join(_SERIES_TABLES)}{hint}")
        return getattr(self, what)

    def to_pandas(self, what: str = "flows"):
        """One of the series tables (``flows``, ``storage_kwh``, ``commitment``,
        ``prices``, ``unserved_kw``) as a pandas DataFrame indexed by the
        steps' start times in the case's time zone."""
        import pandas as pd

        table = self._table(what)
        index = pd.DatetimeIndex(pd.to_datetime(self.times, utc=True), name="time").tz_convert(self.timezone)
        return pd.DataFrame(table, index=index)

    def to_polars(self, what: str = "flows"):
        """The same table as a polars DataFrame with a ``time`` column in the case's time zone."""
        import polars as pl

        columns: dict[str, Any] = {"time": self.times}
        columns.update(self._table(what))
        return pl.DataFrame(columns).with_columns(
            pl.col("time").str.to_datetime(time_zone="UTC").dt.convert_time_zone(self.timezone)
        )

    def cost_table(self):
        """The cost by asset and category, as ``volta schedule`` writes
        ``costs.csv``: a pandas DataFrame with columns ``asset`` (None for
        system items such as lost load), ``category`` and ``amount``."""
        import pandas as pd

        return pd.DataFrame(self.costs, columns=["asset", "category", "amount"])

    def plot(self, bus: str, ax: Any = None):
        """The dispatch of ``bus``: what each asset injects stacked above zero,
        what it draws stacked below, unserved demand in red and the bus's
        price on a second axis, as ``volta schedule --out`` draws it. Needs
        matplotlib; returns the axes."""
        import matplotlib.pyplot as plt
        import pandas as pd

        flows = {k.rsplit(":", 1)[0]: v for k, v in self.flows.items() if k.rsplit(":", 1)[1] == bus}
        if not flows:
            buses = sorted({k.rsplit(":", 1)[1] for k in self.flows})
            raise ValueError(f"no flows at bus {bus!r}; the buses are {', '.join(buses)}")
        index = pd.DatetimeIndex(pd.to_datetime(self.times, utc=True)).tz_convert(self.timezone)
        if ax is None:
            _, ax = plt.subplots(figsize=(11, 4))
        names = sorted(flows)
        supply = [np.clip(flows[n], 0, None) for n in names]
        demand = [np.clip(flows[n], None, 0) for n in names]
        colours = plt.get_cmap("tab20").colors
        ax.stackplot(index, supply, labels=names, colors=colours[: len(names)], step="post", alpha=0.9)
        ax.stackplot(index, demand, colors=colours[: len(names)], step="post", alpha=0.5)
        unserved = self.unserved_kw.get(bus)
        if unserved is not None and np.any(unserved > 1e-9):
            ax.step(index, unserved, where="post", color="red", label="unserved")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_ylabel(f"{bus}, kW (injected > 0 > drawn)")
        ax.set_title(f"{bus}: cost {self.cost:,.2f}" if self.cost is not None else bus)
        if bus in self.prices:
            price = ax.twinx()
            price.step(index, self.prices[bus], where="post", color="black", linewidth=0.8, label="price")
            price.set_ylabel("price per kWh")
        ax.legend(loc="upper left", fontsize="small", ncol=2)
        return ax


def schedule(
    case: Case | str | PathLike[str] | dict[str, Any],
    objective: str = "cost",
    *,
    co2_price: float | None = None,
    time_limit: float | None = None,
    gap: float | None = None,
    threads: int | None = None,
    separate_units: bool = False,
    lp_method: str | None = None,
    presolve: bool | None = None,
    heuristic_effort: float | None = None,
    mip_start: str | None = None,
) -> Schedule:
    """Optimises the operation of ``case``.

    ``case`` is a :class:`Case`, a case file's path or a case dict.
    ``objective`` is ``cost``, ``co2`` (least emissions, then least cost) or
    ``weighted`` (cost plus ``co2_price`` per kg); a ``co2_price`` given with
    ``cost`` prices the emissions into it (the same as ``weighted``), and one
    given with ``co2`` is refused. ``time_limit`` (s) and
    ``gap`` (relative MIP gap) bound the effort; a time limit with a plan
    returns it with status ``time_limit``. Identical committed units are
    modelled as one fleet (the same optimum, found faster; each unit keeps
    its own schedule); ``separate_units=True`` models each on its own. The
    GIL is released while solving, so schedules in a thread pool run in
    parallel.

    The solver strategy is Volta's choice for the problem unless set:
    ``lp_method`` (``"simplex"`` or ``"ipm"``, for an LP and a MIP's root),
    ``presolve`` (``True``/``False``) and ``heuristic_effort`` (the share of
    a MIP's effort on primal heuristics, in [0, 1]) and ``mip_start``
    (``"none"``, or ``"rounding"``: a MIP starts from its LP relaxation with
    the commitment rounded up). What was used is :attr:`Schedule.strategy`.
    """
    return Schedule._from_native(
        _native.schedule(
            _as_case(case)._native,
            objective,
            co2_price,
            time_limit,
            gap,
            threads,
            separate_units,
            lp_method,
            presolve,
            heuristic_effort,
            mip_start,
        )
    )


def write_model(
    case: Case | str | PathLike[str] | dict[str, Any],
    path: str | PathLike[str],
    objective: str = "cost",
    *,
    co2_price: float | None = None,
    separate_units: bool = False,
) -> None:
    """Writes the model :func:`schedule` hands to HiGHS, in the CPLEX LP
    format (``*.lp``) or free MPS (``*.mps``), which HiGHS, Gurobi, CPLEX,
    SCIP and GLPK read, with columns and rows named ``asset.role(k)``
    (``battery.charge(5)``, ``elec.balance(3)``). Solved by any of them, its
    optimum is the schedule's objective.

    >>> volta.write_model("datasets/cases/campus.toml", "campus.lp")
    """
    if not str(path).endswith((".lp", ".mps")):
        raise VoltaError(f"{path}: the model is written in the LP or MPS format; name the file *.lp or *.mps")
    _native.write_model(_as_case(case)._native, str(path), objective, co2_price, separate_units)


def case_schema() -> dict:
    """The case format as a JSON Schema (draft 2020-12): every section and
    asset type with its fields, types, defaults and descriptions. The same
    schema is published as ``docs/case.schema.json``; editors and
    ``jsonschema`` can check a case document against it. It describes the
    shape of a case; rules between fields (one fuel source, a series with
    one value per step) are checked by :class:`Case` with their paths."""
    return json.loads(_native.case_schema())


def pareto(case: Case | str | PathLike[str] | dict[str, Any], n: int = 10, *, time_limit: float | None = None, gap: float | None = None) -> list[dict]:
    """The cost–CO2 Pareto front by the epsilon-constraint method: ``n``
    points from the cheapest to the cleanest plan, dominated ones dropped."""
    return _native.pareto(_as_case(case)._native, n, time_limit, gap)


def rolling_horizon(
    case: Case | str | PathLike[str] | dict[str, Any],
    horizon_steps: int,
    commit_steps: int | None = None,
    objective: str = "cost",
    *,
    time_limit: float | None = None,
    gap: float | None = None,
    warm_start: bool = True,
    lower_bound: bool = False,
) -> Schedule:
    """Simulates the case window by window (model-predictive control),
    carrying storage levels and unit states, and returns the stitched plan.
    Each window optimises ``horizon_steps`` and keeps ``commit_steps``
    (default: half the window, as the CLI and gRPC do). Each window's solver
    starts from the commitment the window before chose for the steps they
    share; a window whose start its LP relaxation proves within the gap is
    not solved as a MIP at all (``Schedule.rolling`` counts them);
    ``warm_start=False`` solves every window from scratch (the same
    schedule within the gap, more slowly). ``lower_bound=True`` also solves the whole
    horizon's LP relaxation: its optimum is the result's ``best_bound`` and
    ``gap`` says how far from optimal the stitched plan can be at most (the
    cost objective only)."""
    raw = _native.rolling_horizon(
        _as_case(case)._native, horizon_steps, commit_steps, objective, time_limit, gap, warm_start, lower_bound
    )
    return Schedule._from_native(raw)


def decompose(
    case: Case | str | PathLike[str] | dict[str, Any],
    blocks: int,
    seam_steps: int | None = None,
    objective: str = "cost",
    *,
    co2_price: float | None = None,
    time_limit: float | None = None,
    gap: float | None = None,
) -> Schedule:
    """Schedules a long case as ``blocks`` blocks solved in parallel, for
    horizons one MILP would take too long to prove (a year of unit
    commitment). The whole horizon's LP relaxation gives each block the
    storage levels and unit states it starts from; then each seam is solved
    again over ``seam_steps`` steps either side (default: a day, and more
    than the longest minimum up or down time) so that the stitched plan is
    feasible end to end. The relaxation's optimum is the result's
    ``best_bound`` and ``gap`` says how far from optimal the plan can be at
    most (the cost objective; ``objective="co2"`` is refused)."""
    raw = _native.decompose(_as_case(case)._native, blocks, seam_steps, objective, co2_price, time_limit, gap)
    return Schedule._from_native(raw)


# ---- forecasting ------------------------------------------------------------------


@dataclass
class ForecastOptions:
    """The options of a forecasting model, as ``volta train`` and
    ``volta backtest`` take them as flags. ``None`` keeps Volta's default
    (shown in brackets). Pass one as ``options=`` or its fields as keywords."""

    model: str | None = None
    """``gbdt`` [default], ``linear``, ``naive_day``, ``naive_week``, ``clear_sky`` (PV)."""
    horizon: int | None = None
    """Steps forecast from each issue time [48]."""
    issue_time: str | None = None
    """Local issue time of day, ``HH:MM`` [``00:00``]."""
    quantiles: list[float] | None = None
    """Quantile levels to forecast, e.g. ``[0.1, 0.5, 0.9]`` [none]."""
    intervals: str | None = None
    """How quantiles are made: ``conformal`` [default] or ``quantile-trees``."""
    calibration_days: int | None = None
    """Days held out to calibrate the quantiles [28]."""
    calibration_folds: int | None = None
    """Cross-fitting folds of the calibration; 0 holds out the last days [3]."""
    calibrate_by: str | None = None
    """What the calibration conditions on: ``auto`` [default], ``none``, ``temperature``, ``level``."""
    regime_bins: int | None = None
    """Regimes of ``calibrate_by`` [3]."""
    train_days: int | None = None
    """Training window in days [all the data]."""
    temperature: str | None = None
    """The temperature column (temperature features, calibration regimes)."""
    holidays: str | None = None
    """A built-in holiday calendar (``AU-VIC``, ``DE``, ``US``) or a file of dates."""
    holiday_dates: list[str] | None = None
    """Extra holidays, ``YYYY-MM-DD``."""
    lags: list[int] | None = None
    """Same-time lags in days [1, 2, 7]."""
    latitude: float | None = None
    """PV site latitude (clear-sky features)."""
    longitude: float | None = None
    """PV site longitude."""
    trees: int | None = None
    """Boosted trees (``gbdt``)."""
    learning_rate: float | None = None
    """Boosting learning rate (``gbdt``)."""
    max_depth: int | None = None
    """Tree depth (``gbdt``)."""
    penalty: float | None = None
    """Ridge penalty (``linear``) [the model's default]."""

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in self.__dict__.items() if v is not None})


def _options(options: ForecastOptions | None, extra: dict[str, Any]) -> ForecastOptions:
    """``options`` with the keyword options laid over it; an unknown keyword
    raises :class:`ForecastError` with the nearest known name."""
    import dataclasses
    import difflib

    known = [f.name for f in dataclasses.fields(ForecastOptions)]
    unknown = [k for k in extra if k not in known]
    if unknown:
        hints = []
        for name in unknown:
            near = difflib.get_close_matches(name, known, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
        raise ForecastError(f"unknown forecasting option {', '.join(hints)}; the options are {', '.join(known)}")
    return dataclasses.replace(options or ForecastOptions(), **extra)


_TIME_NAMES = ("timestamp", "time", "datetime", "date", "ds")


def _time_column(frame: Any, time: str | None) -> str:
    """The time column: ``time`` when given, else as ``volta`` finds it: the
    first datetime column, or one named timestamp/time/datetime/date/ds."""
    names = [str(c) for c in frame.columns]
    if time is not None:
        if time not in names:
            raise ForecastError(f"time column {time!r} not found; the data has: {', '.join(names)}")
        return time
    if hasattr(frame, "schema"):  # polars
        for name, dtype in frame.schema.items():
            if dtype.is_temporal():
                return name
    else:
        for name in frame.columns:
            if str(frame[name].dtype).startswith("datetime"):
                return str(name)
    for want in _TIME_NAMES:
        for name in names:
            if name.lower() == want:
                return name
    raise ForecastError(
        f"no datetime column and none named {'/'.join(_TIME_NAMES)}; pass time=...; the data has: {', '.join(names)}"
    )


def _columns(
    frame: Any,
    target: str,
    time: str | None,
    exog: list[str],
    known_ahead: list[str],
    timezone: str | None,
    cleaning: dict[str, str | None] | None = None,
) -> dict:
    """A pandas or polars DataFrame as the native layer's columns: instants in
    seconds, or naive times as wall-clock text that the engine places in
    ``timezone`` by the DST policy (as the CLI reads a file); floats."""
    time = _time_column(frame, time)
    seconds: list[int] = []
    local: list[str] | None = None
    missing = [c for c in [target, *exog] if c not in frame.columns]
    if missing:
        raise ForecastError(f"column {missing[0]!r} not found; the data has: {', '.join(map(str, frame.columns))}")
    if hasattr(frame, "to_pandas") and hasattr(frame, "schema"):  # polars
        import polars as pl

        t = frame[time]
        if t.dtype == pl.Utf8:
            t = t.str.to_datetime()
        if getattr(t.dtype, "time_zone", None) is None:
            local = t.dt.strftime("%Y-%m-%dT%H:%M:%S").to_list()
        else:
            seconds = t.dt.epoch("s").to_list()
        column = lambda name: frame[name].cast(pl.Float64).fill_null(float("nan")).to_list()  # noqa: E731
    else:
        import pandas as pd

        t = pd.to_datetime(frame[time])
        if t.dt.tz is None:
            local = t.dt.strftime("%Y-%m-%dT%H:%M:%S").tolist()
        else:
            # Whatever the resolution (pandas 3 infers it), count whole seconds.
            seconds = ((t.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).tolist()
        column = lambda name: frame[name].astype(float).tolist()  # noqa: E731
    cleaning = cleaning or {}
    return {
        "time_name": time,
        "times_s": seconds,
        "target_name": target,
        "target": column(target),
        "exog": [(name, column(name)) for name in exog],
        "known_ahead": list(known_ahead),
        "timezone": timezone,
        "local_times": local,
        "cleaning": [cleaning.get(k) for k in _CLEANING],
    }


#: The cleaning policies a forecasting call takes, with their choices (the
#: first is the default): flagged target values, rows at one time with
#: different values, local times a DST change skips, and ones it repeats.
_CLEANING = {
    "outliers": ("drop", "clip", "keep"),
    "duplicates": ("error", "first", "last", "mean"),
    "nonexistent_times": ("raise", "drop", "shift_forward"),
    "ambiguous_times": ("infer", "raise", "first", "last", "average"),
}


def _instant(when: str | _dt.datetime, timezone: str) -> _dt.datetime:
    """An ISO timestamp or a datetime; a naive one is local time in ``timezone``."""
    stamp = when if isinstance(when, _dt.datetime) else _dt.datetime.fromisoformat(str(when))
    return stamp.replace(tzinfo=ZoneInfo(timezone)) if stamp.tzinfo is None else stamp


def _stamps(instants_s: Any, timezone: str) -> list[_dt.datetime]:
    zone = ZoneInfo(timezone)
    return [_dt.datetime.fromtimestamp(int(s), zone) for s in instants_s]


def _level_name(level: float) -> str:
    return f"q{level:g}"


@dataclass
class Forecast:
    """One forecast: the point forecast and its quantiles for each step of
    the horizon, with the steps' local, zone-aware start times."""

    issue: _dt.datetime
    """The issue time, in the model's time zone."""
    times: list[_dt.datetime]
    """Start of each step of the horizon, in the model's time zone."""
    point: np.ndarray
    """Point forecast per step, shape (horizon,)."""
    quantiles: np.ndarray
    """Quantiles per step and level, shape (horizon, levels)."""
    levels: list[float]
    """The quantile levels, as the columns of ``quantiles``."""
    target: str
    """The forecast column."""

    def to_pandas(self):
        """A DataFrame indexed by ``time`` (zone-aware) with ``point`` and one
        column per quantile (``q0.1``, ...); ``attrs`` hold the issue time
        and the target."""
        import pandas as pd

        frame = pd.DataFrame({"point": self.point}, index=pd.DatetimeIndex(self.times, name="time"))
        for k, level in enumerate(self.levels):
            frame[_level_name(level)] = self.quantiles[:, k]
        frame.attrs.update(issue=self.issue, target=self.target)
        return frame

    def to_polars(self):
        """A polars DataFrame: ``issue``, ``time`` (zone-aware), ``point`` and one column per quantile."""
        import polars as pl

        zone = str(self.issue.tzinfo)
        columns: dict[str, Any] = {
            "issue": [self.issue] * len(self.times),
            "time": self.times,
            "point": self.point,
        }
        for k, level in enumerate(self.levels):
            columns[_level_name(level)] = self.quantiles[:, k]
        return pl.DataFrame(columns).with_columns(
            pl.col("issue").dt.convert_time_zone(zone), pl.col("time").dt.convert_time_zone(zone)
        )


@dataclass
class Backtest:
    """The outcome of :func:`backtest`: every forecast and its scores."""

    model: str
    metrics: dict[str, Any]
    issues: list[str]
    point: np.ndarray          # (forecasts, horizon)
    actual: np.ndarray         # (forecasts, horizon); NaN where flagged
    quantiles: np.ndarray      # (forecasts, horizon, levels)
    fit_seconds: float
    #: (forecasts, horizon): the actual was flagged by the quality check
    #: and is not scored.
    flagged: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    #: What reading and cleaning the data did and found: counts, and every
    #: flagged value (``quality["flags"]``) with its time, kind, rule and action.
    quality: dict[str, Any] = field(default_factory=dict)
    levels: list[float] = field(default_factory=list)
    timezone: str = "UTC"
    step_seconds: int = 0

    def to_pandas(self):
        """Every forecast in one long table: ``issue``, ``time`` (both local and
        zone-aware), ``lead`` (1 = the first step), ``actual``, ``point`` and
        one column per quantile level."""
        import pandas as pd

        n, h = self.point.shape
        issue = pd.DatetimeIndex(pd.to_datetime(self.issues, utc=True)).tz_convert(self.timezone).repeat(h)
        lead = np.tile(np.arange(1, h + 1), n)
        frame = pd.DataFrame({"issue": issue, "lead": lead})
        frame["time"] = issue + pd.to_timedelta((lead - 1) * self.step_seconds, unit="s")
        frame["actual"] = self.actual.reshape(-1)
        if self.flagged.size:
            frame["flagged"] = self.flagged.reshape(-1)
        frame["point"] = self.point.reshape(-1)
        for k, level in enumerate(self.levels):
            frame[_level_name(level)] = self.quantiles[:, :, k].reshape(-1)
        return frame

    def flags(self):
        """Every value the quality check flagged, as a pandas DataFrame:
        ``time`` (local), ``column``, ``kind``, ``value``, ``expected``,
        ``used``, ``action`` and ``rule``."""
        return _flag_table(self.quality, self.timezone)

    def to_polars(self):
        """The table of :meth:`to_pandas` as a polars DataFrame."""
        import polars as pl

        n, h = self.point.shape
        issue_s = np.repeat(
            np.array([_dt.datetime.fromisoformat(s).timestamp() for s in self.issues], dtype=np.int64), h
        )
        lead = np.tile(np.arange(1, h + 1, dtype=np.int64), n)
        columns: dict[str, Any] = {
            "issue": issue_s * 1_000_000,
            "lead": lead,
            "time": (issue_s + (lead - 1) * self.step_seconds) * 1_000_000,
            "actual": self.actual.reshape(-1),
        }
        if self.flagged.size:
            columns["flagged"] = self.flagged.reshape(-1)
        columns["point"] = self.point.reshape(-1)
        for k, level in enumerate(self.levels):
            columns[_level_name(level)] = self.quantiles[:, :, k].reshape(-1)
        stamp = pl.Datetime("us", "UTC")
        return pl.DataFrame(columns).with_columns(
            pl.col("issue").cast(stamp).dt.convert_time_zone(self.timezone),
            pl.col("time").cast(stamp).dt.convert_time_zone(self.timezone),
        )


def _flag_table(report: dict[str, Any], timezone: str):
    import pandas as pd

    rows = report.get("flags", [])
    frame = pd.DataFrame(rows, columns=["time", "step", "column", "kind", "value", "expected", "used", "action", "rule"])
    frame["time"] = pd.to_datetime(frame["time"], utc=True).dt.tz_convert(timezone)
    return frame.drop(columns=["step"])


@dataclass
class DataQuality:
    """What reading and cleaning a series did and found: see :func:`inspect`."""

    report: dict[str, Any]
    #: One line, as the CLI prints it.
    summary: str = ""
    timezone: str = "UTC"

    @property
    def by_kind(self) -> dict[str, int]:
        """How many values were flagged, per kind."""
        counts: dict[str, int] = {}
        for flag in self.report.get("flags", []):
            counts[flag["kind"]] = counts.get(flag["kind"], 0) + 1
        return counts

    def flags(self):
        """Every flagged value as a pandas DataFrame: ``time`` (local),
        ``column``, ``kind``, ``value``, ``expected``, ``used``, ``action``, ``rule``."""
        return _flag_table(self.report, self.timezone)

    def __repr__(self) -> str:
        return f"DataQuality({self.summary})"


def inspect(
    frame: Any,
    *,
    target: str,
    time: str | None = None,
    exog: list[str] | tuple[str, ...] = (),
    timezone: str | None = None,
    outliers: str = "drop",
    duplicates: str = "error",
    nonexistent_times: str = "raise",
    ambiguous_times: str = "infer",
) -> DataQuality:
    """Reads a pandas or polars DataFrame as :func:`backtest` and
    ``volta inspect`` would, and says what the checks flag: every
    non-finite value, outlier, flat-line, DST artifact, merged duplicate and
    unusual (hot-day, holiday) value, with its time, rule and what the
    cleaning policies do with it.

    >>> q = volta.inspect(df, target="demand_gw", timezone="Australia/Brisbane")
    >>> q.by_kind, q.flags().query("action == 'excluded'")
    """
    cleaning = _cleaning(outliers, duplicates, nonexistent_times, ambiguous_times)
    cols = _columns(frame, target, time, list(exog), [], timezone, cleaning)
    report, summary = _native.inspect(cols)
    return DataQuality(json.loads(report), summary, timezone or "UTC")


def _cleaning(outliers: str, duplicates: str, nonexistent_times: str, ambiguous_times: str) -> dict[str, str]:
    """The cleaning policies, checked here so a wrong one names its keyword."""
    given = {
        "outliers": outliers,
        "duplicates": duplicates,
        "nonexistent_times": nonexistent_times,
        "ambiguous_times": ambiguous_times,
    }
    for key, value in given.items():
        if value not in _CLEANING[key]:
            raise ForecastError(f"{key}: {value!r} is not one of {', '.join(_CLEANING[key])}")
    return given


def backtest(
    frame: Any,
    *,
    target: str,
    time: str | None = None,
    exog: list[str] | tuple[str, ...] = (),
    known_ahead: list[str] | tuple[str, ...] = (),
    timezone: str | None = None,
    train_until: str,
    test_until: str | None = None,
    refit_every: int = 0,
    options: ForecastOptions | None = None,
    outliers: str = "drop",
    duplicates: str = "error",
    nonexistent_times: str = "raise",
    ambiguous_times: str = "infer",
    **kwargs: Any,
) -> Backtest:
    """Rolling-origin backtest of a forecasting model on a pandas or polars
    DataFrame, exactly as ``volta backtest`` does it: trained on the data
    before ``train_until``, a forecast issued every day after it (until
    ``test_until``, excluded: a date means its start). ``time`` is found as
    the CLI finds it when not given. The model options are a
    :class:`ForecastOptions` or its fields as keywords (``model="gbdt"``,
    ``quantiles=[0.1, 0.9]``, ``holidays="AU-VIC"``, ...).

    The data is cleaned as the CLI cleans it, by the same policies:
    ``outliers`` (``drop``: flagged target values are not fitted or scored,
    ``clip``, ``keep``), ``duplicates`` (``error`` names both rows, or
    ``first``, ``last``, ``mean``), and for naive times the DST policies
    ``nonexistent_times`` (``raise``, ``drop``, ``shift_forward``) and
    ``ambiguous_times`` (``infer``, ``raise``, ``first``, ``last``,
    ``average``). :attr:`Backtest.quality` lists what was flagged.
    """
    opts = _options(options, kwargs)
    cleaning = _cleaning(outliers, duplicates, nonexistent_times, ambiguous_times)
    cols = _columns(frame, target, time, list(exog), list(known_ahead), timezone, cleaning)
    raw = _native.backtest(cols, opts.to_json(), train_until, refit_every, test_until)
    levels = list(opts.quantiles or [])
    n, h = raw["point"].shape
    return Backtest(
        model=raw["model"],
        metrics=json.loads(raw["metrics"]),
        issues=[_dt.datetime.fromtimestamp(s, _dt.timezone.utc).isoformat() for s in raw["issues_s"]],
        point=raw["point"],
        actual=raw["actual"],
        flagged=raw["flagged"] > 0.5,
        quality=json.loads(raw["quality"]),
        quantiles=raw["quantiles"].reshape(n, h, len(levels)),
        fit_seconds=raw["fit_seconds"],
        levels=levels,
        timezone=raw["timezone"],
        step_seconds=int(raw["step_seconds"]),
    )


class ForecastModel:
    """A trained forecasting model: train, save, load, forecast.

    >>> model = volta.ForecastModel.train(df, target="demand_gw", model="linear", quantiles=[0.1, 0.9])
    >>> model.forecast(df, "2014-12-31T00:00").to_pandas()   # point, q0.1, q0.9 by local time
    """

    def __init__(self, native: Any, time: str | None = None) -> None:
        self._native = native
        self._time = time

    @classmethod
    def train(
        cls,
        frame: Any,
        *,
        target: str,
        time: str | None = None,
        exog: list[str] | tuple[str, ...] = (),
        known_ahead: list[str] | tuple[str, ...] = (),
        timezone: str | None = None,
        train_until: str | None = None,
        options: ForecastOptions | None = None,
        outliers: str = "drop",
        duplicates: str = "error",
        nonexistent_times: str = "raise",
        ambiguous_times: str = "infer",
        **kwargs: Any,
    ) -> "ForecastModel":
        """Trains on the frame's rows before ``train_until`` (all when ``None``).
        Options and cleaning policies as for :func:`backtest`. The time
        column's name and the cleaning are kept in the model (and its file),
        so forecasting finds the column again and reads data alike."""
        opts = _options(options, kwargs)
        cleaning = _cleaning(outliers, duplicates, nonexistent_times, ambiguous_times)
        cols = _columns(frame, target, time, list(exog), list(known_ahead), timezone, cleaning)
        return cls(_native.ForecastModel.train(cols, opts.to_json(), train_until))

    @classmethod
    def load(cls, path: str | PathLike[str], time: str | None = None) -> "ForecastModel":
        """Reads a model file written by :meth:`save` or ``volta train``.
        ``time`` overrides the time column the model remembers."""
        return cls(_native.ForecastModel.load(str(path)), time)

    def save(self, path: str | PathLike[str]) -> None:
        """Writes the model file (versioned JSON, no pickles)."""
        self._native.save(str(path))

    @property
    def model(self) -> str:
        """The model's name (``gbdt``, ``linear``, ...)."""
        return self._native.model

    @property
    def target(self) -> str:
        """The forecast column."""
        return self._native.columns[0]

    @property
    def exog(self) -> list[tuple[str, bool]]:
        """The exogenous columns it reads, each with whether it is known ahead."""
        return list(self._native.columns[1])

    @property
    def quantiles(self) -> list[float]:
        """The quantile levels it forecasts."""
        return list(self._native.quantiles)

    @property
    def horizon(self) -> int:
        """Steps forecast from each issue time."""
        return self._native.horizon

    @property
    def timezone(self) -> str:
        """The time zone of its calendar (and of naive times in data)."""
        return self._native.timezone

    @property
    def trained_until(self) -> _dt.datetime:
        """End of its training data (exclusive), in its time zone."""
        return _stamps([self._native.trained_until_s], self.timezone)[0]

    def __repr__(self) -> str:
        return (
            f"ForecastModel({self.model!r}, target={self.target!r}, horizon={self.horizon}, "
            f"quantiles={self.quantiles}, trained_until={self.trained_until.isoformat()})"
        )

    def _columns_of(self, frame: Any) -> dict:
        """The frame's columns this model reads, for the native layer: its
        target and exogenous columns, and its time column (the one given at
        load, which must exist, else the one it remembers, if present)."""
        target, exog = self._native.columns
        time = self._time or self._native.time_column
        if time is not None and time not in frame.columns:
            time = None if self._time is None else time
        return _columns(frame, target, time, [n for n, _ in exog], [n for n, k in exog if k], self._native.timezone)

    def forecast(self, frame: Any, issue: str | _dt.datetime) -> Forecast:
        """The forecast issued at ``issue`` (an ISO timestamp or a datetime;
        naive times are local times of the model's zone) from the frame's
        data known then. Raises :class:`ForecastError` when the data lacks
        the history the model needs (naming the last observation) or a
        known-ahead column lacks the horizon."""
        zone = self._native.timezone
        cols = self._columns_of(frame)
        stamp = _instant(issue, zone)
        point, quantiles = self._native.forecast(cols, int(stamp.timestamp()))
        step = self._native.step_seconds
        start = int(stamp.timestamp())
        return Forecast(
            issue=stamp.astimezone(ZoneInfo(zone)),
            times=_stamps([start + k * step for k in range(len(point))], zone),
            point=point,
            quantiles=quantiles,
            levels=self.quantiles,
            target=self._native.columns[0],
        )


@dataclass
class DayAheadPlan:
    """A plan made by :func:`plan`: its first-stage decisions, the cost of
    every scenario under it, and the forecasts it was made from."""

    status: str
    objective: float | None
    #: Per unit under commitment: its on/off state at each step.
    commitment: dict[str, np.ndarray]
    #: Per nominated grid: its net import (kW) at each step.
    nominations: dict[str, np.ndarray]
    #: One row per scenario: name, probability, cost, imbalance_cost,
    #: imbalance_kwh, unserved_kwh.
    scenarios: list[dict[str, Any]]
    #: Per forecast series (``asset.field``): point, levels, quantiles (steps × levels).
    forecasts: dict[str, dict[str, Any]]
    solve_seconds: float
    #: With ``hedging``: iterations, converged, lower_bound, upper_bound and
    #: gap of progressive hedging (the optimum lies between the bounds).
    hedging: dict[str, Any] | None = None

    @property
    def expected_cost(self) -> float:
        """The probability-weighted cost over the scenarios."""
        return float(sum(s["probability"] * s["cost"] for s in self.scenarios))

    def cost_quantile(self, q: float) -> float:
        """The smallest scenario cost whose cumulative probability reaches ``q``."""
        return _native.cost_quantile([(s["cost"], s["probability"]) for s in self.scenarios], q)

    def cvar(self, alpha: float = 0.9) -> float:
        """The expected cost of the worst ``1 − alpha`` of the probability."""
        return _native.cvar([(s["cost"], s["probability"]) for s in self.scenarios], alpha)

    def scenarios_frame(self):
        """The scenarios as a pandas DataFrame, one row each."""
        import pandas as pd

        return pd.DataFrame(self.scenarios)


def plan(
    case: Case | str | PathLike[str] | dict[str, Any],
    forecasts: dict[str, tuple[Any, ...]],
    issue: str | _dt.datetime,
    *,
    scenarios: int = 0,
    imbalance_penalty: float | None = None,
    cvar: tuple[float, float] | None = None,
    time_limit: float | None = None,
    gap: float | None = None,
    hedging: int | None = None,
) -> DayAheadPlan:
    """Forecasts ``case``'s uncertain series and plans, as ``volta plan`` does.

    ``forecasts`` maps a series (``"site.demand_kw"``, ``"pv.availability"``,
    ``"grid.import_price"``) to ``(model, frame)`` or ``(model, frame, scale)``:
    a :class:`ForecastModel` trained with quantiles, the data it reads (its
    target up to ``issue``), and the factor from its units to the case's.
    With ``scenarios=0`` the plan is deterministic on the point forecasts;
    with ``scenarios=K`` it is two-stage stochastic over the forecasts' joint
    scenarios reduced to K: commitment (and with ``imbalance_penalty``, each
    grid's net import) fixed for all, the rest per scenario. ``cvar=(alpha,
    weight)`` blends the CVaR of the cost into the objective. ``hedging=N``
    solves by progressive hedging (the scenarios in parallel, at most N
    iterations) instead of one extensive-form MILP, and reports its bounds in
    :attr:`DayAheadPlan.hedging`.

    >>> made = volta.plan("site.toml", {"site.demand_kw": (model, frame, 150.0)},
    ...                   "2014-11-12T00:00", scenarios=20, imbalance_penalty=0.1)
    >>> made.expected_cost, made.cost_quantile(0.9), made.commitment["engine"]
    """
    native_case = _as_case(case)._native
    sources = []
    for series, given in forecasts.items():
        if not 2 <= len(given) <= 3:
            raise ForecastError(f"forecasts[{series!r}]: expected (model, frame) or (model, frame, scale)")
        model, frame = given[0], given[1]
        scale = float(given[2]) if len(given) == 3 else 1.0
        if not isinstance(model, ForecastModel):
            raise ForecastError(f"forecasts[{series!r}]: the first item must be a ForecastModel")
        sources.append((series, model._native, model._columns_of(frame), scale))
    if not sources:
        raise ForecastError("forecasts: name at least one series to forecast")
    stamp = _instant(issue, sources[0][1].timezone)
    raw = json.loads(
        _native.plan(
            native_case, sources, int(stamp.timestamp()), scenarios, imbalance_penalty, cvar, time_limit, gap, hedging
        )
    )
    first = raw["plan"] or {"commitment": [], "nominations": []}
    return DayAheadPlan(
        status=raw["status"],
        objective=raw["objective"],
        commitment={u["asset"]: np.array(u["on"], dtype=bool) for u in first["commitment"]},
        nominations={n["asset"]: np.array(n["net_import_kw"]) for n in first["nominations"]},
        scenarios=raw["scenarios"],
        forecasts={
            f["series"]: {
                "point": np.array(f["point"]),
                "levels": f["levels"],
                "quantiles": np.array(f["quantiles"]),
                "paths": f["paths"],
            }
            for f in raw["forecasts"]
        },
        solve_seconds=raw["solve_seconds"],
        hedging=raw["hedging"],
    )
