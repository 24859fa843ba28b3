"""Issue 23, item 6a: the list pages fit a 1,366 px laptop screen with the sidebar open, long values and all."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission

from discovery.models import DiscoveryRun, RunStatus, SourceKind
from registry.access.audit import system_actor
from registry.access.roles import Role, permissions_for
from registry.catalog.services import capability_set
from registry.models import Alert, AlertKind
from tests.console.conftest import LAPTOP, Console
from tests.factories import ProviderSourceFactory, RegisteredModelFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_NAME = "hf.co/bartowski/Qwen2.5-Coder-32B-Instruct-abliterated-GGUF:Q4_K_M-imatrix-experimental"
LONG_URL = "https://inference-gateway.internal.example.com/tenants/research-and-development/openai/v1"
LONG_ERROR = (
    "source research-gateway: GET https://inference-gateway.internal.example.com/tenants/research-and-development/"
    "openai/v1/models could not be reached (connection refused), after 4 attempt(s); the last answer was HTTP 503 "
    "from the upstream load balancer, which said the service was being drained"
)


@pytest.fixture
def admin_op(transactional_db: None) -> Any:
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


@pytest.fixture
def long_values(admin_op: Any) -> None:
    source = ProviderSourceFactory(
        name="research-and-development-inference-gateway",
        kind=SourceKind.OPENAI_COMPATIBLE,
        base_url=LONG_URL,
        last_error=LONG_ERROR,
        consecutive_failures=4,
    )
    with system_actor("discovery"):
        for index in range(3):
            model = RegisteredModelFactory(name=f"{LONG_NAME}-{index}", source=source, provider="openai_compatible")
            for capability in ("code", "reasoning", "function_calling", "long_context", "vision"):
                capability_set(model=model, capability=capability, score=0.87)
    Alert.objects.create(kind=AlertKind.SOURCE_FAILING, source=source, message=LONG_ERROR, details={"x": LONG_ERROR})
    Alert.objects.create(kind=AlertKind.ERROR_RATE, model=model, message=f"{LONG_NAME}: error rate 27.0% " * 3)
    DiscoveryRun.objects.create(source=source, status=RunStatus.FAILED, error_message=LONG_ERROR)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/registry/registeredmodel/",
        "/admin/registry/alert/",
        "/admin/discovery/providersource/",
        "/admin/discovery/discoveryrun/",
        "/admin/auditlog/logentry/",
    ],
)
def test_a_list_needs_no_horizontal_scroll_on_a_laptop(console: Console, long_values: None, path: str) -> None:
    console.login("admin-op")
    page = console.open(path)
    assert page.locator("#nav-sidebar").is_visible()  # the sidebar open, as the admin opens it on this screen
    assert page.locator("#result_list tbody tr").count() >= 1
    console.screenshot(path.strip("/").replace("/", "-"))
    assert console.page_width() <= LAPTOP["width"], f"{path} is {console.page_width()} px wide"
    # The admin scrolls a wide table inside its box (.results): columns cut off at the right are as
    # hidden as a page that scrolls.
    table, box = page.evaluate(
        "(() => { const box = document.querySelector('#changelist .results');"
        " return [box.scrollWidth, box.clientWidth]; })()"
    )
    assert table <= box, f"{path}: the table is {table} px wide in a {box} px box"
