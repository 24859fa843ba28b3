"""A source's page in the browser: its "Discover now" and "Test connection" buttons and its runs (issue 23, item 6f)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from playwright.sync_api import expect

from discovery.models import DiscoveryRun, RunStatus, SourceKind
from registry.access.roles import Role, permissions_for
from registry.models import RegisteredModel
from tests.console.conftest import LAPTOP, Console
from tests.discovery.fakes.ollama import FakeOllama
from tests.factories import ProviderSourceFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin_op(transactional_db: None) -> Any:
    # A transactional test may have flushed the migration's groups: the role's permissions, set again.
    group, _ = Group.objects.get_or_create(name=Role.ADMIN.group_name)
    wanted = set(permissions_for(Role.ADMIN))
    group.permissions.set(
        [
            perm
            for perm in Permission.objects.select_related("content_type")
            if f"{perm.content_type.app_label}.{perm.codename}" in wanted
        ]
    )
    user = UserFactory(username="admin-op", is_staff=True)
    user.groups.add(group)
    return user


def test_an_admin_tests_and_discovers_a_source_from_its_page(
    console: Console, admin_op: Any, fake_ollama: FakeOllama, eager_tasks: None, settings: Any
) -> None:
    settings.OLLAMA_URL = None
    source = ProviderSourceFactory(name="gpu-box", kind=SourceKind.OLLAMA, base_url=fake_ollama.url)
    console.login("admin-op")
    page = console.open(f"/admin/discovery/providersource/{source.pk}/change/")

    page.click("#source-test-connection")
    console.remember()
    expect(page.locator(".messagelist")).to_contain_text("Gpu-box: reached,")
    assert not DiscoveryRun.objects.exists()  # a test writes nothing
    assert console.page_width() <= LAPTOP["width"]
    console.screenshot("tested")

    page.click("#source-discover-now")
    console.remember()
    expect(page.locator(".messagelist")).to_contain_text("Discovery queued for gpu-box")
    run = DiscoveryRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED
    assert RegisteredModel.objects.filter(source=source).exists()

    # The page reloaded after the action: its recent runs link to the run's own page.
    page.get_by_role("link", name=f"{run.started_at:%Y-%m-%d %H:%M:%S}").click()
    console.remember()
    expect(page.locator("#content h2, #content h1").first).to_be_visible()
    assert f"/admin/discovery/discoveryrun/{run.pk}/" in page.url
    console.screenshot("run")


def test_the_console_shows_its_icon(console: Console, admin_op: Any) -> None:
    console.login("admin-op")
    page = console.page
    href = page.locator('link[rel="icon"][sizes="any"]').get_attribute("href")
    assert href == "/static/registry/favicon.ico"
    status, kind = page.evaluate(
        "fetch('/favicon.ico').then(r => [r.status, r.headers.get('content-type')])"
    )  # followed through the redirect, as a browser does
    assert status == 200
    assert kind in {"image/x-icon", "image/vnd.microsoft.icon"}
