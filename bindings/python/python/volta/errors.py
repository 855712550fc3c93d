"""Exceptions raised by Volta.

Infeasible or unbounded cases are not errors: they come back as a result
whose ``status`` says so, with an explanation.
"""

from __future__ import annotations


class VoltaError(Exception):
    """Base class of every Volta error."""


class CaseError(VoltaError):
    """A case file or dictionary breaks the case format.

    ``problems`` lists every problem as ``(path, message)``, where ``path``
    locates the offending field (``assets.chp.commitment.min_up_h``).
    """

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems: list[tuple[str, str]] = list(problems or [])


class SolverError(VoltaError):
    """Bad solver options, or a solver failure (not infeasibility)."""


class ForecastError(VoltaError):
    """Bad forecasting input or options."""
