"""The console's view of the catalogs: unpriced models on the dashboard, fact sources, catalog refreshes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from discovery.models import CatalogName, CatalogRefreshStatus, CatalogSnapshot
from registry.models import ModelStatus
from tests.factories import ProviderSourceFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db


def test_the_dashboard_counts_available_models_without_a_price_and_links_to_them(staff: dict[str, Client]) -> None:
    RegisteredModelFactory(name="priced", input_cost_per_mtok=Decimal(1), output_cost_per_mtok=Decimal(2))
    RegisteredModelFactory(name="unpriced-a")
    RegisteredModelFactory(name="unpriced-b", input_cost_per_mtok=Decimal(1))  # half a price is no price
    RegisteredModelFactory(name="gone", status=ModelStatus.UNAVAILABLE)

    page = staff["viewer"].get("/admin/").content.decode()
    assert "Available models without a price" in page
    link = "/admin/registry/registeredmodel/?status__exact=available&amp;price=unknown"
    assert f'href="{link}">2</a>' in page

    listed = staff["viewer"].get(link.replace("&amp;", "&")).content.decode()
    assert "unpriced-a" in listed
    assert "unpriced-b" in listed
    assert "priced</a>" not in listed
    assert ">gone<" not in listed


def test_a_models_page_says_where_each_fact_came_from(staff: dict[str, Client]) -> None:
    model = RegisteredModelFactory(
        name="gpt-4o",
        provider="openai",
        source=ProviderSourceFactory(name="openai", kind="openai", base_url="http://127.0.0.1:9/v1"),
        context_window=128000,
        input_cost_per_mtok=Decimal("2.5"),
        output_cost_per_mtok=Decimal(10),
        details={"catalog": {"given": {"prices": "genai-prices 0.2.5 (bundled)"}}},
        operator_fields=["context_window"],
    )
    page = staff["viewer"].get(f"/admin/registry/registeredmodel/{model.pk}/change/").content.decode()
    table = page[page.index('id="fact-sources"') :]
    assert "<th>prices</th><td>catalog: genai-prices 0.2.5 (bundled)</td>" in table
    assert "<th>context window</th><td>operator</td>" in table
    assert "<th>knowledge</th><td>unknown</td>" in table


def test_the_catalog_snapshots_page_lists_refreshes_and_the_snapshots_in_use(staff: dict[str, Client]) -> None:
    CatalogSnapshot.objects.create(
        catalog=CatalogName.PRICES,
        status=CatalogRefreshStatus.REJECTED,
        version="2026-12-01 sha256:abc",
        url="http://127.0.0.1:9/data.json",
        fetched_at=timezone.now(),
        problems=["openai/gpt-4o: input_mtok is negative (-1)"],
    )
    page = staff["viewer"].get("/admin/discovery/catalogsnapshot/").content.decode()
    assert "In use: genai-prices 0.2.5 (bundled); models.dev 1.0.398 (bundled)." in page
    assert "2026-12-01 sha256:abc" in page
    assert "input_mtok is negative" in page
