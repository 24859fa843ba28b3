"""Figure modules of ``bench/bench_scale.py``: each measures some figures on the scale dataset.

A module exposes ``figures(context: ScaleContext) -> Iterator[Figure]``; bench_scale.py runs the
modules named in its ``FIGURE_MODULES`` in order, after the dataset is built, and prints each
figure as ``FIGURE <name>: <measured> (goal <goal>) ok|MISSED``. To add figures (the router's
read, the outage), add a module here and its name to ``FIGURE_MODULES``.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Figure:
    """One measured figure against its goal."""

    name: str
    measured: float
    goal: float
    unit: str
    higher_is_better: bool = False
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.measured >= self.goal if self.higher_is_better else self.measured < self.goal

    def line(self) -> str:
        relation = ">=" if self.higher_is_better else "<"
        note = f"; {self.note}" if self.note else ""
        return (
            f"FIGURE {self.name}: {_number(self.measured)} {self.unit} "
            f"(goal {relation} {_number(self.goal)} {self.unit}{note}) {'ok' if self.ok else 'MISSED'}"
        )


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"


@dataclass
class ScaleContext:
    """What the figure modules share: the dataset's shape and what was measured while building it."""

    database_url: str
    rows: int
    models: list[Any]  # RegisteredModel, busiest first
    now: datetime
    span_days: int
    superuser: Any
    baseline: dict[str, float] = field(default_factory=dict)  # figures measured at the small scale
    # The 1,000,000-row dataset's own database, kept beside the full one, so that a figure can be
    # measured on both in alternation (a ratio of the same minutes: the machine's load drifts).
    small_database_url: str | None = None

    @property
    def busiest(self) -> Any:
        return self.models[0]


@contextlib.contextmanager
def database(url: str) -> Iterator[None]:
    """Point Django's default connection at ``url``'s database for the block (a fresh connection)."""
    from django.db import connection

    saved = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = urlsplit(url).path.lstrip("/")
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = saved


def median_ms(run: Callable[[], object], *, runs: int = 21, warmup: int = 3) -> float:
    """The median wall time of ``run`` in milliseconds, after ``warmup`` unmeasured runs."""
    for _ in range(warmup):
        run()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)
