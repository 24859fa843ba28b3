"""Usage figures over any window, the one way statistics read usage: rollups for whole hours, raw rows for the edges.

A window ``[start, end)`` splits into the whole UTC hours it covers, read from ``model_usage_rollup``
(one row per model and hour, kept current by the transaction that writes the records:
registry/telemetry/rollups.py), and the partial hours at its edges, ``[start, first whole hour)``
and ``[last whole hour's end, end)``. A partial hour is read from its rollups too when their first
and last record timestamps put all its records inside the window (or none: it is skipped). Only
a partial hour with records on both sides of the window's bound reads ``model_usage``, the smaller
side by time between those bounds (``edge_read``): its part inside the window, or the rest of the
hour subtracted from its rollups. A window ending now reads no raw row unless a record is stamped
later in the current hour, and a window's first hour reads raw rows over at most half the time
its records span. So a statistic costs the hours of its window, not the records in it, and still
counts every committed record. Counts and sums are exactly those of the raw rows (a partial hour
past the raw rows' retention, whose rows may be gone, counts whole; the float latency sum of a
subtracted hour is exact to rounding); latency percentiles come from the rollups' histograms, within
``registry.telemetry.histograms.RELATIVE_ERROR`` (2 %) of PostgreSQL's ``percentile_cont`` over the records.

Every reader (usage summaries, the dashboard, a model's charts, alert checks, selection's recent
figures) calls ``usage_figures``; a new reader should too, rather than aggregate ``model_usage``.
tests/registry/telemetry/test_usage_figures.py compares it with raw aggregation and checks that no
reader's query reads raw rows outside the edges.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import Combinable, OuterRef
from django.db.models.functions import Cast, Ceil, Coalesce, Ln, NullIf, TruncDay, TruncHour
from django.utils import timezone

from registry.models import ModelUsage, UsageRollup
from registry.telemetry.histograms import GAMMA, ZERO, Histogram, merge_into, percentile
from registry.telemetry.rollups import SUMMED, hour_of

Bucket = Literal["hour", "day"]

_HOUR: Final = timedelta(hours=1)


@dataclass
class UsageFigures:
    """Usage summed over one group (a model, a bucket, both or neither) of a window."""

    model_id: int | None = None
    model_name: str | None = None
    start: datetime | None = None  # the bucket's start, when grouped by bucket
    records: int = 0
    requests: int = 0
    tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0
    cost: Decimal | None = None  # None when no record has a cost, as SUM(cost) would be
    uncosted_requests: int = 0
    latency_weighted: float = 0.0
    latency_requests: int = 0
    latency_records: int = 0
    histogram: Histogram = field(default_factory=dict)  # filled only when asked for

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def average_latency(self) -> float | None:
        """The request-weighted mean latency (seconds) of the records that report one."""
        return self.latency_weighted / self.latency_requests if self.latency_requests else None

    def latency_percentile(self, fraction: float) -> float | None:
        """The ``fraction`` percentile of the records' latency (needs ``histograms=True``)."""
        return percentile(self.histogram, fraction)

    def _add(self, row: dict[str, Any]) -> None:
        # Attribute by attribute, not in a loop over names: a 30-day chart adds 720 rollup rows.
        self.records += int(row["records"] or 0)
        self.requests += int(row["requests"] or 0)
        self.tokens += int(row["tokens"] or 0)
        self.input_tokens += int(row["input_tokens"] or 0)
        self.output_tokens += int(row["output_tokens"] or 0)
        self.errors += int(row["errors"] or 0)
        self.uncosted_requests += int(row["uncosted_requests"] or 0)
        self.latency_requests += int(row["latency_requests"] or 0)
        self.latency_records += int(row["latency_records"] or 0)
        if row["cost"] is not None:
            self.cost = Decimal(row["cost"]) if self.cost is None else self.cost + Decimal(row["cost"])
        self.latency_weighted += float(row["latency_weighted"] or 0.0)

    def _merge(self, other: UsageFigures) -> None:
        self._add(
            {name: getattr(other, name) for name in _COUNTED}
            | {"cost": other.cost, "latency_weighted": other.latency_weighted}
        )
        # A subtraction leaves buckets at zero: not kept.
        merge_into(self.histogram, {key: count for key, count in other.histogram.items() if count})


# UsageFigures' integer sums (as _add reads them from a row): the rollup's.
_COUNTED: Final = SUMMED


def _figures_like(row: dict[str, Any]) -> UsageFigures:
    """Empty figures of the group ``row`` is of."""
    return UsageFigures(model_id=row.get("model_id"), model_name=row.get("model_name"), start=row.get("bucket_start"))


def _negated(row: dict[str, Any]) -> dict[str, Any]:
    """A row of sums (as _add reads it) with every sum negated: added, it subtracts the row."""
    negated: dict[str, Any] = {name: -int(row[name] or 0) for name in _COUNTED}
    negated["cost"] = None if row["cost"] is None else -Decimal(row["cost"])
    negated["latency_weighted"] = -float(row["latency_weighted"] or 0.0)
    return negated


@dataclass(frozen=True)
class WindowSplit:
    """A window's whole hours (read from rollups) and its edges (read from raw rows)."""

    start: datetime
    end: datetime | None
    whole_start: datetime | None  # None: no whole hour, the window is all edge
    whole_end: datetime | None  # None with a whole_start: open-ended


def split_window(start: datetime, end: datetime | None) -> WindowSplit:
    """The whole hours of ``[start, end)`` (``end`` None: every hour from ``start`` on)."""
    first = hour_of(start)
    if first < start:
        first += _HOUR
    if end is None:
        return WindowSplit(start, end, first, None)
    last = hour_of(end)
    if last < first:  # inside one hour
        return WindowSplit(start, end, None, None)
    return WindowSplit(start, end, first, last)  # first == last: no whole hour, two partial ones


@dataclass(frozen=True)
class Edge:
    """A partial hour of a window: the part ``[lower, upper)`` of the hour starting at ``hour``."""

    hour: datetime
    lower: datetime
    upper: datetime

    @property
    def raw(self) -> Q:
        return Q(timestamp__gte=self.lower, timestamp__lt=self.upper)

    @property
    def outside(self) -> tuple[datetime, datetime] | None:
        """The rest of the hour when it is one range (a window's first or last hour), else None."""
        if self.lower == self.hour:
            return self.upper, self.hour + _HOUR
        if self.upper == self.hour + _HOUR:
            return self.hour, self.lower
        return None


def window_edges(split: WindowSplit) -> list[Edge]:
    """The window's partial hours: none, one or two."""
    if split.whole_start is None:
        assert split.end is not None  # an open window has whole hours
        return [Edge(hour_of(split.start), split.start, split.end)]
    edges = []
    if split.start < split.whole_start:
        edges.append(Edge(hour_of(split.start), split.start, split.whole_start))
    if split.whole_end is not None and split.end is not None and split.whole_end < split.end:
        edges.append(Edge(split.whole_end, split.whole_end, split.end))
    return edges


EdgeRead = Literal["rollup", "nothing", "raw", "rollup minus raw"]


def edge_read(
    edge: Edge, first_at: datetime | None, last_at: datetime | None, *, unbounded: bool, kept_since: datetime | None
) -> EdgeRead:
    """How a partial hour is read, from the bounds of its rollups (over every model and name the query covers).

    ``first_at``/``last_at``: the earliest and latest record of the hour's rollups (None: no rollup,
    so no record); ``unbounded``: some rollup has no bounds (its raw rows pruned before bounds
    existed, migration 0019); ``kept_since``: raw rows older than this may have been pruned
    (``RETENTION_USAGE_DAYS``). Records all inside the edge: the rollups. All outside: nothing. Both:
    the raw rows of the smaller side, by time between the bounds (the part inside, or the rollups
    minus the rest of the hour: sums, counts and histogram buckets subtract exactly), unless the
    hour is past the raw rows' retention or has no bounds: then the whole hour's rollups (an answer
    for the whole hour rather than for none of it).
    """
    if first_at is None or last_at is None:
        return "rollup" if unbounded else "nothing"
    if unbounded:
        return "rollup"
    if first_at >= edge.lower and last_at < edge.upper:
        return "rollup"
    if last_at < edge.lower or first_at >= edge.upper:
        return "nothing"
    if kept_since is not None and edge.hour < kept_since:
        return "rollup"
    outside = edge.outside
    if outside is None:
        return "raw"
    inside_span = min(last_at, edge.upper) - max(first_at, edge.lower)
    outside_span = min(last_at, outside[1]) - max(first_at, outside[0])
    return "rollup minus raw" if outside_span < inside_span else "raw"


def raw_rows_kept_since() -> datetime | None:
    """The moment before which retention may have pruned raw usage rows (None: it keeps them all)."""
    days = int(settings.RETENTION_USAGE_DAYS)
    return timezone.now() - timedelta(days=days) if days > 0 else None


def _rollup_hours(split: WindowSplit) -> Q | None:
    if split.whole_start is None or (split.whole_end is not None and split.whole_end <= split.whole_start):
        return None
    hours = Q(hour__gte=split.whole_start)
    if split.whole_end is not None:
        hours &= Q(hour__lt=split.whole_end)
    return hours


def _rollup_hours_with_edges(split: WindowSplit) -> Q:
    """The hours of the window's rollups, its partial hours included: one contiguous range."""
    first = hour_of(split.start)
    if split.end is None:
        return Q(hour__gte=first)
    last = hour_of(split.end)
    if last < split.end:
        last += _HOUR
    return Q(hour__gte=first, hour__lt=last)


_RAW_SUMS: Final[dict[str, Any]] = {
    # COUNT(*), not of a column: the edge read can then be index-only (no column beyond those summed).
    "records": Count("*"),
    "requests": Sum("request_count"),
    "tokens": Sum("token_count"),
    "input_tokens": Sum("input_tokens"),
    "output_tokens": Sum("output_tokens"),
    "errors": Sum("error_count"),
    # Not named "cost": an annotation of a column's name would shadow the column in the filter below.
    "cost_total": Sum("cost"),
    "uncosted_requests": Sum("request_count", filter=Q(cost__isnull=True)),
    "latency_weighted": Sum(
        F("average_latency") * F("request_count"), filter=Q(average_latency__isnull=False), output_field=FloatField()
    ),
    "latency_requests": Sum("request_count", filter=Q(average_latency__isnull=False)),
    "latency_records": Count("average_latency"),
}

_ROLLUP_COLUMNS: Final = (*SUMMED, "cost", "latency_weighted")
_ROLLUP_SUMS: Final[dict[str, Any]] = {name: Sum(name) for name in _ROLLUP_COLUMNS if name != "cost"} | {
    "cost_total": Sum("cost")
}
# A group of a partial hour's rollups: its records' bounds, and whether some rollup has none.
_ROLLUP_BOUNDS: Final[dict[str, Any]] = {
    "earliest": Min("first_at"),
    "latest": Max("last_at"),
    "unbounded": Count("id", filter=Q(first_at__isnull=True)),
}


@dataclass
class _Bounds:
    """The bounds of a partial hour's rollups, widened row by row."""

    first_at: datetime | None = None
    last_at: datetime | None = None
    unbounded: bool = False

    def widen(self, first_at: datetime | None, last_at: datetime | None, *, unbounded: bool) -> None:
        self.unbounded = self.unbounded or unbounded
        if first_at is not None and (self.first_at is None or first_at < self.first_at):
            self.first_at = first_at
        if last_at is not None and (self.last_at is None or last_at > self.last_at):
            self.last_at = last_at


# A record's latency bucket computed by the database (registry/telemetry/histograms.py's bucket_of;
# Django provides LN and CEILING on SQLite), NULL without latency, _ZERO_BUCKET for zero.
_ZERO_BUCKET: Final = -(2**31)
_LATENCY_BUCKET: Final = Case(
    When(average_latency__isnull=True, then=Value(None)),
    When(average_latency__lte=0, then=Value(_ZERO_BUCKET)),
    default=Ceil(Ln("average_latency") / Value(math.log(GAMMA))),
    output_field=IntegerField(),
)


def _keys(by_model: bool, by_name: bool, bucket: Bucket | None, time_column: str) -> tuple[list[str], dict[str, Any]]:
    """The ``values()`` names of a grouping and the annotations that compute them."""
    names: list[str] = []
    computed: dict[str, Any] = {}
    if by_model:
        names.append("model_id")
    if by_name:
        names.append("model_name")
    if bucket == "day":
        computed["bucket_start"] = TruncDay(time_column, tzinfo=UTC)
        names.append("bucket_start")
    elif bucket == "hour":
        # A rollup's hour is its bucket already.
        computed["bucket_start"] = F("hour") if time_column == "hour" else TruncHour(time_column, tzinfo=UTC)
        names.append("bucket_start")
    return names, computed


def _group_key(row: dict[str, Any], names: list[str]) -> tuple[Any, ...]:
    return tuple(row[name] for name in names)


def usage_figures(
    *,
    start: datetime,
    end: datetime | None,
    model_ids: Sequence[int] | None = None,
    by_model: bool = False,
    by_name: bool = False,
    bucket: Bucket | None = None,
    histograms: bool = False,
) -> list[UsageFigures]:
    """Usage in ``[start, end)`` (``end`` None: everything from ``start`` on), summed per group.

    Grouped by model (``by_model``; with ``by_name`` also by the name recorded, as a model renamed or
    deleted keeps its history's name) and/or by UTC ``bucket`` ("hour" or "day"); over the models
    ``model_ids`` (None: every model, deleted ones included). ``histograms`` fills each group's
    latency histogram for percentiles. Groups without usage are absent; sorted by their keys.
    One or two queries: rollups of the window's hours, partial ones included, then raw rows of the
    partial hours their rollups cannot answer, if any (with histograms, grouped by latency bucket too);
    rarely a third (``_resolve_costs``); all of them in one snapshot (``_one_snapshot``).
    """
    with _one_snapshot():
        return _usage_figures(
            start=start,
            end=end,
            model_ids=model_ids,
            by_model=by_model,
            by_name=by_name,
            bucket=bucket,
            histograms=histograms,
        )


@contextlib.contextmanager
def _one_snapshot() -> Iterator[None]:
    """The block's reads in one snapshot of the database, when the caller has no transaction open.

    A record committed between the read of the rollups and the read of an edge's raw rows would
    otherwise be counted in one and not the other; in an hour read as its rollups minus the rest,
    it would be subtracted without having been added. PostgreSQL: a read-only REPEATABLE READ
    transaction (one statement more); SQLite: a transaction, whose reads share one snapshot. A
    caller's own transaction keeps its isolation.
    """
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _usage_figures(
    *,
    start: datetime,
    end: datetime | None,
    model_ids: Sequence[int] | None,
    by_model: bool,
    by_name: bool,
    bucket: Bucket | None,
    histograms: bool,
) -> list[UsageFigures]:
    split = split_window(start, end)
    edges = window_edges(split)
    groups: dict[tuple[Any, ...], UsageFigures] = {}
    raw_names, raw_computed = _keys(by_model, by_name, bucket, "timestamp")
    rollup_names, rollup_computed = _keys(by_model, by_name, bucket, "hour")

    def figures_of(row: dict[str, Any], names: list[str]) -> UsageFigures:
        key = _group_key(row, names)
        found = groups.get(key)
        if found is None:
            found = groups[key] = _figures_like(row)
        return found

    def add_rollup(row: dict[str, Any]) -> None:
        figures = figures_of(row, rollup_names)
        figures._add(row)
        if histograms:
            merge_into(figures.histogram, row["latency_histogram"] or {})

    # One query for the rollups of the whole hours and of the partial ones, each row marked with the
    # partial hour it is of (0: a whole hour): the partial hours' rows are set aside until their
    # bounds tell how to read those hours.
    rollups: QuerySet[UsageRollup] = UsageRollup.objects.filter(_rollup_hours_with_edges(split)).order_by()
    if model_ids is not None:
        rollups = rollups.filter(model_id__in=list(model_ids))
    marks = [When(hour=edge.hour, then=Value(index)) for index, edge in enumerate(edges, 1)]
    marked = {"edge": Case(*marks, default=Value(0), output_field=IntegerField())} if marks else {}
    rollups = rollups.annotate(**rollup_computed, **marked)
    names_read = [*rollup_names, *marked]
    set_aside: list[list[dict[str, Any]]] = [[] for _ in edges]
    bounds = [_Bounds() for _ in edges]
    if histograms:
        # The hours' rows as they are, summed here: their histograms merge in Python anyway.
        for row in rollups.values(*names_read, *_ROLLUP_COLUMNS, "latency_histogram", "first_at", "last_at"):
            if row.get("edge"):
                bounds[row["edge"] - 1].widen(row["first_at"], row["last_at"], unbounded=row["first_at"] is None)
                set_aside[row["edge"] - 1].append(row)
            else:
                add_rollup(row)
    else:
        for row in rollups.values(*names_read).annotate(**_ROLLUP_SUMS, **_ROLLUP_BOUNDS):
            row["cost"] = row["cost_total"]
            if row.get("edge"):
                bounds[row["edge"] - 1].widen(row["earliest"], row["latest"], unbounded=bool(row["unbounded"]))
                set_aside[row["edge"] - 1].append(row)
            else:
                add_rollup(row)
    kept_since = raw_rows_kept_since()
    raw_ranges: list[tuple[Q, int]] = []  # a range of raw rows to read, and the edge it is subtracted from (0: added)
    # Per edge read as its rollups minus the rest of its hour: its rollups' figures per group, less those raw rows.
    parts: dict[int, dict[tuple[Any, ...], UsageFigures]] = {}
    for index, (edge, found, rows) in enumerate(zip(edges, bounds, set_aside, strict=True), 1):
        read = edge_read(edge, found.first_at, found.last_at, unbounded=found.unbounded, kept_since=kept_since)
        if read == "rollup":
            for row in rows:
                add_rollup(row)
        elif read == "raw":
            raw_ranges.append((edge.raw, 0))
        elif read == "rollup minus raw" and edge.outside is not None:
            parts[index] = {}
            for row in rows:
                part = parts[index].setdefault(_group_key(row, rollup_names), _figures_like(row))
                part._add(row)
                if histograms:
                    merge_into(part.histogram, row["latency_histogram"] or {})
            lower, upper = edge.outside
            raw_ranges.append((Q(timestamp__gte=lower, timestamp__lt=upper), index))
    if raw_ranges:
        raw_names_read = [*raw_names, "latency_bucket"] if histograms else raw_names
        branches = []
        for edge_range, subtracted_from in raw_ranges:
            raw: QuerySet[ModelUsage] = ModelUsage.objects.filter(edge_range).order_by()
            if model_ids is not None:
                raw = raw.filter(model_id__in=list(model_ids))
            raw = raw.annotate(**raw_computed)
            if histograms:
                # Grouped by latency bucket as well: the edge's sums and its histogram in one query.
                raw = raw.annotate(latency_bucket=_LATENCY_BUCKET)
            marked_raw = raw.annotate(subtracted_from=Value(subtracted_from, output_field=IntegerField()))
            branches.append(marked_raw.values(*raw_names_read, "subtracted_from").annotate(**_RAW_SUMS))
        # A group in both edges (a bucket of a day, or no bucket) comes twice: figures_of adds them up.
        raw_rows = branches[0].union(*branches[1:], all=True) if len(branches) > 1 else branches[0]
        for row in raw_rows:
            row["cost"] = row["cost_total"]
            if row["subtracted_from"]:
                key = _group_key(row, raw_names)
                figures = parts[row["subtracted_from"]].setdefault(key, _figures_like(row))
                sign = -1
            else:
                figures = figures_of(row, raw_names)
                sign = 1
            figures._add(row if sign > 0 else _negated(row))
            if histograms and row["latency_bucket"] is not None:
                bucket_key = ZERO if row["latency_bucket"] == _ZERO_BUCKET else str(int(row["latency_bucket"]))
                figures.histogram[bucket_key] = figures.histogram.get(bucket_key, 0) + sign * int(
                    row["latency_records"]
                )
    for index, part_groups in parts.items():
        _resolve_costs(edges[index - 1], part_groups, raw_names, raw_computed, model_ids)
        for key, part in part_groups.items():
            if part.records:  # none left: the group has no record in the window's part of the hour
                group = groups.get(key)
                if group is None:
                    group = groups[key] = UsageFigures(
                        model_id=part.model_id, model_name=part.model_name, start=part.start
                    )
                group._merge(part)
    return [groups[key] for key in sorted(groups, key=_sortable)]


def _resolve_costs(
    edge: Edge,
    parts: dict[tuple[Any, ...], UsageFigures],
    names: list[str],
    computed: dict[str, Any],
    model_ids: Sequence[int] | None,
) -> None:
    """Tell "no record costed" (NULL) from "costed records summing to 0" in a subtraction's parts.

    An hour's cost less its outside part's says how much the records inside cost, not whether one
    of them has a cost: a difference of 0 could be either. For those groups only (free models, or
    every costed record outside), whether a record inside has a cost is asked of the raw rows.
    """
    unsure = [key for key, part in parts.items() if part.records and part.cost is not None and part.cost == 0]
    if not unsure:
        return
    costed: QuerySet[ModelUsage] = ModelUsage.objects.filter(edge.raw, cost__isnull=False).order_by()
    if model_ids is not None:
        costed = costed.filter(model_id__in=list(model_ids))
    found = {_group_key(row, names) for row in costed.annotate(**computed).values(*names).distinct()}
    for key in unsure:
        if key not in found:
            parts[key].cost = None


def _sortable(key: tuple[Any, ...]) -> tuple[Any, ...]:
    # A deleted model's id is None: it sorts first rather than failing to compare with an int.
    return tuple((value is not None, value) for value in key)


def usage_totals_by_model(
    *, start: datetime, end: datetime | None, histograms: bool = False
) -> dict[int, UsageFigures]:
    """Per existing model (deleted models' usage left out), its usage in ``[start, end)``."""
    return {
        row.model_id: row
        for row in usage_figures(start=start, end=end, by_model=True, histograms=histograms)
        if row.model_id is not None
    }


def latency_mean_since(since: datetime, model: Combinable | None = None) -> Any:
    """An expression: the request-weighted mean latency of the model ``model`` (default ``OuterRef("pk")``)
    since ``since``, NULL without latency; for annotating a query of models in that query itself.

    Four scalar subqueries: the weighted sum and its weight over the rollups of the whole hours
    from ``since`` on, and over the raw rows of ``since``'s partial hour. That partial hour comes
    from its rollups instead (and its raw rows are not read) when none of the model's records of
    the hour is before ``since``, or when the hour is past the raw rows' retention (as ``edge_read``).
    """
    model = model if model is not None else OuterRef("pk")
    split = split_window(since, None)
    edges = window_edges(split)
    kept_since = raw_rows_kept_since()
    if not edges or (kept_since is not None and edges[0].hour < kept_since):
        edge = None
        hours = Q(hour__gte=hour_of(since))
    else:
        (edge,) = edges  # open-ended: the one partial hour at its start
        # A condition on the model alone, not on the rows: PostgreSQL tests it once per model,
        # before reading either table (a one-time filter). Used inside the subqueries below, so an
        # outer reference reaches one level further out.
        owner = OuterRef(model) if isinstance(model, OuterRef) else model
        before = Exists(UsageRollup.objects.filter(model_id=owner, hour=edge.hour, first_at__lt=since))
        hours = Q(hour__gte=edge.hour) & (Q(hour__gt=edge.hour) | Q(~before))

    def scalar(queryset: QuerySet[Any], expression: Any) -> Any:
        summed = queryset.order_by().values("model_id").annotate(total=Sum(expression, output_field=FloatField()))
        return Coalesce(Subquery(summed.values("total")[:1], output_field=FloatField()), 0.0, output_field=FloatField())

    rollups = UsageRollup.objects.filter(hours, model_id=model)
    weighted = scalar(rollups, "latency_weighted")
    weight = scalar(rollups, Cast("latency_requests", FloatField()))
    if edge is not None:
        raw = ModelUsage.objects.filter(edge.raw, before, model_id=model, average_latency__isnull=False)
        weighted += scalar(raw, F("average_latency") * F("request_count"))
        weight += scalar(raw, Cast("request_count", FloatField()))
    return weighted / NullIf(weight, 0.0)
