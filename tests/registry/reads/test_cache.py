"""Cached model reads: fresh after every kind of write, counted, and answering when Redis is gone."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.test import Client, override_settings

from discovery.sync import source_sync
from registry.access.audit import system_actor
from registry.models import ModelCapability, RegisteredModel
from registry.operations import metrics
from registry.reads.cache import (
    _MISSING,
    GENERATION_KEY,
    _generation_reader,
    cached_model_read,
    current_generation,
    models_changed,
)
from tests.discovery.fakes.ollama import FakeOllama
from tests.factories import (
    ModelCapabilityFactory,
    ModelEndpointFactory,
    ModelParameterFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def model_view(name: str) -> dict[str, Any] | None:
    """What a detail read shows: the model with its endpoints, capabilities and parameters."""
    model = RegisteredModel.objects.with_related().filter(name=name).first()
    if model is None:
        return None
    return {
        "display_name": model.display_name,
        "status": model.status,
        "endpoints": [e.endpoint_url for e in model.endpoints.all()],
        "capabilities": {c.capability: c.capability_score for c in model.capabilities.all()},
        "parameters": {p.parameter_name: p.default_value for p in model.parameters.all()},
    }


def read(name: str) -> dict[str, Any] | None:
    return cached_model_read("detail", name, lambda: model_view(name))


def save_then_roll_back(model: RegisteredModel) -> None:
    with transaction.atomic():
        model.save()
        raise RuntimeError("rolled back")


@pytest.fixture
def model() -> RegisteredModel:
    return RegisteredModelFactory(name="llama3.2:latest", display_name="Llama 3.2")


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run the on-commit invalidation of the writes made inside the block, as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


class TestFreshAfterWrites:
    def test_model_update_is_visible_on_the_next_read(self, model: RegisteredModel, committed) -> None:
        assert read(model.name)["display_name"] == "Llama 3.2"
        with committed():
            model.display_name = "Llama 3.2 3B"
            model.save()

        assert read(model.name)["display_name"] == "Llama 3.2 3B"

    def test_new_endpoint_is_visible_on_the_next_read(self, model: RegisteredModel, committed) -> None:
        assert read(model.name)["endpoints"] == []
        with committed():
            ModelEndpointFactory(model=model, endpoint_url="http://gpu-1:11434/api/chat")

        assert read(model.name)["endpoints"] == ["http://gpu-1:11434/api/chat"]

    def test_capability_change_is_visible_on_the_next_read(self, model: RegisteredModel, committed) -> None:
        with committed():
            capability = ModelCapabilityFactory(model=model, capability="code", capability_score=0.5)
        assert read(model.name)["capabilities"] == {"code": 0.5}
        with committed():
            capability.capability_score = 0.9
            capability.save()

        assert read(model.name)["capabilities"] == {"code": 0.9}

    def test_capability_delete_is_visible_on_the_next_read(self, model: RegisteredModel, committed) -> None:
        with committed():
            capability = ModelCapabilityFactory(model=model, capability="code")
        assert read(model.name)["capabilities"] == {"code": 0.8}
        with committed():
            capability.delete()

        assert read(model.name)["capabilities"] == {}

    def test_parameter_change_is_visible_on_the_next_read(self, model: RegisteredModel, committed) -> None:
        assert read(model.name)["parameters"] == {}
        with committed():
            ModelParameterFactory(model=model, parameter_name="temperature", default_value=0.2)

        assert read(model.name)["parameters"] == {"temperature": 0.2}

    def test_model_delete_is_visible_on_the_next_read(self, model: RegisteredModel, committed) -> None:
        assert read(model.name) is not None
        with committed():
            model.delete()

        assert read(model.name) is None

    def test_bulk_write_with_models_changed_is_visible(self, model: RegisteredModel, committed) -> None:
        ModelCapabilityFactory(model=model, capability="code", capability_score=0.5)
        assert read(model.name)["capabilities"] == {"code": 0.5}
        with committed():
            # A bulk update bypasses signals: bulk writers (discovery) call models_changed() themselves.
            ModelCapability.objects.filter(model=model).update(capability_score=0.7)
            models_changed()

        assert read(model.name)["capabilities"] == {"code": 0.7}

    def test_a_rolled_back_write_keeps_the_cached_read(self, model: RegisteredModel, committed) -> None:
        read(model.name)
        generation = cache.get(GENERATION_KEY)
        model.display_name = "Changed"
        with committed(), pytest.raises(RuntimeError):
            save_then_roll_back(model)

        assert cache.get(GENERATION_KEY) == generation


class TestCounting:
    def test_first_read_misses_and_second_read_hits(self, model: RegisteredModel) -> None:
        hits = metrics.CACHE_HITS.labels(kind="detail")._value.get()
        misses = metrics.CACHE_MISSES.labels(kind="detail")._value.get()

        read(model.name)
        read(model.name)

        assert metrics.CACHE_MISSES.labels(kind="detail")._value.get() == misses + 1
        assert metrics.CACHE_HITS.labels(kind="detail")._value.get() == hits + 1

    def test_a_hit_runs_no_query(self, model: RegisteredModel, django_assert_num_queries) -> None:
        read(model.name)

        with django_assert_num_queries(0):
            assert read(model.name)["display_name"] == "Llama 3.2"

    def test_an_evicted_generation_never_resurrects_old_entries(self, model: RegisteredModel) -> None:
        read(model.name)
        RegisteredModel.objects.filter(pk=model.pk).update(display_name="Changed behind the cache")
        cache.delete(GENERATION_KEY)  # evicted (LRU) while entries of its generation survive

        assert read(model.name)["display_name"] == "Changed behind the cache"


def redis_cache(port: int, retry_seconds: float = 5.0, timeout: float = 0.5) -> dict[str, dict[str, Any]]:
    return {
        "default": {
            "BACKEND": "registry.reads.cache.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/3",
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": timeout,
                "SOCKET_TIMEOUT": timeout,
                "IGNORE_EXCEPTIONS": True,
                "RETRY_SECONDS": retry_seconds,
            },
        }
    }


@pytest.fixture
def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "registry.reads.cache" and r.levelno == logging.WARNING]


class TestRedisDown:
    def test_reads_answer_from_the_database_with_one_warning(
        self, model: RegisteredModel, closed_port: int, caplog: pytest.LogCaptureFixture
    ) -> None:
        with override_settings(CACHES=redis_cache(closed_port)), caplog.at_level(logging.WARNING):
            views = [read(model.name) for _ in range(50)]

        assert all(view is not None and view["display_name"] == "Llama 3.2" for view in views)
        warnings = redis_warnings(caplog)
        assert len(warnings) == 1
        assert warnings[0].startswith("Redis is unreachable (Error 111 connecting to 127.0.0.1:")

    def test_reads_do_not_wait_on_a_hung_redis_after_the_first_failure(self, model: RegisteredModel) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as hung:
            hung.bind(("127.0.0.1", 0))
            hung.listen(64)  # accepts (in the kernel's backlog), never answers
            # A socket timeout far above what 20 database reads take even on a loaded machine: the
            # reads after the first finishing within one timeout means none of them waited on Redis.
            with override_settings(CACHES=redis_cache(hung.getsockname()[1], timeout=3.0)):
                read(model.name)  # pays one socket timeout and opens the breaker
                started = time.monotonic()
                for _ in range(20):
                    assert read(model.name)["display_name"] == "Llama 3.2"
                elapsed = time.monotonic() - started

        assert elapsed < 3.0


@pytest.fixture
def redis_port_later(closed_port: int) -> Iterator[tuple[int, Any]]:
    """A port where a real redis-server can be started during the test."""
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        process = subprocess.Popen(
            ["redis-server", "--port", str(closed_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", closed_port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail("redis-server did not start")

    yield closed_port, start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_reads_use_redis_again_when_it_comes_back(
    model: RegisteredModel, redis_port_later: tuple[int, Any], caplog: pytest.LogCaptureFixture
) -> None:
    port, start_redis = redis_port_later
    with override_settings(CACHES=redis_cache(port, retry_seconds=0.2)), caplog.at_level(logging.WARNING):
        read(model.name)
        start_redis()
        # Steady traffic while the breaker is open: skipped calls must not postpone the next probe.
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            read(model.name)
            time.sleep(0.02)
        hits = metrics.CACHE_HITS.labels(kind="detail")._value.get()
        read(model.name)

        assert metrics.CACHE_HITS.labels(kind="detail")._value.get() == hits + 1
    warnings = redis_warnings(caplog)
    assert len(warnings) == 2
    assert warnings[1].startswith("Redis answers again after")


class TestThroughTheApi:
    """The API's reads, after writes from the API, the admin and discovery, and with Redis gone."""

    @pytest.fixture
    def viewer(self, api_client_for):
        return api_client_for("viewer")

    @pytest.fixture
    def editor(self, api_client_for):
        return api_client_for("editor")

    def detail(self, viewer, name: str = "llama3.2:latest") -> dict[str, Any]:
        response = viewer.get(f"/models/{name}")
        assert response.status_code == 200
        return response.json()

    def test_api_model_change_is_fresh(self, model, viewer, editor, committed) -> None:
        assert self.detail(viewer)["display_name"] == "Llama 3.2"
        with committed():
            assert (
                editor.patch(f"/models/{model.name}", {"display_name": "Llama 3.2 3B"}, format="json").status_code
                == 200
            )

        assert self.detail(viewer)["display_name"] == "Llama 3.2 3B"

    def test_api_capability_and_parameter_writes_are_fresh(self, model, viewer, editor, committed) -> None:
        self.detail(viewer)
        with committed():
            capability = {"capability": "code", "capability_score": 0.9}
            assert editor.post(f"/models/{model.name}/capabilities", capability, format="json").status_code == 201
        assert self.detail(viewer)["capabilities"] == {"code": 0.9}
        parameters = viewer.get(f"/models/{model.name}/parameters").json()
        with committed():
            parameter = {"parameter_name": "temperature", "default_value": 0.3}
            assert editor.post(f"/models/{model.name}/parameters", parameter, format="json").status_code == 201

        fresh = viewer.get(f"/models/{model.name}/parameters").json()
        assert parameters == []
        assert [(p["parameter_name"], p["default_value"]) for p in fresh] == [("temperature", 0.3)]

    def test_api_endpoint_write_is_fresh(self, model, viewer, editor, committed) -> None:
        assert viewer.get(f"/models/{model.name}/endpoints").json() == []
        with committed():
            endpoint = {"endpoint_type": "rest", "endpoint_url": "http://gpu-1:11434/api/chat"}
            assert editor.post(f"/models/{model.name}/endpoints", endpoint, format="json").status_code == 201

        listed = viewer.get(f"/models/{model.name}/endpoints").json()
        assert [e["endpoint_url"] for e in listed] == ["http://gpu-1:11434/api/chat"]

    def test_api_delete_is_fresh(self, model, viewer, api_client_for, committed) -> None:
        self.detail(viewer)
        with committed():
            assert api_client_for("admin").delete(f"/models/{model.name}").status_code == 204

        assert viewer.get(f"/models/{model.name}").status_code == 404

    def test_admin_change_is_fresh(self, model, viewer, committed, settings) -> None:
        settings.STORAGES = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        self.detail(viewer)
        admin = UserFactory(username="console", is_staff=True, is_superuser=True)
        client = Client()
        client.force_login(admin)
        form = {
            "name": model.name,
            "display_name": "Renamed in the console",
            "provider": model.provider,
            "model_type": model.model_type,
            "status": model.status,
            "details": "{}",
        }
        for prefix in ("endpoints", "capabilities", "parameters", "prices"):
            form.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
        with committed():
            response = client.post(f"/admin/registry/registeredmodel/{model.pk}/change/", form)
        assert response.status_code == 302, response.content.decode()[:2000]

        assert self.detail(viewer)["display_name"] == "Renamed in the console"

    def test_discovery_run_is_fresh(self, viewer, committed) -> None:
        fake = FakeOllama().start()
        try:
            source = ProviderSourceFactory(name="ollama-cache", base_url=fake.url)
            listed_before = viewer.get("/models").json()
            with committed(), system_actor("discovery"):
                run = source_sync(source=source, trigger="manual")
        finally:
            fake.stop()
        assert run.status == "succeeded"

        listed_after = viewer.get("/models").json()
        assert listed_before["count"] == 0
        assert {m["name"] for m in listed_after["results"]} == {tag["name"] for tag in fake.tags}

    def test_reads_answer_200_with_redis_stopped(self, model, viewer, closed_port: int) -> None:
        with override_settings(CACHES=redis_cache(closed_port)):
            listing = viewer.get("/models")
            detail = viewer.get(f"/models/{model.name}")
            selection = viewer.get("/models/select", {"capability": "text"})

        assert (listing.status_code, detail.status_code, selection.status_code) == (200, 200, 200)
        assert [m["name"] for m in listing.json()["results"]] == [model.name]


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (the embedded cache has no generation socket)")
class TestGenerationReader:
    """A hit reads the generation over its own socket: the value django-redis would read, or a fallback."""

    def test_it_reads_what_django_redis_reads_after_every_bump(self) -> None:
        first = current_generation()
        assert first == cache.get(GENERATION_KEY)
        for _ in range(3):
            cache.incr(GENERATION_KEY)  # as another process's write does
            assert _generation_reader.read() == cache.get(GENERATION_KEY)  # over its own socket
            assert current_generation() == cache.get(GENERATION_KEY)
        assert current_generation() == first + 3

    def test_a_missing_key_reads_as_unset_and_a_new_generation_is_set(self) -> None:
        before = current_generation()
        cache.delete(GENERATION_KEY)  # evicted
        assert _generation_reader.read() is None
        after = current_generation()
        assert after != before
        assert cache.get(GENERATION_KEY) == after

    def test_an_unreachable_redis_falls_back_without_failing_the_read(self, closed_port: int) -> None:
        with override_settings(CACHES=redis_cache(closed_port)):
            assert _generation_reader.read() is _MISSING
            assert isinstance(current_generation(), int)  # django-redis: miss, a time-based generation
            assert _generation_reader.read() is _MISSING  # no new attempt per request meanwhile
        assert _generation_reader.read() == cache.get(GENERATION_KEY)  # back on the real Redis, at once


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_the_generation_socket_authenticates_with_the_urls_password(closed_port: int) -> None:
    server = subprocess.Popen(
        ["redis-server", "--port", str(closed_port), "--bind", "127.0.0.1", "--save", "", "--requirepass", "s3cret"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", closed_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        caches = redis_cache(closed_port)
        caches["default"]["LOCATION"] = f"redis://:s3cret@127.0.0.1:{closed_port}/3"
        with override_settings(CACHES=caches):
            assert _generation_reader.read() is None  # authenticated, database 3, no generation yet
            generation = current_generation()
            assert _generation_reader.read() == generation == cache.get(GENERATION_KEY)
    finally:
        server.terminate()
        server.wait(timeout=10)
