"""OpenAI-compatible servers (vLLM, LM Studio, llama.cpp server, LocalAI): ``GET {base}/v1/models``.

The same list format as OpenAI's (https://platform.openai.com/docs/api-reference/models/list),
with an optional key. vLLM adds ``max_model_len`` (the served context length) and ``root``
(https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html). The base URL may be given
with or without ``/v1``.
"""

from __future__ import annotations

from typing import Any

from discovery.clients.base import (
    CapabilityClaim,
    DiscoveredModel,
    EndpointClaim,
    Listing,
    Progress,
    ProviderError,
)
from discovery.clients.http import ProviderHTTP, expect_mapping
from registry.catalog import capabilities as caps
from registry.models import AuthType, EndpointType, ModelType, Provider

SERVED_EVIDENCE = "served by an OpenAI-compatible server; default score for a declared capability"


def api_root(base_url: str) -> str:
    """The server's ``.../v1`` URL, whether the operator wrote it with ``/v1`` or without."""
    base = base_url.rstrip("/")
    return base if base.endswith("/v1") else f"{base}/v1"


def map_model(*, base_url: str, entry: dict[str, Any], has_key: bool) -> DiscoveredModel:
    model_id = str(entry["id"])
    embedding = "embed" in model_id.lower()
    model_type = ModelType.EMBEDDING if embedding else ModelType.CHAT
    capability = caps.EMBEDDING if embedding else caps.TEXT
    details = {key: entry[key] for key in ("owned_by", "root", "parent") if entry.get(key) not in (None, "")}
    max_len = entry.get("max_model_len")
    path = "/embeddings" if embedding else "/chat/completions"
    return DiscoveredModel(
        name=model_id,
        display_name=model_id,
        provider=Provider.CUSTOM,
        model_type=model_type,
        context_window=max_len if isinstance(max_len, int) and max_len > 0 else None,
        details=details,
        capabilities={capability: CapabilityClaim(caps.DECLARED_DEFAULT_SCORE, SERVED_EVIDENCE)},
        endpoint=EndpointClaim(
            endpoint_type=EndpointType.REST,
            endpoint_url=f"{api_root(base_url)}{path}",
            auth_type=AuthType.API_KEY if has_key else AuthType.NONE,
        ),
    )


def fetch(*, source_name: str, base_url: str, api_key: str | None, progress: Progress | None = None) -> Listing:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    listing = Listing()
    with ProviderHTTP(source_name=source_name, base_url=api_root(base_url), headers=headers) as http:
        entries = expect_mapping(http.get_json("/models"), "data", source_name=source_name, what="GET /v1/models")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ProviderError(f"source {source_name}: a /v1/models entry has no id")
        listing.models.append(map_model(base_url=base_url, entry=entry, has_key=bool(api_key)))
    return listing
