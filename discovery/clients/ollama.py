"""Ollama: ``GET /api/tags`` lists the models, ``POST /api/show`` describes each one, ``GET /api/ps``
says which are loaded now.

Wire format: https://github.com/ollama/ollama/blob/main/docs/api.md (list local models, show
model information, list running models). ``/api/show`` returns ``capabilities`` (``completion``,
``vision``, ``tools``, ``thinking``, ``embedding``, ``insert``) on servers since 0.6; older servers
omit it, and the model's families and architecture tell what it is instead. ``/api/ps`` entries
carry ``size_vram`` (bytes in GPU memory), ``expires_at`` (Go's RFC 3339 with nanoseconds and the
host's UTC offset, ``2025-10-17T16:47:07.93355-07:00``) and, on servers since about 0.6.6,
``context_length`` (the context allocated to the loaded model, not the model's maximum).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from discovery.clients.base import (
    CapabilityClaim,
    DiscoveredModel,
    EndpointClaim,
    Listing,
    LoadedModel,
    ParameterClaim,
    Progress,
    ProviderError,
)
from discovery.clients.http import ProviderHTTP, expect_mapping
from registry.catalog import capabilities as caps
from registry.models import AuthType, EndpointType, ModelType, Provider

logger = logging.getLogger(__name__)

# Families/architectures of embedding models, for servers whose /api/show has no capabilities.
EMBEDDING_ARCHITECTURES = frozenset({"bert", "nomic-bert", "nomic-bert-moe", "xlm-roberta", "jina-bert-v2", "new"})
# Vision adapters show up as an extra family (llava: ["llama", "clip"]; llama3.2-vision: "mllama").
VISION_FAMILIES = frozenset({"clip", "mllama"})

# Documented ranges of Ollama's runtime options (https://github.com/ollama/ollama/blob/main/docs/modelfile.md).
PARAMETER_RANGES: dict[str, tuple[float | None, float | None, str]] = {
    "temperature": (0.0, 2.0, "Sampling temperature; higher is more creative."),
    "top_p": (0.0, 1.0, "Nucleus sampling threshold."),
    "min_p": (0.0, 1.0, "Minimum probability relative to the most likely token."),
    "top_k": (1, None, "Sample from the k most likely tokens."),
    "num_ctx": (1, None, "Context window used at inference, in tokens."),
    "repeat_penalty": (0.0, None, "Penalty for repeated tokens."),
    "num_predict": (-2, None, "Maximum tokens to generate (-1: unlimited)."),
}


def parse_parameters(text: str | None) -> dict[str, Any]:
    """Ollama's ``parameters`` text block (``name value`` lines) as a mapping; repeated names become lists."""
    values: dict[str, Any] = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        name, _, raw = line.partition(" ")
        value = _parse_value(raw.strip())
        if name in values:
            existing = values[name]
            values[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        elif name == "stop":
            values[name] = [value]
        else:
            values[name] = value
    return values


def _parse_value(raw: str) -> Any:
    if raw.startswith('"'):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw.strip('"')
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    if raw in ("true", "false"):
        return raw == "true"
    return raw


def _capabilities(
    show: dict[str, Any], tag_details: dict[str, Any], name: str
) -> tuple[dict[str, CapabilityClaim], str]:
    """Capability claims and the model type, from /api/show (or, lacking it, families and architecture)."""
    declared = show.get("capabilities")
    claims: dict[str, CapabilityClaim] = {}
    if isinstance(declared, list):
        evidence = "declared by Ollama /api/show capabilities; default score for a declared capability"
        for word in declared:
            mapped = caps.normalize(str(word), caps.OLLAMA_WORDS)
            if mapped is not None:
                claims[mapped] = CapabilityClaim(caps.DECLARED_DEFAULT_SCORE, evidence)
    else:
        evidence = "inferred from Ollama families/architecture (server without capabilities); default score"
        details = show.get("details") or tag_details
        families = {
            str(f).lower() for f in (details.get("families") or [details.get("family")] if details else []) if f
        }
        architecture = str((show.get("model_info") or {}).get("general.architecture", "")).lower()
        if architecture in EMBEDDING_ARCHITECTURES or families & EMBEDDING_ARCHITECTURES or "embed" in name.lower():
            claims[caps.EMBEDDING] = CapabilityClaim(caps.DECLARED_DEFAULT_SCORE, evidence)
        else:
            claims[caps.TEXT] = CapabilityClaim(caps.DECLARED_DEFAULT_SCORE, evidence)
            if families & VISION_FAMILIES or show.get("projector_info"):
                claims[caps.IMAGE] = CapabilityClaim(caps.DECLARED_DEFAULT_SCORE, evidence)
    if caps.EMBEDDING in claims:
        model_type = ModelType.EMBEDDING
    elif caps.IMAGE in claims:
        model_type = ModelType.VISION
    else:
        model_type = ModelType.CHAT
    return claims, model_type


def _context_length(model_info: dict[str, Any]) -> int | None:
    architecture = model_info.get("general.architecture")
    value = model_info.get(f"{architecture}.context_length") if architecture else None
    if value is None:
        # Some conversions name the key differently; any "*.context_length" is the same fact.
        value = next((v for k, v in model_info.items() if k.endswith(".context_length")), None)
    return value if isinstance(value, int) and value > 0 else None


def map_model(*, base_url: str, tag: dict[str, Any], show: dict[str, Any]) -> DiscoveredModel:
    """One /api/tags entry and its /api/show answer, in the registry's terms."""
    name = str(tag.get("name") or tag.get("model"))
    tag_details = tag.get("details") or {}
    claims, model_type = _capabilities(show, tag_details, name)
    parameters = {
        key: ParameterClaim(
            default=value,
            min_value=PARAMETER_RANGES.get(key, (None, None, ""))[0],
            max_value=PARAMETER_RANGES.get(key, (None, None, ""))[1],
            description=PARAMETER_RANGES[key][2] if key in PARAMETER_RANGES else None,
        )
        for key, value in parse_parameters(show.get("parameters")).items()
    }
    details = {
        key: tag_details[key]
        for key in ("family", "families", "parameter_size", "quantization_level", "format")
        if tag_details.get(key) not in (None, "", [])
    }
    if tag.get("digest"):
        details["digest"] = str(tag["digest"])[:12]
    if isinstance(tag.get("size"), int):
        details["size_bytes"] = tag["size"]
    path = "/api/embed" if model_type == ModelType.EMBEDDING else "/api/chat"
    return DiscoveredModel(
        name=name,
        display_name=name,
        provider=Provider.OLLAMA,
        model_type=model_type,
        version=name.partition(":")[2] or None,
        context_window=_context_length(show.get("model_info") or {}),
        details=details,
        capabilities=claims,
        capabilities_declared=isinstance(show.get("capabilities"), list),
        parameters=parameters,
        endpoint=EndpointClaim(
            endpoint_type=EndpointType.LOCAL, endpoint_url=f"{base_url.rstrip('/')}{path}", auth_type=AuthType.NONE
        ),
    )


def fetch(*, source_name: str, base_url: str, api_key: str | None, progress: Progress | None = None) -> Listing:
    """List an Ollama host's models, one /api/show per model."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    listing = Listing()
    with ProviderHTTP(source_name=source_name, base_url=base_url, headers=headers) as http:
        tags = expect_mapping(http.get_json("/api/tags"), "models", source_name=source_name, what="GET /api/tags")
        for index, tag in enumerate(tags, start=1):
            name = tag.get("name") or tag.get("model") if isinstance(tag, dict) else None
            if not isinstance(name, str) or not name:
                raise ProviderError(f"source {source_name}: an /api/tags entry has no model name")
            show = http.post_json("/api/show", {"model": name})
            if not isinstance(show, dict):
                raise ProviderError(f"source {source_name}: unexpected answer from POST /api/show for {name}")
            listing.models.append(map_model(base_url=base_url, tag=tag, show=show))
            if progress is not None:
                progress(index, len(tags))
    return listing


# RFC 3339 as Go's time.RFC3339Nano writes it: up to nine fractional digits (trailing zeros dropped).
_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<fraction>\d+))?(?P<zone>[Zz]|[+-]\d{2}:\d{2})$"
)


def parse_moment(value: Any) -> datetime | None:
    """An RFC 3339 timestamp of Ollama's as an aware UTC datetime (nanoseconds cut to microseconds).

    None for anything else, and for Go's zero time (year 1), which a host reports for a model it
    has not finished loading.
    """
    if not isinstance(value, str):
        return None
    match = _RFC3339.match(value.strip())
    if match is None:
        return None
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    zone = "+00:00" if match["zone"] in ("Z", "z") else match["zone"]
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{zone}")
    except ValueError:
        return None
    if moment.year <= 1:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 at a positive offset: before datetime.min in UTC
        return None


def _count(value: Any, *, minimum: int) -> int | None:
    """A JSON integer of at least ``minimum``, or None (absent, a string, a boolean, a float)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        return None
    return value


def map_loaded(entry: dict[str, Any], *, source_name: str) -> LoadedModel:
    """One ``/api/ps`` entry; the name is required, every other fact may be missing (older servers)."""
    name = entry.get("name") or entry.get("model")
    if not isinstance(name, str) or not name:
        raise ProviderError(f"source {source_name}: an /api/ps entry has no model name")
    return LoadedModel(
        name=name,
        size_vram=_count(entry.get("size_vram"), minimum=0),
        context_length=_count(entry.get("context_length"), minimum=1),
        expires_at=parse_moment(entry.get("expires_at")),
        entry=entry,
    )


def fetch_loaded(
    *, source_name: str, base_url: str, api_key: str | None, max_retries: int | None = None
) -> list[LoadedModel]:
    """The models an Ollama host has loaded now (``GET /api/ps``), one per name."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with ProviderHTTP(source_name=source_name, base_url=base_url, headers=headers, max_retries=max_retries) as http:
        entries = expect_mapping(http.get_json("/api/ps"), "models", source_name=source_name, what="GET /api/ps")
    loaded: dict[str, LoadedModel] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ProviderError(f"source {source_name}: an /api/ps entry is not an object")
        model = map_loaded(entry, source_name=source_name)
        loaded.setdefault(model.name, model)
    return list(loaded.values())


def map_loaded_model(*, base_url: str, loaded: LoadedModel) -> DiscoveredModel:
    """A model the host has loaded but does not list in /api/tags, described from its /api/ps entry.

    The entry has the same name, digest, size and details as a tags entry; /api/show is not asked,
    so the capabilities come from the families (the next run that sees it in /api/tags corrects them).
    """
    return map_model(base_url=base_url, tag=loaded.entry or {"name": loaded.name}, show={})
