"""Type stubs of the native extension (see volta/__init__.py for the public API)."""

from typing import Any

__version__: str

class Case:
    @staticmethod
    def from_file(path: str) -> Case: ...
    @staticmethod
    def from_json(text: str) -> Case: ...
    def to_json(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def warnings(self) -> list[tuple[str, str]]: ...

def schedule(
    case: Case,
    objective: str = ...,
    co2_price: float | None = ...,
    time_limit: float | None = ...,
    gap: float | None = ...,
    threads: int | None = ...,
) -> dict[str, Any]: ...
def pareto(case: Case, n: int = ..., time_limit: float | None = ..., gap: float | None = ...) -> list[dict[str, Any]]: ...
def rolling_horizon(
    case: Case,
    horizon_steps: int,
    commit_steps: int,
    objective: str = ...,
    time_limit: float | None = ...,
    gap: float | None = ...,
) -> dict[str, Any]: ...
