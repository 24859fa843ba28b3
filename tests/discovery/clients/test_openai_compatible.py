"""OpenAI-compatible servers: vLLM's max_model_len, an optional key, /v1 with or without."""

from __future__ import annotations

from discovery.clients import openai_compatible
from registry.catalog import capabilities as caps
from tests.discovery.fakes.openai_compatible import FakeOpenAICompatible


def test_vllm_max_model_len_becomes_the_context_window(fake_vllm: FakeOpenAICompatible) -> None:
    listing = openai_compatible.fetch(source_name="vllm", base_url=fake_vllm.url, api_key=None)
    models = {m.name: m for m in listing.models}

    assert models["meta-llama/Llama-3.1-8B-Instruct"].context_window == 32768
    assert models["meta-llama/Llama-3.1-8B-Instruct"].provider == "custom"
    assert models["meta-llama/Llama-3.1-8B-Instruct"].endpoint.endpoint_url == f"{fake_vllm.url}/v1/chat/completions"


def test_openai_compatible_embedding_id_is_typed_embedding() -> None:
    server = FakeOpenAICompatible(flavour="lmstudio").start()
    try:
        listing = openai_compatible.fetch(source_name="lmstudio", base_url=f"{server.url}/v1/", api_key=None)
    finally:
        server.stop()
    models = {m.name: m for m in listing.models}

    assert models["text-embedding-nomic-embed-text-v1.5"].model_type == "embedding"
    assert set(models["text-embedding-nomic-embed-text-v1.5"].capabilities) == {caps.EMBEDDING}
    assert models["qwen2.5-7b-instruct"].context_window is None
    assert server.requests[0].path == "/v1/models"


def test_openai_compatible_sends_the_optional_key_as_bearer() -> None:
    server = FakeOpenAICompatible(api_key="local-secret").start()
    try:
        listing = openai_compatible.fetch(source_name="vllm", base_url=server.url, api_key="local-secret")
    finally:
        server.stop()

    assert len(listing.models) == 2
    assert listing.models[0].endpoint.auth_type == "api_key"
