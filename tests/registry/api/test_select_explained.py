"""POST /models/select: a ranked chain with fallbacks, and the one reason each other model is out."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from discovery.models import SourceKind
from discovery.sync import source_sync
from discovery.tasks import poll_runtime
from registry.access.accounts import clear_local_access
from registry.access.audit import system_actor
from registry.api.responses import digest_key, entry_key, selection_key
from registry.models import Alert, AlertKind, EndpointType, Provider
from registry.reads.cache import stored_entry
from registry.telemetry.alerts import alerts_check
from registry.telemetry.histograms import RELATIVE_ERROR
from tests.discovery.fakes.ollama import FakeOllama
from tests.factories import (
    ModelEndpointFactory,
    ModelUsageFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
    model_with,
)
from tests.registry.api.test_query_counts import MAX_QUERIES, grow_registry_to

pytestmark = pytest.mark.django_db

ClientFor = Callable[[str], APIClient]


def explain(client: APIClient, body: Any, **headers: str) -> Any:
    return client.post("/models/select", body, format="json", **headers)


def reasons(answer: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {entry["name"]: (entry["check"], entry["reason"]) for entry in answer["excluded"]}


def test_every_model_is_in_the_chain_or_excluded_with_the_first_check_it_fails(api_client_for: ClientFor) -> None:
    price = {"input_cost_per_mtok": Decimal("1"), "output_cost_per_mtok": Decimal("2")}
    model_with("primary", {"code": 0.9}, context_window=128000, **price)
    model_with("fallback", {"code": 0.8}, context_window=64000, **price)
    model_with("third", {"code": 0.75}, context_window=64000, **price)
    model_with("unwanted", {"code": 0.99}, context_window=128000, **price)
    model_with("retired", {"code": 0.99}, status="deprecated", context_window=128000, **price)
    model_with("no-code", {"text": 0.9}, context_window=128000, **price)
    model_with("weak", {"code": 0.6}, context_window=128000, **price)
    model_with("short", {"code": 0.9}, context_window=8192, **price)
    model_with("unknown-window", {"code": 0.9}, **price)
    model_with(
        "dear",
        {"code": 0.95},
        context_window=200000,
        provider=Provider.OPENAI,
        input_cost_per_mtok=Decimal("10"),
        output_cost_per_mtok=Decimal("30"),
    )
    model_with("unpriced-cloud", {"code": 0.95}, context_window=200000, provider=Provider.ANTHROPIC)
    model_with("free-local", {"code": 0.7}, context_window=32000)
    slow = model_with("slow", {"code": 0.95}, context_window=128000, **price)
    flaky = model_with("flaky", {"code": 0.95}, context_window=128000, **price)
    ModelUsageFactory(model=slow, average_latency=5.0, request_count=10)
    ModelUsageFactory(model=flaky, average_latency=0.1, request_count=10, error_count=3)

    answer = explain(
        api_client_for("viewer"),
        {
            "capabilities": {"code": 0.7},
            "min_context": 32000,
            "max_cost_per_mtok": {"input": 5, "output": 15},
            "max_latency_p95": 2.0,
            "max_error_rate": 0.05,
            "exclude": ["unwanted"],
            "limit": 2,
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert [entry["name"] for entry in body["chain"]] == ["primary", "fallback"]
    assert [entry["rank"] for entry in body["chain"]] == [1, 2]
    assert reasons(body) == {
        "unwanted": ("excluded", "Named in the request's exclude list."),
        "retired": ("status", "Status is deprecated."),
        "no-code": ("capability", "Has no 'code' capability."),
        "weak": ("score", "'code' score 0.6 is below 0.7."),
        "short": ("context", "Context window 8192 is below 32000 tokens."),
        "unknown-window": ("context", "Context window unknown; 32000 tokens required."),
        "dear": ("cost", "Input price 10 is above 5 per million tokens."),
        "unpriced-cloud": ("cost", "No known input price; the ceiling is 5 per million tokens."),
        # 5 s as its latency histogram's bucket stands for it (within 2 %, registry/telemetry/histograms.py).
        "slow": ("latency", "p95 latency 5.091 s is above 2 s."),
        "flaky": ("error_rate", "Error rate 0.3 is above 0.05."),
        "third": ("limit", "Meets every requirement; ranked 3, after the 2 asked for."),
        "free-local": ("limit", "Meets every requirement; ranked 4, after the 2 asked for."),
    }
    # Ordered by check, then name: an operator reads the list top down. Within "limit", name order
    # is not rank order (free-local ranked 4th, third 3rd).
    order = ["excluded", "status", "capability", "score", "context", "cost", "latency", "error_rate", "limit"]
    listed = [(entry["check"], entry["name"]) for entry in body["excluded"]]
    assert listed == sorted(listed, key=lambda pair: (order.index(pair[0]), pair[1]))
    assert listed[-2:] == [("limit", "free-local"), ("limit", "third")]


def test_a_chain_entry_carries_the_figures_that_ranked_it(api_client_for: ClientFor) -> None:
    model = model_with(
        "gpt-4o",
        {"code": 0.9, "text": 0.7},
        provider=Provider.OPENAI,
        context_window=128000,
        input_cost_per_mtok=Decimal("2.5"),
        output_cost_per_mtok=Decimal("10"),
    )
    ModelEndpointFactory(model=model, endpoint_url="https://api.openai.com/v1", api_key="sk-secret")
    for latency in (0.1, 0.2, 0.3, 0.4, 1.0):
        ModelUsageFactory(model=model, average_latency=latency, request_count=4, error_count=0)
    ModelUsageFactory(model=model, average_latency=None, request_count=5, error_count=1)
    ModelUsageFactory(model=model, average_latency=50.0, timestamp=timezone.now() - timedelta(days=2))

    entry = explain(api_client_for("viewer"), {"capabilities": {"code": 0.5, "text": 0.5}}).json()["chain"][0]
    assert entry["id"] == model.pk
    assert entry["name"] == "gpt-4o"
    assert entry["score"] == pytest.approx(0.8)
    assert entry["capabilities"]["code"]["score"] == 0.9
    assert entry["capabilities"]["code"]["minimum"] == 0.5
    assert entry["capabilities"]["code"]["evidence"] is not None
    assert entry["context_window"] == 128000
    assert entry["price"] == {"input_per_mtok": 2.5, "output_per_mtok": 10.0}
    # p95 of the five timed records in the last 24 h, as PostgreSQL's percentile_cont interpolates.
    assert entry["latency_p95"] == {
        "value": pytest.approx(0.88, rel=RELATIVE_ERROR),
        "records": 5,
        "window_hours": 24.0,
    }
    # The error rate over the error-rate alert's window (ALERT_WINDOW_MINUTES, 60 min by default).
    assert entry["error_rate"] == {"value": pytest.approx(1 / 25), "requests": 25, "errors": 1, "window_hours": 1.0}
    assert (entry["open_alerts"], entry["fallback_only"]) == ([], None)
    assert entry["local"] is False
    assert entry["loaded"] is False
    assert entry["runtime"] is None
    [endpoint] = entry["endpoints"]
    assert endpoint["endpoint_url"] == "https://api.openai.com/v1"
    assert endpoint["has_api_key"] is True
    assert "sk-secret" not in str(entry)


def test_equal_scores_rank_by_latency_then_price_then_name(api_client_for: ClientFor) -> None:
    slow = model_with("slow", {"code": 0.8})
    fast = model_with("fast", {"code": 0.8})
    model_with("cheap", {"code": 0.8}, input_cost_per_mtok=Decimal("0.1"), output_cost_per_mtok=Decimal("0.1"))
    model_with("dear", {"code": 0.8}, input_cost_per_mtok=Decimal("5"), output_cost_per_mtok=Decimal("15"))
    model_with("b-unpriced", {"code": 0.8})
    model_with("a-unpriced", {"code": 0.8})
    model_with("best", {"code": 0.9})
    ModelUsageFactory(model=slow, average_latency=2.0)
    ModelUsageFactory(model=fast, average_latency=0.3)
    chain = explain(api_client_for("viewer"), {"capabilities": {"code": 0}, "limit": 10}).json()["chain"]
    assert [entry["name"] for entry in chain] == ["best", "fast", "slow", "cheap", "dear", "a-unpriced", "b-unpriced"]


def test_local_only_keeps_platform_served_models_and_cloud_models_with_a_local_endpoint(
    api_client_for: ClientFor,
) -> None:
    model_with("llama3", {"text": 0.8})
    model_with("gpt-4o", {"text": 0.9}, provider=Provider.OPENAI)
    mirrored = model_with("claude-mirror", {"text": 0.85}, provider=Provider.ANTHROPIC)
    ModelEndpointFactory(model=mirrored, endpoint_type=EndpointType.LOCAL)
    body = explain(api_client_for("viewer"), {"capabilities": {"text": 0.5}, "local_only": True}).json()
    assert [entry["name"] for entry in body["chain"]] == ["claude-mirror", "llama3"]
    assert reasons(body) == {"gpt-4o": ("local", "Served in openai's cloud; only local models were asked for.")}


def test_exclude_takes_ids_as_well_as_names(api_client_for: ClientFor) -> None:
    first = model_with("first", {"code": 0.9})
    model_with("second", {"code": 0.8})
    body = explain(api_client_for("viewer"), {"capabilities": {"code": 0.5}, "exclude": [str(first.pk)]}).json()
    assert [entry["name"] for entry in body["chain"]] == ["second"]
    assert body["excluded"] == [
        {"id": first.pk, "name": "first", "check": "excluded", "reason": "Named in the request's exclude list."}
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "capabilities"),
        ({"capabilities": {}}, "capabilities"),
        ({"capabilities": {"code": 1.5}}, "capabilities"),
        ({"capabilities": {"Code!": 0.5}}, "capabilities"),
        ({"capabilities": ["code"]}, "capabilities"),
        ({"capabilities": {"code": 0.5}, "min_context": 0}, "min_context"),
        ({"capabilities": {"code": 0.5}, "min_context": "32000"}, "min_context"),
        ({"capabilities": {"code": 0.5}, "max_cost_per_mtok": {"input": -1}}, "max_cost_per_mtok"),
        ({"capabilities": {"code": 0.5}, "max_cost_per_mtok": {"inputs": 1}}, "max_cost_per_mtok"),
        ({"capabilities": {"code": 0.5}, "max_latency_p95": -2}, "max_latency_p95"),
        ({"capabilities": {"code": 0.5}, "max_error_rate": 2}, "max_error_rate"),
        ({"capabilities": {"code": 0.5}, "local_only": "yes"}, "local_only"),
        ({"capabilities": {"code": 0.5}, "prefer_loaded": 1}, "prefer_loaded"),
        ({"capabilities": {"code": 0.5}, "exclude": "gpt-4o"}, "exclude"),
        ({"capabilities": {"code": 0.5}, "exclude": [0]}, "exclude"),  # an id is sent as a string
        # The bound is on the item as sent: padding trimmed away would pass a bound checked after trimming.
        ({"capabilities": {"code": 0.5}, "exclude": [" " * 100 + "gpt-4o"]}, "exclude"),
        ({"capabilities": {"code": 0.5}, "exclude": ["gpt-4o" + "\t" * 95]}, "exclude"),
        ({"capabilities": {"code": 0.5}, "limit": 0}, "limit"),
        ({"capabilities": {"code": 0.5}, "limit": 51}, "limit"),
        ({"capabilities": {"code": 0.5}, "budget": 3}, "budget"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api_client_for: ClientFor, body: Any, field: str) -> None:
    response = explain(api_client_for("viewer"), body)
    assert response.status_code == 400
    assert field in response.json()


def test_an_exclude_item_of_the_longest_length_is_taken_and_trimmed(api_client_for: ClientFor) -> None:
    RegisteredModelFactory(name="gpt-4o")
    padded = " " * 47 + "gpt-4o" + " " * 47  # 100 characters as sent
    response = explain(api_client_for("viewer"), {"capabilities": {"code": 0.0}, "exclude": [padded]})
    assert response.status_code == 200
    assert [entry["name"] for entry in response.json()["excluded"] if entry["check"] == "excluded"] == ["gpt-4o"]


def test_a_body_that_is_not_an_object_is_a_400(api_client_for: ClientFor) -> None:
    response = explain(api_client_for("viewer"), ["code"])
    assert response.status_code == 400


def test_callers_need_a_token_and_any_role(api_client_for: ClientFor) -> None:
    model_with("coder", {"code": 0.9})
    assert APIClient().post("/models/select", {"capabilities": {"code": 0.5}}, format="json").status_code == 401
    for role in ("viewer", "service", "editor", "admin"):
        assert explain(api_client_for(role), {"capabilities": {"code": 0.5}}).status_code == 200


def test_the_same_question_is_answered_from_the_cache_until_a_model_changes(
    api_client_for: ClientFor, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    coder = model_with("coder", {"code": 0.9})
    model_with("other", {"code": 0.8})
    client = api_client_for("viewer")
    question = {"capabilities": {"code": 0.5}}
    first = explain(client, question)
    with CaptureQueriesContext(connection) as context:
        again = explain(client, question)
    assert context.captured_queries == []
    assert again.content == first.content
    assert again["ETag"] == first["ETag"]
    # A matching If-None-Match on a POST is no 304 (RFC 9110): the body comes back.
    conditional = explain(client, question, HTTP_IF_NONE_MATCH=first["ETag"])
    assert conditional.status_code == 200
    assert conditional.content == first.content

    editor = api_client_for("editor")
    with django_capture_on_commit_callbacks(execute=True):
        assert editor.patch(f"/models/{coder.pk}", {"capabilities": {"code": 0.1}}, format="json").status_code == 200
    after = explain(client, question).json()
    assert [entry["name"] for entry in after["chain"]] == ["other"]
    assert reasons(after) == {"coder": ("score", "'code' score 0.1 is below 0.5.")}


def test_an_invalid_question_is_never_cached(api_client_for: ClientFor) -> None:
    client = api_client_for("viewer")

    def post(body: bytes) -> int:
        return int(client.post("/models/select", body, content_type="application/json").status_code)

    def stored(body: bytes) -> Any:
        return stored_entry(entry_key("explain", selection_key(digest_key(body))))

    valid, invalid = b'{"capabilities": {"code": 0.5}}', b'{"capabilities": {}}'
    assert post(valid) == 200
    assert stored(valid) is not None  # where an answer is stored: the check below looks in the right place
    assert [post(invalid), post(invalid)] == [400, 400]
    assert stored(invalid) is None


def test_the_answer_is_gzipped_for_clients_that_accept_it(api_client_for: ClientFor) -> None:
    for index in range(40):
        model_with(f"model-{index:02}", {"code": 0.5 + index / 100})
    client = api_client_for("viewer")
    plain = explain(client, {"capabilities": {"code": 0.9}})
    zipped = explain(client, {"capabilities": {"code": 0.9}}, HTTP_ACCEPT_ENCODING="gzip")
    assert zipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == plain.content


def test_queries_are_the_same_for_5_and_200_models(api_client_for: ClientFor) -> None:
    client = api_client_for("viewer")

    def queries() -> int:
        cache.clear()
        clear_local_access()
        with CaptureQueriesContext(connection) as context:
            response = explain(client, {"capabilities": {"code": 0.5, "text": 0.5}, "limit": 10})
        assert response.status_code == 200
        assert len(response.json()["chain"]) == 10
        return len(context.captured_queries)

    grow_registry_to(12)
    with_twelve = queries()
    grow_registry_to(200)
    # Three more than a read's bound: the errors over the alert's window (its hours' rollups and its
    # edge's raw rows), and the open alerts (issue 23).
    assert queries() == with_twelve <= MAX_QUERIES + 3


def test_usage_figures_in_a_cached_answer_are_never_older_than_the_cache_ttl(
    api_client_for: ClientFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Usage records do not change the cache generation (they arrive by the thousand): the answer's key
    # names the TTL window instead, so a p95 that moved is seen in the next window at the latest.
    model = model_with("coder", {"code": 0.9})
    ModelUsageFactory(model=model, average_latency=0.5)
    client = api_client_for("viewer")
    question = {"capabilities": {"code": 0.5}, "max_latency_p95": 2.0}
    monkeypatch.setattr("registry.api.responses.ttl_window", lambda: 1_000_000)
    assert [entry["name"] for entry in explain(client, question).json()["chain"]] == ["coder"]
    for _ in range(20):
        ModelUsageFactory(model=model, average_latency=9.0)
    assert [entry["name"] for entry in explain(client, question).json()["chain"]] == ["coder"]  # same window
    monkeypatch.setattr("registry.api.responses.ttl_window", lambda: 1_000_001)
    answer = explain(client, question).json()
    assert answer["chain"] == []
    assert answer["excluded"][0]["check"] == "latency"


def test_prefer_loaded_ranks_what_ollama_has_loaded_now_first(
    api_client_for: ClientFor, fake_ollama: FakeOllama, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    # The whole path: discovery lists the host's models, a poll of /api/ps records what is loaded,
    # and the selection puts it first when asked to (equal scores: the declared default for "text").
    source = ProviderSourceFactory(name="gpu-box", kind=SourceKind.OLLAMA, base_url=fake_ollama.url)
    with system_actor("discovery"):
        source_sync(source=source, trigger="manual")
    fake_ollama.load("qwen3:8b", size_vram=5_000_000_000, context_length=8192)
    with django_capture_on_commit_callbacks(execute=True):
        poll_runtime(source.pk)
    client = api_client_for("service")
    question: dict[str, Any] = {"capabilities": {"text": 0.1}, "limit": 3}

    plain = explain(client, question).json()["chain"]
    preferred = explain(client, {**question, "prefer_loaded": True}).json()["chain"]

    assert "qwen3:8b" not in [entry["name"] for entry in plain[:1]]
    assert preferred[0]["name"] == "qwen3:8b"
    assert preferred[0]["loaded"] is True
    assert [entry["loaded"] for entry in preferred[1:]] == [False, False]
    # The figures are the model's own: the runtime and evidence a GET of the model shows.
    model = client.get(f"/models/{preferred[0]['id']}").json()
    assert preferred[0]["runtime"] == model["runtime"]
    assert preferred[0]["runtime"]["size_vram"] == 5_000_000_000
    assert preferred[0]["capabilities"]["text"]["evidence"] == model["capability_evidence"]["text"]
    assert preferred[0]["capabilities"]["text"]["evidence"]["source"] == "provider"
    assert preferred[0]["endpoints"] == model["endpoints"]


# --- What the alerts know (issue 23, item 5) ---------------------------------------------------------


def test_a_model_with_an_open_error_rate_alert_is_a_fallback_never_the_primary(
    api_client_for: ClientFor, settings: Any
) -> None:
    settings.ALERT_WINDOW_MINUTES = 60
    best = model_with("best", {"code": 0.95})
    model_with("second", {"code": 0.8})
    # A burst of errors over the last hour: 27 % where the day's rate is 2 %.
    ModelUsageFactory(model=best, request_count=100, error_count=27, timestamp=timezone.now() - timedelta(minutes=10))
    ModelUsageFactory(model=best, request_count=1250, error_count=0, timestamp=timezone.now() - timedelta(hours=5))
    alerts_check()
    assert Alert.objects.open().get().kind == AlertKind.ERROR_RATE

    chain = explain(api_client_for("viewer"), {"capabilities": {"code": 0.5}}).json()["chain"]
    assert [entry["name"] for entry in chain] == ["second", "best"]
    demoted = chain[1]
    assert [alert["kind"] for alert in demoted["open_alerts"]] == ["error_rate"]
    assert demoted["fallback_only"].startswith(
        "Has an open error-rate alert (best: error rate 27.0% over the last 60 min"
    )
    assert chain[0]["fallback_only"] is None
    # The figure the chain shows is the one the alert judged, over the same window.
    assert demoted["error_rate"] == {"value": pytest.approx(0.27), "requests": 100, "errors": 27, "window_hours": 1.0}


def test_the_error_rate_ceiling_reads_the_alerts_window(api_client_for: ClientFor, settings: Any) -> None:
    settings.ALERT_WINDOW_MINUTES = 30
    flaky = model_with("flaky", {"code": 0.9})
    ModelUsageFactory(model=flaky, request_count=10, error_count=5, timestamp=timezone.now() - timedelta(minutes=5))
    ModelUsageFactory(model=flaky, request_count=990, error_count=0, timestamp=timezone.now() - timedelta(hours=2))
    answer = explain(api_client_for("viewer"), {"capabilities": {"code": 0.5}, "max_error_rate": 0.1}).json()
    assert answer["chain"] == []
    assert reasons(answer)["flaky"] == ("error_rate", "Error rate 0.5 is above 0.1.")


def test_a_resolved_alert_no_longer_demotes(api_client_for: ClientFor, django_capture_on_commit_callbacks: Any) -> None:
    best = model_with("best", {"code": 0.95})
    model_with("second", {"code": 0.8})
    best.status = "unavailable"
    best.last_seen_at = timezone.now() - timedelta(hours=1)
    best.save()
    alerts_check()
    best.status = "available"  # listed again; the next check resolves the alert
    best.save()
    client = api_client_for("viewer")
    first = explain(client, {"capabilities": {"code": 0.5}}).json()["chain"]
    assert [entry["name"] for entry in first] == ["second", "best"]
    assert first[1]["fallback_only"].startswith("Has an open unavailable alert")
    # The resolution invalidates the cached answer at once, not after its TTL.
    with django_capture_on_commit_callbacks(execute=True):
        alerts_check()
    assert [entry["name"] for entry in explain(client, {"capabilities": {"code": 0.5}}).json()["chain"]] == [
        "best",
        "second",
    ]
