"""Percentiles as PostgreSQL computes them, in the database where it can and in Python on SQLite."""

from __future__ import annotations

from typing import Any, Final

from django.db.models import Aggregate, FloatField

# On SQLite (the embedded mode) percentiles are computed in Python from at most this many records.
PERCENTILE_SAMPLE_LIMIT: Final = 50_000


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate ``percentile_cont(f) WITHIN GROUP (ORDER BY x)``."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, fraction: float, **extra: Any) -> None:
        # ``extra`` passes ``filter=Q(...)``: PostgreSQL takes FILTER (WHERE ...) on ordered-set aggregates too.
        super().__init__(expression, fraction=float(fraction), **extra)


def percentile(values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
