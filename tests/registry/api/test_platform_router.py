"""The platform's model router, played over real HTTP: its exact requests, no token, its expectations.

The router's registry client has only a base URL, to which it adds ``/api/v1`` itself (so it is
given the host root, as docs/platform.md says), and an HTTP session that cannot add an Authorization
header. It refreshes its cache from ``GET /models`` (a plain list keyed by
``id``), uses a model only when ``active``, calls its ``endpoint_url``, reads capabilities as flags
with ``task_types``, ``content_types`` and ``pricing``, and posts its routing metrics, counting any
status but 200 as a lost record and retrying with the same ``request_id``.

The live server listens on 127.0.0.1, so the trusted network here is 127.0.0.0/8.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from auditlog.models import LogEntry
from prometheus_client import REGISTRY

from registry.access.read_counts import read_counts_flush
from registry.models import ModelStatus, ModelUsage, TrustedNetworkRead
from tests.factories import ModelCapabilityFactory, ModelEndpointFactory, RegisteredModelFactory

pytestmark = [pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[3] / "docs"
# What the router's client puts between its base URL and every path it calls.
ROUTER_PREFIX = "/api/v1"

ROUTER_METRICS = {
    "request_id": "req-7f3a",
    "task_type": "code_generation",
    "content_types": ["text", "code"],
    "content_token_count": 420,
    "response_token_count": 180,
    "latency": 1.25,
    "success": True,
    "error_message": None,
    "cost": 0.0061234567,
}


@pytest.fixture
def registry(db: None) -> dict[str, Any]:
    """A chat model good at code with a local endpoint and prices, and an unavailable one; names hold '/' and ':'."""
    coder = RegisteredModelFactory(
        name="hf.co/bartowski/Qwen2.5-Coder-7B-GGUF:Q4_K_M",
        provider="ollama",
        model_type="chat",
        input_cost_per_mtok="2.500000",
        output_cost_per_mtok="10.000000",
    )
    ModelCapabilityFactory(model=coder, capability="code", capability_score=0.9)
    ModelCapabilityFactory(model=coder, capability="text", capability_score=0.7)
    ModelCapabilityFactory(model=coder, capability="reasoning", capability_score=0.2)
    ModelEndpointFactory(model=coder, endpoint_url="http://llm-service:11434", auth_type="none")
    gone = RegisteredModelFactory(name="llama2:13b", status=ModelStatus.UNAVAILABLE)
    return {"coder": coder, "gone": gone}


@pytest.fixture
def trusted_loopback(settings: Any) -> None:
    settings.PLATFORM_TRUSTED_NETWORKS = ["127.0.0.0/8"]


def router_session() -> requests.Session:
    """The router's session: JSON, and no way to add an Authorization header."""
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    return session


def documented_base_urls() -> list[str]:
    """Every URL of the registry's compose service that the platform's docs give (the router's base URL among them)."""
    found = [
        url
        for name in ("platform.md", "operations.md")
        for url in re.findall(r"http://model-registry:8700[^`\s)]*", (DOCS / name).read_text())
    ]
    assert found, "the docs give the router's base URL"
    return found


def router_base(live_server: Any, documented: str) -> str:
    """The base the router calls: the documented URL on the live server's address, plus its own /api/v1."""
    return f"{live_server.url}{urlsplit(documented).path.rstrip('/')}{ROUTER_PREFIX}"


def _trusted_requests() -> float:
    total = 0.0
    for family in REGISTRY.collect():
        if family.name == "registry_trusted_network_requests":
            total += sum(sample.value for sample in family.samples if sample.name.endswith("_total"))
    return total


def test_the_router_works_with_the_profile_on(
    live_server: Any, registry: dict[str, Any], trusted_loopback: None, settings: Any
) -> None:
    settings.PLATFORM_API_COMPAT = "alfred"
    base = router_base(live_server, documented_base_urls()[0])
    session = router_session()
    counted_before = _trusted_requests()

    # Cache refresh: a plain list, keyed by id.
    listing = session.get(f"{base}/models", timeout=10)
    assert listing.status_code == 200
    assert isinstance(listing.json(), list)
    models = {model["id"]: model for model in listing.json()}
    coder_id, gone_id = registry["coder"].pk, registry["gone"].pk
    assert set(models) == {coder_id, gone_id}
    assert models[coder_id]["active"] is True
    assert models[gone_id]["active"] is False
    assert models[coder_id]["endpoint_url"] == "http://llm-service:11434"
    assert models[coder_id]["auth_required"] is False
    assert models[coder_id]["capabilities"]["code"] is True
    # What is unknown is missing, so that the router's defaults apply: never a null.
    assert "endpoint_url" not in models[gone_id]
    assert "input" not in models[gone_id]["capabilities"]["pricing"]
    assert "null" not in listing.text

    # The model itself, by the id it keyed it by.
    detail = session.get(f"{base}/models/{coder_id}", timeout=10)
    assert detail.status_code == 200
    assert detail.json()["active"] is True
    assert detail.json()["endpoint_url"] == "http://llm-service:11434"

    # Its capabilities: flags, task and content types, prices per 1,000 tokens.
    caps = session.get(f"{base}/models/{coder_id}/capabilities", timeout=10)
    assert caps.status_code == 200
    capabilities = caps.json()
    assert capabilities["code"] is True
    assert capabilities["text"] is True
    assert capabilities["reasoning"] is False  # 0.2 is under the 0.5 threshold
    assert capabilities["image"] is False
    assert "code_generation" in capabilities["task_types"]
    assert "chat" in capabilities["task_types"]
    assert set(capabilities["content_types"]) == {"text", "code"}
    assert capabilities["pricing"]["input"] == pytest.approx(0.0025)
    assert capabilities["pricing"]["output"] == pytest.approx(0.01)
    assert capabilities["pricing"]["per_tokens"] == 1000

    # Routing metrics, answered 200; the retry of an unanswered post is stored once.
    metrics = {**ROUTER_METRICS, "model_id": coder_id}
    first = session.post(f"{base}/models/{coder_id}/usage", json=metrics, timeout=10)
    retry = session.post(f"{base}/models/{coder_id}/usage", json=metrics, timeout=10)
    assert (first.status_code, retry.status_code) == (200, 200)
    assert first.json() == {"recorded": 1, "duplicates": 0}
    assert retry.json() == {"recorded": 0, "duplicates": 1}
    row = ModelUsage.objects.get()
    assert (row.request_id, row.token_count, row.request_count, row.error_count) == ("req-7f3a", 600, 1, 0)
    assert row.average_latency == pytest.approx(1.25)
    assert str(row.cost) == "0.006123"

    # A failed attempt is an error record.
    failed = {**metrics, "request_id": "req-7f3b", "success": False, "error_message": "timeout"}
    assert session.post(f"{base}/models/{coder_id}/usage", json=failed, timeout=10).status_code == 200
    assert ModelUsage.objects.get(request_id="req-7f3b").error_count == 1

    # Names with '/' and ':' work as ids too.
    name = registry["coder"].name
    assert session.get(f"{base}/models/{name}", timeout=10).json()["id"] == coder_id

    # Every one of those token-less requests was counted; reads and posts are on the record as counts
    # per route (a model by its id and by its name is one route), none as an audit entry of its own.
    assert _trusted_requests() - counted_before == 7
    read_counts_flush()
    assert sorted(TrustedNetworkRead.objects.values_list("method", "route", "count")) == [
        ("GET", "/api/v1/models", 1),
        ("GET", "/api/v1/models/{ref}", 2),
        ("GET", "/api/v1/models/{ref}/capabilities", 1),
        ("POST", "/api/v1/models/{ref}/usage", 3),
    ]
    assert LogEntry.objects.filter(action=LogEntry.Action.ACCESS).count() == 0


@pytest.mark.parametrize("documented", documented_base_urls())
def test_the_documented_base_url_is_the_one_the_router_adds_api_v1_to(
    live_server: Any, registry: dict[str, Any], trusted_loopback: None, settings: Any, documented: str
) -> None:
    settings.PLATFORM_API_COMPAT = "alfred"
    listing = router_session().get(f"{router_base(live_server, documented)}/models", timeout=10)
    assert listing.status_code == 200, documented
    assert {model["id"] for model in listing.json()} == {registry["coder"].pk, registry["gone"].pk}


def test_the_same_requests_get_the_registry_shapes_with_the_profile_off(
    live_server: Any, registry: dict[str, Any], trusted_loopback: None, settings: Any
) -> None:
    """Without the profile /api/v1/ is the registry's own API: what the router's client cannot read."""
    settings.PLATFORM_API_COMPAT = ""
    base = f"{live_server.url}/api/v1"
    session = router_session()
    coder_id = registry["coder"].pk

    listing = session.get(f"{base}/models", timeout=10)
    assert listing.status_code == 200
    assert set(listing.json()) == {"count", "next", "previous", "results"}
    model = session.get(f"{base}/models/{coder_id}", timeout=10).json()
    assert "active" not in model
    assert model["available"] is True
    assert model["capabilities"]["code"] == pytest.approx(0.9)
    caps = session.get(f"{base}/models/{coder_id}/capabilities", timeout=10).json()
    assert isinstance(caps, list)
    assert {row["capability"] for row in caps} == {"code", "text", "reasoning"}

    metrics = {**ROUTER_METRICS, "model_id": coder_id}
    refused = session.post(f"{base}/models/{coder_id}/usage", json=metrics, timeout=10)
    assert refused.status_code == 400
    assert "request_id" in refused.json()
    plain = session.post(f"{base}/models/{coder_id}/usage", json={"token_count": 5}, timeout=10)
    assert plain.status_code == 201
    assert ModelUsage.objects.get().token_count == 5


def test_the_router_outside_the_trusted_networks_is_refused(
    live_server: Any, registry: dict[str, Any], settings: Any
) -> None:
    settings.PLATFORM_API_COMPAT = "alfred"
    settings.PLATFORM_TRUSTED_NETWORKS = ["10.0.0.0/8"]
    base = f"{live_server.url}/api/v1"
    session = router_session()
    coder_id = registry["coder"].pk
    for response in (
        session.get(f"{base}/models", timeout=10),
        session.get(f"{base}/models/{coder_id}/capabilities", timeout=10),
        session.post(f"{base}/models/{coder_id}/usage", json=ROUTER_METRICS, timeout=10),
    ):
        assert response.status_code == 401
        assert response.headers["Content-Type"] == "application/json"
    assert not ModelUsage.objects.exists()


def test_an_unknown_path_under_v1_is_a_json_404(live_server: Any, settings: Any) -> None:
    response = router_session().get(f"{live_server.url}/api/v1/modles", timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}
