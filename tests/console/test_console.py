"""The console used as operators use it: in Chromium, on a 1,366 px laptop screen, against a live server."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from playwright.sync_api import expect

from discovery.models import DiscoveryRun, ProviderSource, RunStatus, SourceKind
from discovery.sync import source_sync
from registry.access.audit import system_actor
from registry.access.roles import Role, permissions_for
from registry.models import Alert, AlertKind, ModelCapability, ModelParameter, SetBy
from tests.console.conftest import LAPTOP, SCREENSHOTS, Console
from tests.discovery.fakes.ollama import FakeOllama
from tests.discovery.fakes.openai_compatible import FakeOpenAICompatible
from tests.factories import (
    ModelCapabilityFactory,
    ModelParameterFactory,
    ModelUsageFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def operators(transactional_db: None) -> dict[str, Any]:
    """An admin, an editor and a viewer, all staff, with the factories' password."""
    users = {}
    for role in (Role.ADMIN, Role.EDITOR, Role.VIEWER):
        # A transactional test flushes the migration's groups (permissions come back with post_migrate).
        group, _ = Group.objects.get_or_create(name=role.group_name)
        wanted = set(permissions_for(role))
        group.permissions.set(
            [
                perm
                for perm in Permission.objects.select_related("content_type")
                if f"{perm.content_type.app_label}.{perm.codename}" in wanted
            ]
        )
        user = UserFactory(username=f"{role.group_name}-op", is_staff=True)
        user.groups.add(group)
        users[role.group_name] = user
    return users


@pytest.fixture
def discovered_ollama(fake_ollama: FakeOllama, settings: Any) -> ProviderSource:
    settings.OLLAMA_URL = None
    source = ProviderSourceFactory(name="gpu-box", kind=SourceKind.OLLAMA, base_url=fake_ollama.url)
    with system_actor("discovery"):
        assert source_sync(source=source, trigger="schedule").status == RunStatus.SUCCEEDED
    return source


def select_and_run(console: Console, action: str, row_texts: list[str]) -> None:
    """Tick the rows whose text holds each of ``row_texts``, choose ``action`` and press Go."""
    page = console.page
    for text in row_texts:
        page.locator("#result_list tbody tr", has_text=text).locator("input.action-select").check()
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    console.remember()


def test_login_shows_the_dashboard_with_the_seeded_figures_and_a_chart(
    console: Console, operators: dict[str, Any], discovered_ollama: ProviderSource
) -> None:
    busy = RegisteredModelFactory(name="gpt-4o", provider="openai")
    now = timezone.now()
    for hours in range(6):
        ModelUsageFactory(
            model=busy, request_count=10 + hours, token_count=1000, timestamp=now - timedelta(hours=hours)
        )
    Alert.objects.create(kind=AlertKind.ERROR_RATE, model=busy, message="gpt-4o error rate 9% over the last hour")

    console.login("admin-op")
    page = console.page

    expect(page.locator("#site-name")).to_have_text("Model Registry")
    models = page.locator("#panel-models")
    expect(models.locator("tr", has_text="Ollama").locator("td").first).to_have_text("5")
    expect(models.locator("tr", has_text="OpenAI").locator("td").first).to_have_text("1")
    expect(page.locator("#panel-sources tr", has_text="gpu-box")).to_contain_text("Succeeded")
    expect(page.locator("#panel-alerts .big-number")).to_have_text("1")
    expect(page.locator("#top-models tr", has_text="gpt-4o")).to_contain_text(str(sum(range(10, 16))))
    assert page.locator("#panel-usage svg.chart rect.bar").count() == 6
    assert console.page_width() <= LAPTOP["width"]
    console.screenshot("dashboard")

    models.get_by_role("link", name="5").first.click()  # every number links to its filtered list
    expect(page.locator("#result_list tbody tr")).to_have_count(5)

    console.open(f"/admin/registry/registeredmodel/{busy.pk}/change/?range=24h")
    charts = page.locator("#model-charts")
    expect(charts.locator("figure", has_text="Requests").locator("rect.bar")).to_have_count(6)
    expect(charts.locator("figure", has_text="Latency").locator("polyline")).to_have_count(2)
    assert console.page_width() <= LAPTOP["width"]
    charts.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "model-charts.png"), clip=charts.bounding_box())

    dark = page.context.browser.new_context(viewport=LAPTOP, color_scheme="dark")  # type: ignore[union-attr]
    dark.add_cookies(page.context.cookies())
    dark_page = dark.new_page()
    dark_page.goto(console.base_url + "/admin/")
    dark_page.screenshot(path=str(SCREENSHOTS / "login_shows_the_dashboard-dark.png"), full_page=True)
    dark.close()


def test_an_operators_score_survives_the_next_discovery(
    console: Console, operators: dict[str, Any], discovered_ollama: ProviderSource, eager_tasks: None
) -> None:
    console.login("admin-op")
    page = console.page
    console.open("/admin/registry/registeredmodel/")
    page.locator("#changelist-filter").get_by_role("link", name="Ollama", exact=True).click()
    page.locator("#changelist-filter").get_by_role("link", name="code", exact=True).click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    assert console.page_width() <= LAPTOP["width"]
    console.screenshot("filtered-list")

    rows.first.locator("th a").click()
    console.remember()
    assert console.page_width() <= LAPTOP["width"]
    code_row = page.locator("#capabilities-group tr.form-row", has=page.locator("input[value=code]"))
    expect(code_row.locator(".owner")).to_have_text("discovery")
    code_row.locator("input[name$=capability_score]").fill("0.93")
    console.screenshot("model-page")
    page.click("input[name=_save]")
    console.remember()
    expect(page.locator(".messagelist .success")).to_contain_text("was changed successfully")
    expect(page.locator("#result_list tbody tr", has_text="qwen2.5-coder:1.5b")).to_contain_text("code 0.93")

    page.locator("#result_list tbody tr", has_text="qwen2.5-coder:1.5b").locator("th a").click()
    page.locator("#model-history").get_by_role("link", name="audit history").click()
    console.remember()
    expect(page.locator("#result_list")).to_contain_text("qwen2.5-coder:1.5b: code")
    console.screenshot("audit-history")

    console.open("/admin/discovery/providersource/")
    select_and_run(console, "discover_now", ["gpu-box"])
    expect(page.locator(".messagelist")).to_contain_text("Discovery queued for gpu-box")
    assert DiscoveryRun.objects.filter(source=discovered_ollama, trigger="manual").count() == 1

    capability = ModelCapability.objects.get(model__name="qwen2.5-coder:1.5b", capability="code")
    assert (capability.capability_score, capability.set_by) == (0.93, SetBy.OPERATOR)
    console.open(f"/admin/registry/registeredmodel/{capability.model_id}/change/")
    code_row = page.locator("#capabilities-group tr.form-row", has=page.locator("input[value=code]"))
    expect(code_row.locator("input[name$=capability_score]")).to_have_value("0.93")
    expect(code_row.locator(".owner")).to_have_text("operator")


def test_an_openai_compatible_source_added_with_a_key_is_discovered_and_the_key_shown_nowhere(
    console: Console, operators: dict[str, Any], eager_tasks: None, settings: Any
) -> None:
    settings.OLLAMA_URL = None
    secret = "sk-vllm-console-test-key-0042"
    server = FakeOpenAICompatible(flavour="vllm", api_key=secret).start()
    try:
        console.login("admin-op")
        page = console.page
        console.open("/admin/discovery/providersource/add/")
        page.fill("#id_name", "vllm-lab")
        page.select_option("#id_kind", SourceKind.OPENAI_COMPATIBLE)
        page.fill("#id_base_url", f"{server.url}/v1")
        page.fill("#id_api_key", secret)
        console.screenshot("add-source")
        page.click("input[name=_save]")
        console.remember()
        expect(page.locator(".messagelist .success")).to_be_visible()

        select_and_run(console, "discover_now", ["vllm-lab"])
        page.get_by_role("link", name="history").first.click()
        console.remember()
        expect(page.locator("#result_list tbody tr").first).to_contain_text("Succeeded")
        page.locator("#result_list tbody tr").first.locator("th a, td a").first.click()
        console.remember()
        console.open("/admin/registry/registeredmodel/?source__id__exact=" + str(ProviderSource.objects.get().pk))
        expect(page.locator("#result_list")).to_contain_text("meta-llama/Llama-3.1-8B-Instruct")
        console.screenshot("discovered-models")
        console.open(f"/admin/discovery/providersource/{ProviderSource.objects.get().pk}/change/")
        expect(page.locator(".field-api_key .help")).to_contain_text("A value is stored (hidden)")
        console.open("/admin/")
        console.open("/admin/auditlog/logentry/")

        assert ProviderSource.objects.get(name="vllm-lab").api_key == secret
        assert [html for html in console.seen if secret in html] == []
        assert any(request.headers.get("authorization") == f"Bearer {secret}" for request in server.requests)
    finally:
        server.stop()


def test_min_above_max_is_refused_next_to_the_field_and_nothing_is_saved(
    console: Console, operators: dict[str, Any]
) -> None:
    parameter = ModelParameterFactory(
        model=RegisteredModelFactory(name="llama3.2:latest"), parameter_name="top_k", default_value=5, min_value=1
    )
    console.login("editor-op")
    page = console.page
    console.open(f"/admin/registry/registeredmodel/{parameter.model_id}/change/")
    row = page.locator("#parameters-group tr.form-row", has=page.locator("input[value=top_k]"))
    row.locator("input[name$=min_value]").fill("10")
    row.locator("input[name$=max_value]").fill("1")
    page.click("input[name=_save]")
    console.remember()

    errors = page.locator("#parameters-group .errorlist")
    expect(errors).to_contain_text("Must not be greater than max_value.")
    assert console.page_width() <= LAPTOP["width"]
    console.screenshot("validation")
    parameter = ModelParameter.objects.get(pk=parameter.pk)
    assert (parameter.min_value, parameter.max_value) == (1, 2.0)


def test_an_alert_is_acknowledged_and_the_model_list_exported_as_csv(
    console: Console, operators: dict[str, Any]
) -> None:
    model = RegisteredModelFactory(name="qwen3:8b", provider="ollama")
    ModelCapabilityFactory(model=model, capability="reasoning", capability_score=0.9)
    RegisteredModelFactory(name="gpt-4o", provider="openai")
    RegisteredModelFactory(name="gpt-4o-mini", provider="openai")
    Alert.objects.create(kind=AlertKind.LATENCY, model=model, message="qwen3:8b latency 3x its baseline")
    console.login("admin-op")
    page = console.page

    console.open("/admin/registry/alert/?state=open")
    select_and_run(console, "acknowledge", ["qwen3:8b latency"])
    expect(page.locator(".messagelist")).to_contain_text("1 alert(s) acknowledged.")
    expect(page.locator("#result_list tbody tr").first).to_contain_text("admin-op ·")
    console.screenshot("alerts")
    alert = Alert.objects.get()
    assert alert.acknowledged_by == "admin-op"

    console.open("/admin/registry/registeredmodel/?provider__exact=openai")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(download_info.value.path().read_text(encoding="utf-8"))))
    assert sorted(row["name"] for row in rows) == ["gpt-4o", "gpt-4o-mini"]
    assert {row["provider"] for row in rows} == {"openai"}


def test_a_viewer_finds_no_save_button_anywhere(
    console: Console, operators: dict[str, Any], discovered_ollama: ProviderSource
) -> None:
    model = RegisteredModelFactory(name="gpt-4o", provider="openai")
    ModelCapabilityFactory(model=model)
    ModelUsageFactory(model=model)
    Alert.objects.create(kind=AlertKind.ERROR_RATE, model=model, message="errors")
    console.login("viewer-op")
    page = console.page
    pages = [
        "/admin/",
        "/admin/registry/registeredmodel/",
        f"/admin/registry/registeredmodel/{model.pk}/change/",
        "/admin/registry/modelusage/",
        "/admin/registry/modelperformance/",
        "/admin/registry/alert/",
        "/admin/discovery/providersource/",
        f"/admin/discovery/providersource/{discovered_ollama.pk}/change/",
        "/admin/discovery/discoveryrun/",
    ]
    for path in pages:
        console.open(path)
        assert (
            page.locator("input[type=submit][name^=_save], input[name=_continue], input[name=_addanother]").count() == 0
        ), path
        adds = page.locator("a.addlink:visible, .object-tools a[href$='/add/']:visible")
        assert adds.count() == 0, (path, [adds.nth(i).evaluate("e => e.outerHTML") for i in range(adds.count())])
        assert page.locator("select[name=action] option[value=discover_now]").count() == 0, path
        assert page.locator("select[name=action] option[value=acknowledge]").count() == 0, path
    console.open(f"/admin/registry/registeredmodel/{model.pk}/change/")
    console.screenshot("viewer-model-page")
    assert re.search(r"Model Registry", page.title())
