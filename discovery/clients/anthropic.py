"""Anthropic: ``GET /v1/models`` with ``x-api-key`` and ``anthropic-version``, paginated.

Wire format: https://docs.anthropic.com/en/api/models-list. A page holds ``data``, ``has_more``,
``first_id`` and ``last_id``; the next page is requested with ``after_id=<last_id>``. Entries
carry ``id``, ``display_name``, ``created_at`` and, on newer API versions, ``max_input_tokens``,
``max_tokens``, ``capabilities`` and ``lifecycle``: those win over the catalogs (discovery.catalogs).
"""

from __future__ import annotations

from typing import Any

from discovery.clients.base import (
    CapabilityClaim,
    DiscoveredModel,
    EndpointClaim,
    Listing,
    ParameterClaim,
    Progress,
    ProviderError,
)
from discovery.clients.http import ProviderHTTP, expect_mapping
from registry.catalog import capabilities as caps
from registry.models import AuthType, EndpointType, ModelType, Provider

API_VERSION = "2023-06-01"
PAGE_SIZE = 100  # the API's maximum
MAX_PAGES = 1000  # a server that never says has_more=false must not loop forever

DECLARED_EVIDENCE = "declared by Anthropic /v1/models capabilities; default score for a declared capability"
# Every Claude model on the Messages API generates text and calls tools
# (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/overview).
FAMILY_EVIDENCE = "every Claude model on the Messages API; default score for a declared capability"


def map_model(*, base_url: str, entry: dict[str, Any]) -> DiscoveredModel | None:
    """One /v1/models entry in the registry's terms, or None for a retired model (it cannot be called)."""
    if entry.get("lifecycle") == "retired":
        return None
    model_id = str(entry["id"])
    claims = {
        caps.TEXT: CapabilityClaim(caps.DECLARED_DEFAULT_SCORE, FAMILY_EVIDENCE),
        caps.TOOLS: CapabilityClaim(caps.DECLARED_DEFAULT_SCORE, FAMILY_EVIDENCE),
    }
    declared = entry.get("capabilities")
    if isinstance(declared, dict):
        for word, support in declared.items():
            mapped = caps.normalize(word, caps.ANTHROPIC_WORDS)
            if mapped is not None and isinstance(support, dict) and support.get("supported") is True:
                claims[mapped] = CapabilityClaim(caps.DECLARED_DEFAULT_SCORE, DECLARED_EVIDENCE)
    details: dict[str, Any] = {}
    created = entry.get("created_at")
    if isinstance(created, str) and created:
        details["created_at"] = created
    for key in ("lifecycle", "deprecated_at", "retires_at"):
        if entry.get(key):
            details[key] = entry[key]
    parameters: dict[str, ParameterClaim] = {}
    max_tokens = entry.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens > 0:
        details["max_output_tokens"] = max_tokens
        parameters["max_tokens"] = ParameterClaim(
            default=max_tokens,
            min_value=1,
            max_value=max_tokens,
            description="Maximum tokens to generate; the Messages API requires it. Default: the model's limit.",
        )
    max_input = entry.get("max_input_tokens")
    model = DiscoveredModel(
        name=model_id,
        display_name=str(entry.get("display_name") or model_id),
        provider=Provider.ANTHROPIC,
        model_type=ModelType.CHAT,
        version=created[:10] if isinstance(created, str) and len(created) >= 10 else None,
        context_window=max_input if isinstance(max_input, int) and max_input > 0 else None,
        details=details,
        capabilities=claims,
        capabilities_declared=isinstance(declared, dict),
        parameters=parameters,
        endpoint=EndpointClaim(
            endpoint_type=EndpointType.REST,
            endpoint_url=f"{base_url.rstrip('/')}/v1/messages",
            auth_type=AuthType.API_KEY,
            headers={"anthropic-version": API_VERSION},
        ),
    )
    return model


def fetch(*, source_name: str, base_url: str, api_key: str | None, progress: Progress | None = None) -> Listing:
    """Every model of every page. ``base_url`` is the host root, as the SDK's ``ANTHROPIC_BASE_URL``."""
    if not api_key:
        raise ProviderError(f"source {source_name} has no API key")
    listing = Listing()
    headers = {"x-api-key": api_key, "anthropic-version": API_VERSION}
    params: dict[str, Any] = {"limit": PAGE_SIZE}
    seen_cursors: set[str] = set()
    with ProviderHTTP(source_name=source_name, base_url=base_url, headers=headers) as http:
        for _ in range(MAX_PAGES):
            page = http.get_json("/v1/models", params=params)
            entries = expect_mapping(page, "data", source_name=source_name, what="GET /v1/models")
            listing.add_entries(
                entries,
                lambda entry: map_model(base_url=base_url, entry=entry),
                source_name=source_name,
                what="/v1/models",
            )
            last_id = page.get("last_id")
            if not page.get("has_more"):
                return listing
            if not isinstance(last_id, str) or last_id in seen_cursors:
                raise ProviderError(f"source {source_name}: GET /v1/models says has_more but gives no new last_id")
            seen_cursors.add(last_id)
            params = {"limit": PAGE_SIZE, "after_id": last_id}
    raise ProviderError(f"source {source_name}: GET /v1/models returned more than {MAX_PAGES} pages")
