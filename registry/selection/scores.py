"""Measured capability scores: derived from performance records by the rules of ``CapabilityMetric``.

For each enabled rule (capability, metric, task category, window, minimum samples, half-life) and
each model with records of the metric in the window, the score is the sample-weighted mean of
the records' values (a record without a sample size counts as one sample; a value outside 0..1 is
not counted: the rule's metric is expected to be a 0-1 rate, and a metric on another scale must
yield no score rather than a wrong one), rounded to 4 decimals. It is written as a ``measured``
capability when the window holds at least ``min_samples`` samples.

Without that many fresh samples a measured score is not re-derived: its effective sample size is
``sample_size * 0.5 ** (days since evaluated_at / stale_after_days)``, and once that falls below
``min_samples`` the score is removed (the capability is unknown again; nothing else is restored:
a provider's or the catalog's score comes back only when discovery's next run writes it).

An operator's score (``set_by=operator``) is never touched. Writes go through
``services.capabilities_measured_apply``; a run costs a fixed number of queries (one aggregate
per rule), whatever the number of models, and a rerun over the same records writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, FloatField, Max, Min, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from registry.catalog.services import MeasuredApplied, MeasuredScore, capabilities_measured_apply
from registry.models import CapabilityMetric, EvidenceSource, ModelCapability, ModelPerformance

SCORE_DECIMALS = 4


@dataclass(frozen=True)
class Samples:
    """A model's records of a rule's metric in its window: their weighted sum and span."""

    model_id: int
    samples: int
    weighted_sum: float
    first: datetime
    last: datetime

    @property
    def mean(self) -> float:
        return round(self.weighted_sum / self.samples, SCORE_DECIMALS)


def samples_in_window(rule: CapabilityMetric, *, now: datetime) -> list[Samples]:
    """Each model's samples of ``rule``'s metric over its window ending at ``now``, in one aggregate query."""
    weight = Coalesce("sample_size", Value(1))
    records = ModelPerformance.objects.filter(
        model__isnull=False,
        metric_name=rule.metric_name,
        timestamp__gt=now - timedelta(days=rule.window_days),
        timestamp__lte=now,
        metric_value__gte=0.0,
        metric_value__lte=1.0,
    )
    if rule.task_category:
        records = records.filter(task_category=rule.task_category)
    rows = (
        records.order_by()
        .values("model_id")
        .annotate(
            samples=Sum(weight),
            weighted_sum=Sum(F("metric_value") * weight, output_field=FloatField()),
            first=Min("timestamp"),
            last=Max("timestamp"),
        )
        .order_by("model_id")
    )
    return [
        Samples(row["model_id"], int(row["samples"]), float(row["weighted_sum"]), row["first"], row["last"])
        for row in rows
    ]


def effective_sample_size(row: ModelCapability, rule: CapabilityMetric, *, now: datetime) -> float:
    """What a measured score's samples still count for: halved every ``stale_after_days`` since evaluated."""
    if row.sample_size is None:
        return 0.0
    evaluated = row.evaluated_at or now
    age_days = max((now - evaluated).total_seconds(), 0.0) / 86400
    return float(row.sample_size * 0.5 ** (age_days / rule.stale_after_days))


def measured_note(rule: CapabilityMetric) -> str:
    task = f" on {rule.task_category}" if rule.task_category else ""
    return f"sample-weighted mean of {rule.metric_name}{task} over {rule.window_days} days"


@transaction.atomic
def scores_derive(*, now: datetime | None = None) -> MeasuredApplied:
    """Derive measured scores from performance records and let stale ones decay (see the module's docstring)."""
    now = now or timezone.now()
    # Locked for the run: a second run at the same time waits, then finds nothing left to write.
    rules = list(CapabilityMetric.objects.select_for_update().filter(enabled=True).order_by("capability"))
    if not rules:
        return MeasuredApplied()
    scores: list[MeasuredScore] = []
    fresh: set[tuple[int, str]] = set()
    for rule in rules:
        for found in samples_in_window(rule, now=now):
            if found.samples < rule.min_samples:
                continue
            fresh.add((found.model_id, rule.capability))
            scores.append(
                MeasuredScore(
                    model_id=found.model_id,
                    capability=rule.capability,
                    score=min(1.0, max(0.0, found.mean)),
                    note=measured_note(rule),
                    metric_name=rule.metric_name,
                    task_category=rule.task_category or None,
                    sample_size=found.samples,
                    window_start=found.first,
                    window_end=found.last,
                )
            )
    by_capability = {rule.capability: rule for rule in rules}
    stale = ModelCapability.objects.filter(
        evidence_source=EvidenceSource.MEASURED, capability__in=list(by_capability)
    ).only("pk", "model_id", "capability", "sample_size", "evaluated_at")
    expired = [
        (row.model_id, row.capability)
        for row in stale
        if (row.model_id, row.capability) not in fresh
        and effective_sample_size(row, by_capability[row.capability], now=now)
        < by_capability[row.capability].min_samples
    ]
    return capabilities_measured_apply(scores=scores, expired=expired, now=now)
