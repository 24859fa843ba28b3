"""The operator console: sources saved through the service, "Discover now" for admins, run history."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from discovery.models import DiscoveryRun, ProviderSource, RunStatus, SourceKind
from discovery.schedules import runtime_schedule_name, schedule_name
from tests.admin_forms import rendered_form
from tests.discovery.fakes.openai import FakeOpenAI
from tests.factories import ProviderSourceFactory
from tests.faults import silent_server

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:discovery_providersource_changelist"


@pytest.fixture
def silent_port() -> Iterator[int]:
    with silent_server() as port:
        yield port


def test_admin_discover_now_queues_the_selected_sources(
    staff: dict[str, Client], queued: list[tuple[Any, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    source = ProviderSourceFactory(name="gpu-box")

    with django_capture_on_commit_callbacks(execute=True):
        response = staff["admin"].post(
            reverse(CHANGELIST), {"action": "discover_now", "_selected_action": [source.pk]}, follow=True
        )

    assert response.status_code == 200
    assert queued == [((source.pk,), {"trigger": "manual"})]
    assert "Discovery queued for gpu-box" in response.content.decode()


def test_editor_sees_sources_but_cannot_discover_now(staff: dict[str, Client], queued: list[tuple[Any, Any]]) -> None:
    source = ProviderSourceFactory(name="gpu-box")

    response = staff["editor"].post(reverse(CHANGELIST), {"action": "discover_now", "_selected_action": [source.pk]})

    assert response.status_code == 200
    assert "Discovery queued" not in response.content.decode()
    assert queued == []
    assert (
        staff["editor"].post(reverse("admin:discovery_providersource_change", args=[source.pk]), {}).status_code == 403
    )


def test_adding_a_source_in_the_admin_creates_its_schedule_and_hides_the_key(staff: dict[str, Client]) -> None:
    response = staff["admin"].post(
        reverse("admin:discovery_providersource_add"),
        {
            "name": "openai-eu",
            "kind": SourceKind.OPENAI,
            "base_url": "https://eu.api.openai.com/v1",
            "enabled": "on",
            "interval_seconds": "900",
            "api_key": "sk-admin-typed-secret",
        },
    )

    assert response.status_code == 302
    source = ProviderSource.objects.get(name="openai-eu")
    assert source.api_key == "sk-admin-typed-secret"
    assert PeriodicTask.objects.get(name=schedule_name(source)).interval.every == 900
    page = staff["admin"].get(reverse("admin:discovery_providersource_change", args=[source.pk]))
    assert page.status_code == 200
    assert "sk-admin-typed-secret" not in page.content.decode()


def test_invalid_base_url_in_the_admin_is_a_field_error(staff: dict[str, Client]) -> None:
    response = staff["admin"].post(
        reverse("admin:discovery_providersource_add"),
        {"name": "bad", "kind": SourceKind.OLLAMA, "base_url": "ollama:11434", "interval_seconds": "60"},
    )

    assert response.status_code == 200
    assert "Only http and https URLs with a host are allowed." in response.content.decode()
    assert ProviderSource.objects.count() == 0


def test_deleting_a_source_in_the_admin_removes_its_schedule(staff: dict[str, Client]) -> None:
    staff["admin"].post(
        reverse("admin:discovery_providersource_add"),
        {
            "name": "box",
            "kind": SourceKind.OLLAMA,
            "base_url": "http://box:11434",
            "enabled": "on",
            "interval_seconds": "60",
        },
    )
    source = ProviderSource.objects.get(name="box")

    response = staff["admin"].post(reverse("admin:discovery_providersource_delete", args=[source.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not PeriodicTask.objects.filter(name=schedule_name(source)).exists()


def test_run_history_shows_counts_and_errors(staff: dict[str, Client]) -> None:
    source = ProviderSourceFactory(name="gpu-box")
    DiscoveryRun.objects.create(
        source=source, status=RunStatus.FAILED, error_message="the key for source gpu-box was rejected (HTTP 401)"
    )

    response = staff["admin"].get(reverse("admin:discovery_discoveryrun_changelist"))

    assert response.status_code == 200
    assert "the key for source gpu-box was rejected (HTTP 401)" in response.content.decode()


def test_source_page_shows_its_recent_runs(staff: dict[str, Client]) -> None:
    source = ProviderSourceFactory(name="gpu-box")
    DiscoveryRun.objects.create(source=source, status=RunStatus.SUCCEEDED, models_added=4)
    DiscoveryRun.objects.create(source=source, status=RunStatus.FAILED, error_message="connection <refused>")

    response = staff["admin"].get(reverse("admin:discovery_providersource_change", args=[source.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "<td>4 / 0 / 0 / 0</td>" in page
    assert "connection &lt;refused&gt;" in page  # escaped


# --- The secret input, as the page renders it ------------------------------------------------------


def test_the_source_form_renders_a_write_only_api_key_input(staff: dict[str, Client]) -> None:
    page = staff["admin"].get(reverse("admin:discovery_providersource_add")).content.decode()

    assert 'type="password" name="api_key"' in page
    assert "Write-only" in page


def test_a_key_typed_into_the_rendered_form_is_stored_and_never_shown(staff: dict[str, Client]) -> None:
    form = rendered_form(staff["admin"], reverse("admin:discovery_providersource_add"), "providersource_form")
    form.set("name", "vllm-box").set("kind", SourceKind.OPENAI_COMPATIBLE).set("base_url", "http://vllm:8000/v1")
    form.set("api_key", "sk-typed-in-the-console")

    response = staff["admin"].post(reverse("admin:discovery_providersource_add"), form.data)

    assert response.status_code == 302, response.content.decode()[:2000]
    source = ProviderSource.objects.get(name="vllm-box")
    assert source.api_key == "sk-typed-in-the-console"
    change_url = reverse("admin:discovery_providersource_change", args=[source.pk])
    for role in ("admin", "viewer"):
        page = staff[role].get(change_url).content.decode()
        assert "sk-typed-in-the-console" not in page
    assert "A value is stored (hidden)" in staff["admin"].get(change_url).content.decode()


def test_an_empty_key_box_keeps_the_key_and_the_clear_box_removes_it(staff: dict[str, Client]) -> None:
    source = ProviderSourceFactory(name="box", kind=SourceKind.OPENAI_COMPATIBLE, api_key="sk-stored")
    url = reverse("admin:discovery_providersource_change", args=[source.pk])

    staff["admin"].post(url, rendered_form(staff["admin"], url, "providersource_form").set("enabled", True).data)
    source.refresh_from_db()
    assert source.api_key == "sk-stored"

    staff["admin"].post(url, rendered_form(staff["admin"], url, "providersource_form").set("clear_api_key", True).data)
    source.refresh_from_db()
    assert source.api_key is None


def test_the_source_form_validates_as_the_api_does(staff: dict[str, Client]) -> None:
    form = rendered_form(staff["admin"], reverse("admin:discovery_providersource_add"), "providersource_form")
    form.set("name", "box\x07bell").set("kind", SourceKind.OLLAMA).set("base_url", "ftp://box").set(
        "interval_seconds", "5"
    )

    response = staff["admin"].post(reverse("admin:discovery_providersource_add"), form.data)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Starts and ends with a visible character; no control or format characters." in page
    assert "Only http and https URLs with a host are allowed." in page
    assert "Ensure this value is greater than or equal to 10." in page
    assert not ProviderSource.objects.exists()


def test_test_connection_reports_the_listing_or_the_providers_error_never_the_key(
    staff: dict[str, Client], fake_openai: FakeOpenAI
) -> None:
    good = ProviderSourceFactory(
        name="openai", kind=SourceKind.OPENAI, base_url=f"{fake_openai.url}/v1", api_key=fake_openai.api_key
    )
    bad = ProviderSourceFactory(
        name="openai-old-key", kind=SourceKind.OPENAI, base_url=f"{fake_openai.url}/v1", api_key="sk-revoked-key"
    )

    response = staff["admin"].post(
        reverse(CHANGELIST), {"action": "test_connection", "_selected_action": [good.pk, bad.pk]}, follow=True
    )

    page = response.content.decode().lower()  # the admin capitalises messages
    assert "openai: reached," in page
    assert "model(s) listed" in page
    assert "openai-old-key:" in page
    assert "sk-revoked-key" not in page
    assert fake_openai.api_key.lower() not in page
    assert not DiscoveryRun.objects.exists()  # a test writes nothing


def test_a_runs_page_names_the_models_it_added_and_made_unavailable(staff: dict[str, Client]) -> None:
    source = ProviderSourceFactory(name="gpu-box")
    run = DiscoveryRun.objects.create(
        source=source,
        status=RunStatus.SUCCEEDED,
        models_added=3,
        models_unavailable=1,
        changes={"added": ["llama3.2:latest", "a&b"], "updated": [], "unavailable": ["old:7b"], "skipped": []},
    )

    page = staff["viewer"].get(reverse("admin:discovery_discoveryrun_change", args=[run.pk])).content.decode()

    assert f'<b><a href="/admin/registry/registeredmodel/?run_change={run.pk}.added">Added</a></b> (3)' in page
    assert 'href="/admin/registry/registeredmodel/?q=llama3.2%3Alatest">llama3.2:latest</a>' in page
    assert 'href="/admin/registry/registeredmodel/?q=a%26b">a&amp;b</a>' in page
    assert "and 1 more" in page
    assert (
        f'<a href="/admin/registry/registeredmodel/?run_change={run.pk}.unavailable">Made unavailable</a></b> (1)'
        in page
    )


def test_the_runtime_poll_interval_is_edited_on_the_source_and_moves_its_schedule(staff: dict[str, Client]) -> None:
    source = ProviderSourceFactory(name="gpu", kind=SourceKind.OLLAMA, base_url="http://gpu:11434")
    url = reverse("admin:discovery_providersource_change", args=[source.pk])

    form = rendered_form(staff["admin"], url, "providersource_form")
    assert form.data["runtime_poll_seconds"] == "30"
    response = staff["admin"].post(url, form.set("runtime_poll_seconds", "12").data)

    assert response.status_code == 302
    assert PeriodicTask.objects.get(name=runtime_schedule_name(source)).interval.every == 12
    refused = staff["admin"].post(url, form.set("runtime_poll_seconds", "2").data)
    assert refused.status_code == 200
    assert "0 (off) or at least 5 seconds." in refused.content.decode()


def test_a_runs_page_shows_its_warnings(staff: dict[str, Client]) -> None:
    run = DiscoveryRun.objects.create(
        source=ProviderSourceFactory(),
        status=RunStatus.SUCCEEDED,
        warnings=["What the host has loaded could not be read, so runtime was not recorded: HTTP 500"],
    )

    page = staff["viewer"].get(reverse("admin:discovery_discoveryrun_change", args=[run.pk])).content.decode()
    listing = staff["viewer"].get(reverse("admin:discovery_discoveryrun_changelist")).content.decode()

    assert "<li>What the host has loaded could not be read" in page
    assert "warning: What the host has loaded" in listing


def test_test_connection_to_a_host_that_never_answers_is_bounded(
    staff: dict[str, Client], settings: Any, silent_port: int
) -> None:
    """Issue 23, item 6b: "Test connection" held a web worker 7.2 s (retries, backoff) on an unreachable host."""
    settings.DISCOVERY_READ_TIMEOUT = 5.0
    settings.DISCOVERY_MAX_RETRIES = 3
    settings.DISCOVERY_BACKOFF_SECONDS = 1.0
    settings.SOURCE_TEST_TIMEOUT_SECONDS = 0.5
    source = ProviderSourceFactory(name="gpu-box", kind=SourceKind.OLLAMA, base_url=f"http://127.0.0.1:{silent_port}")

    started = time.monotonic()
    response = staff["admin"].post(
        reverse(CHANGELIST), {"action": "test_connection", "_selected_action": [source.pk]}, follow=True
    )
    waited = time.monotonic() - started

    page = response.content.decode()
    assert f"Gpu-box: source gpu-box: GET http://127.0.0.1:{silent_port}/api/tags did not answer within 0.5s" in page
    assert "(the bound of this check) (read timeout), after 1 attempt(s)" in page
    # The bound plus the page's own work; unbounded, it was four 5-second reads and 7 s of backoff.
    assert waited < 3.0


def test_a_sources_page_has_discover_now_and_test_connection_for_admins(
    staff: dict[str, Client],
    queued: list[tuple[Any, Any]],
    django_capture_on_commit_callbacks: Any,
    fake_openai: FakeOpenAI,
) -> None:
    """Issue 23, item 6f: the buttons were only bulk actions of the list."""
    source = ProviderSourceFactory(
        name="openai", kind=SourceKind.OPENAI, base_url=f"{fake_openai.url}/v1", api_key=fake_openai.api_key
    )
    page_url = reverse("admin:discovery_providersource_change", args=[source.pk])
    discover_url = reverse("admin:discovery_providersource_discover", args=[source.pk])
    test_url = reverse("admin:discovery_providersource_test", args=[source.pk])

    page = staff["admin"].get(page_url).content.decode()
    assert f'action="{discover_url}"' in page
    assert f'action="{test_url}"' in page
    assert 'name="csrfmiddlewaretoken"' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = staff["admin"].post(discover_url, follow=True)
    assert response.redirect_chain == [(page_url, 302)]
    assert queued == [((source.pk,), {"trigger": "manual"})]
    assert "Discovery queued for openai" in response.content.decode()

    response = staff["admin"].post(test_url, follow=True)
    assert re.search(r"Openai: reached, \d+ model\(s\) listed\.", response.content.decode())
    assert not DiscoveryRun.objects.exists()  # a test writes nothing


def test_a_sources_buttons_are_post_only_and_for_admins_only(
    staff: dict[str, Client], role_users: dict[str, Any], queued: list[tuple[Any, Any]]
) -> None:
    source = ProviderSourceFactory(name="gpu-box")
    discover_url = reverse("admin:discovery_providersource_discover", args=[source.pk])
    assert staff["admin"].get(discover_url).status_code == 405
    assert staff["editor"].post(discover_url).status_code == 403
    assert staff["editor"].post(reverse("admin:discovery_providersource_test", args=[source.pk])).status_code == 403
    page = staff["editor"].get(reverse("admin:discovery_providersource_change", args=[source.pk])).content.decode()
    assert "Discover now" not in page
    assert queued == []
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(role_users["admin"])
    assert forged.post(discover_url).status_code == 403  # no CSRF token
    assert queued == []


def test_a_sources_recent_runs_link_to_their_pages(staff: dict[str, Client]) -> None:
    source = ProviderSourceFactory(name="gpu-box")
    run = DiscoveryRun.objects.create(source=source, status=RunStatus.SUCCEEDED, models_added=1)
    page = staff["viewer"].get(reverse("admin:discovery_providersource_change", args=[source.pk])).content.decode()
    assert f'href="{reverse("admin:discovery_discoveryrun_change", args=[run.pk])}"' in page
