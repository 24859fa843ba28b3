"""The fakes speak the providers' real wire formats: the official client libraries can use them."""

from __future__ import annotations

from datetime import timedelta

import anthropic
import ollama
import openai
import pytest

from tests.discovery.fakes.anthropic import FakeAnthropic
from tests.discovery.fakes.ollama import FakeOllama, load_running
from tests.discovery.fakes.openai import FakeOpenAI
from tests.discovery.fakes.openai_compatible import FakeOpenAICompatible


def test_official_ollama_client_lists_and_shows_models_of_the_fake(fake_ollama: FakeOllama) -> None:
    client = ollama.Client(host=fake_ollama.url)

    listed = client.list()
    shown = client.show("qwen3:8b")

    assert [m.model for m in listed.models] == [
        "llama3.2:latest",
        "qwen3:8b",
        "gemma3:4b",
        "nomic-embed-text:latest",
        "qwen2.5-coder:1.5b",
    ]
    assert listed.models[0].details is not None
    assert listed.models[0].details.parameter_size == "3.2B"
    assert shown.capabilities == ["completion", "tools", "thinking"]
    assert shown.modelinfo is not None
    assert shown.modelinfo["qwen3.context_length"] == 40960


def test_official_ollama_client_reads_the_running_models_of_the_fake(fake_ollama: FakeOllama) -> None:
    fake_ollama.set_loaded(load_running())
    client = ollama.Client(host=fake_ollama.url)

    running = client.ps()

    assert [m.model for m in running.models] == ["qwen3:8b", "llama3.2:latest"]
    qwen, llama = running.models
    assert qwen.size_vram == 6654289920
    assert qwen.context_length == 8192
    assert qwen.expires_at is not None
    assert qwen.expires_at.utcoffset() == timedelta(hours=1)
    assert llama.context_length is None  # an older server's entry
    assert llama.details is not None
    assert llama.details.quantization_level == "Q4_K_M"


def test_official_ollama_client_reads_entries_the_fake_makes_for_tests(fake_ollama: FakeOllama) -> None:
    fake_ollama.load("gemma3:4b", size_vram=None, context_length=None)

    (entry,) = ollama.Client(host=fake_ollama.url).ps().models

    assert entry.model == "gemma3:4b"
    assert entry.size_vram is None
    assert entry.expires_at is not None


def test_official_openai_client_lists_models_of_the_fake(fake_openai: FakeOpenAI) -> None:
    client = openai.OpenAI(api_key=fake_openai.api_key, base_url=f"{fake_openai.url}/v1", max_retries=0)

    ids = [model.id for model in client.models.list()]

    assert ids[:3] == ["gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini"]
    assert len(ids) == 16


def test_official_openai_client_sees_a_wrong_key_as_authentication_error(fake_openai: FakeOpenAI) -> None:
    client = openai.OpenAI(api_key="sk-wrong", base_url=f"{fake_openai.url}/v1", max_retries=0)

    with pytest.raises(openai.AuthenticationError) as raised:
        client.models.list()

    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"


def test_official_anthropic_client_pages_through_the_fake() -> None:
    server = FakeAnthropic().start()
    try:
        client = anthropic.Anthropic(api_key=server.api_key, base_url=server.url, max_retries=0)

        ids = [model.id for model in client.models.list(limit=3)]  # auto-pagination: 3 pages of 3, 3, 2

        assert len(ids) == 8
        assert ids[0] == "claude-sonnet-4-5-20250929"
        assert [r.query.get("after_id") for r in server.requests] == [
            None,
            ["claude-opus-4-20250514"],
            ["claude-3-5-haiku-20241022"],
        ]
    finally:
        server.stop()


def test_official_anthropic_client_reads_capabilities_and_limits_from_the_fake(fake_anthropic: FakeAnthropic) -> None:
    client = anthropic.Anthropic(api_key=fake_anthropic.api_key, base_url=fake_anthropic.url, max_retries=0)

    first = next(iter(client.models.list(limit=1)))

    assert first.display_name == "Claude Sonnet 4.5"
    assert first.max_input_tokens == 200000
    assert first.capabilities is not None
    assert first.capabilities.image_input.supported is True


def test_official_openai_client_lists_models_of_the_vllm_fake(fake_vllm: FakeOpenAICompatible) -> None:
    client = openai.OpenAI(api_key="unused", base_url=f"{fake_vllm.url}/v1", max_retries=0)

    models = list(client.models.list())

    assert [m.id for m in models] == ["meta-llama/Llama-3.1-8B-Instruct", "BAAI/bge-m3"]
    assert models[0].model_extra is not None
    assert models[0].model_extra["max_model_len"] == 32768
