"""Discovery fills dated prices where the provider or the catalog states them."""

from __future__ import annotations

from decimal import Decimal

import pytest

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
