"""Ollama's ``GET /api/ps`` read: nanosecond RFC 3339 at any offset, and facts older servers leave out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from discovery.clients import ollama
from discovery.clients.base import ProviderError
from tests.discovery.fakes.ollama import FakeOllama, load_running


def _loaded(server: FakeOllama) -> dict[str, ollama.LoadedModel]:
    return {m.name: m for m in ollama.fetch_loaded(source_name="ollama-a", base_url=server.url, api_key=None)}


def test_running_models_are_read_with_vram_context_and_expiry_in_utc(fake_ollama: FakeOllama) -> None:
    fake_ollama.set_loaded(load_running())

    loaded = _loaded(fake_ollama)

    qwen = loaded["qwen3:8b"]
    assert qwen.size_vram == 6654289920
    assert qwen.context_length == 8192
    # 07:35:12.483716204+01:00: nanoseconds cut to microseconds, the offset applied.
    assert qwen.expires_at == datetime(2026, 12, 2, 6, 35, 12, 483716, tzinfo=UTC)


def test_a_server_without_context_length_gives_none_and_a_short_fraction_is_read_as_written(
    fake_ollama: FakeOllama,
) -> None:
    fake_ollama.set_loaded(load_running())

    llama = _loaded(fake_ollama)["llama3.2:latest"]

    assert llama.context_length is None
    assert llama.size_vram == 2883584000
    assert llama.expires_at == datetime(2026, 12, 2, 6, 31, 40, 900000, tzinfo=UTC)  # .9 at -08:00


def test_an_idle_host_lists_nothing(fake_ollama: FakeOllama) -> None:
    assert _loaded(fake_ollama) == {}


def test_an_entry_with_only_a_name_has_every_other_fact_missing(fake_ollama: FakeOllama) -> None:
    fake_ollama.set_loaded([{"model": "bare:latest"}, {"name": "odd", "size_vram": "lots", "context_length": 0}])

    loaded = _loaded(fake_ollama)

    assert loaded["bare:latest"] == ollama.LoadedModel("bare:latest", None, None, None)
    assert loaded["odd"] == ollama.LoadedModel("odd", None, None, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-02T07:35:12.123456789Z", datetime(2026, 12, 2, 7, 35, 12, 123456, tzinfo=UTC)),
        ("2026-12-02T07:35:12Z", datetime(2026, 12, 2, 7, 35, 12, tzinfo=UTC)),
        ("2026-12-02T07:35:12.5+05:30", datetime(2026, 12, 2, 2, 5, 12, 500000, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),  # Go's zero time: a model still loading
        ("2026-12-02 07:35", None),
        ("soon", None),
        (1764660912, None),
        (None, None),
    ],
)
def test_moments_of_ollama_are_parsed_or_none(text: object, expected: datetime | None) -> None:
    assert ollama.parse_moment(text) == expected


def test_an_entry_without_a_name_is_a_provider_error(fake_ollama: FakeOllama) -> None:
    fake_ollama.set_loaded([{"size_vram": 1}])

    with pytest.raises(ProviderError, match="an /api/ps entry has no model name"):
        _loaded(fake_ollama)


def test_a_failing_host_is_asked_once_when_the_caller_wants_no_retry(fake_ollama: FakeOllama) -> None:
    fake_ollama.fail_next("status", status=500, times=3)

    with pytest.raises(ProviderError, match="answered HTTP 500, after 1 attempt"):
        ollama.fetch_loaded(source_name="ollama-a", base_url=fake_ollama.url, api_key=None, max_retries=0)

    assert [request.path for request in fake_ollama.requests] == ["/api/ps"]
