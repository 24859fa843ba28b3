"""Discovery fills dated prices where the provider or the catalog states them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.utils import timezone

from discovery.models import ProviderSource
from discovery.sync import source_sync
from registry.access.audit import system_actor
from registry.catalog.prices import price_set
from registry.models import Alert, AlertKind, ModelPrice, ModelUsage, RegisteredModel, SetBy
from registry.telemetry.services import usage_record_batch

pytestmark = pytest.mark.django_db


def discover(source: ProviderSource) -> None:
    with system_actor("discovery"):
        run = source_sync(source=source, trigger="manual")
    assert run.status == "succeeded", run.error_message


def test_discovery_dates_the_catalogs_prices_once(openai_source: ProviderSource) -> None:
    discover(openai_source)
    row = ModelPrice.objects.get(model__name="gpt-4o")
    assert (row.input_per_mtok, row.output_per_mtok, row.set_by) == (Decimal("2.5"), Decimal("10"), SetBy.DISCOVERY)
    count = ModelPrice.objects.count()
    discover(openai_source)  # nothing changed: no new price
    assert ModelPrice.objects.count() == count

    model = RegisteredModel.objects.get(name="gpt-4o")
    usage_record_batch(model=model, records=[{"input_tokens": 1_000_000, "output_tokens": 100_000}])
    assert ModelUsage.objects.values_list("cost", "cost_source").get() == (Decimal("3.5"), "computed")


def test_a_priced_discovery_resolves_the_unpriced_alert(openai_source: ProviderSource) -> None:
    discover(openai_source)
    model = RegisteredModel.objects.get(name="gpt-4o")
    ModelPrice.objects.filter(model=model).delete()
    RegisteredModel.objects.filter(pk=model.pk).update(input_cost_per_mtok=None, output_cost_per_mtok=None)
    usage_record_batch(model=model, records=[{"token_count": 10}])
    assert Alert.objects.open().filter(kind=AlertKind.UNPRICED_USAGE, model=model).exists()
    discover(openai_source)  # the catalog's price again
    assert not Alert.objects.open().filter(kind=AlertKind.UNPRICED_USAGE).exists()
    assert ModelPrice.objects.filter(model=model, set_by=SetBy.DISCOVERY).count() == 1


def test_an_operators_price_is_not_overwritten_by_discovery(openai_source: ProviderSource) -> None:
    discover(openai_source)
    model = RegisteredModel.objects.get(name="gpt-4o")
    price_set(model=model, input_per_mtok=Decimal("1"), output_per_mtok=Decimal("2"))
    discover(openai_source)
    model.refresh_from_db()
    assert (model.input_cost_per_mtok, model.output_cost_per_mtok) == (Decimal("1"), Decimal("2"))


def test_usage_from_before_the_run_that_priced_a_model_is_costed(openai_source: ProviderSource) -> None:
    """Issue 23, item 2: a discovered price took effect at the run, so earlier usage stayed uncosted
    and its alert reopened with every late report."""
    discover(openai_source)
    model = RegisteredModel.objects.get(name="gpt-4o")
    ModelPrice.objects.filter(model=model).delete()
    RegisteredModel.objects.filter(pk=model.pk).update(input_cost_per_mtok=None, output_cost_per_mtok=None)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    usage_record_batch(model=model, records=[{"timestamp": an_hour_ago, "input_tokens": 1_000_000}])
    usage_record_batch(model=model, records=[{"timestamp": an_hour_ago, "input_tokens": 5, "cost": Decimal("9")}])

    discover(openai_source)  # the catalog's price again, dated at this run

    costs = dict(ModelUsage.objects.values_list("cost_source", "cost"))
    assert costs == {"computed": Decimal("2.5"), "reported": Decimal("9")}
    assert not Alert.objects.open().exists()
    # Reported late, for a moment before the run: costed, and no alert opens.
    usage_record_batch(model=model, records=[{"timestamp": an_hour_ago, "input_tokens": 2_000_000}])
    assert ModelUsage.objects.filter(cost=Decimal("5")).exists()
    assert not Alert.objects.open().exists()
    entry = LogEntry.objects.filter(changes__icontains="re-costed").get()
    assert (entry.changes, entry.actor_email) == ({"usage": ["uncosted", "re-costed 1 record"]}, "system:discovery")
