"""The platform router's shapes: its model and capability mapping built from the registry's models, and their schema.

``platform_model`` and ``platform_capabilities`` write the bodies ``registry.api.platform.views`` serves
under ``/api/v1/`` with ``PLATFORM_API_COMPAT=alfred`` (docs/platform.md); the serializers below only
describe them for the OpenAPI schema, and ``never_null`` makes the schema say what
``without_unknowns`` does: a key whose value is unknown is left out, never null. Imports the
registry's models and serializers only, never the views.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from registry.api.catalog.serializers import RegisteredModelSerializer
from registry.api.fields import CapabilityMapField
from registry.catalog.capabilities import AUDIO, CODE, EMBEDDING, IMAGE, REASONING, TEXT, TOOLS, VOCABULARY
from registry.catalog.credentials import redact_url
from registry.models import PLATFORM_DETAILS_KEY, AuthType, ModelEndpoint, ModelStatus, ModelType, RegisteredModel

# What each capability held at the threshold lets a model do, in the router's task words.
TASK_TYPES_BY_CAPABILITY: dict[str, tuple[str, ...]] = {
    TEXT: ("text_generation",),
    CODE: ("code_generation",),
    REASONING: ("reasoning",),
    TOOLS: ("function_calling",),
    IMAGE: ("image_analysis",),
    EMBEDDING: ("embedding",),
    AUDIO: ("audio_processing",),
}
TASK_TYPES_BY_MODEL_TYPE: dict[str, tuple[str, ...]] = {
    ModelType.CHAT: ("chat", "text_generation"),
    ModelType.COMPLETION: ("text_generation",),
    ModelType.EMBEDDING: ("embedding",),
    ModelType.VISION: ("image_analysis",),
}
# The kinds of content a model takes in, from its capabilities; every model but a pure embedding
# or vision model reads text, and those read text too (a prompt, a caption).
CONTENT_TYPES_BY_CAPABILITY: dict[str, str] = {TEXT: "text", CODE: "code", IMAGE: "image", AUDIO: "audio"}
# Keys of the capability mapping that are not capability flags; a capability of one of these names is shadowed.
RESERVED_CAPABILITY_KEYS = frozenset({"task_types", "content_types", "pricing"})
OVERRIDE_KEYS = ("task_types", "content_types")
# Whether calling a model's primary endpoint needs a credential, by the endpoint's auth type (unknown: left out).
AUTH_REQUIRED_BY_AUTH_TYPE: dict[str, bool] = {AuthType.API_KEY: True, AuthType.OAUTH: True, AuthType.NONE: False}
# Keys whose value is JSON as a provider or an operator wrote it: sent as stored, nulls inside included.
STORED_JSON_KEYS = frozenset({"details", "default_value", "min_value", "max_value"})


def without_unknowns(value: Any) -> Any:
    """``value`` with every key whose value is null left out, at any depth (stored JSON values aside).

    The router's client applies its defaults to missing keys only: a ``null`` is read as the value.
    """
    if isinstance(value, dict):
        return {
            key: item if key in STORED_JSON_KEYS else without_unknowns(item)
            for key, item in value.items()
            if item is not None
        }
    if isinstance(value, list):
        return [without_unknowns(item) for item in value]
    return value


def _per_thousand(per_million: Decimal | None) -> float | None:
    return float(per_million / 1000) if per_million is not None else None


def _overrides(model: RegisteredModel) -> dict[str, list[str]]:
    """The operator's task and content types of ``model`` (validated when written; skipped here if not a list)."""
    stored = (model.details or {}).get(PLATFORM_DETAILS_KEY) if isinstance(model.details, dict) else None
    if not isinstance(stored, dict):
        return {}
    return {
        key: [str(item) for item in stored[key]]
        for key in OVERRIDE_KEYS
        if isinstance(stored.get(key), list) and all(isinstance(item, str) for item in stored[key])
    }


def platform_capabilities(model: RegisteredModel, scores: dict[str, float]) -> dict[str, Any]:
    """A model's capabilities as the router reads them: a flag per capability, task and content types, prices."""
    threshold = float(settings.PLATFORM_CAPABILITY_THRESHOLD)
    flags = {name: False for name in sorted(VOCABULARY)}
    flags.update({name: score >= threshold for name, score in sorted(scores.items())})
    held = [name for name, present in flags.items() if present]
    task_types = set(TASK_TYPES_BY_MODEL_TYPE.get(model.model_type, ()))
    for name in held:
        task_types.update(TASK_TYPES_BY_CAPABILITY.get(name, ()))
    content_types = {"text"} | {
        CONTENT_TYPES_BY_CAPABILITY[name] for name in held if name in CONTENT_TYPES_BY_CAPABILITY
    }
    if model.model_type == ModelType.VISION:
        content_types.add("image")
    overrides = _overrides(model)
    return {
        **{name: present for name, present in flags.items() if name not in RESERVED_CAPABILITY_KEYS},
        "task_types": overrides.get("task_types", sorted(task_types)),
        "content_types": overrides.get("content_types", sorted(content_types)),
        # An unknown price is left out: the router estimates cost with its own default then.
        "pricing": without_unknowns(
            {
                "input": _per_thousand(model.input_cost_per_mtok),
                "output": _per_thousand(model.output_cost_per_mtok),
                "per_tokens": 1000,
                "currency": "USD",
            }
        ),
    }


def primary_endpoint(model: RegisteredModel) -> ModelEndpoint | None:
    """The model's first endpoint that has a URL (endpoints are ordered by id), or None."""
    return next((endpoint for endpoint in model.endpoints.all() if endpoint.endpoint_url), None)


def platform_model(model: RegisteredModel) -> dict[str, Any]:
    """The registry's representation of a model, plus what the router reads at the top level, unknowns left out.

    ``capabilities`` becomes the router's mapping; the scores stay readable as ``capability_scores``.
    """
    body = dict(RegisteredModelSerializer(model).data)
    scores: dict[str, float] = dict(body["capabilities"])
    body["capability_scores"] = scores
    body["capabilities"] = platform_capabilities(model, scores)
    body["active"] = model.status == ModelStatus.AVAILABLE
    primary = primary_endpoint(model)
    # Redacted as the endpoints' own URLs are (RedactedURLField): a credential in it is never shown.
    body["endpoint_url"] = redact_url(primary.endpoint_url) if primary is not None else None
    body["auth_required"] = AUTH_REQUIRED_BY_AUTH_TYPE.get(primary.auth_type or "") if primary is not None else None
    return dict(without_unknowns(body))


# --- What the schema says of the shapes -----------------------------------------------------------
# These serializers only describe the shapes for the OpenAPI schema: ``platform_model`` and
# ``platform_capabilities`` write them. ``never_null`` (run by platform.schema_without_nulls) then
# leaves every nullable key of the profile's answers optional and never null, as ``without_unknowns``
# leaves them out.


class PlatformPricingSerializer(serializers.Serializer):
    """A model's prices as the router reads them; an unknown price is left out (the router's default applies)."""

    input = serializers.FloatField(required=False, help_text="USD per 1,000 input tokens; left out when unknown.")
    output = serializers.FloatField(required=False, help_text="USD per 1,000 output tokens; left out when unknown.")
    per_tokens = serializers.IntegerField(help_text="Always 1000.")
    currency = serializers.CharField(help_text="Always USD.")


# One mapping, though it answers the capabilities' "list" action.
@extend_schema_serializer(many=False)
class PlatformCapabilitiesSerializer(serializers.Serializer):
    """The router's capability mapping: a flag per capability (and any other the model has), task and content types."""

    task_types = serializers.ListField(
        child=serializers.CharField(), help_text="Sorted; an operator's list replaces it."
    )
    content_types = serializers.ListField(
        child=serializers.CharField(), help_text="Sorted; an operator's list replaces it."
    )
    pricing = PlatformPricingSerializer()

    def get_fields(self) -> dict[str, serializers.Field]:
        flags: dict[str, serializers.Field] = {
            name: serializers.BooleanField(help_text="The model's score is at or above the threshold.")
            for name in sorted(VOCABULARY)
            if name not in RESERVED_CAPABILITY_KEYS
        }
        return {**flags, **super().get_fields()}


class PlatformCapabilitiesSchema(OpenApiSerializerExtension):
    """A flag for each capability beyond the vocabulary that the model has, besides the declared keys."""

    target_class = PlatformCapabilitiesSerializer

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": {"type": "boolean"}}


class PlatformModelSerializer(RegisteredModelSerializer):
    """A model as the router reads it: the registry's model, its capabilities as the router's mapping (the scores in
    ``capability_scores``), ``active``, the primary endpoint's URL and whether it needs a credential."""

    capabilities = PlatformCapabilitiesSerializer(read_only=True)  # type: ignore[assignment]
    capability_scores = CapabilityMapField(read_only=True)
    active = serializers.BooleanField(read_only=True, help_text="The model's status is available.")
    endpoint_url = serializers.CharField(
        required=False, help_text="The primary endpoint's URL (the first with one); left out when none has one."
    )
    auth_required = serializers.BooleanField(
        required=False,
        help_text="The primary endpoint's auth_type is api_key or oauth (true) or none (false); left out when unknown.",
    )
    runtime = serializers.SerializerMethodField(
        help_text="What Ollama has loaded now; left out when no host of the model was ever asked."
    )

    class Meta(RegisteredModelSerializer.Meta):
        fields = [
            *RegisteredModelSerializer.Meta.fields,
            "capability_scores",
            "active",
            "endpoint_url",
            "auth_required",
        ]


def _without_null_alternative(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``schema`` without what admits null (a "null" type, a null branch, a null enum value), and whether it had any."""
    stripped = dict(schema)
    types = stripped.get("type")
    nullable = False
    if isinstance(types, list) and "null" in types:
        nullable = True
        kept = [kind for kind in types if kind != "null"]
        stripped["type"] = kept[0] if len(kept) == 1 else kept
    if None in stripped.get("enum", ()):
        nullable = True
        stripped["enum"] = [value for value in stripped["enum"] if value is not None]
    for combinator in ("oneOf", "anyOf"):
        branches = stripped.get(combinator)
        if not isinstance(branches, list):
            continue
        kept_branches = [
            branch
            for branch in branches
            if branch != {"type": "null"} and branch.get("$ref") != "#/components/schemas/NullEnum"
        ]
        if len(kept_branches) < len(branches):
            nullable = True
            del stripped[combinator]
            if len(kept_branches) == 1:
                stripped.update(kept_branches[0])
            else:
                stripped[combinator] = kept_branches
    return stripped, nullable


def never_null(node: Any, components: dict[str, Any], variants: dict[str, str]) -> Any:
    """``node`` as ``without_unknowns`` answers it: every nullable property optional and never null, at any depth.

    A component this changes is copied as ``Platform<name>`` (the registry's own answers keep theirs);
    properties holding stored JSON (``STORED_JSON_KEYS``) are left as they are.
    """
    if isinstance(node, list):
        return [never_null(item, components, variants) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[-1]
        if name not in variants:
            variant = name if name.startswith("Platform") else f"Platform{name}"
            variants[name] = variant  # before the recursion: a component may refer to itself
            changed = never_null(components[name], components, variants)
            if changed == components[name] and variant != name:
                variants[name] = name
            else:
                components[variant] = changed
        return {**node, "$ref": f"#/components/schemas/{variants[name]}"}
    converted = {key: never_null(value, components, variants) for key, value in node.items() if key != "properties"}
    properties = node.get("properties")
    if isinstance(properties, dict):
        required = list(node.get("required", []))
        converted_properties: dict[str, Any] = {}
        for name, schema in properties.items():
            if name in STORED_JSON_KEYS:
                converted_properties[name] = schema
                continue
            schema, nullable = _without_null_alternative(schema)
            if nullable and name in required:
                required.remove(name)
            converted_properties[name] = never_null(schema, components, variants)
        converted["properties"] = converted_properties
        if required:
            converted["required"] = required
        else:
            converted.pop("required", None)
    return converted
