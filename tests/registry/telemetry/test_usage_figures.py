"""Usage figures from hourly rollups: the same answers as raw aggregation, and no raw scan beyond the edges."""

from __future__ import annotations

import importlib
import random
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, connections
from django.utils import timezone

from registry.catalog.prices import price_set
from registry.console.dashboard import model_charts, usage_overview
from registry.models import ModelUsage, RegisteredModel, UsageRollup
from registry.selection.explain import recent_usage
from registry.selection.ranking import models_ranked
from registry.telemetry import alerts
from registry.telemetry.histograms import RELATIVE_ERROR, histogram_of, percentile
from registry.telemetry.rollups import hour_of, usage_rollups_rebuild
from registry.telemetry.selectors import usage_summary
from registry.telemetry.services import usage_record_batch, usage_record_idempotent
from registry.telemetry.usage import Bucket, latency_mean_since, usage_figures
from tests.factories import ModelCapabilityFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

rollup_migration = importlib.import_module("registry.migrations.0017_usage_rollups")
bounds_migration = importlib.import_module("registry.migrations.0019_rollup_edges")

# A fixed "now" on a minute that is not on the hour: windows then have partial edge hours.
NOW = datetime(2026, 11, 20, 14, 37, 21, 500_000, tzinfo=UTC)
SPAN = timedelta(days=3)


@pytest.fixture(autouse=True)
def raw_rows_kept(settings: Any) -> None:
    """No raw-row retention: NOW is a fixed date, and once the clock is past its retention a partial
    hour of it would read as its whole rollup (registry/telemetry/usage.py, ``edge_read``)."""
    settings.RETENTION_USAGE_DAYS = 0


def exact_percentile(values: list[float], fraction: float) -> float:
    """The reference: linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def random_record(rng: random.Random) -> dict[str, Any]:
    """A usage record with every optional field sometimes missing, at a moment of the last three days."""
    record: dict[str, Any] = {
        "timestamp": NOW - timedelta(seconds=rng.uniform(0, SPAN.total_seconds())),
        "request_count": rng.choice([0, 1, 1, 1, 3, 20]),
        "error_count": rng.choice([0, 0, 0, 1]),
    }
    if rng.random() < 0.8:
        record["average_latency"] = rng.choice([0.0, rng.lognormvariate(-1, 1.2)])
    if rng.random() < 0.5:
        record["input_tokens"], record["output_tokens"] = rng.randint(0, 5000), rng.randint(0, 2000)
    elif rng.random() < 0.5:
        record["token_count"] = rng.randint(0, 9000)
    if rng.random() < 0.6:
        record["cost"] = Decimal(rng.randint(0, 10**7)) / Decimal(10**6)
    return record


def ingest(rng: random.Random, models: list[RegisteredModel], count: int) -> None:
    """``count`` random records through the ingestion service, in batches of mixed models' hours."""
    for _ in range(count // 25):
        usage_record_batch(model=rng.choice(models), records=[random_record(rng) for _ in range(25)])


def raw_figures(
    *, start: datetime, end: datetime | None, model_ids: list[int] | None, by_model: bool, bucket: Bucket | None
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The ground truth: the stored raw rows of the window, summed in Python per group."""
    rows = ModelUsage.objects.filter(timestamp__gte=start)
    if end is not None:
        rows = rows.filter(timestamp__lt=end)
    if model_ids is not None:
        rows = rows.filter(model_id__in=model_ids)
    groups: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(
        lambda: (
            {"requests": 0, "tokens": 0, "input_tokens": 0, "output_tokens": 0, "errors": 0, "records": 0}
            | {"cost": None, "uncosted_requests": 0, "weighted": 0.0, "weight": 0, "latencies": []}
        )
    )
    for row in rows:
        key: tuple[Any, ...] = ()
        if by_model:
            key += (row.model_id,)
        if bucket is not None:
            moment = row.timestamp.astimezone(UTC)
            key += (hour_of(moment) if bucket == "hour" else moment.replace(hour=0, minute=0, second=0, microsecond=0),)
        group = groups[key]
        group["records"] += 1
        group["requests"] += row.request_count
        group["tokens"] += row.token_count or 0
        group["input_tokens"] += row.input_tokens or 0
        group["output_tokens"] += row.output_tokens or 0
        group["errors"] += row.error_count
        if row.cost is None:
            group["uncosted_requests"] += row.request_count
        else:
            group["cost"] = (group["cost"] or Decimal(0)) + row.cost
        if row.average_latency is not None:
            group["weighted"] += row.average_latency * row.request_count
            group["weight"] += row.request_count
            group["latencies"].append(row.average_latency)
    return groups


def random_window(rng: random.Random) -> tuple[datetime, datetime | None]:
    start = NOW - timedelta(seconds=rng.uniform(0, SPAN.total_seconds() + 3600))
    kind = rng.random()
    if kind < 0.15:
        start = hour_of(start)  # on the hour: no edge at the start
    if kind < 0.1:
        return start, None  # open-ended, as selection's recent figures
    length = rng.choice([rng.uniform(0, 3600), rng.uniform(3600, 7200), rng.uniform(0, 4 * 86400)])
    end = start + timedelta(seconds=length)
    return start, hour_of(end) if rng.random() < 0.15 else end


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollup_answers_equal_raw_aggregation_over_random_data_buckets_and_windows(seed: int) -> None:
    rng = random.Random(seed)
    models = [RegisteredModelFactory() for _ in range(3)]
    ingest(rng, models, 600)

    for _ in range(40):
        start, end = random_window(rng)
        by_model = rng.random() < 0.5
        bucket: Bucket | None = rng.choice([None, "hour", "day"])
        model_ids = rng.choice([None, [models[0].pk], [models[1].pk, models[2].pk]])
        assert_figures_equal_raw(
            start=start, end=end, model_ids=model_ids, by_model=by_model, bucket=bucket, histograms=True
        )


def assert_figures_equal_raw(
    *,
    start: datetime,
    end: datetime | None,
    model_ids: list[int] | None,
    by_model: bool,
    bucket: Bucket | None,
    histograms: bool,
) -> None:
    """``usage_figures`` of the window against the raw rows summed in Python: equal (percentiles within the bound)."""
    found = usage_figures(
        start=start, end=end, model_ids=model_ids, by_model=by_model, bucket=bucket, histograms=histograms
    )
    expected = raw_figures(start=start, end=end, model_ids=model_ids, by_model=by_model, bucket=bucket)
    case = f"window [{start}, {end}) by_model={by_model} bucket={bucket} models={model_ids} histograms={histograms}"

    keys = [((row.model_id,) if by_model else ()) + ((row.start,) if bucket else ()) for row in found]
    assert keys == sorted(expected), case
    for key, row in zip(keys, found, strict=True):
        truth = expected[key]
        for name in ("records", "requests", "tokens", "input_tokens", "output_tokens", "errors"):
            assert getattr(row, name) == truth[name], f"{name}: {case}"
        assert row.cost == truth["cost"], case
        assert row.uncosted_requests == truth["uncosted_requests"], case
        assert row.latency_requests == truth["weight"], case
        assert row.latency_records == len(truth["latencies"]), case
        if truth["weight"]:
            assert row.average_latency == pytest.approx(truth["weighted"] / truth["weight"], rel=1e-9), case
        else:
            assert row.average_latency is None, case
        if not histograms:
            continue
        for fraction in (0.5, 0.95, 0.99):
            exact = exact_percentile(truth["latencies"], fraction) if truth["latencies"] else None
            estimate = row.latency_percentile(fraction)
            if exact is None:
                assert estimate is None, case
            else:
                assert estimate == pytest.approx(exact, rel=RELATIVE_ERROR, abs=1e-12), f"p{fraction}: {case}"


def test_a_usage_summary_equals_the_raw_sums_per_bucket() -> None:
    rng = random.Random(7)
    model = RegisteredModelFactory()
    ingest(rng, [model], 300)
    start, end = NOW - timedelta(days=2, minutes=13), NOW - timedelta(minutes=5)

    for bucket in ("hour", "day"):
        summary = usage_summary(model_id=model.pk, bucket=bucket, start=start, end=end)
        expected = raw_figures(start=start, end=end, model_ids=[model.pk], by_model=False, bucket=bucket)
        assert [b["start"] for b in summary["buckets"]] == [key[0] for key in sorted(expected)]
        assert [b["requests"] for b in summary["buckets"]] == [expected[key]["requests"] for key in sorted(expected)]
        assert summary["totals"]["requests"] == sum(group["requests"] for group in expected.values())
        assert summary["totals"]["cost"] == sum((group["cost"] or 0 for group in expected.values()), start=0)


def test_percentiles_from_histograms_stay_within_the_stated_bound() -> None:
    rng = random.Random(11)
    for _ in range(200):
        values = [rng.lognormvariate(rng.uniform(-6, 3), rng.uniform(0.01, 3)) for _ in range(rng.randint(1, 400))]
        histogram = histogram_of(values)
        for fraction in (0.0, 0.5, 0.9, 0.95, 0.99, 1.0):
            assert percentile(histogram, fraction) == pytest.approx(
                exact_percentile(values, fraction), rel=RELATIVE_ERROR
            )
    assert RELATIVE_ERROR < 0.02


# --- The rollups as ingestion keeps them ---------------------------------------------------------------


def test_a_late_record_lands_in_its_own_hours_rollup() -> None:
    model = RegisteredModelFactory()
    moment = timezone.now() - timedelta(days=2, minutes=7)
    usage_record_batch(model=model, records=[{"timestamp": moment, "request_count": 4, "average_latency": 0.25}])

    rollup = UsageRollup.objects.get(model=model)
    assert rollup.hour == hour_of(moment)
    assert (rollup.records, rollup.requests, rollup.latency_requests) == (1, 4, 4)
    assert rollup.latency_weighted == pytest.approx(1.0)


def test_a_back_dated_price_moves_the_recosted_records_into_their_rollups_known_cost() -> None:
    model = RegisteredModelFactory(input_cost_per_mtok=None, output_cost_per_mtok=None)
    moment = timezone.now() - timedelta(days=1, minutes=7)
    records = [{"timestamp": moment, "input_tokens": 1_000_000, "output_tokens": 0, "request_count": 3}]
    usage_record_batch(model=model, records=[*records, {**records[0], "cost": "0.5", "request_count": 2}])
    assert UsageRollup.objects.get(model=model).uncosted_requests == 3

    price_set(
        model=model,
        input_per_mtok=Decimal("2"),
        output_per_mtok=Decimal("4"),
        effective_from=moment - timedelta(days=1),
    )

    rollup = UsageRollup.objects.get(model=model)
    # The whole hour is read from the rollup: it must now say what the raw rows say.
    assert (rollup.cost, rollup.uncosted_requests) == (Decimal("2.5"), 0)
    summary = usage_summary(model_id=model.pk, bucket="day", start=moment - timedelta(days=1), end=timezone.now())
    assert (summary["totals"]["cost"], summary["totals"]["uncosted_requests"]) == (Decimal("2.5"), 0)


def test_a_retried_request_id_is_counted_once_in_its_rollup() -> None:
    model = RegisteredModelFactory()
    records = [{"request_id": "req-1", "request_count": 1}, {"request_id": "req-2", "request_count": 2}]

    assert usage_record_idempotent(model=model, records=records) == 2
    assert usage_record_idempotent(model=model, records=[*records, {"request_id": "req-3"}]) == 1

    assert list(UsageRollup.objects.filter(model=model).values_list("records", "requests")) == [(3, 4)]


def test_a_rejected_batch_leaves_no_rollup() -> None:
    model = RegisteredModelFactory()
    usage_record_batch(model=model, records=[{"request_count": 1}])
    before = list(UsageRollup.objects.values_list("requests", flat=True))

    with pytest.raises(Exception):  # noqa: B017, PT011 (the database's CHECK: IntegrityError, whatever wraps it)
        usage_record_batch(model=model, records=[{"request_count": 2}, {"request_count": -1}])

    assert list(UsageRollup.objects.values_list("requests", flat=True)) == before == [1]


def test_the_migrations_build_the_rollups_ingestion_would_have_kept() -> None:
    rng = random.Random(5)
    models = [RegisteredModelFactory() for _ in range(2)]
    ingest(rng, models, 200)
    kept = sorted(rollup_fields(UsageRollup.objects.all()))
    UsageRollup.objects.all().delete()

    rollup_migration.build_rollups(apps, SimpleNamespace(connection=connection))
    bounds_migration.fill_bounds(apps, SimpleNamespace(connection=connection))

    built = sorted(rollup_fields(UsageRollup.objects.all()))
    assert [row[:-2] for row in built] == [row[:-2] for row in kept]
    for built_row, kept_row in zip(built, kept, strict=True):
        assert built_row[-2] == pytest.approx(kept_row[-2], rel=1e-9)  # a float sum, in another order
        assert built_row[-1] == kept_row[-1]  # the same histogram buckets


def test_a_rebuild_recomputes_whole_hours_from_the_raw_rows() -> None:
    rng = random.Random(9)
    models = [RegisteredModelFactory() for _ in range(2)]
    ingest(rng, models, 200)
    kept = sorted(rollup_fields(UsageRollup.objects.all()))
    start, end = hour_of(NOW - timedelta(days=2)), hour_of(NOW) + timedelta(hours=1)
    UsageRollup.objects.filter(hour__gte=start, hour__lt=end).update(requests=0, latency_histogram={})

    usage_rollups_rebuild(start=start, end=end)

    rebuilt = sorted(rollup_fields(UsageRollup.objects.all()))
    assert [row[:-2] for row in rebuilt] == [row[:-2] for row in kept]
    assert [row[-1] for row in rebuilt] == [row[-1] for row in kept]
    with pytest.raises(ValueError, match="whole UTC hours"):
        usage_rollups_rebuild(start=start + timedelta(minutes=1), end=end)


def test_each_rollup_holds_the_first_and_last_record_of_its_hour() -> None:
    rng = random.Random(13)
    models = [RegisteredModelFactory() for _ in range(2)]
    ingest(rng, models, 300)  # batches spread over three days: most hours are added to many times

    truth: dict[tuple[Any, ...], list[datetime]] = defaultdict(list)
    for model_id, moment in ModelUsage.objects.values_list("model_id", "timestamp"):
        truth[(model_id, hour_of(moment))].append(moment)
    found = {(r.model_id, r.hour): (r.first_at, r.last_at) for r in UsageRollup.objects.all()}
    assert found == {key: (min(moments), max(moments)) for key, moments in truth.items()}


def test_a_rollup_without_bounds_keeps_them_unknown_when_a_late_record_arrives() -> None:
    # An hour whose raw rows were pruned before migration 0018 gave the rollups bounds: a record
    # added later must not make the bounds look known (they would be the late record's alone).
    model = RegisteredModelFactory()
    moment = NOW - timedelta(minutes=20)
    usage_record_batch(model=model, records=[{"timestamp": moment}])
    UsageRollup.objects.update(first_at=None, last_at=None)

    usage_record_batch(model=model, records=[{"timestamp": moment + timedelta(minutes=5)}])

    rollup = UsageRollup.objects.get()
    assert (rollup.records, rollup.first_at, rollup.last_at) == (2, None, None)


def rollup_fields(rollups: Any) -> Iterator[tuple[Any, ...]]:
    for rollup in rollups:
        yield (
            rollup.model_id,
            rollup.model_name,
            rollup.hour,
            rollup.records,
            rollup.requests,
            rollup.tokens,
            rollup.input_tokens,
            rollup.output_tokens,
            rollup.errors,
            rollup.cost,
            rollup.uncosted_requests,
            rollup.latency_requests,
            rollup.latency_records,
            rollup.first_at,
            rollup.last_at,
            rollup.latency_weighted,
            {key: int(count) for key, count in rollup.latency_histogram.items()},
        )


# --- No reader scans raw rows beyond the partial hours of its window ------------------------------------

_RAW_TABLE = re.compile(r'"model_usage"(?!_)')
_BOUND = re.compile(r'"timestamp"\s*(>=|<)\s*$')


def _moment(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def raw_ranges(sql: str, params: Any) -> list[tuple[datetime | None, datetime | None]]:
    """The ``[lower, upper)`` ranges of ``model_usage.timestamp`` a query reads, from its placeholders."""
    parts = sql.split("%s")
    ranges: list[tuple[datetime | None, datetime | None]] = []
    lower: datetime | None = None
    for index, before in enumerate(parts[:-1]):
        match = _BOUND.search(before)
        if match is None:
            continue
        if match.group(1) == ">=":
            if lower is not None:
                ranges.append((lower, None))
            lower = _moment(params[index])
        else:
            ranges.append((lower, _moment(params[index])))
            lower = None
    if lower is not None:
        ranges.append((lower, None))
    return ranges


@pytest.fixture
def raw_reads() -> Iterator[list[tuple[str, list[tuple[datetime | None, datetime | None]]]]]:
    """Every query on raw ``model_usage`` run in the block, with the timestamp ranges it reads."""
    seen: list[tuple[str, list[tuple[datetime | None, datetime | None]]]] = []

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if _RAW_TABLE.search(sql) and sql.lstrip("( \n").upper().startswith("SELECT"):
            seen.append((sql, raw_ranges(sql, params or ())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield seen


def readers(model: RegisteredModel, now: datetime) -> dict[str, Callable[[], Any]]:
    return {
        "usage summary, hours": lambda: usage_summary(
            model_id=model.pk, bucket="hour", start=now - timedelta(days=30), end=now
        ),
        "usage summary, days": lambda: usage_summary(
            model_id=model.pk, bucket="day", start=now - timedelta(days=30), end=now
        ),
        "dashboard": lambda: usage_overview(now=now),
        "charts 24h": lambda: model_charts(model_id=model.pk, chart_range="24h", now=now),
        "charts 7d": lambda: model_charts(model_id=model.pk, chart_range="7d", now=now),
        "charts 30d": lambda: model_charts(model_id=model.pk, chart_range="30d", now=now),
        "alert checks": lambda: alerts.alerts_check(now=now),
        "selection ranking": lambda: list(models_ranked(capabilities=["code"], since=now - timedelta(hours=24))),
        "selection's recent usage": lambda: recent_usage([model.pk], since=now - timedelta(hours=24)),
    }


def reading_now() -> datetime:
    """A "now" at 37 minutes past an hour that is over: windows ending then have a partial last hour
    (and a record a few minutes after it is still in the past of the clock)."""
    return hour_of(timezone.now()) - timedelta(hours=1) + timedelta(minutes=37, seconds=21, microseconds=500_000)


def assert_partial_hours_only(name: str, raw_reads: list[Any]) -> None:
    for sql, ranges in raw_reads:
        assert ranges, f"{name}: a query on model_usage without a time range: {sql}"
        for lower, upper in ranges:
            assert lower is not None, f"{name}: an open range on model_usage: {sql}"
            assert upper is not None, f"{name}: an open range on model_usage: {sql}"
            assert hour_of(lower) == hour_of(upper - timedelta(microseconds=1)), (
                f"{name}: reads model_usage over [{lower}, {upper}), more than a partial hour"
            )


def test_no_statistics_reader_scans_raw_rows_beyond_the_partial_hours(raw_reads: list[Any]) -> None:
    model = RegisteredModelFactory()
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.9)
    now = reading_now()
    # A record a second either side of every "now minus whole hours": each window's partial hours
    # hold records inside and outside it, so each must be read from raw rows.
    usage_record_batch(
        model=model,
        records=[
            {"timestamp": now - timedelta(hours=h, seconds=s), "average_latency": 0.2, "request_count": 3}
            for h in range(48)
            for s in (-1, 1)
        ],
    )

    for name, read in readers(model, now).items():
        raw_reads.clear()
        read()
        assert raw_reads, f"{name}: read no raw row at all (its partial hours hold records on both sides)"
        assert_partial_hours_only(name, raw_reads)


def test_no_reader_reads_raw_rows_when_the_partial_hours_records_are_all_inside_or_all_outside(
    raw_reads: list[Any],
) -> None:
    model = RegisteredModelFactory()
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.9)
    now = reading_now()
    # Records at ten past each hour: before every window's start in its first hour (none inside),
    # before every window's end in its last hour (all inside).
    usage_record_batch(
        model=model,
        records=[
            {"timestamp": hour_of(now) - timedelta(hours=h) + timedelta(minutes=10), "average_latency": 0.2}
            for h in range(48)
        ],
    )

    for name, read in readers(model, now).items():
        raw_reads.clear()
        read()
        if name == "selection ranking":
            # Its raw subquery is in its SQL whatever the bounds, skipped by PostgreSQL when they
            # allow (test_the_recent_latency_mean_reads_the_partial_hour_from_raw_rows_only_when_it_must).
            assert_partial_hours_only(name, raw_reads)
        else:
            assert raw_reads == [], f"{name}: read raw rows its partial hours' rollups answer"
    for bucket in ("hour", "day", None):
        assert_figures_equal_raw(
            start=now - timedelta(days=30), end=now, model_ids=None, by_model=True, bucket=bucket, histograms=True
        )


def test_a_record_after_the_end_of_a_window_in_its_last_hour_is_left_out(raw_reads: list[Any]) -> None:
    model = RegisteredModelFactory()
    now = reading_now()
    records = [{"timestamp": hour_of(now) - timedelta(hours=h, minutes=-10), "request_count": 2} for h in range(5)]
    usage_record_batch(model=model, records=[*records, {"timestamp": now + timedelta(minutes=10), "request_count": 7}])

    summary = usage_summary(model_id=model.pk, bucket="hour", start=now - timedelta(days=1), end=now)

    assert summary["totals"]["requests"] == 10  # not the 7 after the end
    # The last hour only reads raw rows, those after the end (its smaller side), less its rollup.
    ((_, ranges),) = raw_reads
    assert ranges == [(now, hour_of(now) + timedelta(hours=1))]
    for bucket in ("hour", None):
        for histograms in (True, False):
            assert_figures_equal_raw(
                start=now - timedelta(days=1),
                end=now,
                model_ids=[model.pk],
                by_model=False,
                bucket=bucket,
                histograms=histograms,
            )


# Records at :10 and :50 of each hour. A window's first hour from :05 holds all of its records
# (read from the rollup), from :55 none; from :20 the rest of the hour is the smaller side (the
# rollup minus the raw rows of [:00, :20)), from :40 the part inside is ([:40, :60) read). The last
# hour likewise, mirrored. Raw rows read, as (lower, upper) offsets from the hour's start:
_START_READS: dict[int, tuple[int, int] | None] = {5: None, 20: (0, 20), 40: (40, 60), 55: None}
_END_READS: dict[int, tuple[int, int] | None] = {5: None, 20: (0, 20), 40: (40, 60), 55: None}


@pytest.mark.parametrize("start_minute", [5, 20, 40, 55])
@pytest.mark.parametrize("end_minute", [5, 20, 40, 55])
@pytest.mark.parametrize("hours", [0, 1, 3])
def test_partial_hours_read_raw_rows_only_when_their_records_are_on_both_sides_of_the_bound(
    raw_reads: list[Any], start_minute: int, end_minute: int, hours: int
) -> None:
    models = [RegisteredModelFactory(), RegisteredModelFactory()]
    first = hour_of(NOW) - timedelta(hours=6)
    for index, model in enumerate(models):
        usage_record_batch(
            model=model,
            records=[
                {
                    "timestamp": first + timedelta(hours=h, minutes=m, seconds=index),
                    "average_latency": 0.1 * (h + 1) + m / 100,
                    "request_count": m // 10,
                    # No cost of 0 nor NULL: a difference of 0 would be checked with raw rows (the next test).
                    "cost": "0.1" if m == 10 else "0.25",
                }
                for h in range(6)
                for m in (10, 50)
            ],
        )
    start = first + timedelta(hours=1, minutes=start_minute)
    end = first + timedelta(hours=1 + hours, minutes=end_minute)
    if end <= start:
        pytest.skip("an empty window")

    raw_reads.clear()
    for bucket in ("hour", "day", None):
        for histograms in (True, False):
            usage_figures(start=start, end=end, by_model=True, bucket=bucket, histograms=histograms)
    read = {r for _, ranges in raw_reads for r in ranges}

    for bucket in ("hour", "day", None):
        for histograms in (True, False):
            assert_figures_equal_raw(
                start=start, end=end, model_ids=None, by_model=True, bucket=bucket, histograms=histograms
            )
    expected: set[tuple[datetime | None, datetime | None]] = set()
    if hours == 0:  # one partial hour, [start, end): no single range for the rest of it, the part inside is read
        all_inside = start_minute < 10 and end_minute > 50
        all_outside = start_minute > 50 or end_minute <= 10  # by the bounds: [:20, :40) holds none but is read
        if not all_inside and not all_outside:
            expected.add((start, end))
    else:
        for moment, reads in ((start, _START_READS[start_minute]), (end, _END_READS[end_minute])):
            if reads is not None:
                expected.add(
                    (hour_of(moment) + timedelta(minutes=reads[0]), hour_of(moment) + timedelta(minutes=reads[1]))
                )
    assert read == expected


@pytest.mark.parametrize(("inside_cost", "truth"), [(None, None), ("0", Decimal(0)), ("0.5", Decimal("1.0"))])
def test_a_partial_hour_read_as_its_rollup_minus_the_rest_says_whether_a_record_inside_has_a_cost(
    raw_reads: list[Any], inside_cost: str | None, truth: Decimal | None
) -> None:
    # The hour's cost less its outside part's is 0 both when no record inside has a cost (NULL) and
    # when they cost 0 (a free model): the raw rows inside are asked which, only then.
    model = RegisteredModelFactory()
    hour = hour_of(NOW) - timedelta(hours=3)
    outside = [{"timestamp": hour + timedelta(minutes=m), "cost": "0.25"} for m in (5, 6, 7)]
    inside = [{"timestamp": hour + timedelta(minutes=m), "cost": inside_cost} for m in (40, 50)]
    usage_record_batch(model=model, records=[*outside, *inside])
    start = hour + timedelta(minutes=20)  # 15 minutes of records before it, 30 after: the rest is read

    raw_reads.clear()
    (first, *_) = usage_figures(start=start, end=NOW, bucket="hour")

    assert (first.start, first.records, first.cost) == (hour, 2, truth)
    ranges = [ranges for _, ranges in raw_reads]
    assert ranges[0] == [(hour, start)]
    assert ranges[1:] == ([[(start, hour + timedelta(hours=1))]] if truth is None or truth == 0 else [])
    assert_figures_equal_raw(start=start, end=NOW, model_ids=None, by_model=False, bucket="hour", histograms=True)


def test_a_partial_hour_whose_rollup_has_no_bounds_reads_as_its_whole_rollup(raw_reads: list[Any]) -> None:
    # Bounds are unknown only for an hour whose raw rows were pruned before migration 0018.
    model = RegisteredModelFactory()
    hour = hour_of(NOW) - timedelta(hours=5)
    usage_record_batch(model=model, records=[{"timestamp": hour + timedelta(minutes=m)} for m in (10, 50)])
    ModelUsage.objects.all().delete()
    UsageRollup.objects.update(first_at=None, last_at=None)

    (row,) = usage_figures(start=hour + timedelta(minutes=30), end=NOW)

    assert row.records == 2
    assert raw_reads == []


def test_a_partial_hour_past_the_raw_rows_retention_reads_as_its_whole_rollup(
    settings: Any, raw_reads: list[Any]
) -> None:
    settings.RETENTION_USAGE_DAYS = 30
    model = RegisteredModelFactory()
    old = hour_of(timezone.now()) - timedelta(days=40)
    recent = hour_of(timezone.now()) - timedelta(days=20)
    records = [{"timestamp": hour + timedelta(minutes=m)} for hour in (old, recent) for m in (10, 50)]
    usage_record_batch(model=model, records=records)

    (past,) = usage_figures(start=old + timedelta(minutes=30), end=old + timedelta(hours=2))
    assert past.records == 2  # the whole hour: its raw rows may be gone (partly or all)
    assert raw_reads == []
    (kept,) = usage_figures(start=recent + timedelta(minutes=30), end=recent + timedelta(hours=2))
    assert kept.records == 1  # exact: raw rows of the hour's part inside the window
    assert [ranges for _, ranges in raw_reads] == [[(recent + timedelta(minutes=30), recent + timedelta(hours=1))]]


def raw_scans_run(queryset: Any) -> list[bool]:
    """Per scan of ``model_usage`` in the query's PostgreSQL plan: whether it ran (EXPLAIN ANALYZE)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}", params)
        plan = [line for (line,) in cursor.fetchall()]
    # On a partition of it (model_usage_pYYYYMMDD) on PostgreSQL, where the table is partitioned by day.
    scanned = re.compile(r" on model_usage(_p\d{8}|_legacy)?( |$)")
    return [("never executed" not in line) for line in plan if scanned.search(line)]


@pytest.mark.parametrize("since_minute", [5, 30, 55])
def test_the_recent_latency_mean_reads_the_partial_hour_from_raw_rows_only_when_it_must(
    on_postgres: bool, since_minute: int
) -> None:
    model = RegisteredModelFactory()
    first = hour_of(NOW) - timedelta(hours=4)
    records = [
        {"timestamp": first + timedelta(hours=h, minutes=m), "average_latency": 0.1 * (h + 1) + m / 100}
        for h in range(4)
        for m in (10, 50)
    ]
    usage_record_batch(model=model, records=records)
    since = first + timedelta(hours=1, minutes=since_minute)
    means = RegisteredModel.objects.filter(pk=model.pk).annotate(mean=latency_mean_since(since))

    latencies = [record["average_latency"] for record in records if record["timestamp"] >= since]
    assert list(means.values_list("mean", flat=True)) == [pytest.approx(sum(latencies) / len(latencies), rel=1e-9)]
    if on_postgres:
        # From :05 the hour's rollup holds no record before ``since``: its raw rows are not read
        # (the subqueries' one-time filter); from :30 or :55 they are. SQLite's plan is not inspected.
        scans = raw_scans_run(means)
        assert scans, "no scan of model_usage in the plan"
        assert set(scans) == {since_minute != 5}


def test_the_scan_check_catches_a_reader_that_aggregates_raw_rows(raw_reads: list[Any]) -> None:
    now = timezone.now()
    list(ModelUsage.objects.filter(timestamp__gte=now - timedelta(days=1), timestamp__lt=now).values("model_id"))

    ((_, ranges),) = raw_reads
    ((lower, upper),) = ranges
    assert hour_of(lower) != hour_of(upper - timedelta(microseconds=1))


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_of_one_model_hour_add_up_in_its_rollup(on_postgres: bool) -> None:
    if not on_postgres:
        pytest.skip("SQLite serializes writers: no two batches are ever concurrent")
    model = RegisteredModelFactory()
    hour = hour_of(timezone.now())
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        try:
            barrier.wait()
            for _ in range(10):
                records = [
                    {"timestamp": hour + timedelta(seconds=rng.uniform(0, 3599)), "average_latency": rng.random()}
                    for _ in range(20)
                ]
                usage_record_batch(model=model, records=records)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    rollup = UsageRollup.objects.get(model=model, hour=hour)
    assert (rollup.records, rollup.requests, rollup.latency_records) == (1200, 1200, 1200)
    assert sum(rollup.latency_histogram.values()) == 1200
    truth = raw_figures(start=hour, end=hour + timedelta(hours=1), model_ids=[model.pk], by_model=False, bucket=None)
    assert rollup.latency_weighted == pytest.approx(truth[()]["weighted"], rel=1e-9)


@pytest.mark.django_db(transaction=True)
def test_a_record_committed_between_the_rollups_and_the_raw_rows_is_counted_in_both_or_neither(
    on_postgres: bool,
) -> None:
    if not on_postgres:
        pytest.skip("SQLite: writers from other processes; this test commits from another connection of this one")
    model = RegisteredModelFactory()
    hour = hour_of(NOW) - timedelta(hours=5)
    usage_record_batch(model=model, records=[{"timestamp": hour + timedelta(minutes=m)} for m in (10, 50)])
    # From :15 the hour is read as its rollups minus its raw rows before :15 (the smaller side).
    start, end = hour + timedelta(minutes=15), hour + timedelta(hours=2)
    other = connections.create_connection("default")
    committed: list[str] = []

    def commit_a_late_record_after_the_rollups(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if "model_usage_rollup" in sql and not committed:
            # Another client's record of the same hour, before the window, committed between the reads.
            with other.cursor() as cursor:
                cursor.execute(
                    'INSERT INTO model_usage (model_id, model_name, "timestamp", request_count, error_count) '
                    "VALUES (%s, %s, %s, 1, 0)",
                    [model.pk, model.name, hour + timedelta(minutes=5)],
                )
            other.commit()
            committed.append(sql)
        return result

    try:
        other.set_autocommit(False)
        with connection.execute_wrapper(commit_a_late_record_after_the_rollups):
            (figures,) = usage_figures(start=start, end=end)
    finally:
        other.close()

    assert committed
    assert figures.records == 1  # the record at :50; read apart, the late one was subtracted unadded: 0
    (after,) = usage_figures(start=start, end=end)
    assert after.records == 1  # and the late record, before the window, stays outside it
