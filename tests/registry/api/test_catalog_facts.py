"""Where a model's facts came from, cache prices, and cached input tokens, through the API."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from registry.access.audit import system_actor
from registry.catalog.prices import price_set
from registry.models import ModelUsage
from tests.factories import ProviderSourceFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

ClientFor = Callable[[str], APIClient]
PRICES = "catalog: genai-prices 0.2.5 (bundled)"
FACTS = "catalog: models.dev 1.0.398 (bundled)"


@pytest.fixture
def discovered() -> Any:
    """A model as discovery leaves it: the context window Anthropic stated, the price a catalog gave."""
    return RegisteredModelFactory(
        name="claude-sonnet-4-5-20250929",
        provider="anthropic",
        source=ProviderSourceFactory(name="anthropic", kind="anthropic", base_url="http://127.0.0.1:9"),
        context_window=200000,
        input_cost_per_mtok=Decimal(3),
        output_cost_per_mtok=Decimal(15),
        cache_read_cost_per_mtok=Decimal("0.3"),
        details={
            "max_output_tokens": 64000,
            "catalog": {
                "prices_match": "anthropic/claude-sonnet-4-5",
                "facts_match": "anthropic/claude-sonnet-4-5-20250929",
                "given": {"prices": PRICES[len("catalog: ") :], "release_date": FACTS[len("catalog: ") :]},
            },
            "release_date": "2025-09-29",
        },
    )


def test_a_models_representation_says_where_each_fact_came_from(api_client_for: ClientFor, discovered: Any) -> None:
    body = api_client_for("viewer").get(f"/models/{discovered.pk}").json()
    assert body["fact_sources"] == {
        "context_window": "provider",
        "prices": PRICES,
        "max_output_tokens": "provider",
        "release_date": FACTS,
        "knowledge": None,
    }
    assert (body["cache_read_cost_per_mtok"], body["cache_write_cost_per_mtok"]) == (0.3, None)


def test_an_operators_context_window_is_the_operators(api_client_for: ClientFor, discovered: Any) -> None:
    response = api_client_for("editor").patch(f"/models/{discovered.pk}", {"context_window": 100000}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["fact_sources"]["context_window"] == "operator"
    # The list (the read path's own rendering) says the same.
    listed = api_client_for("viewer").get("/models").json()["results"][0]
    assert listed["fact_sources"]["context_window"] == "operator"


def test_a_price_with_a_cache_read_price_costs_cached_input_at_it(api_client_for: ClientFor, discovered: Any) -> None:
    client = api_client_for("editor")
    response = client.post(
        f"/models/{discovered.pk}/prices",
        {
            "input_per_mtok": 2,
            "output_per_mtok": 8,
            "cache_read_per_mtok": 0.5,
            "effective_from": "2026-01-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["cache_read_per_mtok"] == 0.5
    record = {
        "timestamp": "2026-02-01T00:00:00Z",
        "input_tokens": 1_000_000,
        "cached_input_tokens": 500_000,
        "output_tokens": 0,
    }
    assert api_client_for("service").post(f"/models/{discovered.pk}/usage", record, format="json").status_code == 201
    # 500,000 at 2 and 500,000 at 0.5 per million.
    assert ModelUsage.objects.values_list("cost", "cost_source").get() == (Decimal("1.25"), "computed")


def test_more_cached_tokens_than_input_tokens_is_a_400_naming_the_field(
    api_client_for: ClientFor, discovered: Any
) -> None:
    response = api_client_for("service").post(
        f"/models/{discovered.pk}/usage", {"input_tokens": 10, "cached_input_tokens": 11}, format="json"
    )
    assert response.status_code == 400
    assert "cached_input_tokens" in response.json()
    assert not ModelUsage.objects.exists()


def test_the_routers_cached_token_count_is_costed_at_the_cache_read_price(settings: Any, discovered: Any) -> None:
    settings.PLATFORM_API_COMPAT = "alfred"
    settings.PLATFORM_TRUSTED_NETWORKS = ["10.0.0.0/8"]
    with system_actor("test"):
        price_set(
            model=discovered,
            input_per_mtok=Decimal(2),
            output_per_mtok=Decimal(8),
            cache_read_per_mtok=Decimal("0.5"),
            effective_from=discovered.created_at,
        )
    body = {"content_token_count": 1_000_000, "cached_token_count": 1_000_000, "response_token_count": 0}
    response = APIClient().post(f"/api/v1/models/{discovered.pk}/usage", body, format="json", REMOTE_ADDR="10.0.0.9")
    assert response.status_code == 200, response.content
    row = ModelUsage.objects.get()
    assert (row.input_tokens, row.cached_input_tokens, row.cost, row.cost_source) == (
        1_000_000,
        1_000_000,
        Decimal("0.5"),
        "computed",
    )
    too_many = {"content_token_count": 5, "cached_token_count": 6}
    response = APIClient().post(
        f"/api/v1/models/{discovered.pk}/usage", too_many, format="json", REMOTE_ADDR="10.0.0.9"
    )
    assert response.status_code == 400
    assert "cached_token_count" in response.content.decode()
