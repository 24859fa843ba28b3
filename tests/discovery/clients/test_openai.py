"""OpenAI ids classified by family, enriched from the catalog; audio/image/moderation skipped."""

from __future__ import annotations

from discovery.clients import openai
from registry.catalog import capabilities as caps
from tests.discovery.fakes.openai import FakeOpenAI


def _listing(server: FakeOpenAI) -> openai.Listing:
    return openai.fetch(source_name="openai", base_url=f"{server.url}/v1", api_key=server.api_key)


def test_openai_audio_image_moderation_and_realtime_ids_are_skipped_and_counted(fake_openai: FakeOpenAI) -> None:
    listing = _listing(fake_openai)

    assert sorted(listing.skipped) == [
        "dall-e-3",
        "gpt-4o-audio-preview",
        "gpt-4o-realtime-preview",
        "gpt-image-1",
        "omni-moderation-latest",
        "tts-1-hd",
        "whisper-1",
    ]
    assert len(listing.models) == 9


def test_openai_model_is_what_the_list_says_and_its_family_implies(fake_openai: FakeOpenAI) -> None:
    model = {m.name: m for m in _listing(fake_openai).models}["gpt-4o"]

    assert model.model_type == "chat"
    # Prices and limits are the catalogs' (discovery.catalogs, tests/discovery/test_catalogs.py), not the client's.
    assert (model.context_window, model.input_cost_per_mtok, model.output_cost_per_mtok) == (None, None, None)
    assert model.capabilities[caps.IMAGE].score == 0.5
    assert model.endpoint.endpoint_url == f"{fake_openai.url}/v1/chat/completions"
    assert model.endpoint.auth_type == "api_key"


def test_openai_dated_snapshot_keeps_the_date_as_version(fake_openai: FakeOpenAI) -> None:
    model = {m.name: m for m in _listing(fake_openai).models}["gpt-4o-2024-08-06"]

    assert model.version == "2024-08-06"


def test_openai_embedding_model_is_typed_embedding_with_the_embeddings_endpoint(fake_openai: FakeOpenAI) -> None:
    model = {m.name: m for m in _listing(fake_openai).models}["text-embedding-3-small"]

    assert model.model_type == "embedding"
    assert set(model.capabilities) == {caps.EMBEDDING}
    assert model.endpoint.endpoint_url == f"{fake_openai.url}/v1/embeddings"


def test_openai_instruct_model_is_a_completion_model(fake_openai: FakeOpenAI) -> None:
    model = {m.name: m for m in _listing(fake_openai).models}["gpt-3.5-turbo-instruct"]

    assert model.model_type == "completion"
    assert model.endpoint.endpoint_url.endswith("/v1/completions")


def test_openai_unknown_id_is_registered_without_invented_scores(fake_openai: FakeOpenAI) -> None:
    model = {m.name: m for m in _listing(fake_openai).models}["some-future-model"]

    assert model.model_type == "chat"
    assert model.capabilities == {}
    assert (model.context_window, model.input_cost_per_mtok) == (None, None)
    assert model.details == {"owned_by": "system", "created": "2025-10-09"}


def test_openai_fine_tuned_model_gets_family_capabilities_at_the_default_score(fake_openai: FakeOpenAI) -> None:
    model = {m.name: m for m in _listing(fake_openai).models}["ft:gpt-4o-mini-2024-07-18:acme::9xYz1234"]

    assert {name: c.score for name, c in model.capabilities.items()} == {
        caps.TEXT: 0.5,
        caps.IMAGE: 0.5,
        caps.TOOLS: 0.5,
    }
    assert model.input_cost_per_mtok is None


def test_openai_reasoning_family_declares_reasoning() -> None:
    classified = openai.classify("o4-mini-2025-04-16")

    assert classified is not None
    assert set(classified[1]) == {caps.TEXT, caps.REASONING, caps.IMAGE, caps.TOOLS}


def test_openai_request_carries_the_key_as_a_bearer_token(fake_openai: FakeOpenAI) -> None:
    _listing(fake_openai)

    assert fake_openai.requests[0].headers["authorization"] == f"Bearer {fake_openai.api_key}"
    assert fake_openai.requests[0].path == "/v1/models"
