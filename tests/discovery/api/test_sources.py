"""``/sources``: admins manage provider sources over the API; the key is write-only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from auditlog.models import LogEntry
from django_celery_beat.models import PeriodicTask
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from discovery.models import DiscoveryRun, ProviderSource, RunStatus, SourceKind
from discovery.schedules import runtime_schedule_name, schedule_name
from discovery.services import source_save
from registry.access.audit import MASK
from tests.factories import ProviderSourceFactory
from tests.registry.api.test_schema import assert_matches_schema

pytestmark = pytest.mark.django_db

SECRET = "sk-api-typed-secret-0123456789"


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-any-return]


@pytest.fixture
def admin(api_client_for: Callable[[str], APIClient]) -> APIClient:
    return api_client_for("admin")


@pytest.fixture
def source() -> ProviderSource:
    return source_save(
        source=ProviderSource(
            name="openai", kind=SourceKind.OPENAI, base_url="https://api.openai.com/v1", api_key=SECRET
        )
    )


def test_admin_lists_sources_without_their_keys(
    admin: APIClient, source: ProviderSource, openapi: dict[str, Any]
) -> None:
    response = admin.get("/sources")

    assert response.status_code == 200
    body = response.json()
    assert [(s["name"], s["has_api_key"]) for s in body] == [("openai", True)]
    assert "api_key" not in body[0]
    assert SECRET not in response.content.decode()
    assert_matches_schema(openapi, "get", "/sources", 200, body)


@pytest.mark.parametrize("role", ["viewer", "service", "editor"])
def test_roles_below_admin_may_not_see_sources(
    api_client_for: Callable[[str], APIClient], source: ProviderSource, role: str
) -> None:
    assert api_client_for(role).get("/sources").status_code == 403
    assert api_client_for(role).post(f"/sources/{source.pk}/discover").status_code == 403


def test_sources_need_a_token(source: ProviderSource) -> None:
    assert APIClient().get("/sources").status_code == 401


def test_admin_adds_a_source_and_its_schedule_with_a_write_only_key(admin: APIClient, openapi: dict[str, Any]) -> None:
    response = admin.post(
        "/sources",
        {"name": "vllm", "kind": "openai_compatible", "base_url": "http://vllm:8000", "api_key": SECRET},
        format="json",
    )

    assert response.status_code == 201
    assert SECRET not in response.content.decode()
    assert_matches_schema(openapi, "post", "/sources", 201, response.json())
    source = ProviderSource.objects.get(name="vllm")
    assert source.api_key == SECRET
    assert PeriodicTask.objects.get(name=schedule_name(source)).interval.every == source.interval_seconds
    entry = LogEntry.objects.get(content_type__model="providersource", object_pk=str(source.pk))
    assert entry.actor is not None
    assert SECRET not in str(entry.changes)
    assert entry.changes["api_key"][1] == MASK


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"base_url": "vllm:8000"}, "base_url"),
        ({"interval_seconds": 5}, "interval_seconds"),
        ({"interval_seconds": "often"}, "interval_seconds"),
        ({"runtime_poll_seconds": 3}, "runtime_poll_seconds"),
        ({"runtime_poll_seconds": -1}, "runtime_poll_seconds"),
        ({"enabled": 0}, "enabled"),  # found by make fuzz: the schema says boolean
        ({"enabled": "yes"}, "enabled"),
        ({"kind": "bedrock"}, "kind"),
        ({"name": "tab\there"}, "name"),
        # Found by make fuzz: the schema's pattern refuses these, the service used to trim them away.
        ({"name": " new"}, "name"),
        ({"name": "new\x1c"}, "name"),
        ({"base_url": " http://ollama:11434"}, "base_url"),
        ({"interval_seconds": "600"}, "interval_seconds"),  # the schema says integer
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_source_is_a_400_naming_the_field_and_writes_nothing(
    admin: APIClient, body: dict[str, Any], field: str
) -> None:
    ProviderSourceFactory(name="ollama")
    payload = {"name": "new", "kind": "ollama", "base_url": "http://ollama:11434", **body}

    response = admin.post("/sources", payload, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not ProviderSource.objects.filter(name__in=["new", "tab\there"]).exists()
    assert PeriodicTask.objects.count() == 0


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_a_name_another_source_has_is_a_409_naming_it_and_documented(
    admin: APIClient, source: ProviderSource, openapi: dict[str, Any], method: str
) -> None:
    """Found by make fuzz: a taken name answered 400, which says the request was malformed; it is not."""
    other = ProviderSourceFactory(name="ollama")
    body = {"name": "openai", "kind": "ollama", "base_url": "http://ollama:11434"}
    path = "/sources" if method == "post" else f"/sources/{other.pk}"

    response = getattr(admin, method)(path, body, format="json")

    assert response.status_code == 409
    assert response.json() == {"name": ["A source named 'openai' already exists."]}
    assert_matches_schema(
        openapi, method, "/sources" if method == "post" else "/sources/{source_id}", 409, response.json()
    )
    assert sorted(ProviderSource.objects.values_list("name", flat=True)) == ["ollama", "openai"]


def test_an_integral_interval_written_with_a_fraction_is_an_integer_as_json_schema_counts(admin: APIClient) -> None:
    """Found by make fuzz: 600.0 is `type: integer` in JSON Schema, and was refused."""
    body = {"name": "new", "kind": "ollama", "base_url": "http://ollama:11434"}
    assert admin.post("/sources", {**body, "interval_seconds": 600.5}, format="json").status_code == 400

    response = admin.post("/sources", {**body, "interval_seconds": 600.0}, format="json")

    assert response.status_code == 201, response.content
    assert ProviderSource.objects.get(name="new").interval_seconds == 600


def test_changing_the_interval_moves_the_schedule(
    admin: APIClient, source: ProviderSource, openapi: dict[str, Any]
) -> None:
    response = admin.patch(f"/sources/{source.pk}", {"interval_seconds": 900}, format="json")

    assert response.status_code == 200
    assert_matches_schema(openapi, "patch", "/sources/{source_id}", 200, response.json())
    assert PeriodicTask.objects.get(name=schedule_name(source)).interval.every == 900


def test_changing_the_runtime_poll_moves_its_schedule_and_0_removes_it(
    admin: APIClient, openapi: dict[str, Any]
) -> None:
    source = source_save(source=ProviderSource(name="gpu", kind=SourceKind.OLLAMA, base_url="http://gpu:11434"))
    name = runtime_schedule_name(source)

    every_ten = admin.patch(f"/sources/{source.pk}", {"runtime_poll_seconds": 10}, format="json")
    interval = PeriodicTask.objects.get(name=name).interval.every
    off = admin.patch(f"/sources/{source.pk}", {"runtime_poll_seconds": 0}, format="json")

    assert (every_ten.status_code, every_ten.json()["runtime_poll_seconds"], interval) == (200, 10, 10)
    assert_matches_schema(openapi, "patch", "/sources/{source_id}", 200, every_ten.json())
    assert off.status_code == 200
    assert not PeriodicTask.objects.filter(name=name).exists()


def test_disabling_a_source_removes_its_schedule(admin: APIClient, source: ProviderSource) -> None:
    response = admin.patch(f"/sources/{source.pk}", {"enabled": False}, format="json")

    assert response.status_code == 200
    assert not PeriodicTask.objects.filter(name=schedule_name(source)).exists()


def test_null_key_removes_the_stored_key_and_an_omitted_key_keeps_it(admin: APIClient, source: ProviderSource) -> None:
    admin.patch(f"/sources/{source.pk}", {"enabled": True}, format="json")
    source.refresh_from_db()
    assert source.api_key == SECRET

    response = admin.patch(f"/sources/{source.pk}", {"api_key": None}, format="json")

    source.refresh_from_db()
    assert (response.status_code, response.json()["has_api_key"], source.api_key) == (200, False, None)


def test_put_replaces_a_source(admin: APIClient, source: ProviderSource, openapi: dict[str, Any]) -> None:
    response = admin.put(
        f"/sources/{source.pk}",
        {"name": "openai-eu", "kind": "openai", "base_url": "https://eu.api.openai.com/v1", "interval_seconds": 600},
        format="json",
    )

    assert response.status_code == 200
    assert_matches_schema(openapi, "put", "/sources/{source_id}", 200, response.json())
    source.refresh_from_db()
    assert (source.name, source.base_url, source.api_key) == ("openai-eu", "https://eu.api.openai.com/v1", SECRET)


def test_deleting_a_source_removes_it_and_its_schedule(admin: APIClient, source: ProviderSource) -> None:
    name = schedule_name(source)

    response = admin.delete(f"/sources/{source.pk}")

    assert response.status_code == 204
    assert not ProviderSource.objects.exists()
    assert not PeriodicTask.objects.filter(name=name).exists()


def test_unknown_source_is_a_404(admin: APIClient) -> None:
    assert admin.get("/sources/999999").status_code == 404
    assert admin.post("/sources/999999/discover").status_code == 404
    assert admin.get("/sources/999999/runs").status_code == 404


def test_discover_queues_the_source_after_commit(
    admin: APIClient,
    source: ProviderSource,
    queued: list[tuple[Any, Any]],
    django_capture_on_commit_callbacks: Any,
    openapi: dict[str, Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(f"/sources/{source.pk}/discover")

    assert response.status_code == 202
    assert response.json() == {"queued": True, "source_name": "openai"}
    assert_matches_schema(openapi, "post", "/sources/{source_id}/discover", 202, response.json())
    assert queued == [((source.pk,), {"trigger": "manual"})]


def test_runs_lists_the_latest_runs_with_counts_and_errors(
    admin: APIClient, source: ProviderSource, openapi: dict[str, Any]
) -> None:
    DiscoveryRun.objects.create(source=source, status=RunStatus.SUCCEEDED, models_added=3)
    DiscoveryRun.objects.create(
        source=source, status=RunStatus.FAILED, error_message="the key for source openai was rejected"
    )

    response = admin.get(f"/sources/{source.pk}/runs?limit=1")

    assert response.status_code == 200
    body = response.json()
    assert [(r["status"], r["error_message"]) for r in body] == [("failed", "the key for source openai was rejected")]
    assert body[0]["changes"] == {"added": [], "updated": [], "unavailable": [], "skipped": []}
    assert_matches_schema(openapi, "get", "/sources/{source_id}/runs", 200, body)


def test_runs_name_the_models_each_run_changed(
    admin: APIClient, source: ProviderSource, openapi: dict[str, Any]
) -> None:
    changes = {"added": ["gpt-4o", "o3"], "updated": ["gpt-4.1"], "unavailable": ["gpt-4"], "skipped": []}
    DiscoveryRun.objects.create(source=source, status=RunStatus.SUCCEEDED, models_added=2, changes=changes)

    body = admin.get(f"/sources/{source.pk}/runs").json()

    assert body[0]["changes"] == changes
    assert_matches_schema(openapi, "get", "/sources/{source_id}/runs", 200, body)


@pytest.mark.parametrize("limit", ["0", "501", "many"])
def test_runs_limit_out_of_range_is_a_400(admin: APIClient, source: ProviderSource, limit: str) -> None:
    response = admin.get(f"/sources/{source.pk}/runs?limit={limit}")

    assert response.status_code == 400
    assert list(response.json()) == ["limit"]


def test_the_runs_limit_is_stated_in_the_schema(openapi: dict[str, Any]) -> None:
    # Found by make fuzz: limit=0 was refused while the schema allowed any integer.
    parameters = openapi["paths"]["/sources/{source_id}/runs"]["get"]["parameters"]
    limit = next(parameter for parameter in parameters if parameter["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 500)
