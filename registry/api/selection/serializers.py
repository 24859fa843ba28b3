"""The selection's questions and answers: ``GET /models/select`` and the explained ``POST /models/select``."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry.api.catalog.serializers import EndpointSerializer, RegisteredModelSerializer, RuntimeSerializer
from registry.api.evidence import EvidenceSerializer
from registry.api.fields import (
    CapabilityMapField,
    QuerySerializer,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializerMixin,
    price_per_mtok_field,
)
from registry.api.validators import CAPABILITY_NAME, NONBLANK_TEXT_PATTERN
from registry.models import (
    AlertKind,
    ModelType,
    Provider,
)
from registry.selection.explain import CHECKS as SELECTION_CHECKS


class ModelSelectQuerySerializer(QuerySerializer):
    capability = serializers.ListField(
        child=serializers.CharField(max_length=50, validators=[RegexValidator(CAPABILITY_NAME.pattern)]),
        required=False,
        default=list,
        help_text="Repeat for several.",
    )
    min_score = serializers.FloatField(required=False, min_value=0.0, max_value=1.0, default=0.0)
    model_type = serializers.ChoiceField(choices=ModelType.choices, required=False)
    provider = serializers.ChoiceField(choices=Provider.choices, required=False)
    local_only = serializers.BooleanField(required=False, default=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=10)

    def validate_capability(self, value: list[str]) -> list[str]:
        bad = [name for name in value if not CAPABILITY_NAME.fullmatch(name)]
        if bad:
            raise serializers.ValidationError(f"Not capability names: {', '.join(bad)}.")
        return value


class RankingSerializer(serializers.Serializer):
    score = serializers.FloatField(allow_null=True, help_text="Mean score on the requested capabilities.")
    capabilities = serializers.DictField(child=serializers.FloatField())
    recent_latency = serializers.FloatField(allow_null=True, help_text="Request-weighted, last 24 h, seconds.")
    cost_per_mtok = serializers.FloatField(allow_null=True, help_text="Mean of input and output price, USD.")
    fallback_only = serializers.BooleanField(
        help_text="An open error-rate or unavailability alert: ranked after the models without one."
    )


class SelectionItemSerializer(serializers.Serializer):
    model = RegisteredModelSerializer()
    ranking = RankingSerializer()


class SelectionSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = SelectionItemSerializer(many=True)


MAX_SELECTION_CAPABILITIES = 20


MAX_SELECTION_EXCLUDES = 1000


@extend_schema_field(
    {
        "type": "object",
        "propertyNames": {"pattern": CAPABILITY_NAME.pattern, "maxLength": 50},
        "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
        "minProperties": 1,
        "maxProperties": MAX_SELECTION_CAPABILITIES,
    },
)
class CapabilityMinimumsField(CapabilityMapField):
    """The capabilities a selection requires, each with its minimum score: ``{"code": 0.7}``."""

    def to_internal_value(self, data: Any) -> dict[str, float]:
        minimums = super().to_internal_value(data)
        if not minimums:
            raise serializers.ValidationError("Name at least one capability, with its minimum score.")
        if len(minimums) > MAX_SELECTION_CAPABILITIES:
            raise serializers.ValidationError(f"At most {MAX_SELECTION_CAPABILITIES} capabilities.")
        return minimums


class CostCeilingSerializer(StrictSerializerMixin, serializers.Serializer):
    input = price_per_mtok_field(allow_null=False, help_text="Highest input price accepted, USD per million tokens.")
    output = price_per_mtok_field(allow_null=False, help_text="Highest output price accepted, USD per million tokens.")


class SelectionRequestSerializer(StrictSerializerMixin, serializers.Serializer):
    """What a router needs from a model; every field but ``capabilities`` is optional."""

    capabilities = CapabilityMinimumsField(help_text="Required capabilities, each with its minimum score (0-1).")
    min_context = StrictIntegerField(
        required=False, min_value=1, help_text="Smallest context window accepted, in tokens (unknown windows fail)."
    )
    max_cost_per_mtok = CostCeilingSerializer(
        required=False,
        help_text="Price ceilings. A cloud model without a known price fails them; a local one without one is free.",
    )
    max_latency_p95 = StrictFloatField(
        required=False,
        min_value=0.0,
        help_text="Highest p95 of recent usage's latency, seconds (models without recent usage pass).",
    )
    max_error_rate = StrictFloatField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        help_text="Highest error rate of recent usage, errors / requests (models without recent usage pass).",
    )
    local_only = StrictBooleanField(required=False, default=False, help_text="Only models the platform serves.")
    prefer_loaded = StrictBooleanField(
        required=False, default=False, help_text="Rank models Ollama has loaded now before the others."
    )
    exclude = serializers.ListField(
        child=StrictCharField(
            max_length=100, validators=[RegexValidator(NONBLANK_TEXT_PATTERN, "Not a model name or id.")]
        ),
        required=False,
        default=list,
        max_length=MAX_SELECTION_EXCLUDES,
        help_text="Models (names or ids) to leave out.",
    )
    limit = StrictIntegerField(
        required=False, min_value=1, max_value=50, default=5, help_text="Length of the chain (primary + fallbacks)."
    )


class SelectedCapabilitySerializer(serializers.Serializer):
    score = serializers.FloatField()
    minimum = serializers.FloatField(help_text="The minimum the request asked for.")
    evidence = EvidenceSerializer(help_text="Where the score comes from (as in the model's capability_evidence).")


class SelectedPriceSerializer(serializers.Serializer):
    input_per_mtok = serializers.FloatField(allow_null=True)
    output_per_mtok = serializers.FloatField(allow_null=True)


class RecentLatencySerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="p95 of the usage records' mean latency, seconds.")
    records = serializers.IntegerField(help_text="Usage records with a latency in the window.")
    window_hours = serializers.FloatField()


class RecentErrorRateSerializer(serializers.Serializer):
    value = serializers.FloatField(
        allow_null=True,
        help_text="errors / requests over the error-rate alert's window (ALERT_WINDOW_MINUTES); null without usage.",
    )
    requests = serializers.IntegerField()
    # Shadows Serializer.errors only in the class body: DRF's metaclass moves declared fields out of it.
    errors = serializers.IntegerField()  # type: ignore[assignment]
    window_hours = serializers.FloatField()


class OpenAlertSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AlertKind.choices)
    message = serializers.CharField()
    opened_at = serializers.DateTimeField()


class ChainEntrySerializer(serializers.Serializer):
    rank = serializers.IntegerField(help_text="1 for the primary, then the fallbacks in order.")
    id = serializers.IntegerField()
    name = serializers.CharField()
    provider = serializers.ChoiceField(choices=Provider.choices)
    model_type = serializers.ChoiceField(choices=ModelType.choices)
    score = serializers.FloatField(help_text="Mean score on the requested capabilities.")
    capabilities = serializers.DictField(child=SelectedCapabilitySerializer())
    context_window = serializers.IntegerField(allow_null=True)
    price = SelectedPriceSerializer()
    latency_p95 = RecentLatencySerializer()
    error_rate = RecentErrorRateSerializer()
    local = serializers.BooleanField(help_text="Served by the platform (not a provider's cloud).")
    loaded = serializers.BooleanField(help_text="Loaded by Ollama now, on some host.")
    runtime = RuntimeSerializer(allow_null=True, help_text="What Ollama has loaded now, as on the model.")
    endpoints = EndpointSerializer(many=True)
    open_alerts = OpenAlertSerializer(
        many=True, help_text="The model's open error-rate and unavailability alerts (it fails now)."
    )
    fallback_only = serializers.CharField(
        allow_null=True,
        help_text="Why the model is ranked after the models without an open alert (null when it has none).",
    )


class ExcludedModelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    check = serializers.ChoiceField(
        choices=list(SELECTION_CHECKS),
        help_text="The first check the model failed, in the order the checks run.",
    )
    reason = serializers.CharField(help_text="That check's failure, in a sentence with the figures.")


class ExplainedSelectionSerializer(serializers.Serializer):
    chain = ChainEntrySerializer(many=True, help_text="Ranked: the primary first, then the fallbacks in order.")
    excluded = ExcludedModelSerializer(
        many=True, help_text="Every other model, with the one reason it is not in the chain."
    )
