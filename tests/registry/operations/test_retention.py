"""Retention: each table loses exactly its rows past the cutoff, in bounded batches, one prune at a time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from discovery.models import DiscoveryRun, ProviderSource, RunStatus
from registry import tasks
from registry.models import (
    Alert,
    AlertKind,
    ModelPerformance,
    ModelStatus,
    ModelStatusEvent,
    ModelUsage,
    RegisteredModel,
    StatusEventKind,
    StatusEventOrigin,
    TrustedNetworkRead,
    UsageRequestId,
    UsageRollup,
)
from registry.operations import retention
from registry.operations.retention import LOCK_KEY, LOCK_NAMESPACE, retention_apply
from registry.partitions import day_start
from registry.telemetry.availability import availability
from registry.telemetry.selectors import usage_summary
from registry.telemetry.services import usage_record_batch
from tests.factories import (
    ModelPerformanceFactory,
    ModelUsageFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
)
from tests.registry.operations.test_metrics import scrape

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
DAYS = 10
JUST_PAST = NOW - timedelta(days=DAYS, seconds=1)
JUST_WITHIN = NOW - timedelta(days=DAYS) + timedelta(seconds=1)
# Raw usage leaves a whole UTC day at a time: the last moment of the last day wholly past the retention.
USAGE_CUTOFF = day_start((NOW - timedelta(days=DAYS)).astimezone(UTC).date())
USAGE_PAST = USAGE_CUTOFF - timedelta(seconds=1)
SETTINGS = (
    "RETENTION_USAGE_DAYS",
    "RETENTION_USAGE_REQUEST_IDS_DAYS",
    "RETENTION_PERFORMANCE_DAYS",
    "RETENTION_AUDIT_DAYS",
    "RETENTION_DISCOVERY_RUNS_DAYS",
    "RETENTION_RESOLVED_ALERTS_DAYS",
    "RETENTION_STATUS_EVENTS_DAYS",
)


@pytest.fixture
def ten_days(settings: Any) -> None:
    for name in SETTINGS:
        setattr(settings, name, DAYS)


def audit_entry(at: datetime) -> LogEntry:
    entry = LogEntry.objects.create(
        content_type=ContentType.objects.get_for_model(RegisteredModel),
        object_pk="1",
        object_repr="a model",
        action=LogEntry.Action.UPDATE,
        changes={},
    )
    LogEntry.objects.filter(pk=entry.pk).update(timestamp=at)
    return entry


def status_event(
    model: RegisteredModel,
    at: datetime,
    *,
    kind: str = StatusEventKind.STATUS,
    state: str = ModelStatus.AVAILABLE,
    host: ProviderSource | None = None,
) -> ModelStatusEvent:
    return ModelStatusEvent.objects.create(
        model=model, at=at, kind=kind, state=state, origin=StatusEventOrigin.DISCOVERY, source=host
    )


def discovery_run(source: Any, at: datetime) -> DiscoveryRun:
    run = DiscoveryRun.objects.create(source=source, status=RunStatus.SUCCEEDED)
    DiscoveryRun.objects.filter(pk=run.pk).update(started_at=at)  # auto_now_add ignores a given value
    return run


def alert(model: RegisteredModel, *, opened: datetime, resolved: datetime | None) -> Alert:
    return Alert.objects.create(
        kind=AlertKind.LATENCY, model=model, message="slow", opened_at=opened, resolved_at=resolved
    )


@pytest.mark.usefixtures("ten_days")
def test_each_table_loses_its_rows_past_the_cutoff_and_keeps_the_others() -> None:
    model, source = RegisteredModelFactory(), ProviderSourceFactory()
    old_usage, new_usage, same_day = (
        ModelUsageFactory(model=model, timestamp=at) for at in (USAGE_PAST, JUST_WITHIN, JUST_PAST)
    )
    old_id, new_id = (
        UsageRequestId.objects.create(model_name=model.name, request_id=str(at), recorded_at=at)
        for at in (JUST_PAST, JUST_WITHIN)
    )
    old_perf, new_perf = (ModelPerformanceFactory(model=model, timestamp=at) for at in (JUST_PAST, JUST_WITHIN))
    LogEntry.objects.all().delete()  # the model's and the source's creation
    old_entry, new_entry = audit_entry(JUST_PAST), audit_entry(JUST_WITHIN)
    old_run, new_run = discovery_run(source, JUST_PAST), discovery_run(source, JUST_WITHIN)
    old_resolved = alert(model, opened=JUST_PAST, resolved=JUST_PAST)
    new_resolved = alert(model, opened=JUST_PAST, resolved=JUST_WITHIN)
    old_open = alert(model, opened=NOW - timedelta(days=100), resolved=None)
    old_event, _, new_event = (
        status_event(model, at) for at in (JUST_PAST - timedelta(days=1), JUST_PAST, JUST_WITHIN)
    )
    old_reads, new_reads = (
        TrustedNetworkRead.objects.create(
            minute=at, client_address="10.0.0.5", network="10.0.0.0/8", method="GET", route="/models", count=3
        )
        for at in (JUST_PAST, JUST_WITHIN)
    )

    outcome = retention_apply(now=NOW)

    assert outcome.removed == {
        "model_usage": 1,
        "model_usage_request_ids": 1,
        "model_usage_rollup": 0,  # kept RETENTION_USAGE_ROLLUP_DAYS (two years by default)
        "model_performance": 1,
        "auditlog_logentry": 1,
        "trusted_network_reads": 1,
        "discovery_runs": 1,
        "alerts": 1,
        "model_status_events": 2,
    }
    assert list(ModelStatusEvent.objects.values_list("pk", flat=True)) == [new_event.pk]
    assert not ModelStatusEvent.objects.filter(pk=old_event.pk).exists()
    # A record past the retention, of a day not yet wholly past it, stays with its day.
    assert set(ModelUsage.objects.values_list("pk", flat=True)) == {new_usage.pk, same_day.pk}
    assert list(UsageRequestId.objects.values_list("pk", flat=True)) == [new_id.pk]
    assert old_id.pk != new_id.pk
    assert list(ModelPerformance.objects.values_list("pk", flat=True)) == [new_perf.pk]
    assert list(LogEntry.objects.values_list("pk", flat=True)) == [new_entry.pk]
    assert list(DiscoveryRun.objects.values_list("pk", flat=True)) == [new_run.pk]
    assert set(Alert.objects.values_list("pk", flat=True)) == {new_resolved.pk, old_open.pk}
    assert not ModelUsage.objects.filter(pk=old_usage.pk).exists()
    assert not ModelPerformance.objects.filter(pk=old_perf.pk).exists()
    assert not LogEntry.objects.filter(pk=old_entry.pk).exists()
    assert not DiscoveryRun.objects.filter(pk=old_run.pk).exists()
    assert not Alert.objects.filter(pk=old_resolved.pk).exists()
    # The read counts are kept as long as the audit entries they stand for.
    assert list(TrustedNetworkRead.objects.values_list("pk", flat=True)) == [new_reads.pk]
    assert old_reads.pk != new_reads.pk


@pytest.mark.usefixtures("ten_days")
def test_a_sources_newest_run_stays_however_old() -> None:
    source = ProviderSourceFactory()
    older = discovery_run(source, NOW - timedelta(days=60))
    newest = discovery_run(source, NOW - timedelta(days=50))

    retention_apply(now=NOW)

    assert not DiscoveryRun.objects.filter(pk=older.pk).exists()
    assert DiscoveryRun.objects.filter(pk=newest.pk).exists()


@pytest.mark.usefixtures("ten_days")
def test_each_lanes_newest_status_event_stays_however_old_so_history_starts_with_a_known_state() -> None:
    model, host = RegisteredModelFactory(), ProviderSourceFactory()
    older_status = status_event(model, NOW - timedelta(days=60))
    newest_status = status_event(model, NOW - timedelta(days=50), state=ModelStatus.DEPRECATED)
    newest_loaded = status_event(
        model, NOW - timedelta(days=40), kind=StatusEventKind.RUNTIME, state="loaded", host=host
    )

    retention_apply(now=NOW)

    assert set(ModelStatusEvent.objects.values_list("pk", flat=True)) == {newest_status.pk, newest_loaded.pk}
    assert not ModelStatusEvent.objects.filter(pk=older_status.pk).exists()
    # The history that remains starts in the state the kept event says.
    assert [i.state for i in availability(model.pk, NOW - timedelta(days=7), NOW).intervals] == ["deprecated"]


def test_a_setting_of_zero_keeps_every_row_for_ever(settings: Any) -> None:
    settings.RETENTION_USAGE_ROLLUP_DAYS = 0
    for name in SETTINGS:
        setattr(settings, name, 0)
    model = RegisteredModelFactory()
    ModelUsageFactory(model=model, timestamp=NOW - timedelta(days=5000))
    ModelPerformanceFactory(model=model, timestamp=NOW - timedelta(days=5000))
    alert(model, opened=NOW - timedelta(days=5000), resolved=NOW - timedelta(days=5000))
    before = LogEntry.objects.count()

    outcome = retention_apply(now=NOW)

    assert set(outcome.removed.values()) == {0}
    assert ModelUsage.objects.count() == ModelPerformance.objects.count() == Alert.objects.count() == 1
    assert LogEntry.objects.count() == before


@pytest.mark.usefixtures("ten_days")
def test_a_prune_deletes_in_bounded_batches_one_delete_each() -> None:
    model = RegisteredModelFactory()
    ModelPerformanceFactory.create_batch(10, model=model, timestamp=JUST_PAST)
    kept = ModelPerformanceFactory(model=model, timestamp=JUST_WITHIN)

    with CaptureQueriesContext(connection) as captured:
        outcome = retention_apply(now=NOW, batch_size=3)

    deletes = [q["sql"] for q in captured.captured_queries if q["sql"].startswith('DELETE FROM "model_performance"')]
    assert outcome.removed["model_performance"] == 10
    assert len(deletes) == 4  # 3 + 3 + 3 + 1
    # One DELETE by primary key per batch: no per-row statements, no signal handler (no audit entry per row).
    assert [sql.rsplit("(", 1)[1].count(",") + 1 for sql in deletes] == [3, 3, 3, 1]
    assert list(ModelPerformance.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(ModelPerformance)).exists()


@pytest.mark.usefixtures("ten_days")
def test_the_queries_of_a_prune_grow_with_its_batches_not_its_rows(django_assert_max_num_queries: Any) -> None:
    model = RegisteredModelFactory()
    ModelPerformanceFactory.create_batch(10, model=model, timestamp=JUST_PAST)

    # Per batch: the ids, the delete, and a savepoint's two statements (the test's transaction
    # makes each batch's atomic block a savepoint); then the other eight tables' empty reads, the
    # lock, and on PostgreSQL the partitions' catalog reads (the days ahead, the ones past the cutoff).
    with django_assert_max_num_queries(4 * 4 + 8 * 3 + 2 + 4):
        retention_apply(now=NOW, batch_size=3)


@contextlib.contextmanager
def prune_lock_held_elsewhere() -> Iterator[None]:
    """The prune lock, held as another process's prune would hold it (another session on PostgreSQL)."""
    if connection.vendor != "postgresql":
        with retention.prune_lock() as acquired:
            assert acquired
            yield
        return
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, LOCK_KEY])
            assert cursor.fetchone()[0]
        yield
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, LOCK_KEY])
    finally:
        other.close()


@pytest.mark.usefixtures("ten_days")
def test_a_second_prune_does_nothing_while_the_first_holds_the_lock() -> None:
    ModelUsageFactory(timestamp=USAGE_PAST)

    with prune_lock_held_elsewhere():
        blocked = retention_apply(now=NOW)
    after = retention_apply(now=NOW)

    assert blocked.locked
    assert blocked.removed == {}
    assert not after.locked
    assert after.removed["model_usage"] == 1


@pytest.mark.usefixtures("ten_days")
def test_removed_rows_are_counted_in_metrics_by_table(client: Client) -> None:
    labels = (("table", "model_usage"),)
    before = scrape(client).get(("registry_retention_pruned_rows_total", labels), 0.0)
    ModelUsageFactory.create_batch(3, timestamp=USAGE_PAST)

    retention_apply(now=NOW)

    assert scrape(client)[("registry_retention_pruned_rows_total", labels)] == before + 3


@pytest.mark.usefixtures("ten_days")
def test_the_beat_task_applies_retention() -> None:
    ModelUsageFactory(timestamp=timezone.now() - timedelta(days=DAYS + 1))

    removed = tasks.prune()

    assert removed["model_usage"] == 1
    assert not ModelUsage.objects.exists()


def test_table_sizes_give_each_tables_rows_and_retention(settings: Any) -> None:
    settings.RETENTION_USAGE_DAYS = 7
    ModelUsageFactory.create_batch(2)

    sizes = {size.table: size for size in retention.table_sizes()}

    assert set(sizes) == {
        "model_usage",
        "model_usage_request_ids",
        "model_usage_rollup",
        "model_performance",
        "auditlog_logentry",
        "trusted_network_reads",
        "discovery_runs",
        "alerts",
        "model_status_events",
    }
    assert sizes["model_usage"].keep_days == 7
    if connection.vendor == "postgresql":
        # Every table's bytes, the partitioned model_usage's summed over its days.
        assert {table: (size.total_bytes or 0) > 0 for table, size in sizes.items()} == dict.fromkeys(sizes, True)
    else:
        assert sizes["model_usage"].rows == 2
        assert sizes["model_usage"].total_bytes is None


def test_rollups_outlive_the_raw_rows_and_year_long_statistics_survive_their_prune(settings: Any) -> None:
    settings.RETENTION_USAGE_DAYS = 30
    model = RegisteredModelFactory()
    for days in (300, 200, 100, 40, 20, 1):
        usage_record_batch(
            model=model,
            records=[
                {"timestamp": NOW - timedelta(days=days, minutes=m), "request_count": 2, "cost": "0.5"} for m in (0, 30)
            ],
        )
    start = NOW.replace(minute=0, second=0) - timedelta(days=365)
    year = usage_summary(model_id=model.pk, bucket="day", start=start, end=NOW)
    rollups = list(UsageRollup.objects.order_by("pk").values())

    outcome = retention_apply(now=NOW)

    assert outcome.removed["model_usage"] == 8
    assert outcome.removed["model_usage_rollup"] == 0
    assert list(UsageRollup.objects.order_by("pk").values()) == rollups  # pruning raw rows changes no rollup
    after = usage_summary(model_id=model.pk, bucket="day", start=start, end=NOW)
    assert after == year
    assert after["totals"]["requests"] == 24
    assert after["totals"]["cost"] == Decimal("6")


def test_rollups_go_past_their_own_retention_whole_hours_only(settings: Any) -> None:
    settings.RETENTION_USAGE_DAYS = 0
    settings.RETENTION_USAGE_ROLLUP_DAYS = 365
    model = RegisteredModelFactory()
    now = NOW.replace(minute=30)  # the cutoff inside an hour, never on its start
    cutoff = now - timedelta(days=365)
    for moment in (cutoff - timedelta(hours=2), cutoff - timedelta(seconds=1), cutoff + timedelta(hours=1)):
        usage_record_batch(model=model, records=[{"timestamp": moment}])

    outcome = retention_apply(now=now)

    # The hour holding the cutoff is partly within the retention: it stays.
    assert outcome.removed["model_usage_rollup"] == 1
    assert ModelUsage.objects.count() == 3
    assert UsageRollup.objects.count() == 2
