"""The API docs' "Try it out" in the browser of a staff user logged into the console (issue 23, item 6l)."""

from __future__ import annotations

from typing import Any

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from registry.access.roles import Role
from registry.models import RegisteredModel
from tests.console.conftest import Console
from tests.factories import RegisteredModelFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def operator(transactional_db: None) -> Any:
    user = UserFactory(username="admin-op", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=Role.ADMIN.group_name)[0])
    return user


def operation(console: Console, method: str, path: str) -> Any:
    block = console.page.locator(f".opblock-{method.lower()}", has=console.page.locator(f'[data-path="{path}"]'))
    block.first.locator(".opblock-summary").first.click()
    return block.first


def test_try_it_out_answers_with_the_staff_session(console: Console, operator: Any) -> None:
    RegisteredModelFactory(name="qwen2.5-coder:7b")
    console.login("admin-op")
    console.open("/api/docs")
    page = console.page
    expect(page.locator(".swagger-ui .info")).to_be_visible()

    listing = operation(console, "GET", "/models")
    listing.get_by_role("button", name="Try it out").click()
    listing.get_by_role("button", name="Execute").click()
    status = listing.locator(".live-responses-table .response .response-col_status").first
    expect(status).to_have_text("200")
    expect(listing.locator(".live-responses-table")).to_contain_text("qwen2.5-coder:7b")
    console.screenshot("try-it-out-get")

    # A write goes through too, with the page's CSRF token, as the operator (audited as them).
    deletion = operation(console, "DELETE", "/models/{ref}")
    deletion.get_by_role("button", name="Try it out").click()
    deletion.locator('input[placeholder="ref"]').fill("qwen2.5-coder:7b")
    deletion.get_by_role("button", name="Execute").click()
    expect(deletion.locator(".live-responses-table .response .response-col_status").first).to_have_text("204")
    assert not RegisteredModel.objects.exists()
    assert (
        LogEntry.objects.filter(object_repr="qwen2.5-coder:7b", action=LogEntry.Action.DELETE).get().actor == operator
    )
    console.screenshot("try-it-out-delete")
