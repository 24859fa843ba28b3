"""OpenAI: ``GET {OPENAI_BASE_URL}/models`` with ``Authorization: Bearer``.

Wire format: https://platform.openai.com/docs/api-reference/models/list. Each entry carries only
``id``, ``object``, ``created`` and ``owned_by``: the model type comes from the id's family;
prices, limits and what else the family does not imply come from the catalogs (discovery.catalogs).
Audio, image-generation, moderation and realtime models are not selectable chat/embedding models
for a router: they are skipped and counted.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
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

# Deliberately not registered (counted as skipped): they are not called through chat or embeddings.
SKIPPED_ID = re.compile(
    r"(^whisper|^tts|-tts|^dall-e|^gpt-image|moderation|realtime|audio|transcribe|^sora|^computer-use|^codex-mini)"
)
REASONING_ID = re.compile(r"^(o1|o3|o4|gpt-5)(\b|-|$)")
# Families that accept images (https://platform.openai.com/docs/guides/images-vision).
VISION_ID = re.compile(r"^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4-turbo|gpt-4\.5|gpt-5|o1(?!-mini)|o3(?!-mini)|o4)")
TOOLS_ID = re.compile(r"^(gpt-4|gpt-3\.5-turbo(?!-instruct)|gpt-5|o1(?!-mini)|o3|o4)")
COMPLETION_ID = re.compile(r"^(davinci-002|babbage-002|gpt-3\.5-turbo-instruct)")
SNAPSHOT_DATE = re.compile(r"-(\d{4}-\d{2}-\d{2})$")

FAMILY_EVIDENCE = "implied by the OpenAI model family of the id; default score for a declared capability"


def classify(model_id: str) -> tuple[str, dict[str, CapabilityClaim]] | None:
    """Model type and capability claims for an OpenAI id, or None when the id is deliberately skipped."""
    lowered = model_id.lower()
    if SKIPPED_ID.search(lowered):
        return None
    # A fine-tuned model, "ft:<base>:<org>::<id>", belongs to its base model's family.
    base = lowered.split(":")[1] if lowered.startswith("ft:") else lowered
    if "embedding" in base:
        return ModelType.EMBEDDING, {caps.EMBEDDING: CapabilityClaim(caps.DECLARED_DEFAULT_SCORE, FAMILY_EVIDENCE)}
    if COMPLETION_ID.match(base):
        return ModelType.COMPLETION, {caps.TEXT: CapabilityClaim(caps.DECLARED_DEFAULT_SCORE, FAMILY_EVIDENCE)}
    known_chat = base.startswith(("gpt-", "chatgpt-")) or REASONING_ID.match(base) is not None
    if not known_chat:
        # An id we cannot place (a new family): register it as chat, with no capability claimed.
        return ModelType.CHAT, {}
    claims = {caps.TEXT: CapabilityClaim(caps.DECLARED_DEFAULT_SCORE, FAMILY_EVIDENCE)}
    if REASONING_ID.match(base):
        claims[caps.REASONING] = CapabilityClaim(caps.DECLARED_DEFAULT_SCORE, FAMILY_EVIDENCE)
    if VISION_ID.match(base):
        claims[caps.IMAGE] = CapabilityClaim(caps.DECLARED_DEFAULT_SCORE, FAMILY_EVIDENCE)
    if TOOLS_ID.match(base):
        claims[caps.TOOLS] = CapabilityClaim(caps.DECLARED_DEFAULT_SCORE, FAMILY_EVIDENCE)
    # Image input is a capability of these chat models, not their type: routers ask for type "chat".
    return ModelType.CHAT, claims


def map_model(*, base_url: str, entry: dict[str, Any]) -> DiscoveredModel | None:
    """One /v1/models entry in the registry's terms, or None when skipped."""
    model_id = str(entry["id"])
    classified = classify(model_id)
    if classified is None:
        return None
    model_type, claims = classified
    details: dict[str, Any] = {"owned_by": entry.get("owned_by")}
    if isinstance(entry.get("created"), int):
        details["created"] = datetime.fromtimestamp(entry["created"], tz=UTC).date().isoformat()
    model = DiscoveredModel(
        name=model_id,
        display_name=model_id,
        provider=Provider.OPENAI,
        model_type=model_type,
        version=(match.group(1) if (match := SNAPSHOT_DATE.search(model_id)) else None),
        details=details,
        capabilities=claims,
        endpoint=EndpointClaim(
            endpoint_type=EndpointType.REST,
            endpoint_url=f"{base_url.rstrip('/')}{_path(model_type)}",
            auth_type=AuthType.API_KEY,
        ),
    )
    return model


def _path(model_type: str) -> str:
    if model_type == ModelType.EMBEDDING:
        return "/embeddings"
    if model_type == ModelType.COMPLETION:
        return "/completions"
    return "/chat/completions"


def fetch(*, source_name: str, base_url: str, api_key: str | None, progress: Progress | None = None) -> Listing:
    """List the models an OpenAI key can use. ``base_url`` includes ``/v1``, as the SDK's does."""
    if not api_key:
        raise ProviderError(f"source {source_name} has no API key")
    listing = Listing()
    headers = {"Authorization": f"Bearer {api_key}"}
    with ProviderHTTP(source_name=source_name, base_url=base_url, headers=headers) as http:
        entries = expect_mapping(http.get_json("/models"), "data", source_name=source_name, what="GET /models")
    listing.add_entries(
        entries, lambda entry: map_model(base_url=base_url, entry=entry), source_name=source_name, what="/models"
    )
    return listing
