"""Two runs of one source at once: no duplicate, no IntegrityError; the second skips and says so."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from django_celery_beat.models import PeriodicTask

from discovery.models import DiscoveryRun, ProviderSource, RunStatus, SourceKind
from discovery.services import sources_register_from_environment
from discovery.sync import INTERRUPTED, source_sync
from discovery.tasks import poll_runtime
from registry.access.audit import system_actor
from registry.models import ModelEndpoint, ModelRuntime, RegisteredModel
from tests.discovery.fakes.ollama import FakeOllama
from tests.factories import ProviderSourceFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's; SQLite serializes writers with its file lock")


def _run_in_thread(source_id: int, results: list[DiscoveryRun], errors: list[BaseException]) -> None:
    try:
        source = ProviderSource.objects.get(pk=source_id)
        with system_actor("discovery"):
            results.append(source_sync(source=source, trigger="manual"))
    except BaseException as exc:  # collected and asserted on by the test
        errors.append(exc)
    finally:
        connection.close()


def test_two_simultaneous_runs_of_one_source_give_one_success_and_one_skip(fake_ollama: FakeOllama) -> None:
    source = ProviderSourceFactory(name="ollama-a", kind=SourceKind.OLLAMA, base_url=fake_ollama.url)
    fake_ollama.delay_seconds = 0.05  # 6 requests: the first run holds the lock for ~0.3 s
    results: list[DiscoveryRun] = []
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_run_in_thread, args=(source.pk, results, errors)) for _ in range(2)]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(run.status for run in results) == [RunStatus.SKIPPED, RunStatus.SUCCEEDED]
    skipped = next(run for run in results if run.status == RunStatus.SKIPPED)
    assert skipped.error_message == "another discovery run of source ollama-a holds the lock"
    assert RegisteredModel.objects.count() == 5
    assert ModelEndpoint.objects.count() == 5


def test_runs_of_one_source_one_after_the_other_both_succeed(fake_ollama: FakeOllama) -> None:
    source = ProviderSourceFactory(name="ollama-a", kind=SourceKind.OLLAMA, base_url=fake_ollama.url)
    results: list[DiscoveryRun] = []
    errors: list[BaseException] = []

    for _ in range(2):
        thread = threading.Thread(target=_run_in_thread, args=(source.pk, results, errors))
        thread.start()
        thread.join(timeout=30)

    assert errors == []
    assert [run.status for run in results] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]


def test_run_left_running_by_a_killed_worker_is_closed_by_the_next_run(fake_ollama: FakeOllama) -> None:
    source = ProviderSourceFactory(name="ollama-a", kind=SourceKind.OLLAMA, base_url=fake_ollama.url)
    stale = DiscoveryRun.objects.create(source=source, status=RunStatus.RUNNING)

    with system_actor("discovery"):
        run = source_sync(source=source, trigger="manual")

    stale.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert (stale.status, stale.error_message) == (RunStatus.FAILED, INTERRUPTED)
    assert stale.finished_at is not None


def test_processes_registering_the_environment_at_once_create_one_source(settings: Any) -> None:
    settings.OLLAMA_URL = "http://llm-service:11434"
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def register() -> None:
        try:
            barrier.wait(timeout=10)
            sources_register_from_environment()
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=register) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert list(ProviderSource.objects.values_list("name", flat=True)) == ["ollama"]
    # One discovery schedule and one runtime poll, not one of each per process.
    assert sorted(PeriodicTask.objects.values_list("task", flat=True)) == [
        "discovery.discover_source",
        "discovery.poll_runtime",
    ]


def test_polls_racing_a_discovery_run_of_the_same_host_neither_skip_it_nor_fail(fake_ollama: FakeOllama) -> None:
    source = ProviderSourceFactory(name="ollama-a", kind=SourceKind.OLLAMA, base_url=fake_ollama.url)
    with system_actor("discovery"):
        source_sync(source=source, trigger="manual")
    fake_ollama.load("qwen3:8b", "gemma3:4b", size_vram=7)
    fake_ollama.delay_seconds = 0.02  # the run holds its lock for ~0.15 s while polls come and go
    results: list[DiscoveryRun] = []
    errors: list[BaseException] = []
    polls: list[str | None] = []

    def poll() -> None:
        try:
            for _ in range(5):
                polls.append(poll_runtime(source.pk))
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=_run_in_thread, args=(source.pk, results, errors))]
    threads += [threading.Thread(target=poll) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert [run.status for run in results] == [RunStatus.SUCCEEDED]
    assert polls == ["succeeded"] * 10
    assert sorted(ModelRuntime.objects.values_list("model__name", "loaded", "size_vram")) == [
        ("gemma3:4b", True, 7),
        ("qwen3:8b", True, 7),
    ]
