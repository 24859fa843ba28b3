"""Anthropic's paginated list, its declared capabilities and limits, and the catalog."""

from __future__ import annotations

from discovery.clients import anthropic
from registry.catalog import capabilities as caps
from tests.discovery.fakes.anthropic import FakeAnthropic


def test_anthropic_fetch_follows_every_page_with_after_id() -> None:
    server = FakeAnthropic(max_limit=3).start()  # 8 models in pages of 3: three pages
    try:
        listing = anthropic.fetch(source_name="anthropic", base_url=server.url, api_key=server.api_key)
    finally:
        server.stop()

    assert len(listing.models) + len(listing.skipped) == 8
    assert [r.query.get("after_id") for r in server.requests] == [
        None,
        ["claude-opus-4-20250514"],
        ["claude-3-5-haiku-20241022"],
    ]


def test_anthropic_requests_carry_x_api_key_and_the_api_version(fake_anthropic: FakeAnthropic) -> None:
    anthropic.fetch(source_name="anthropic", base_url=fake_anthropic.url, api_key=fake_anthropic.api_key)

    headers = fake_anthropic.requests[0].headers
    assert (headers["x-api-key"], headers["anthropic-version"]) == (fake_anthropic.api_key, "2023-06-01")
    assert "authorization" not in headers


def test_anthropic_retired_model_is_skipped(fake_anthropic: FakeAnthropic) -> None:
    listing = anthropic.fetch(source_name="anthropic", base_url=fake_anthropic.url, api_key=fake_anthropic.api_key)

    assert listing.skipped == ["claude-2-1"]


def test_anthropic_declared_capabilities_and_limits_are_mapped(fake_anthropic: FakeAnthropic) -> None:
    listing = anthropic.fetch(source_name="anthropic", base_url=fake_anthropic.url, api_key=fake_anthropic.api_key)
    model = {m.name: m for m in listing.models}["claude-sonnet-4-5-20250929"]

    assert model.display_name == "Claude Sonnet 4.5"
    assert model.context_window == 200000
    assert model.parameters["max_tokens"].max_value == 64000
    assert model.version == "2025-09-29"
    assert set(model.capabilities) == {caps.TEXT, caps.TOOLS, caps.IMAGE, caps.REASONING}
    assert model.capabilities_declared
    assert (model.input_cost_per_mtok, model.output_cost_per_mtok) == (None, None)


def test_anthropic_model_without_fields_is_left_to_the_catalogs(fake_anthropic: FakeAnthropic) -> None:
    listing = anthropic.fetch(source_name="anthropic", base_url=fake_anthropic.url, api_key=fake_anthropic.api_key)
    model = {m.name: m for m in listing.models}["claude-opus-4-1-20250805"]

    assert model.context_window is None
    assert not model.capabilities_declared
    assert model.endpoint.endpoint_url == f"{fake_anthropic.url}/v1/messages"
    assert model.endpoint.headers == {"anthropic-version": "2023-06-01"}
