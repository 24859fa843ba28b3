"""Compare: two to six models side by side, one column each, the best value of each row marked.

``models_compare`` answers ``GET /models/compare`` and the console's Compare page with one
definition. The rows are ``ROWS``, in order: each entry is one row (or, for capabilities, one row
per capability any of the models has), with its label, its group, how its values compare
(``better``: lower, higher, or None for figures that are neither, such as volumes) and how a model's
value is read from the facts. A new row is one entry in ``ROWS``.

Every figure comes from a fixed number of queries, whatever the number of models: the models, their
prices, capabilities with evidence, runtimes and open alerts (catalog and telemetry selectors),
usage totals (one query per window), latency percentiles (one query on PostgreSQL), availability
over the windows (two queries: the state before the widest window, then its status events), and
the daily buckets of the sparklines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from django.utils import timezone

from registry.catalog.prices import price_in_force
from registry.catalog.selectors import runtimes_of
from registry.models import Alert, ModelPrice, RegisteredModel
from registry.selection.evidence import capability_evidence_of
from registry.telemetry.availability import AvailabilityShare, availability_shares
from registry.telemetry.selectors import (
    open_alerts_of_models,
    usage_buckets_of_models,
    usage_of_models,
)

MIN_MODELS: Final = 2
MAX_MODELS: Final = 6

# The windows of the usage rows, each ending now; labels as the console prints them.
WINDOWS: Final[dict[str, tuple[timedelta, str]]] = {
    "24h": (timedelta(hours=24), "last 24 hours"),
    "7d": (timedelta(days=7), "last 7 days"),
    "30d": (timedelta(days=30), "last 30 days"),
}

# The sparklines: the widest window in UTC days, one point a day, the same axis for every model.
SPARKLINE_WINDOW: Final = "30d"

Better = Literal["lower", "higher"] | None


@dataclass(frozen=True)
class Facts:
    """Everything the rows read, fetched once for all the compared models."""

    models: list[RegisteredModel]
    now: datetime
    price_moment: datetime | None
    prices: dict[int, list[ModelPrice]]
    capabilities: dict[int, dict[str, dict[str, Any]]]
    runtimes: dict[int, dict[str, Any]]
    alerts: dict[int, list[Alert]]
    usage: dict[int, dict[str, dict[str, Any]]]
    latency: dict[int, dict[str, tuple[float | None, float | None]]]
    availability: dict[int, dict[str, AvailabilityShare]]


@dataclass(frozen=True)
class Row:
    """One row of the comparison: a value per model (None where it has none) and which are the best."""

    key: str
    label: str
    group: str
    kind: str
    better: Better
    values: list[Any]
    best: list[bool]


@dataclass(frozen=True)
class RowSpec:
    """How one row is read: ``value(facts, model)`` is the model's value, ``number`` what is compared."""

    key: str
    label: str
    group: str
    kind: str
    better: Better
    value: Callable[[Facts, RegisteredModel], Any]
    number: Callable[[Any], float | None] = field(default=lambda value: value)
    # Shown only when this holds of the facts (the price on a date, when a date is asked).
    shown: Callable[[Facts], bool] = field(default=lambda facts: True)


@dataclass(frozen=True)
class Comparison:
    models: list[RegisteredModel]
    now: datetime
    price_moment: datetime | None
    windows: dict[str, tuple[datetime, datetime]]
    rows: list[Row]
    bucket_starts: list[datetime]
    # Per series (requests, latency, spend, uncosted_requests), one list of values per model, on bucket_starts.
    sparklines: dict[str, list[list[float | None]]]


def best_marks(numbers: list[float | None], better: Better) -> list[bool]:
    """Which values are the best of the row: every one equal to the best (ties alike); none below two values."""
    known = [number for number in numbers if number is not None]
    if better is None or len(known) < 2:
        return [False] * len(numbers)
    best = min(known) if better == "lower" else max(known)
    # Rounded: two prices that print alike are alike (a float sum may differ in its last bit).
    return [number is not None and round(number - best, 9) == 0 for number in numbers]


def _price(side: str, *, on_date: bool) -> Callable[[Facts, RegisteredModel], float | None]:
    def value(facts: Facts, model: RegisteredModel) -> float | None:
        if not on_date:
            current = model.input_cost_per_mtok if side == "input" else model.output_cost_per_mtok
            return float(current) if current is not None else None
        assert facts.price_moment is not None
        price = price_in_force(facts.prices.get(model.pk, []), facts.price_moment)
        if price is None:
            return None
        return float(price.input_per_mtok if side == "input" else price.output_per_mtok)

    return value


def _usage(window: str, name: str) -> Callable[[Facts, RegisteredModel], Any]:
    def value(facts: Facts, model: RegisteredModel) -> Any:
        figures = facts.usage[model.pk][window]
        if name == "error_rate":
            return figures["error_rate"] if figures["requests"] else None
        if name == "spend":
            requests, uncosted = figures["requests"], figures["uncosted_requests"]
            # Unknown (null), never 0, when every request of the window is uncosted.
            known = None if uncosted and uncosted >= requests else float(figures["cost"])
            return {"cost": known, "requests": requests, "uncosted_requests": uncosted}
        return figures[name]

    return value


def _latency(window: str, index: int) -> Callable[[Facts, RegisteredModel], float | None]:
    return lambda facts, model: facts.latency[model.pk][window][index]


def _runtime(facts: Facts, model: RegisteredModel) -> dict[str, Any] | None:
    runtime = facts.runtimes.get(model.pk)
    if runtime is None:
        return None
    return {"loaded": runtime["loaded"], "expires_at": runtime["expires_at"], "checked_at": runtime["checked_at"]}


def _alerts(facts: Facts, model: RegisteredModel) -> dict[str, Any]:
    alerts = facts.alerts.get(model.pk, [])
    return {
        "count": len(alerts),
        "alerts": [
            {"id": alert.pk, "kind": alert.kind, "message": alert.message, "opened_at": alert.opened_at}
            for alert in alerts
        ],
    }


def _window_rows(window: str, label: str) -> list[RowSpec]:
    group = f"Usage, {label}"
    return [
        RowSpec(f"latency_p50_{window}", "p50 latency (s)", group, "seconds", "lower", _latency(window, 0)),
        RowSpec(f"latency_p95_{window}", "p95 latency (s)", group, "seconds", "lower", _latency(window, 1)),
        RowSpec(f"error_rate_{window}", "error rate", group, "percent", "lower", _usage(window, "error_rate")),
        # Volumes are neither better nor worse: shown, not marked.
        RowSpec(f"requests_{window}", "requests", group, "count", None, _usage(window, "requests")),
        RowSpec(f"tokens_{window}", "tokens", group, "count", None, _usage(window, "tokens")),
        RowSpec(
            f"spend_{window}",
            "spend (USD)",
            group,
            "cost",
            None,
            _usage(window, "spend"),
            number=lambda value: value["cost"],
        ),
    ]


def _availability(window: str) -> Callable[[Facts, RegisteredModel], dict[str, float] | None]:
    def value(facts: Facts, model: RegisteredModel) -> dict[str, float] | None:
        share = facts.availability[model.pk][window]
        # Unknown (null) when the history holds no state for any of the window, never 0 % or 100 %.
        if share.available_fraction is None:
            return None
        return {"available_fraction": share.available_fraction, "known_fraction": share.known_fraction}

    return value


def _availability_row(window: str, label: str) -> RowSpec:
    return RowSpec(
        f"availability_{window}",
        label,
        "Available (% of the period)",
        "availability",
        "higher",
        _availability(window),
        number=lambda value: value["available_fraction"],
    )


_DATED: Final = "Prices on the chosen date (USD per million tokens)"
_PRICES: Final = "Prices now (USD per million tokens)"

ROWS: Final[list[RowSpec]] = [
    RowSpec("status", "status", "Model", "text", None, lambda facts, model: model.status),
    RowSpec("provider", "provider", "Model", "text", None, lambda facts, model: model.provider),
    RowSpec("model_type", "type", "Model", "text", None, lambda facts, model: model.model_type),
    RowSpec("context_window", "context window (tokens)", "Model", "count", "higher", lambda f, m: m.context_window),
    RowSpec("input_price", "input", _PRICES, "price", "lower", _price("input", on_date=False)),
    RowSpec("output_price", "output", _PRICES, "price", "lower", _price("output", on_date=False)),
    RowSpec(
        "input_price_on_date",
        "input",
        _DATED,
        "price",
        "lower",
        _price("input", on_date=True),
        shown=lambda facts: facts.price_moment is not None,
    ),
    RowSpec(
        "output_price_on_date",
        "output",
        _DATED,
        "price",
        "lower",
        _price("output", on_date=True),
        shown=lambda facts: facts.price_moment is not None,
    ),
    # "capability:<name>" rows are inserted here, one per capability (see _capability_rows).
    RowSpec("capabilities", "", "Capabilities", "score", "higher", lambda facts, model: None),
    *(spec for window, (_, label) in WINDOWS.items() for spec in _window_rows(window, label)),
    *(_availability_row(window, label) for window, (_, label) in WINDOWS.items()),
    RowSpec("runtime", "loaded now", "Runtime and alerts", "runtime", None, _runtime),
    RowSpec(
        "open_alerts",
        "open alerts",
        "Runtime and alerts",
        "alerts",
        "lower",
        _alerts,
        number=lambda value: float(value["count"]),
    ),
]


def _capability_rows(facts: Facts, template: RowSpec) -> Iterator[Row]:
    names = sorted({name for model in facts.models for name in facts.capabilities.get(model.pk, {})})
    for name in names:
        values = [facts.capabilities.get(model.pk, {}).get(name) for model in facts.models]
        numbers = [value["score"] if value is not None else None for value in values]
        yield Row(
            key=f"capability:{name}",
            label=name,
            group=template.group,
            kind=template.kind,
            better=template.better,
            values=values,
            best=best_marks(numbers, template.better),
        )


def _rows(facts: Facts) -> list[Row]:
    rows: list[Row] = []
    for spec in ROWS:
        if spec.key == "capabilities":
            rows.extend(_capability_rows(facts, spec))
            continue
        if not spec.shown(facts):
            continue
        values = [spec.value(facts, model) for model in facts.models]
        numbers = [spec.number(value) if value is not None else None for value in values]
        rows.append(
            Row(
                key=spec.key,
                label=spec.label,
                group=spec.group,
                kind=spec.kind,
                better=spec.better,
                values=values,
                best=best_marks(numbers, spec.better),
            )
        )
    return rows


def _day_starts(start: datetime, end: datetime) -> list[datetime]:
    first = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [first + timedelta(days=i) for i in range((end - first).days + 1)]


def _sparklines(
    ids: list[int], start: datetime, end: datetime
) -> tuple[list[datetime], dict[str, list[list[float | None]]]]:
    starts = _day_starts(start, end)
    buckets = usage_buckets_of_models(model_ids=ids, bucket="day", start=start, end=end)
    series: dict[str, list[list[float | None]]] = {
        "requests": [],
        "latency": [],
        "spend": [],
        "uncosted_requests": [],
    }
    for model_id in ids:
        days = buckets.get(model_id, {})
        empty: dict[str, Any] = {}
        rows = [days.get(moment, empty) for moment in starts]
        series["requests"].append([float(row.get("requests", 0)) for row in rows])
        series["latency"].append([row.get("average_latency") for row in rows])
        # A day whose requests are all uncosted has no known spend: a gap, not a zero.
        series["spend"].append(
            [
                None
                if row.get("uncosted_requests") and row["uncosted_requests"] >= row["requests"]
                else float(row.get("cost", 0))
                for row in rows
            ]
        )
        series["uncosted_requests"].append([float(row.get("uncosted_requests", 0)) for row in rows])
    return starts, series


def models_compare(
    models: list[RegisteredModel], *, price_moment: datetime | None = None, now: datetime | None = None
) -> Comparison:
    """The comparison of ``models`` (in the order given): the rows of ``ROWS`` and the sparklines."""
    now = now or timezone.now()
    ids = [model.pk for model in models]
    windows = {name: (now - span, now) for name, (span, _) in WINDOWS.items()}
    prices: dict[int, list[ModelPrice]] = {model_id: [] for model_id in ids}
    if price_moment is not None:
        for price in ModelPrice.objects.filter(model_id__in=ids).order_by("effective_from"):
            prices[price.model_id].append(price)
    usage, latency = usage_of_models(model_ids=ids, windows=windows)
    facts = Facts(
        models=models,
        now=now,
        price_moment=price_moment,
        prices=prices,
        capabilities=capability_evidence_of(ids),
        runtimes=runtimes_of(ids),
        alerts=open_alerts_of_models(ids),
        usage=usage,
        latency=latency,
        availability=availability_shares(ids, windows),
    )
    spark_start, spark_end = windows[SPARKLINE_WINDOW]
    starts, sparklines = _sparklines(ids, spark_start, spark_end)
    return Comparison(
        models=models,
        now=now,
        price_moment=price_moment,
        windows=windows,
        rows=_rows(facts),
        bucket_starts=starts,
        sparklines=sparklines,
    )
