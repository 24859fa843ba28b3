"""A model's page: its availability timeline, links to its sections, an expiry told truly; status edits recorded."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from registry.models import ModelRuntime, ModelStatus, ModelStatusEvent, RegisteredModel, StatusEventOrigin
from registry.telemetry.availability import status_change_record
from tests.admin_forms import rendered_form
from tests.factories import ProviderSourceFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db


def change_url(model: RegisteredModel) -> str:
    return f"/admin/registry/registeredmodel/{model.pk}/change/"


def section(page: str, element_id: str) -> str:
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("</fieldset>", start)]


@pytest.fixture
def flaky() -> RegisteredModel:
    """Available for days; missing for 3 hours yesterday (a discovery run saw it), then back."""
    now = timezone.now()
    model = RegisteredModelFactory(name="qwen3:8b")
    for at, status, cause, run in [
        (now - timedelta(days=20), ModelStatus.AVAILABLE, "first listed by source gpu-1 (run #1)", 1),
        (now - timedelta(hours=27), ModelStatus.UNAVAILABLE, "no longer listed by source gpu-1 nor any other", 40),
        (now - timedelta(hours=24), ModelStatus.AVAILABLE, "listed again by source gpu-1 (run #41)", 41),
    ]:
        status_change_record(
            model_id=model.pk, status=status, origin=StatusEventOrigin.DISCOVERY, cause=cause, at=at, run_id=run
        )
    return model


def test_the_page_draws_the_periods_availability_with_hover_text_legend_and_changes(
    staff: dict[str, Client], flaky: RegisteredModel
) -> None:
    page = staff["viewer"].get(change_url(flaky)).content.decode()

    part = section(page, "model-availability")
    spans = re.findall(r'<rect class="timeline-span timeline-(\w+)"', part)
    assert spans == ["available", "unavailable", "available"]
    assert "status: unavailable · " in part
    assert "(3 h) · no longer listed by source gpu-1 nor any other" in part
    assert 'class="swatch timeline-available"></span>available 98.2%' in part  # 165 of 168 hours
    assert "available (degraded included) 98.21% of the known time" in part
    assert "unavailable 3 h" in part
    table = part[part.index('id="availability-events"') :]
    assert table.index("listed again") < table.index("no longer listed")  # newest first
    assert 'href="/admin/discovery/discoveryrun/41/change/">open run #41</a>' in table


def test_the_period_can_be_switched_and_an_unknown_one_reads_as_seven_days(
    staff: dict[str, Client], flaky: RegisteredModel
) -> None:
    month = section(staff["viewer"].get(change_url(flaky) + "?availability=30d").content.decode(), "model-availability")
    odd = section(staff["viewer"].get(change_url(flaky) + "?availability=1y").content.decode(), "model-availability")

    # 30 days reach back before the first event: unknown, then the three stretches.
    assert re.findall(r"timeline-span timeline-(\w+)", month) == ["unknown", "available", "unavailable", "available"]
    assert 'class="selected">30d</a>' in month
    assert 'class="selected">7d</a>' in odd


def test_a_model_without_history_says_so(staff: dict[str, Client]) -> None:
    part = section(staff["viewer"].get(change_url(RegisteredModelFactory())).content.decode(), "model-availability")

    assert "available (degraded included) unknown (no event in this period or before)" in part
    assert "No change in this period." in part


def test_the_page_links_to_each_of_its_sections_and_every_link_has_a_target(
    staff: dict[str, Client], flaky: RegisteredModel
) -> None:
    page = staff["admin"].get(change_url(flaky)).content.decode()

    nav = page[page.index('id="model-sections"') :].split("</nav>")[0]
    targets = re.findall(r'href="#([\w-]+)"', nav)
    assert targets == [
        "content",
        "capabilities-group",
        "parameters-group",
        "prices-group",
        "endpoints-group",
        "model-runtime-section",
        "model-availability",
        "model-history",
        "model-charts",
    ]
    for target in targets:
        assert f'id="{target}"' in page, target
    # The links come before the form's first field: the charts are one click away, not 3,000 px down.
    assert page.index('id="model-sections"') < page.index('name="display_name"')


def test_an_expiry_in_the_past_reads_expired_not_unloads_in_zero_minutes(staff: dict[str, Client]) -> None:
    model = RegisteredModelFactory(name="stale:latest")
    now = timezone.now()
    ModelRuntime.objects.create(
        model=model,
        source=ProviderSourceFactory(name="gpu-a"),
        loaded=True,
        expires_at=now - timedelta(days=366),
        checked_at=now - timedelta(days=366),
    )
    ModelRuntime.objects.create(
        model=RegisteredModelFactory(name="pinned:latest"),
        source=ProviderSourceFactory(name="gpu-b"),
        loaded=True,
        expires_at=now + timedelta(days=365 * 290),  # Ollama's keep_alive=-1
        checked_at=now,
    )

    model_page = staff["viewer"].get(change_url(model)).content.decode()
    dashboard = staff["viewer"].get("/admin/").content.decode()

    runtime = model_page[model_page.index('id="model-runtime"') :].split("</table>")[0]
    assert "expired 1\xa0year ago" in runtime
    loaded_now = dashboard[dashboard.index('id="panel-loaded"') :].split("</section>")[0]
    assert "expired 1\xa0year ago" in loaded_now
    assert "kept loaded (no expiry)" in loaded_now
    assert "in 0\xa0minutes" not in runtime + loaded_now


def test_the_pages_queries_and_size_do_not_grow_with_the_history(
    staff: dict[str, Client], flaky: RegisteredModel, django_assert_max_num_queries: Any
) -> None:
    client = staff["viewer"]
    client.get(change_url(flaky))  # warm the session and the content types
    with django_assert_max_num_queries(60) as few:
        client.get(change_url(flaky))
    now = timezone.now()
    for hour in range(1, 150):
        status_change_record(
            model_id=flaky.pk,
            status=ModelStatus.UNAVAILABLE if hour % 2 else ModelStatus.AVAILABLE,
            origin=StatusEventOrigin.DISCOVERY,
            cause="flapping",
            at=now - timedelta(minutes=hour),
        )

    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(change_url(flaky)).content.decode()

    # 150 changes a minute apart are a few pixels of a week: drawn as a handful of marks, each saying what it holds.
    part = section(page, "model-availability")
    marks = re.findall(r"<rect class=\"timeline-span timeline-\w+\"", part)
    assert 4 <= len(marks) < 30
    assert re.search(r"status: \d+ changes · .* UTC \(\d+ min\): (available|unavailable) \d+%", part)


def test_a_status_set_on_the_page_or_by_the_lists_action_is_recorded_with_the_operator(
    staff: dict[str, Client],
) -> None:
    model = RegisteredModelFactory(status=ModelStatus.AVAILABLE)
    form = rendered_form(staff["editor"], change_url(model), "registeredmodel_form").set("status", "deprecated")
    assert staff["editor"].post(change_url(model), form.data).status_code == 302
    staff["editor"].post(
        "/admin/registry/registeredmodel/",
        {"action": "mark_available", "_selected_action": [model.pk]},
    )

    events = list(ModelStatusEvent.objects.order_by("id").values_list("state", "origin", "actor", "cause"))
    assert [e[:2] for e in events] == [("deprecated", "operator"), ("available", "operator")]
    assert events[0][3] == "set deprecated by an operator (console)"
    assert events[0][2] == events[1][2] != ""
