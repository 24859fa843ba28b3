"""Fake provider servers on loopback, and discovery settings that keep failure tests fast."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from discovery.models import ProviderSource, SourceKind
from discovery.tasks import discover_source
from tests.discovery.fakes.anthropic import FakeAnthropic
from tests.discovery.fakes.ollama import FakeOllama
from tests.discovery.fakes.openai import FakeOpenAI
from tests.discovery.fakes.openai_compatible import FakeOpenAICompatible
from tests.factories import ProviderSourceFactory


@pytest.fixture(autouse=True)
def _fast_discovery(settings: Any) -> None:
    # Tiny backoff and timeouts: a retry test costs milliseconds, a hang costs a fraction of a second.
    settings.DISCOVERY_BACKOFF_SECONDS = 0.01
    settings.DISCOVERY_MAX_BACKOFF_SECONDS = 2.0
    settings.DISCOVERY_CONNECT_TIMEOUT = 1.0
    settings.DISCOVERY_READ_TIMEOUT = 0.5
    settings.DISCOVERY_MAX_RETRIES = 2
    settings.DISCOVERY_MAX_RESPONSE_BYTES = 256 * 1024
    settings.OLLAMA_URL = None
    settings.OPENAI_API_KEY = None
    settings.ANTHROPIC_API_KEY = None


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture
def fake_vllm() -> Iterator[FakeOpenAICompatible]:
    server = FakeOpenAICompatible(flavour="vllm").start()
    yield server
    server.stop()


@pytest.fixture
def ollama_source(fake_ollama: FakeOllama) -> ProviderSource:
    return ProviderSourceFactory(name="ollama-a", kind=SourceKind.OLLAMA, base_url=fake_ollama.url)


@pytest.fixture
def openai_source(fake_openai: FakeOpenAI) -> ProviderSource:
    return ProviderSourceFactory(
        name="openai", kind=SourceKind.OPENAI, base_url=f"{fake_openai.url}/v1", api_key=fake_openai.api_key
    )


@pytest.fixture
def anthropic_source(fake_anthropic: FakeAnthropic) -> ProviderSource:
    return ProviderSourceFactory(
        name="anthropic", kind=SourceKind.ANTHROPIC, base_url=fake_anthropic.url, api_key=fake_anthropic.api_key
    )


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    """What was handed to the broker by ``discover_source.apply_async`` (the broker itself, and a real
    worker running what it receives, are exercised by test_worker.py)."""
    sent: list[tuple[Any, Any]] = []
    monkeypatch.setattr(discover_source, "apply_async", lambda args, kwargs, **_: sent.append((args, kwargs)))
    return sent
