"""An operator compares models and reads spend over time, in Chromium on a laptop screen."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from registry.models import (
    Alert,
    AlertKind,
    EvidenceSource,
    ModelRuntime,
    ModelStatus,
    ModelUsage,
    Provider,
    StatusEventOrigin,
)
from registry.telemetry.availability import status_change_record
from registry.telemetry.rollups import usage_rollups_add
from tests.console.conftest import LAPTOP, SCREENSHOTS, Console
from tests.factories import (
    ModelCapabilityFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
    rollup_row,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def listed(model: Any, at: Any, state: str) -> None:
    status_change_record(model_id=model.pk, status=state, origin=StatusEventOrigin.DISCOVERY, cause=state, at=at)


@pytest.fixture
def fleet(transactional_db: None) -> dict[str, Any]:
    """Three models an operator hesitates between, with 30 days of usage, and two more on the side."""
    now = timezone.now()
    rng = random.Random(23)
    mini = RegisteredModelFactory(
        name="gpt-4o-mini",
        provider=Provider.OPENAI,
        context_window=128000,
        input_cost_per_mtok=Decimal("0.15"),
        output_cost_per_mtok=Decimal("0.6"),
    )
    qwen = RegisteredModelFactory(name="qwen2.5-coder:7b", context_window=32768)
    haiku = RegisteredModelFactory(
        name="claude-3-5-haiku",
        provider=Provider.ANTHROPIC,
        context_window=200000,
        input_cost_per_mtok=Decimal("0.8"),
        output_cost_per_mtok=Decimal("4"),
    )
    others = [RegisteredModelFactory(name="llama3.1:8b"), RegisteredModelFactory(name="mistral:7b")]
    ModelCapabilityFactory(model=mini, capability="code", capability_score=0.82)
    ModelCapabilityFactory(
        model=qwen,
        capability="code",
        capability_score=0.78,
        evidence_source=EvidenceSource.MEASURED,
        metric_name="success_rate",
        sample_size=1240,
        window_start=now - timedelta(days=30),
        window_end=now,
        evaluated_at=now,
    )
    ModelCapabilityFactory(model=haiku, capability="code", capability_score=0.85)
    for model in others:
        ModelCapabilityFactory(model=model, capability="code", capability_score=0.6)
    records = []
    for day in range(30):
        for model, latency, cost in ((mini, 0.6, Decimal("0.8")), (haiku, 0.9, Decimal("2.1")), (qwen, 1.4, None)):
            for hour in (2, 9, 15):
                records.append(
                    ModelUsage(
                        model=model,
                        model_name=model.name,
                        timestamp=now - timedelta(days=day, hours=hour),
                        request_count=rng.randint(40, 120),
                        token_count=rng.randint(20_000, 90_000),
                        error_count=rng.randint(0, 3) if model is not qwen or day else 30,
                        average_latency=latency * rng.uniform(0.8, 1.3),
                        cost=None
                        if cost is None
                        else cost * Decimal(rng.uniform(0.5, 1.5)).quantize(Decimal("0.0001")),
                    )
                )
        for model in others:
            records.append(
                ModelUsage(
                    model=model,
                    model_name=model.name,
                    timestamp=now - timedelta(days=day, hours=5),
                    request_count=20,
                    token_count=4000,
                    cost=Decimal("0.05"),
                )
            )
    with transaction.atomic():
        # As ingestion stores them: the records and their hours' rollups together (on PostgreSQL the
        # table's trigger adds them already; elsewhere this does).
        ModelUsage.objects.bulk_create(records)
        usage_rollups_add([rollup_row(record) for record in records])
    Alert.objects.create(
        kind=AlertKind.ERROR_RATE, model=qwen, message="qwen2.5-coder:7b error rate 27% over the last hour"
    )
    # Availability: mini always up, qwen down two hours three days ago, haiku first
    # listed ten days ago (a 30-day window a third known).
    for model, first_seen in ((mini, 40), (qwen, 40), (haiku, 10), *((model, 40) for model in others)):
        listed(model, now - timedelta(days=first_seen), ModelStatus.AVAILABLE)
    listed(qwen, now - timedelta(days=3), ModelStatus.UNAVAILABLE)
    listed(qwen, now - timedelta(days=3) + timedelta(hours=2), ModelStatus.AVAILABLE)
    ModelRuntime.objects.create(
        model=qwen,
        source=ProviderSourceFactory(name="gpu-box"),
        loaded=True,
        size_vram=5 * 2**30,
        expires_at=now + timedelta(minutes=4),
        checked_at=now,
    )
    return {"mini": mini, "qwen": qwen, "haiku": haiku}


def test_an_operator_compares_models_ticked_in_the_list(console: Console, viewer: Any, fleet: dict[str, Any]) -> None:
    console.login("viewer-op")
    page = console.page
    console.open("/admin/registry/registeredmodel/")
    for name in ("gpt-4o-mini", "qwen2.5-coder:7b", "claude-3-5-haiku"):
        page.locator("#result_list tbody tr", has_text=name).locator("input.action-select").check()
    page.select_option("select[name=action]", "compare_selected")
    page.click("button[name=index]")
    console.remember()

    expect(page).to_have_url(
        console.base_url + "/admin/compare/?models=claude-3-5-haiku%2Cgpt-4o-mini%2Cqwen2.5-coder%3A7b"
    )
    table = page.locator("#compare-table")
    expect(table.locator("th.model-column")).to_have_count(3)
    expect(table.locator('tr[data-key="context_window"] td.best')).to_have_text("200,000best")
    expect(table.locator('tr[data-key="input_price"] td.best')).to_contain_text("0.15")
    expect(table.locator('tr[data-key="capability:code"] td').nth(2)).to_contain_text("measured · n=1,240")
    expect(table.locator('tr[data-key="spend_30d"] td').nth(2)).to_contain_text("unknown (")
    expect(table.locator('tr[data-key="spend_30d"] td').nth(2)).to_contain_text("requests uncosted")
    expect(table.locator('tr[data-key="open_alerts"] td').nth(2)).to_contain_text("error rate 27%")
    expect(table.locator('tr[data-key="runtime"] td').nth(2)).to_contain_text("loaded, unloads in")
    week = table.locator('tr[data-key="availability_7d"]')
    expect(week).to_be_visible()
    expect(week.locator("th")).to_have_text("last 7 days")
    expect(week.locator("td").nth(2)).to_have_text("98.8 %")  # qwen: 2 hours down of 168
    expect(week.locator("td.best")).to_have_count(2)  # haiku and mini, 100 % each
    expect(table.locator('tr[data-key="availability_30d"] td').nth(0)).to_contain_text("100.0 % (of 33 % known)")
    expect(table.locator("svg.sparkline")).to_have_count(8)  # qwen's spend is unknown every day: said, not drawn
    expect(table.locator("tr.sparklines").nth(2).locator("td").nth(2)).to_contain_text("cost unknown: ")
    assert console.page_width() <= LAPTOP["width"]
    page.screenshot(path=str(SCREENSHOTS / "compare.png"), full_page=True)

    # The address is the comparison: opened again (as a shared link would be), the same columns.
    console.open(page.url.removeprefix(console.base_url))
    expect(page.locator("#compare-table th.model-column")).to_have_count(3)


def test_an_operator_compares_a_model_with_another_from_its_page(
    console: Console, viewer: Any, fleet: dict[str, Any]
) -> None:
    console.login("viewer-op")
    page = console.page
    console.open(f"/admin/registry/registeredmodel/{fleet['qwen'].pk}/change/")

    page.get_by_role("link", name="Compare with…").click()
    console.remember()
    expect(page.locator("#compare-needs-more")).to_contain_text("compare qwen2.5-coder:7b with")
    page.select_option("#id_add", "gpt-4o-mini")
    page.click("#compare-form input[type=submit]")
    console.remember()

    columns = page.locator("#compare-table th.model-column")
    expect(columns).to_have_count(2)
    expect(columns.nth(0)).to_contain_text("qwen2.5-coder:7b")
    expect(columns.nth(1)).to_contain_text("gpt-4o-mini")
    expect(page.locator('tr[data-key="error_rate_24h"] td.best')).to_have_count(1)


def test_an_operator_compares_the_chain_of_a_selection(console: Console, viewer: Any, fleet: dict[str, Any]) -> None:
    console.login("viewer-op")
    page = console.page
    console.open("/admin/selection/")
    page.fill("#id_capabilities", "code=0.7")
    page.fill("#id_limit", "3")
    page.click("#selection-form input[type=submit]")
    console.remember()
    expect(page.locator("#selection-chain tbody tr")).to_have_count(3)

    page.get_by_role("link", name="Compare the chain's models").click()
    console.remember()

    columns = page.locator("#compare-table th.model-column")
    expect(columns).to_have_count(3)
    expect(columns.nth(0)).to_contain_text("claude-3-5-haiku")  # the primary first, as in the chain


def test_the_dashboard_charts_spend_by_model_over_each_range(
    console: Console, viewer: Any, fleet: dict[str, Any]
) -> None:
    console.login("viewer-op")
    page = console.page
    panel = page.locator("#panel-spend")

    expect(panel.locator(".chart-ranges a.selected")).to_have_text("24h")
    expect(panel.locator("#spend-models tr", has_text="qwen2.5-coder:7b")).to_contain_text("unknown (")
    expect(panel.locator(".uncosted-note")).to_contain_text("requests uncosted")
    day_bars = panel.locator("svg.chart rect.bar").count()
    assert day_bars > 0
    assert panel.locator("svg.chart rect.uncosted").count() > 0

    panel.get_by_role("link", name="30d").click()
    console.remember()
    panel = page.locator("#panel-spend")
    expect(panel.locator(".chart-ranges a.selected")).to_have_text("30d")
    expect(panel.locator("#spend-models tbody tr")).to_have_count(5)  # 5 models with usage: no "rest" row
    assert panel.locator("svg.chart rect.bar").count() > day_bars  # every day of the month drawn
    expect(panel.locator("svg.chart rect.uncosted").first).to_be_attached()
    assert console.page_width() <= LAPTOP["width"]
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "spend.png"), clip=panel.bounding_box())

    page.get_by_role("link", name="7d").click()
    console.remember()
    expect(page.locator("#panel-spend .chart-ranges a.selected")).to_have_text("7d")
