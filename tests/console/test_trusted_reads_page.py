"""The router's token-less reads and usage posts as an operator finds them in the console: counts per client, route
and minute."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from django.contrib.auth.models import Group, Permission
from playwright.sync_api import expect

from registry.access.read_counts import read_counts_flush
from registry.access.roles import Role, permissions_for
from tests.console.conftest import LAPTOP, Console
from tests.factories import ModelCapabilityFactory, RegisteredModelFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def staff_user(role: Role) -> Any:
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
    return user


def test_an_admin_finds_the_routers_reads_as_counts(console: Console, live_server: Any, settings: Any) -> None:
    settings.PLATFORM_API_COMPAT = "alfred"
    settings.PLATFORM_TRUSTED_NETWORKS = ["127.0.0.0/8"]
    for index in range(3):
        model = RegisteredModelFactory(name=f"router-{index}:latest")
        ModelCapabilityFactory(model=model, capability="code", capability_score=0.8)
    staff_user(Role.ADMIN)

    # The router's refreshes: the list, then each model's capabilities, without a token, four times.
    router = requests.Session()
    for _ in range(4):
        listing = router.get(f"{live_server.url}/api/v1/models", timeout=10)
        assert listing.status_code == 200
        for model in listing.json():
            assert router.get(f"{live_server.url}/api/v1/models/{model['id']}/capabilities", timeout=10).ok
    # And its usage posts, one per LLM request: counted on their route's row too, not audited one by one.
    for index, model in enumerate(listing.json()):
        metric = {"request_id": f"req-{index}", "model_id": model["id"], "content_token_count": 10}
        assert router.post(f"{live_server.url}/api/v1/models/{model['id']}/usage", json=metric, timeout=10).ok
    read_counts_flush()  # what each web process's thread does every PLATFORM_READ_COUNTS_FLUSH_SECONDS

    console.login("admin-op")
    page = console.page
    page.get_by_role("link", name="Trusted network reads").first.click()
    console.remember()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)  # one per method, route and minute, not 19
    listed = page.locator("#result_list tbody tr", has_text="127.0.0.1 read GET /api/v1/models 4 times in")
    expect(listed).to_be_in_viewport()
    capabilities = "127.0.0.1 read GET /api/v1/models/{ref}/capabilities 12 times in"
    expect(page.locator("#result_list tbody tr", has_text=capabilities)).to_be_in_viewport()
    posts = "127.0.0.1 sent POST /api/v1/models/{ref}/usage 3 times in"
    expect(page.locator("#result_list tbody tr", has_text=posts)).to_be_in_viewport()
    assert int(page.evaluate("document.documentElement.scrollWidth")) <= LAPTOP["width"]
    console.screenshot("trusted-reads")

    # Searched by the client's address, as an operator chasing one router would.
    page.fill("#searchbar", "127.0.0.1")
    page.press("#searchbar", "Enter")
    console.remember()
    expect(rows).to_have_count(3)
    page.fill("#searchbar", "10.9.9.9")
    page.press("#searchbar", "Enter")
    console.remember()
    expect(rows).to_have_count(0)


def test_an_editor_sees_no_trusted_reads(console: Console, settings: Any) -> None:
    staff_user(Role.EDITOR)
    console.login("editor-op")
    expect(console.page.get_by_role("link", name="Trusted network reads")).to_have_count(0)
    response = console.page.goto(console.base_url + "/admin/registry/trustednetworkread/")
    assert response is not None
    assert response.status == 403
