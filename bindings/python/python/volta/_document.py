"""Case documents from Python values: what a researcher passes becomes the
case-file schema, or every problem is reported at once with its path.

- numpy arrays, pandas and polars Series, lists and tuples of numbers become
  lists of floats; NaN, infinities and nulls are problems at ``path[index]``;
- a pandas Series with a time index is aligned to the case's grid (the
  ``[time]`` table of the same document): its values at the grid's steps,
  or a problem naming the first step it lacks; a naive index is read in the
  case's time zone; an index finer than the grid is refused (resample it);
- datetimes (``datetime``, ``pandas.Timestamp``, ``numpy.datetime64``) become
  ISO 8601 text, timedeltas a step such as ``15min``, paths their text.

Paths name list items by id where they have one, as the core's checks do:
``assets.office.profile[17]``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from . import _native
from .errors import CaseError

# Sections whose items are named by their id in paths.
_NAMED_LISTS = ("carriers", "buses", "assets", "reserves")
# At most this many bad indexes of one series are spelled out.
_SHOWN = 5


def document(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as a plain JSON-ready case document; raises :class:`CaseError`
    listing every problem found on the way."""
    if not isinstance(value, dict):
        raise CaseError(f"a case document is a dict, not {type(value).__name__}")
    converter = _Converter(value)
    plain = converter.convert(value, "")
    if converter.problems:
        n = len(converter.problems)
        lines = "".join(f"\n  {path}: {message}" for path, message in converter.problems)
        raise CaseError(f"the case has {n} problem{'s' if n != 1 else ''}{lines}", converter.problems)
    return plain


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _step_text(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds > 0 and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}min" if seconds % 60 == 0 else f"{seconds}s"


class _Converter:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.problems: list[tuple[str, str]] = []
        self._grid: tuple[list[int], str] | None = None
        self._grid_error: str | None = None

    def problem(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    # ---- values ------------------------------------------------------------

    def convert(self, value: Any, path: str) -> Any:
        if isinstance(value, dict):
            return {str(k): self.convert(v, _join(path, str(k))) for k, v in value.items()}
        if isinstance(value, (str, bool)) or value is None:
            return value
        if isinstance(value, dt.datetime):  # pandas.Timestamp too
            return value.isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, dt.timedelta):  # pandas.Timedelta too
            return _step_text(value)
        if isinstance(value, np.datetime64):
            return str(np.datetime_as_string(value, unit="s"))
        if isinstance(value, np.timedelta64):
            return _step_text(dt.timedelta(seconds=float(value / np.timedelta64(1, "s"))))
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, np.generic):
            return self.convert(value.item(), path)
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                self.problem(path, f"{value} is not a number a case can hold")
            return value
        if _is_pandas_series(value):
            return self.pandas_series(value, path)
        if _is_polars_series(value):
            return self.numbers(value.cast(float).fill_null(float("nan")).to_numpy(), path, nulls=True)
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biuf":
                return self.numbers(value, path)
            return [self.convert(v, f"{path}[{i}]") for i, v in enumerate(value.tolist())]
        if isinstance(value, (list, tuple)):
            if value and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in value):
                return self.numbers(np.asarray(value, dtype=float), path, keep=list(value))
            return [self.convert(v, self.item_path(path, i, v)) for i, v in enumerate(value)]
        return value  # the core reports the wrong type with its path

    def item_path(self, path: str, index: int, item: Any) -> str:
        if path in _NAMED_LISTS and isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
            return f"{path}.{item['id']}"
        return f"{path}[{index}]"

    def numbers(self, values: np.ndarray, path: str, *, nulls: bool = False, keep: list | None = None) -> list:
        floats = np.asarray(values, dtype=float)
        bad = np.flatnonzero(~np.isfinite(floats))
        if bad.size:
            shown = ", ".join(str(i) for i in bad[:_SHOWN])
            more = f" and {bad.size - _SHOWN} more" if bad.size > _SHOWN else ""
            what = "missing or not finite" if nulls else "not finite (NaN or infinite)"
            self.problem(f"{path}[{bad[0]}]", f"{bad.size} value{'s' if bad.size > 1 else ''} {what}, at index {shown}{more}")
        if keep is not None:
            return [v if isinstance(v, int) else float(v) for v in keep]
        return floats.tolist()

    # ---- time-indexed series ---------------------------------------------------

    def grid(self) -> tuple[list[int], str] | None:
        if self._grid is None and self._grid_error is None:
            time = self.root.get("time")
            try:
                spec = _Converter({}).convert(time, "time")
                self._grid = _native.time_grid(json.dumps(spec))
            except CaseError as err:
                self._grid_error = "; ".join(f"{p}: {m}" for p, m in err.problems) or str(err)
            except (TypeError, ValueError) as err:
                self._grid_error = f"time: {err}"
        return self._grid

    def pandas_series(self, series: Any, path: str) -> list:
        import pandas as pd

        index = series.index
        if not isinstance(index, pd.DatetimeIndex):
            stamps = [isinstance(t, dt.datetime) for t in index] if index.dtype == object else []
            if not stamps or not all(stamps):
                return self.numbers(series.to_numpy(dtype=float, na_value=np.nan), path, nulls=True)
            # Times in several zones (pandas concatenates such indexes to objects).
            aware = {t.tzinfo is not None and t.utcoffset() is not None for t in index}
            if len(aware) > 1:
                self.problem(path, "its time index mixes naive and zone-aware times; localize the naive ones first")
                return []
            index = pd.DatetimeIndex(pd.to_datetime(list(index), utc=True))
        grid = self.grid()
        if grid is None:
            self.problem(path, f"a time-indexed series needs a valid [time] table to align to ({self._grid_error})")
            return []
        instants, tz = grid
        if index.tz is None:
            try:
                index = index.tz_localize(tz, ambiguous="raise", nonexistent="raise")
            except Exception as err:  # pandas raises several error types here
                self.problem(path, f"its naive time index cannot be read as local time in {tz}: {err}")
                return []
        seconds = ((index.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy()
        values = series.to_numpy(dtype=float, na_value=np.nan)
        local = lambda s: dt.datetime.fromtimestamp(int(s), ZoneInfo(tz)).isoformat()  # noqa: E731
        if len(seconds) != len(set(seconds.tolist())):
            repeated = pd.Index(seconds).duplicated(keep="first")
            self.problem(path, f"its time index repeats {local(seconds[repeated][0])}")
            return []
        if len(instants) > 1 and len(seconds) > 1:
            step = instants[1] - instants[0]
            finest = int(np.diff(np.sort(seconds)).min())
            if finest < step:
                self.problem(
                    path,
                    f"its time index has steps of {finest} s, the case's grid {step} s: "
                    f"resample it first (e.g. series.resample('{_step_text(dt.timedelta(seconds=step))}').mean())",
                )
                return []
        at = dict(zip(seconds.tolist(), values.tolist()))
        missing = [t for t in instants if t not in at]
        if missing:
            self.problem(
                path,
                f"has no value at {local(missing[0])} ({len(missing)} of the case's {len(instants)} steps missing); "
                f"its index runs from {local(seconds.min())} to {local(seconds.max())}, "
                f"the case's grid from {local(instants[0])} to {local(instants[-1])}",
            )
            return []
        return self.numbers(np.array([at[t] for t in instants], dtype=float), path, nulls=True)


def _is_pandas_series(value: Any) -> bool:
    return type(value).__module__.startswith("pandas") and type(value).__name__ == "Series"


def _is_polars_series(value: Any) -> bool:
    return type(value).__module__.startswith("polars") and type(value).__name__ == "Series"
