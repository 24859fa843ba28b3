"""Ollama's answers mapped to the registry: type, capabilities, parameters, context, endpoint."""

from __future__ import annotations

from decimal import Decimal

from discovery.clients import ollama
from registry.catalog import capabilities as caps
from tests.discovery.fakes.ollama import FakeOllama, load_legacy_models


def _by_name(server: FakeOllama) -> dict[str, ollama.DiscoveredModel]:
    listing = ollama.fetch(source_name="ollama-a", base_url=server.url, api_key=None)
    return {model.name: model for model in listing.models}


def test_ollama_chat_model_maps_declared_capabilities_with_the_default_score(fake_ollama: FakeOllama) -> None:
    model = _by_name(fake_ollama)["llama3.2:latest"]

    assert model.model_type == "chat"
    assert {name: claim.score for name, claim in model.capabilities.items()} == {
        caps.TEXT: caps.DECLARED_DEFAULT_SCORE,
        caps.TOOLS: caps.DECLARED_DEFAULT_SCORE,
    }
    assert model.capabilities[caps.TEXT].evidence.startswith("declared by Ollama /api/show capabilities")


def test_ollama_thinking_maps_to_reasoning_and_insert_to_code(fake_ollama: FakeOllama) -> None:
    models = _by_name(fake_ollama)

    assert set(models["qwen3:8b"].capabilities) == {caps.TEXT, caps.TOOLS, caps.REASONING}
    assert set(models["qwen2.5-coder:1.5b"].capabilities) == {caps.TEXT, caps.TOOLS, caps.CODE}


def test_ollama_vision_model_is_typed_vision_with_image_capability(fake_ollama: FakeOllama) -> None:
    model = _by_name(fake_ollama)["gemma3:4b"]

    assert model.model_type == "vision"
    assert set(model.capabilities) == {caps.TEXT, caps.IMAGE}


def test_ollama_embedding_model_is_typed_embedding_with_the_embed_endpoint(fake_ollama: FakeOllama) -> None:
    model = _by_name(fake_ollama)["nomic-embed-text:latest"]

    assert model.model_type == "embedding"
    assert set(model.capabilities) == {caps.EMBEDDING}
    assert model.endpoint.endpoint_url == f"{fake_ollama.url}/api/embed"
    assert model.context_window == 2048


def test_ollama_context_window_comes_from_the_architecture_key_of_model_info(fake_ollama: FakeOllama) -> None:
    models = _by_name(fake_ollama)

    assert models["llama3.2:latest"].context_window == 131072
    assert models["qwen3:8b"].context_window == 40960


def test_ollama_details_keep_family_size_quantization_and_a_short_digest(fake_ollama: FakeOllama) -> None:
    model = _by_name(fake_ollama)["llama3.2:latest"]

    assert model.details == {
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
        "format": "gguf",
        "digest": "a80c4f17acd5",
        "size_bytes": 2019393189,
    }
    assert model.version == "latest"
    assert model.provider == "ollama"
    assert model.input_cost_per_mtok is None or model.input_cost_per_mtok == Decimal(0)


def test_ollama_local_chat_endpoint_points_at_api_chat(fake_ollama: FakeOllama) -> None:
    model = _by_name(fake_ollama)["llama3.2:latest"]

    assert (model.endpoint.endpoint_type, model.endpoint.endpoint_url, model.endpoint.auth_type) == (
        "local",
        f"{fake_ollama.url}/api/chat",
        "none",
    )


def test_ollama_parameters_block_is_parsed_with_numbers_and_repeated_stop_lines(fake_ollama: FakeOllama) -> None:
    model = _by_name(fake_ollama)["qwen3:8b"]

    assert {name: p.default for name, p in model.parameters.items()} == {
        "repeat_penalty": 1,
        "stop": ["<|im_start|>", "<|im_end|>"],
        "temperature": 0.6,
        "top_k": 20,
        "top_p": 0.95,
    }
    assert (model.parameters["temperature"].min_value, model.parameters["temperature"].max_value) == (0.0, 2.0)


def test_ollama_single_stop_line_is_still_a_list() -> None:
    assert ollama.parse_parameters('stop                           "<end_of_turn>"') == {"stop": ["<end_of_turn>"]}


def test_ollama_without_capabilities_falls_back_to_families_and_architecture() -> None:
    server = FakeOllama(models=load_legacy_models()).start()
    try:
        models = _by_name(server)
    finally:
        server.stop()

    assert (models["llava:7b"].model_type, set(models["llava:7b"].capabilities)) == ("vision", {caps.TEXT, caps.IMAGE})
    assert (models["all-minilm:latest"].model_type, set(models["all-minilm:latest"].capabilities)) == (
        "embedding",
        {caps.EMBEDDING},
    )
    assert (models["mistral:7b"].model_type, set(models["mistral:7b"].capabilities)) == ("chat", {caps.TEXT})
    assert models["mistral:7b"].capabilities[caps.TEXT].evidence.startswith("inferred from Ollama families")


def test_ollama_fetch_reports_progress_per_described_model(fake_ollama: FakeOllama) -> None:
    calls: list[tuple[int, int]] = []

    ollama.fetch(
        source_name="ollama-a", base_url=fake_ollama.url, api_key=None, progress=lambda d, t: calls.append((d, t))
    )

    assert calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
