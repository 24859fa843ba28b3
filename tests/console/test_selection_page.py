"""An operator asks the console why a model is not chosen, in Chromium on a laptop screen."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import expect

from registry.models import Provider
from registry.telemetry.alerts import alerts_check
from tests.console.conftest import LAPTOP, Console
from tests.factories import ModelCapabilityFactory, ModelUsageFactory, RegisteredModelFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_finds_why_a_model_is_not_in_the_chain(console: Console, viewer: Any) -> None:
    for name, score, fields in (
        ("qwen2.5-coder:32b", 0.88, {"context_window": 32768}),
        ("deepseek-coder-v2:16b", 0.8, {"context_window": 163840}),
        ("llama3.1:8b", 0.55, {"context_window": 131072}),
        (
            "gpt-4o",
            0.93,
            {
                "provider": Provider.OPENAI,
                "context_window": 128000,
                "input_cost_per_mtok": Decimal("2.5"),
                "output_cost_per_mtok": Decimal("10"),
            },
        ),
        ("codellama:70b", 0.85, {"context_window": 16384}),
    ):
        model = RegisteredModelFactory(name=name, **fields)
        ModelCapabilityFactory(model=model, capability="code", capability_score=score)
        if name == "deepseek-coder-v2:16b":
            for _ in range(5):
                ModelUsageFactory(model=model, average_latency=4.0, request_count=10)

    console.login("viewer-op")
    page = console.page
    page.get_by_role("link", name="Try a selection").click()
    console.remember()
    page.fill("#id_capabilities", "code=0.7")
    page.fill("#id_min_context", "32000")
    page.fill("#id_max_input_cost", "1")
    page.fill("#id_max_latency_p95", "2")
    page.fill("#id_limit", "3")
    page.click("#selection-form input[type=submit]")
    console.remember()

    chain = page.locator("#selection-chain tbody tr")
    expect(chain).to_have_count(1)
    expect(chain.first).to_contain_text("qwen2.5-coder:32b")
    expect(chain.first).to_contain_text("primary")
    excluded = page.locator("#selection-excluded tbody tr")
    expect(excluded).to_have_count(4)
    expect(page.locator("#selection-excluded tr", has_text="gpt-4o")).to_contain_text(
        "Input price 2.5 is above 1 per million tokens."
    )
    # The p95 comes from hourly latency histograms: within 2 % of the records' 4 s.
    expect(page.locator("#selection-excluded tr", has_text="deepseek-coder-v2:16b")).to_contain_text(
        re.compile(r"p95 latency 4(\.0\d*)? s is above 2 s\.")
    )
    expect(page.locator("#selection-excluded tr", has_text="codellama:70b")).to_contain_text(
        "Context window 16384 is below 32000 tokens."
    )
    expect(page.locator("#selection-excluded tr", has_text="llama3.1:8b")).to_contain_text("score 0.55 is below 0.7")
    assert console.page_width() <= LAPTOP["width"]
    console.screenshot("selection")

    # The answer is a link an operator can share: the same question opens the same answer.
    console.open(page.url.removeprefix(console.base_url))
    expect(page.locator("#selection-chain tbody tr")).to_have_count(1)

    page.fill("#id_capabilities", "code")
    page.click("#selection-form input[type=submit]")
    console.remember()
    expect(page.locator(".field-capabilities .errorlist")).to_contain_text("needs a minimum score")


def test_a_model_with_an_open_error_rate_alert_is_shown_as_a_fallback(console: Console, viewer: Any) -> None:
    """Issue 23: the console recommended a model whose error-rate alert was open (27 % over the hour)."""
    for name, score in (("gpt-4o-mini", 0.92), ("qwen2.5-coder:7b", 0.8)):
        model = RegisteredModelFactory(name=name)
        ModelCapabilityFactory(model=model, capability="code", capability_score=score)
        if name == "gpt-4o-mini":
            ModelUsageFactory(model=model, request_count=100, error_count=27)
    alerts_check()

    console.login("viewer-op")
    console.open("/admin/selection/?capabilities=code%3D0.5")
    chain = console.page.locator("#selection-chain tbody tr")
    expect(chain).to_have_count(2)
    expect(chain.nth(0)).to_contain_text("qwen2.5-coder:7b")
    expect(chain.nth(0)).to_contain_text("primary")
    expect(chain.nth(1)).to_contain_text("gpt-4o-mini")
    expect(chain.nth(1)).to_contain_text("fallback only")
    expect(chain.nth(1)).to_contain_text("error rate 27.0% over the last 60 min")
    expect(chain.nth(1)).not_to_contain_text("primary")
    assert console.page_width() <= LAPTOP["width"]
    console.screenshot("selection-alert")
