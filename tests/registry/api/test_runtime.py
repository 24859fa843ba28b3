"""A model's ``runtime``: null until a host is asked, then what its Ollama hosts have loaded, aggregated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from discovery.models import ProviderSource, SourceKind
from discovery.sync import source_sync
from discovery.tasks import poll_runtime
from registry.access.audit import system_actor
from registry.models import ModelRuntime, RegisteredModel
from tests.discovery.fakes.ollama import FakeOllama
from tests.factories import ProviderSourceFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 2, 6, 0, 0, tzinfo=UTC)


def _runtime(client: APIClient, model: RegisteredModel) -> Any:
    response = client.get(f"/models/{model.pk}")
    assert response.status_code == 200
    return response.json()["runtime"]


def _row(model: RegisteredModel, source: ProviderSource, **values: Any) -> ModelRuntime:
    return ModelRuntime.objects.create(model=model, source=source, **{"checked_at": T0, **values})


def test_runtime_is_null_when_no_host_was_ever_asked(api_client_for: Callable[[str], APIClient]) -> None:
    model = RegisteredModelFactory()

    assert _runtime(api_client_for("viewer"), model) is None


def test_a_loaded_model_shows_its_vram_context_expiry_and_check(api_client_for: Callable[[str], APIClient]) -> None:
    model = RegisteredModelFactory()
    _row(
        model,
        ProviderSourceFactory(),
        loaded=True,
        size_vram=6_654_289_920,
        context_length=8192,
        expires_at=T0 + timedelta(minutes=5, microseconds=483716),
    )

    assert _runtime(api_client_for("viewer"), model) == {
        "loaded": True,
        "size_vram": 6_654_289_920,
        "context_length": 8192,
        "expires_at": "2026-12-02T06:05:00.483716Z",
        "checked_at": "2026-12-02T06:00:00Z",
    }


def test_a_checked_model_that_is_not_loaded_says_so(api_client_for: Callable[[str], APIClient]) -> None:
    model = RegisteredModelFactory()
    _row(model, ProviderSourceFactory(), loaded=False)

    assert _runtime(api_client_for("viewer"), model) == {
        "loaded": False,
        "size_vram": None,
        "context_length": None,
        "expires_at": None,
        "checked_at": "2026-12-02T06:00:00Z",
    }


def test_two_hosts_are_aggregated_loaded_anywhere_longest_expiry_latest_check(
    api_client_for: Callable[[str], APIClient],
) -> None:
    model = RegisteredModelFactory()
    a, b, c = ProviderSourceFactory(), ProviderSourceFactory(), ProviderSourceFactory()
    _row(model, a, loaded=True, size_vram=1, context_length=2048, expires_at=T0 + timedelta(minutes=4))
    _row(model, b, loaded=True, size_vram=2, context_length=None, expires_at=T0 + timedelta(minutes=9))
    _row(model, c, loaded=False, checked_at=T0 + timedelta(seconds=30))

    assert _runtime(api_client_for("viewer"), model) == {
        "loaded": True,
        "size_vram": 2,  # the loaded host that keeps it longest
        "context_length": None,
        "expires_at": "2026-12-02T06:09:00Z",
        "checked_at": "2026-12-02T06:00:30Z",  # the latest check of any host
    }


def test_list_and_selection_bodies_carry_runtime_too(api_client_for: Callable[[str], APIClient]) -> None:
    loaded = RegisteredModelFactory(name="a-loaded")
    RegisteredModelFactory(name="b-never")
    _row(loaded, ProviderSourceFactory(), loaded=True, size_vram=5)
    loaded.capabilities.create(capability="code", capability_score=0.9)
    client = api_client_for("viewer")

    listed = {item["name"]: item["runtime"] for item in client.get("/models").json()["results"]}
    selected = client.get("/models/select?capability=code").json()["results"][0]["model"]

    assert listed["a-loaded"]["size_vram"] == 5
    assert listed["b-never"] is None
    assert selected["runtime"]["loaded"] is True


def test_runtime_sent_back_in_a_write_is_ignored(api_client_for: Callable[[str], APIClient]) -> None:
    model = RegisteredModelFactory()
    client = api_client_for("editor")
    body = client.get(f"/models/{model.pk}").json()
    body["runtime"] = {"loaded": True}

    response = client.put(f"/models/{model.pk}", body, format="json")

    assert response.status_code == 200
    assert response.json()["runtime"] is None
    assert not ModelRuntime.objects.exists()


def test_a_read_after_a_poll_that_changed_runtime_is_not_stale(
    api_client_for: Callable[[str], APIClient], fake_ollama: FakeOllama, django_capture_on_commit_callbacks: Any
) -> None:
    source = ProviderSourceFactory(name="ollama-a", kind=SourceKind.OLLAMA, base_url=fake_ollama.url)
    with system_actor("discovery"):
        source_sync(source=source, trigger="manual")
    model = RegisteredModel.objects.get(name="qwen3:8b")
    client = api_client_for("viewer")
    assert _runtime(client, model) is None  # now cached
    assert client.get("/models?search=qwen3").json()["results"][0]["runtime"] is None

    fake_ollama.load("qwen3:8b", size_vram=123)
    with django_capture_on_commit_callbacks(execute=True):  # the cache is invalidated when the poll commits
        poll_runtime(source.pk)
    first = _runtime(client, model)
    fake_ollama.set_loaded([])
    with django_capture_on_commit_callbacks(execute=True):
        poll_runtime(source.pk)

    assert first["loaded"] is True
    assert first["size_vram"] == 123
    assert _runtime(client, model)["loaded"] is False
    assert client.get("/models?search=qwen3").json()["results"][0]["runtime"]["loaded"] is False


def test_deleting_the_host_removes_its_runtime_from_cached_reads(
    api_client_for: Callable[[str], APIClient], django_capture_on_commit_callbacks: Any
) -> None:
    model = RegisteredModelFactory()
    source = ProviderSourceFactory()
    _row(model, source, loaded=True)
    client = api_client_for("viewer")
    assert _runtime(client, model)["loaded"] is True

    with django_capture_on_commit_callbacks(execute=True):
        source.delete()

    assert _runtime(client, model) is None
