"""Every failure leaves the registry as it was, records the run as failed, and says why."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from auditlog.models import LogEntry

from discovery.models import DiscoveryRun, ProviderSource, RunStatus, SourceKind
from discovery.sync import source_sync
from registry.access.audit import system_actor
from registry.models import ModelCapability, ModelEndpoint, ModelParameter, RegisteredModel
from tests.discovery.fakes.anthropic import FakeAnthropic
from tests.discovery.fakes.ollama import FakeOllama, load_models
from tests.discovery.fakes.openai import FakeOpenAI
from tests.factories import ProviderSourceFactory

pytestmark = pytest.mark.django_db


def _sync(source: ProviderSource) -> DiscoveryRun:
    with system_actor("discovery"):
        return source_sync(source=source, trigger="manual")


def _snapshot() -> tuple[Any, ...]:
    return (
        sorted(RegisteredModel.objects.values_list("name", "status", "context_window", "updated_at", "last_seen_at")),
        sorted(ModelEndpoint.objects.values_list("model__name", "endpoint_url", "last_seen_at")),
        sorted(ModelCapability.objects.values_list("model__name", "capability", "capability_score")),
        sorted(ModelParameter.objects.values_list("model__name", "parameter_name")),
        LogEntry.objects.count(),
    )


@pytest.fixture
def synced_ollama(ollama_source: ProviderSource, fake_ollama: FakeOllama) -> ProviderSource:
    """A source synced once, whose provider now answers differently: a run that got through would change things."""
    assert _sync(ollama_source).status == RunStatus.SUCCEEDED
    changed = load_models()[2:]
    changed[0][1]["model_info"]["gemma3.context_length"] = 8192
    fake_ollama.set_models(changed)
    return ollama_source


def _assert_failed_and_unchanged(source: ProviderSource, before: tuple[Any, ...], message: str) -> DiscoveryRun:
    run = DiscoveryRun.objects.filter(source=source).order_by("-id").first()
    assert run is not None
    source.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert message in run.error_message
    assert run.finished_at is not None
    assert (source.last_status, source.last_error) == (RunStatus.FAILED, run.error_message)
    assert _snapshot() == before
    return run


def test_connection_refused_fails_the_run_and_changes_nothing(synced_ollama: ProviderSource, free_port: int) -> None:
    ProviderSource.objects.filter(pk=synced_ollama.pk).update(base_url=f"http://127.0.0.1:{free_port}")
    synced_ollama.refresh_from_db()
    before = _snapshot()

    _sync(synced_ollama)

    run = _assert_failed_and_unchanged(synced_ollama, before, "could not be reached (connection refused)")
    assert "source ollama-a: GET http://127.0.0.1:" in run.error_message
    assert "after 3 attempt(s)" in run.error_message


def test_read_timeout_fails_the_run_and_changes_nothing(
    synced_ollama: ProviderSource, fake_ollama: FakeOllama, settings: Any
) -> None:
    settings.DISCOVERY_READ_TIMEOUT = 0.2
    settings.DISCOVERY_MAX_RETRIES = 1
    fake_ollama.fail_next("hang", times=2, seconds=2.0)
    before = _snapshot()

    started = time.monotonic()
    _sync(synced_ollama)

    _assert_failed_and_unchanged(synced_ollama, before, "did not answer within 0.2s (read timeout), after 2 attempt(s)")
    assert time.monotonic() - started < 1.5


def test_failure_while_describing_one_model_changes_nothing(
    synced_ollama: ProviderSource, fake_ollama: FakeOllama
) -> None:
    del fake_ollama.shows["nomic-embed-text:latest"]  # /api/show answers 404 for it
    before = _snapshot()

    _sync(synced_ollama)

    _assert_failed_and_unchanged(synced_ollama, before, "POST http://127.0.0.1")
    assert "answered HTTP 404" in DiscoveryRun.objects.latest("id").error_message


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_names_the_source_and_is_not_retried(
    openai_source: ProviderSource, fake_openai: FakeOpenAI, status: int
) -> None:
    _sync(openai_source)
    fake_openai.fail_next("status", status=status)
    requests_before = len(fake_openai.requests)
    before = _snapshot()

    _sync(openai_source)

    run = _assert_failed_and_unchanged(openai_source, before, "the key for source openai was rejected")
    assert f"(HTTP {status} from GET" in run.error_message
    assert len(fake_openai.requests) == requests_before + 1


def test_rejected_key_never_appears_in_the_run_or_the_logs(
    openai_source: ProviderSource, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.api_key = "sk-the-right-one"  # the source's key is now wrong
    caplog.set_level(logging.DEBUG)

    run = _sync(openai_source)

    assert run.status == RunStatus.FAILED
    assert "sk-test-openai-key" not in run.error_message
    assert "sk-test-openai-key" not in caplog.text
    assert "Bearer" not in caplog.text


def test_rate_limit_is_retried_then_fails_with_a_clear_message(
    openai_source: ProviderSource, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail_next("status", times=3, status=429, headers={"Retry-After": "0"})

    run = _sync(openai_source)

    assert run.status == RunStatus.FAILED
    assert run.error_message == (
        f"source openai: GET {fake_openai.url}/v1/models answered HTTP 429, after 3 attempt(s)"
    )
    assert RegisteredModel.objects.count() == 0


def test_retry_after_is_honoured_before_the_next_attempt(
    openai_source: ProviderSource, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail_next("status", status=429, headers={"Retry-After": "1"})

    started = time.monotonic()
    run = _sync(openai_source)

    assert run.status == RunStatus.SUCCEEDED
    assert time.monotonic() - started >= 1.0


def test_retry_after_is_capped_by_the_maximum_backoff(
    openai_source: ProviderSource, fake_openai: FakeOpenAI, settings: Any
) -> None:
    settings.DISCOVERY_MAX_BACKOFF_SECONDS = 0.05
    fake_openai.fail_next("status", status=503, headers={"Retry-After": "3600"})

    started = time.monotonic()
    run = _sync(openai_source)

    assert run.status == RunStatus.SUCCEEDED
    assert time.monotonic() - started < 1.0


def test_server_error_then_success_succeeds_after_a_retry(
    openai_source: ProviderSource, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail_next("status", status=500)

    run = _sync(openai_source)

    assert (run.status, run.models_added) == (RunStatus.SUCCEEDED, 9)
    assert len(fake_openai.requests) == 2


def test_persistent_server_error_fails_after_the_bounded_retries(
    synced_ollama: ProviderSource, fake_ollama: FakeOllama
) -> None:
    fake_ollama.fail_next("status", times=3, status=502)
    before = _snapshot()

    _sync(synced_ollama)

    _assert_failed_and_unchanged(synced_ollama, before, "answered HTTP 502, after 3 attempt(s)")


def test_truncated_json_fails_the_run_and_changes_nothing(
    synced_ollama: ProviderSource, fake_ollama: FakeOllama
) -> None:
    fake_ollama.fail_next("truncate")
    before = _snapshot()

    _sync(synced_ollama)

    _assert_failed_and_unchanged(synced_ollama, before, "is not valid JSON (malformed or truncated")


def test_answer_with_another_shape_fails_with_a_clear_message(
    synced_ollama: ProviderSource, fake_ollama: FakeOllama
) -> None:
    fake_ollama.fail_next("status", status=200, body={"items": []})
    before = _snapshot()

    _sync(synced_ollama)

    _assert_failed_and_unchanged(synced_ollama, before, "unexpected answer from GET /api/tags (no 'models' list)")


@pytest.mark.parametrize("chunked", [False, True], ids=["declared-length", "undeclared-length"])
def test_answer_over_the_size_limit_fails_the_run_and_changes_nothing(
    synced_ollama: ProviderSource, fake_ollama: FakeOllama, settings: Any, chunked: bool
) -> None:
    settings.DISCOVERY_MAX_RESPONSE_BYTES = 64 * 1024
    fake_ollama.fail_next("oversize", size=1024 * 1024, chunked=chunked)
    before = _snapshot()

    _sync(synced_ollama)

    _assert_failed_and_unchanged(synced_ollama, before, "is larger than the limit of 65536 bytes")


def test_consecutive_failures_are_counted_for_the_alerts(free_port: int) -> None:
    source = ProviderSourceFactory(name="gone", kind=SourceKind.OLLAMA, base_url=f"http://127.0.0.1:{free_port}")

    _sync(source)
    _sync(source)

    source.refresh_from_db()
    assert (source.consecutive_failures, source.last_status) == (2, RunStatus.FAILED)
    assert source.last_run_at is not None


def test_anthropic_failure_on_a_later_page_changes_nothing(anthropic_source: ProviderSource) -> None:
    server = FakeAnthropic(max_limit=3).start()
    try:
        ProviderSource.objects.filter(pk=anthropic_source.pk).update(base_url=server.url)
        anthropic_source.refresh_from_db()
        server.fail_next("pass")  # page 1 answers
        server.fail_next("status", times=3, status=500)  # page 2 keeps failing

        run = _sync(anthropic_source)
    finally:
        server.stop()

    assert run.status == RunStatus.FAILED
    assert "/v1/models answered HTTP 500, after 3 attempt(s)" in run.error_message
    assert [r.query.get("after_id") for r in server.requests] == [None] + [["claude-opus-4-20250514"]] * 3
    assert RegisteredModel.objects.count() == 0


def test_a_provider_that_drips_its_answer_fails_the_run_at_the_deadline(
    synced_ollama: ProviderSource, fake_ollama: FakeOllama, settings: Any
) -> None:
    settings.DISCOVERY_READ_TIMEOUT = 1.0
    settings.DISCOVERY_REQUEST_DEADLINE_SECONDS = 1.0
    settings.DISCOVERY_MAX_RETRIES = 0
    before = _snapshot()
    fake_ollama.fail_next("drip", seconds=0.2)
    started = time.monotonic()
    _sync(synced_ollama)

    _assert_failed_and_unchanged(
        synced_ollama, before, "did not arrive within 1.0s (DISCOVERY_REQUEST_DEADLINE_SECONDS)"
    )
    assert time.monotonic() - started < 5
