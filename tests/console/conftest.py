"""Browser tests of the console: Debian's Chromium driven by Playwright against a live server.

The server is pytest-django's ``live_server``: the real WSGI application (admin, static files,
sessions, CSRF) over real HTTP on a free port, sharing the test database. Playwright's own browser
download does not work here, so the browser is the system's ``/usr/bin/chromium``; the flags keep
it from reaching for the (closed) network. Every test leaves a screenshot in
``tests/console/screenshots/`` (ignored by git); docs/console.md shows a few of them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
LAPTOP = {"width": 1366, "height": 768}
PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's

pytestmark = pytest.mark.browser

if shutil.which(CHROMIUM) is None:  # pragma: no cover (CI installs it: .ci/run)
    pytest.skip(f"no Chromium at {CHROMIUM} (apt install chromium)", allow_module_level=True)

from django.contrib.auth.models import Group, Permission  # noqa: E402
from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402 (after the skip above)

from registry.access.roles import Role, permissions_for  # noqa: E402
from registry_project.celery import app as celery_app  # noqa: E402
from tests.factories import UserFactory  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread while it is open; Django then refuses
    # ORM calls from the thread as "async" unless told that it is a plain synchronous test. Set for as
    # long as the browser is open only, so that no process a later test starts inherits it (check
    # --deploy refuses it, rightly).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _chromium()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """ "Discover now" runs its task inside the request instead of on a worker (a real worker and
    broker are tested in tests/discovery/test_worker.py)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


class Console:
    """A browser tab on the console, logged in as one user, that remembers what every page showed."""

    def __init__(self, page: Page, base_url: str, name: str) -> None:
        self.page = page
        self.base_url = base_url
        self.name = name
        self.seen: list[str] = []
        self.shots = 0

    def open(self, path: str) -> Page:
        self.page.goto(self.base_url + path)
        self.remember()
        return self.page

    def remember(self) -> None:
        self.page.wait_for_load_state()
        self.seen.append(self.page.content())

    def login(self, username: str, password: str = PASSWORD) -> None:
        self.open("/admin/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("input[type=submit]")
        self.remember()

    def screenshot(self, label: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        self.shots += 1
        path = SCREENSHOTS / f"{self.name}-{self.shots:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def page_width(self) -> int:
        return int(self.page.evaluate("document.documentElement.scrollWidth"))


@pytest.fixture
def console(
    browser: Browser, live_server: Any, plain_static_files: None, request: pytest.FixtureRequest
) -> Iterator[Console]:
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    tab = Console(page, live_server.url, request.node.name.removeprefix("test_"))
    yield tab
    tab.screenshot("end")
    context.close()


@pytest.fixture
def viewer(transactional_db: None) -> Any:
    """A staff user with the viewer role's permissions, as an operator who may look but not change."""
    group, _ = Group.objects.get_or_create(name=Role.VIEWER.group_name)
    wanted = set(permissions_for(Role.VIEWER))
    group.permissions.set(
        [
            perm
            for perm in Permission.objects.select_related("content_type")
            if f"{perm.content_type.app_label}.{perm.codename}" in wanted
        ]
    )
    user = UserFactory(username="viewer-op", is_staff=True)
    user.groups.add(group)
    return user
