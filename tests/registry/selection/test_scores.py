"""Measured capability scores: derived from performance records, never over an operator's, decaying when stale."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from registry import tasks
from registry.models import (
    CapabilityMetric,
    EvidenceSource,
    ModelCapability,
    ModelPerformance,
    RegisteredModel,
    SetBy,
)
from registry.operations.schedules import SCORES_SCHEDULE_NAME, SCORES_TASK_NAME
from registry.selection import scores
from tests.factories import ModelCapabilityFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.get_fixed_timezone(0))


def record(model: RegisteredModel, value: float, *, samples: int | None, days_ago: float, **extra: object) -> None:
    ModelPerformance.objects.create(
        model=model,
        model_name=model.name,
        metric_name=str(extra.pop("metric_name", "success_rate")),
        metric_value=value,
        sample_size=samples,
        timestamp=NOW - timedelta(days=days_ago),
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def rule() -> CapabilityMetric:
    return CapabilityMetric.objects.create(
        capability="code", metric_name="success_rate", task_category="coding", window_days=30, min_samples=50
    )


def code_row(model: RegisteredModel) -> ModelCapability | None:
    return ModelCapability.objects.filter(model=model, capability="code").first()


def writes_of(context: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in context.captured_queries if q["sql"].split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}]


def test_the_score_is_the_sample_weighted_mean_with_its_evidence(rule: CapabilityMetric) -> None:
    model = RegisteredModelFactory(name="coder")
    record(model, 0.9, samples=60, days_ago=10, task_category="coding")
    record(model, 0.5, samples=40, days_ago=2, task_category="coding")
    record(model, 0.0, samples=None, days_ago=1, task_category="coding")  # no sample size: one sample
    outcome = scores.scores_derive(now=NOW)
    row = code_row(model)
    assert row is not None
    assert outcome.created == 1
    assert row.capability_score == round((0.9 * 60 + 0.5 * 40 + 0.0) / 101, 4)
    assert (row.evidence_source, row.set_by, row.sample_size) == (EvidenceSource.MEASURED, SetBy.DISCOVERY, 101)
    assert (row.metric_name, row.task_category) == ("success_rate", "coding")
    assert (row.window_start, row.window_end) == (NOW - timedelta(days=10), NOW - timedelta(days=1))
    assert row.evaluated_at == NOW
    assert "success_rate" in row.evidence


def test_fewer_samples_than_the_minimum_give_no_score(rule: CapabilityMetric) -> None:
    model = RegisteredModelFactory()
    record(model, 0.9, samples=49, days_ago=1, task_category="coding")
    scores.scores_derive(now=NOW)
    assert code_row(model) is None


def test_only_records_of_the_window_the_metric_and_the_task_count(rule: CapabilityMetric) -> None:
    model = RegisteredModelFactory()
    record(model, 0.8, samples=50, days_ago=29, task_category="coding")
    record(model, 0.1, samples=500, days_ago=31, task_category="coding")  # before the window
    record(model, 0.1, samples=500, days_ago=1, task_category="chat")  # another task
    record(model, 0.1, samples=500, days_ago=1, task_category="coding", metric_name="latency_p95")
    scores.scores_derive(now=NOW)
    row = code_row(model)
    assert row is not None
    assert (row.capability_score, row.sample_size) == (0.8, 50)


def test_values_outside_0_to_1_are_not_counted(rule: CapabilityMetric) -> None:
    model = RegisteredModelFactory()
    record(model, 0.6, samples=50, days_ago=1, task_category="coding")
    record(model, 1.5, samples=1000, days_ago=1, task_category="coding")
    record(model, -0.2, samples=1000, days_ago=1, task_category="coding")
    scores.scores_derive(now=NOW)
    row = code_row(model)
    assert row is not None
    assert (row.capability_score, row.sample_size) == (0.6, 50)


def test_a_rule_without_task_category_counts_every_category() -> None:
    CapabilityMetric.objects.create(capability="text", metric_name="success_rate", min_samples=10)
    model = RegisteredModelFactory()
    record(model, 1.0, samples=5, days_ago=1, task_category="chat")
    record(model, 0.5, samples=5, days_ago=1, task_category=None)
    scores.scores_derive(now=NOW)
    row = ModelCapability.objects.get(model=model, capability="text")
    assert (row.capability_score, row.sample_size, row.task_category) == (0.75, 10, None)


def test_a_disabled_rule_derives_nothing(rule: CapabilityMetric) -> None:
    CapabilityMetric.objects.filter(pk=rule.pk).update(enabled=False)
    model = RegisteredModelFactory()
    record(model, 0.9, samples=100, days_ago=1, task_category="coding")
    scores.scores_derive(now=NOW)
    assert code_row(model) is None


def test_an_operators_score_is_never_touched(rule: CapabilityMetric) -> None:
    model = RegisteredModelFactory()
    operator = ModelCapabilityFactory(model=model, capability="code", capability_score=0.3, set_by=SetBy.OPERATOR)
    record(model, 0.9, samples=100, days_ago=1, task_category="coding")
    outcome = scores.scores_derive(now=NOW)
    row = code_row(model)
    assert row is not None
    assert (row.pk, row.capability_score, row.set_by, row.evidence_source) == (
        operator.pk,
        0.3,
        SetBy.OPERATOR,
        EvidenceSource.OPERATOR,
    )
    assert not outcome.changed


def test_a_catalog_score_is_replaced_by_the_measured_one(rule: CapabilityMetric) -> None:
    model = RegisteredModelFactory()
    catalog = ModelCapabilityFactory(
        model=model,
        capability="code",
        capability_score=0.95,
        set_by=SetBy.DISCOVERY,
        evidence_source=EvidenceSource.CATALOG,
        evidence="curated catalog (x): https://example.org",
    )
    record(model, 0.7, samples=80, days_ago=1, task_category="coding")
    outcome = scores.scores_derive(now=NOW)
    row = code_row(model)
    assert row is not None
    assert outcome.updated == 1
    assert (row.pk, row.capability_score, row.evidence_source, row.set_by) == (
        catalog.pk,
        0.7,
        EvidenceSource.MEASURED,
        SetBy.DISCOVERY,
    )


def test_a_rerun_over_the_same_records_writes_nothing(rule: CapabilityMetric) -> None:
    model = RegisteredModelFactory()
    record(model, 0.7, samples=80, days_ago=3, task_category="coding")
    scores.scores_derive(now=NOW)
    entries = LogEntry.objects.count()
    with CaptureQueriesContext(connection) as context:
        outcome = scores.scores_derive(now=NOW + timedelta(hours=1))
    assert not outcome.changed
    assert writes_of(context) == []
    assert LogEntry.objects.count() == entries
    row = code_row(model)
    assert row is not None
    assert row.evaluated_at == NOW  # evaluated when its value was last written


def test_new_records_refresh_the_score(rule: CapabilityMetric) -> None:
    model = RegisteredModelFactory()
    record(model, 0.7, samples=80, days_ago=3, task_category="coding")
    scores.scores_derive(now=NOW)
    record(model, 0.1, samples=80, days_ago=0, task_category="coding")
    later = NOW + timedelta(hours=1)
    outcome = scores.scores_derive(now=later)
    row = code_row(model)
    assert row is not None
    assert outcome.updated == 1
    assert (row.capability_score, row.sample_size, row.evaluated_at) == (0.4, 160, later)


def test_a_stale_score_decays_and_is_then_removed_restoring_nothing(rule: CapabilityMetric) -> None:
    """200 samples, minimum 50, half-life 7 days: without fresh samples it counts 100 after 7 days, 50 after 14."""
    CapabilityMetric.objects.filter(pk=rule.pk).update(window_days=1)
    rule.refresh_from_db()
    model = RegisteredModelFactory()
    ModelCapabilityFactory(
        model=model, capability="code", capability_score=0.95, set_by=SetBy.DISCOVERY, evidence_source="catalog"
    )
    record(model, 0.7, samples=200, days_ago=0, task_category="coding")
    scores.scores_derive(now=NOW)
    # The record leaves the 1-day window; the score stays while its decayed sample size is 50 or more.
    assert not scores.scores_derive(now=NOW + timedelta(days=13, hours=23)).changed
    row = code_row(model)
    assert row is not None
    assert scores.effective_sample_size(row, rule, now=NOW + timedelta(days=7)) == pytest.approx(100)
    assert row.evidence_source == EvidenceSource.MEASURED
    outcome = scores.scores_derive(now=NOW + timedelta(days=14, hours=1))
    assert outcome.removed == 1
    assert code_row(model) is None  # unknown: the catalog's score is not put back


def test_the_task_is_audited_as_itself_and_scheduled(rule: CapabilityMetric) -> None:
    model = RegisteredModelFactory(name="audited")
    record(model, 0.7, samples=80, days_ago=0, task_category="coding")
    ModelPerformance.objects.update(timestamp=timezone.now() - timedelta(hours=1))
    assert tasks.scores_derive() == {"created": 1, "updated": 0, "removed": 0}
    entry = LogEntry.objects.get(object_repr="audited: code")
    assert entry.actor_email == "system:scores"
    assert entry.changes["evidence_source"] == ["None", "measured"]
    call_command("register_schedules", stdout=io.StringIO())
    schedule = PeriodicTask.objects.get(name=SCORES_SCHEDULE_NAME)
    assert schedule.task == SCORES_TASK_NAME
    # The operator's changes to the schedule survive the next start.
    PeriodicTask.objects.filter(pk=schedule.pk).update(enabled=False)
    call_command("register_schedules", stdout=io.StringIO())
    assert PeriodicTask.objects.get(name=SCORES_SCHEDULE_NAME).enabled is False


def test_a_read_after_the_derivation_is_fresh(
    rule: CapabilityMetric, api_client_for: Callable[[str], APIClient], django_capture_on_commit_callbacks: Any
) -> None:
    model = RegisteredModelFactory(name="cached")
    client = api_client_for("viewer")
    assert client.get("/models/cached").json()["capabilities"] == {}  # cached now
    record(model, 0.7, samples=80, days_ago=0, task_category="coding")
    ModelPerformance.objects.update(timestamp=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        tasks.scores_derive()
    assert callbacks  # the invalidation runs once the run's transaction commits
    body = client.get("/models/cached").json()
    assert body["capabilities"] == {"code": 0.7}
    assert body["capability_evidence"]["code"]["source"] == "measured"
    assert body["capability_evidence"]["code"]["sample_size"] == 80


def _registry_with_records(count: int) -> None:
    start = RegisteredModel.objects.count()
    models = RegisteredModel.objects.bulk_create(
        RegisteredModel(name=f"perf-{index}", display_name=f"P {index}", provider="ollama", model_type="chat")
        for index in range(start, count)
    )
    ModelPerformance.objects.bulk_create(
        ModelPerformance(
            model=model,
            model_name=model.name,
            metric_name="success_rate",
            task_category="coding",
            metric_value=0.5 + (model.pk % 4) / 10,
            sample_size=100,
            timestamp=NOW - timedelta(days=1),
        )
        for model in models
    )
    # Half of them had a catalog score; a tenth an operator's.
    ModelCapability.objects.bulk_create(
        ModelCapability(
            model=model,
            capability="code",
            capability_score=0.9,
            set_by=SetBy.OPERATOR if index % 10 == 0 else SetBy.DISCOVERY,
            evidence_source=EvidenceSource.OPERATOR if index % 10 == 0 else EvidenceSource.CATALOG,
        )
        for index, model in enumerate(models)
        if index % 2 == 0
    )


def test_a_run_costs_the_same_queries_for_5_and_50_models(rule: CapabilityMetric) -> None:
    ContentType.objects.get_for_model(ModelCapability)  # the audit's content type, cached for both runs
    _registry_with_records(5)
    with CaptureQueriesContext(connection) as five:
        first = scores.scores_derive(now=NOW)
    ModelCapability.objects.filter(evidence_source=EvidenceSource.MEASURED).delete()
    _registry_with_records(50)
    with CaptureQueriesContext(connection) as fifty:
        second = scores.scores_derive(now=NOW)
    assert first.created > 0
    assert first.updated > 0
    assert second.created > first.created
    assert len(fifty.captured_queries) == len(five.captured_queries)
    assert ModelCapability.objects.filter(set_by=SetBy.OPERATOR, evidence_source=EvidenceSource.MEASURED).count() == 0
