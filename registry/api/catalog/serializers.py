"""Representations and input validation of the catalog's resources: models, endpoints, capabilities,
parameters and prices.

Writes are strict: a field the serializer does not know is an error (a typo is not silently
lost), values are checked against the rules of the issue, and nothing reaches the database until
the whole body is valid. Fields that only appear in representations (``id``, ``available``, ...)
are accepted and ignored on input, so that a client can send back what it read. The rules and
fields every resource shares are in ``registry.api.validators`` and ``registry.api.fields``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry.api.evidence import CapabilityEvidenceField, CapabilityEvidenceMapField
from registry.api.fields import (
    ROUNDED,
    CapabilityMapField,
    HeaderMapField,
    JSONObjectField,
    NonNullJSONField,
    QuerySerializer,
    QueryTextField,
    RedactedURLField,
    RoundedDecimalField,
    SecretHeaderMapField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializerMixin,
    price_per_mtok_field,
)
from registry.api.validators import (
    CAPABILITY_NAME,
    INT32_MAX,
    MAX_HEADERS,
    PARAMETER_NAME,
    VISIBLE_TEXT_PATTERN,
    ModelNameValidator,
    URLValidator,
    has_control_or_space,
    json_size_check,
    json_type,
    refuse_url_credentials,
    validate_platform_overrides,
    validate_printable,
)
from registry.catalog.selectors import model_fact_sources, runtime_rows_of, runtime_summary
from registry.models import (
    PLATFORM_DETAILS_KEY,
    AuthType,
    ModelCapability,
    ModelEndpoint,
    ModelParameter,
    ModelPrice,
    ModelStatus,
    ModelType,
    Provider,
    RegisteredModel,
)


class EndpointSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """Where a model is called. Credentials are write-only: the response says what is set, never the value."""

    id = serializers.IntegerField(
        required=False, allow_null=True, help_text="Ignored on create; in a model's endpoints, which one to update."
    )
    endpoint_url = RedactedURLField(
        max_length=255,
        required=False,
        allow_null=True,
        validators=[URLValidator(instead="api_key or secret_headers")],
        help_text="http(s) only; no credentials in it (user info, ?api_key=..., #token=...): "
        "use api_key or secret_headers.",
    )
    auth_type = serializers.ChoiceField(choices=AuthType.choices, required=False, allow_null=True)
    headers = HeaderMapField(
        required=False,
        allow_null=True,
        help_text="Headers sent with each call. Credential-like ones (Authorization, *key*, *token*, *session*, "
        "...) are moved to the encrypted secret headers and only their names are shown.",
    )
    secret_headers = SecretHeaderMapField(
        required=False,
        allow_null=True,
        write_only=True,
        help_text="Write-only, encrypted: each name set to a value is stored, set to null is removed; "
        "null clears them all. Headers not named keep their stored values.",
    )
    api_key = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=4096,
        write_only=True,
        trim_whitespace=False,
        help_text="Write-only, encrypted. Omit to keep the stored key; null or empty clears it.",
    )
    has_api_key = serializers.SerializerMethodField()
    secret_header_names = serializers.SerializerMethodField()
    source = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)  # type: ignore[assignment,var-annotated]

    class Meta:
        model = ModelEndpoint
        fields = [
            "id",
            "endpoint_type",
            "endpoint_url",
            "auth_type",
            "headers",
            "secret_headers",
            "api_key",
            "has_api_key",
            "secret_header_names",
            "source",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_has_api_key(self, endpoint: ModelEndpoint) -> bool:
        return bool(endpoint.api_key)

    def get_secret_header_names(self, endpoint: ModelEndpoint) -> list[str]:
        return sorted(endpoint.secret_headers or {})

    def validate_endpoint_url(self, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            parts = urlsplit(value)
            host = parts.hostname
            parts.port  # noqa: B018 (raises ValueError on a malformed port)
        except ValueError as exc:  # "http://[::1/", "http://h:99999/"
            raise serializers.ValidationError("Not a valid URL.") from exc
        if parts.scheme not in {"http", "https"}:
            raise serializers.ValidationError("Only http and https URLs are allowed.")
        if not host:
            raise serializers.ValidationError("The URL needs a host.")
        if has_control_or_space(value):
            raise serializers.ValidationError("URLs may not contain whitespace or control characters.")
        refuse_url_credentials(value, instead="api_key or secret_headers")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if len(set(attrs.get("headers") or {}) | set(attrs.get("secret_headers") or {})) > MAX_HEADERS:
            raise serializers.ValidationError({"headers": [f"At most {MAX_HEADERS} headers in all."]})
        return attrs


class ParameterSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """A tunable parameter; added or updated by ``parameter_name``."""

    parameter_name = StrictCharField(max_length=100, validators=[RegexValidator(PARAMETER_NAME.pattern)])
    default_value = NonNullJSONField(
        help_text="Any JSON value but null. Text in it, and in the bounds, may not contain NUL characters or "
        "unpaired surrogates (the database stores neither): a 400 naming the field."
    )
    min_value = serializers.JSONField(required=False, allow_null=True)
    max_value = serializers.JSONField(required=False, allow_null=True)
    description = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=10_000)

    class Meta:
        model = ModelParameter
        fields = ["parameter_name", "default_value", "min_value", "max_value", "description", "set_by"]
        read_only_fields = ["set_by"]

    def validate_parameter_name(self, value: str) -> str:
        if not PARAMETER_NAME.fullmatch(value):
            raise serializers.ValidationError("Letters, digits and '_', '.', ':', '-' only, starting with a letter.")
        return value

    def validate_default_value(self, value: Any) -> Any:
        if value is None:
            raise serializers.ValidationError("A default value is required (null is not one).")
        json_size_check(value)
        return value

    def validate_min_value(self, value: Any) -> Any:
        json_size_check(value)
        return value

    def validate_max_value(self, value: Any) -> Any:
        json_size_check(value)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        default = attrs.get("default_value")
        errors: dict[str, list[str]] = {}
        for bound in ("min_value", "max_value"):
            value = attrs.get(bound)
            if value is not None and json_type(value) != json_type(default):
                kind = json_type(default)
                errors[bound] = [f"Must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}, like default_value."]
        if errors:
            raise serializers.ValidationError(errors)
        if json_type(default) == "number":
            low, high = attrs.get("min_value"), attrs.get("max_value")
            if low is not None and high is not None and low > high:
                raise serializers.ValidationError({"min_value": ["Must not be greater than max_value."]})
            if low is not None and default < low:
                raise serializers.ValidationError({"default_value": ["Must not be less than min_value."]})
            if high is not None and default > high:
                raise serializers.ValidationError({"default_value": ["Must not be greater than max_value."]})
        return attrs


class CapabilitySerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """One capability of a model and its 0-1 score; added or updated by name."""

    capability = StrictCharField(
        max_length=50,
        validators=[
            RegexValidator(CAPABILITY_NAME.pattern, "Capability names are lower-case slugs starting with a letter.")
        ],
    )
    capability_score = StrictFloatField(min_value=0.0, max_value=1.0)
    evidence = CapabilityEvidenceField(
        required=False,
        help_text="What the score rests on. On input, optional: the operator's note, as a string or as "
        '{"note": ...}; the source of a score set here is always "operator".',
    )

    class Meta:
        model = ModelCapability
        fields = ["capability", "capability_score", "set_by", "evidence"]
        read_only_fields = ["set_by"]

    def validate_capability(self, value: str) -> str:
        if not CAPABILITY_NAME.fullmatch(value):
            raise serializers.ValidationError("Capability names are lower-case slugs (a-z, 0-9, '-', '_').")
        return value


class RuntimeSerializer(serializers.Serializer):
    """What the model's Ollama hosts last said about it in memory (``GET /api/ps``), over all its hosts."""

    loaded = serializers.BooleanField(help_text="Loaded on at least one host at the last check.")
    size_vram = serializers.IntegerField(
        allow_null=True,
        help_text="Bytes in GPU memory, on the loaded host that keeps it longest; null when not loaded.",
    )
    context_length = serializers.IntegerField(
        allow_null=True,
        help_text="Context the host allocated, in tokens (not the model's maximum); "
        "null when not loaded or not reported.",
    )
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text="When that host unloads it if unused; null when not loaded or not reported."
    )
    checked_at = serializers.DateTimeField(help_text="When a host of the model was last asked.")


class RegisteredModelSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """A model as routers read it: capabilities as a mapping, parameters, endpoints, status and availability."""

    # Not trimmed: a name with a leading or trailing space is refused rather than silently changed.
    name = StrictCharField(min_length=1, max_length=100, trim_whitespace=False, validators=[ModelNameValidator()])
    display_name = StrictCharField(
        min_length=1,
        max_length=200,
        validators=[validate_printable, RegexValidator(VISIBLE_TEXT_PATTERN, "Must hold a visible character.")],
        help_text="Leading and trailing whitespace is removed.",
    )
    provider = serializers.ChoiceField(choices=Provider.choices)
    model_type = serializers.ChoiceField(choices=ModelType.choices)
    version = StrictCharField(max_length=50, required=False, allow_null=True, allow_blank=True)
    description = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=10_000)
    status = serializers.ChoiceField(choices=ModelStatus.choices, required=False)
    available = serializers.BooleanField(read_only=True)
    context_window = StrictIntegerField(min_value=1, required=False, allow_null=True)
    input_cost_per_mtok = price_per_mtok_field()
    output_cost_per_mtok = price_per_mtok_field()
    cache_read_cost_per_mtok = price_per_mtok_field()
    cache_write_cost_per_mtok = price_per_mtok_field()
    details = JSONObjectField(required=False, help_text="Facts the provider reported; a JSON object.")
    fact_sources = serializers.SerializerMethodField(
        help_text='Where each fact came from: "provider", "operator", "catalog: <name> <version>" '
        "(genai-prices, models.dev), or null when the fact is unknown. Read-only."
    )
    source = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)  # type: ignore[assignment,var-annotated]
    capabilities = CapabilityMapField(required=False)
    capability_evidence = CapabilityEvidenceMapField()
    parameters = ParameterSerializer(many=True, read_only=True)
    endpoints = EndpointSerializer(many=True, required=False)
    runtime = serializers.SerializerMethodField(
        help_text="What Ollama has loaded now; null when no host of the model was ever asked. Read-only."
    )

    class Meta:
        model = RegisteredModel
        fields = [
            "id",
            "name",
            "display_name",
            "provider",
            "model_type",
            "version",
            "description",
            "status",
            "available",
            "context_window",
            "input_cost_per_mtok",
            "output_cost_per_mtok",
            "cache_read_cost_per_mtok",
            "cache_write_cost_per_mtok",
            "details",
            "fact_sources",
            "source",
            "first_seen_at",
            "last_seen_at",
            "created_at",
            "updated_at",
            "capabilities",
            "capability_evidence",
            "parameters",
            "endpoints",
            "runtime",
        ]
        read_only_fields = ["id", "first_seen_at", "last_seen_at", "created_at", "updated_at"]

    @extend_schema_field(
        serializers.DictField(child=serializers.CharField(allow_null=True), help_text="fact -> where it came from")
    )
    def get_fact_sources(self, model: RegisteredModel) -> dict[str, str | None]:
        return model_fact_sources(model)

    @extend_schema_field(RuntimeSerializer(allow_null=True))
    def get_runtime(self, model: RegisteredModel) -> dict[str, Any] | None:
        summary = runtime_summary(runtime_rows_of(model))
        return None if summary is None else dict(RuntimeSerializer(summary).data)

    def validate_details(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        json_size_check(value)
        validate_platform_overrides(value.get(PLATFORM_DETAILS_KEY))
        return value

    def validate_endpoints(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(value) > 100:
            raise serializers.ValidationError("At most 100 endpoints.")
        instance = self.instance if isinstance(self.instance, RegisteredModel) else None
        if instance is None:
            # A new model has no endpoints to update: each item creates one, and an id is ignored (as documented).
            return [{key: item_value for key, item_value in item.items() if key != "id"} for item in value]
        known = {endpoint.pk for endpoint in instance.endpoints.all()}
        for item in value:
            if item.get("id") is not None and item["id"] not in known:
                raise serializers.ValidationError(f"Endpoint {item['id']} is not an endpoint of this model.")
        return value


class PriceSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """A model's price per million tokens from ``effective_from`` on (USD)."""

    # Rounded to 6 decimals as a model's prices are (found by make fuzz: 0.23681619526312872 was refused).
    input_per_mtok = RoundedDecimalField(
        max_digits=12, decimal_places=6, min_value=0, max_value=999999, coerce_to_string=False, help_text=ROUNDED
    )
    output_per_mtok = RoundedDecimalField(
        max_digits=12, decimal_places=6, min_value=0, max_value=999999, coerce_to_string=False, help_text=ROUNDED
    )
    cache_read_per_mtok = RoundedDecimalField(
        max_digits=12,
        decimal_places=6,
        min_value=0,
        max_value=999999,
        coerce_to_string=False,
        required=False,
        allow_null=True,
        help_text=f"Cached input tokens read; null: costed at the input price. {ROUNDED}",
    )
    cache_write_per_mtok = RoundedDecimalField(
        max_digits=12,
        decimal_places=6,
        min_value=0,
        max_value=999999,
        coerce_to_string=False,
        required=False,
        allow_null=True,
        help_text=f"Input tokens written to the cache (informative: usage does not report them). {ROUNDED}",
    )
    effective_from = serializers.DateTimeField(
        required=False,
        help_text="When the price takes effect; defaults to now. May be in the past or the future: the usage "
        "of its period stored without a cost is costed at it (a reported cost never changes).",
    )
    in_force = serializers.SerializerMethodField(help_text="Whether this is the price in force now.")

    class Meta:
        model = ModelPrice
        fields = [
            "id",
            "input_per_mtok",
            "output_per_mtok",
            "cache_read_per_mtok",
            "cache_write_per_mtok",
            "effective_from",
            "start_known",
            "set_by",
            "created_at",
            "in_force",
        ]
        read_only_fields = ["id", "start_known", "set_by", "created_at", "in_force"]
        extra_kwargs = {
            "start_known": {
                "help_text": "False when effective_from is when the price was seen (no date given, or discovery's "
                "run): as the model's first price it also costs the usage before it."
            }
        }

    @extend_schema_field(serializers.BooleanField())
    def get_in_force(self, obj: ModelPrice) -> bool:
        return bool(self.context.get("in_force_id") == obj.pk)


class ModelListQuerySerializer(QuerySerializer):
    ORDERINGS = ["name", "-name", "created_at", "-created_at", "updated_at", "-updated_at", "provider", "-provider"]

    provider = serializers.ChoiceField(choices=Provider.choices, required=False)
    model_type = serializers.ChoiceField(choices=ModelType.choices, required=False)
    status = serializers.ChoiceField(choices=ModelStatus.choices, required=False)
    available = serializers.BooleanField(required=False, allow_null=True, default=None)
    capability = serializers.CharField(
        required=False, max_length=50, validators=[RegexValidator(CAPABILITY_NAME.pattern, "Not a capability name.")]
    )
    min_score = serializers.FloatField(required=False, min_value=0.0, max_value=1.0, default=0.0)
    search = QueryTextField(required=False, max_length=200)
    ordering = serializers.ChoiceField(choices=ORDERINGS, required=False, default="name")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, help_text="Page size (default 50).")
    offset = serializers.IntegerField(required=False, min_value=0, max_value=INT32_MAX)
