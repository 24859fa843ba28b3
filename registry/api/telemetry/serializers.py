"""Usage and performance records as posted, and their summaries as answered."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core.validators import RegexValidator
from django.utils import timezone
from rest_framework import serializers

from registry.api.fields import (
    QueryTextField,
    RoundedDecimalField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializerMixin,
    TimeRangeQuerySerializer,
)
from registry.api.validators import (
    INT32_MAX,
    MAX_LATENCY_SECONDS,
    MAX_METRIC_MAGNITUDE,
    VISIBLE_TEXT_PATTERN,
    not_in_future,
    validate_printable,
)
from registry.models import (
    ModelPerformance,
    ModelUsage,
    StatusEventKind,
    StatusEventOrigin,
)


class UsageRecordSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """Usage over a moment: requests, tokens, errors, mean latency (seconds) and cost (USD).

    Without a ``cost``, the registry computes one from the price in force at ``timestamp``.
    """

    timestamp = serializers.DateTimeField(required=False, validators=[not_in_future], help_text="Defaults to now.")
    token_count = StrictIntegerField(
        min_value=0,
        max_value=INT32_MAX,
        required=False,
        allow_null=True,
        help_text="Total tokens; when input_tokens or output_tokens are given it is their sum (and may be left out).",
    )
    input_tokens = StrictIntegerField(min_value=0, max_value=INT32_MAX, required=False, allow_null=True)
    output_tokens = StrictIntegerField(min_value=0, max_value=INT32_MAX, required=False, allow_null=True)
    cached_input_tokens = StrictIntegerField(
        min_value=0,
        max_value=INT32_MAX,
        required=False,
        allow_null=True,
        help_text="Of input_tokens, those read from the provider's prompt cache (input_tokens includes them, as "
        "OpenAI's prompt_tokens includes cached_tokens); costed at the cache-read price.",
    )
    request_count = StrictIntegerField(min_value=0, required=False, default=1)
    average_latency = StrictFloatField(
        min_value=0.0, max_value=MAX_LATENCY_SECONDS, required=False, allow_null=True, help_text="Seconds."
    )
    error_count = StrictIntegerField(min_value=0, required=False, default=0)
    cost = RoundedDecimalField(
        max_digits=10,
        decimal_places=6,
        min_value=0,
        required=False,
        allow_null=True,
        coerce_to_string=False,
        help_text="USD; rounded to 6 decimal places.",
    )

    class Meta:
        model = ModelUsage
        fields = [
            "timestamp",
            "token_count",
            "input_tokens",
            "output_tokens",
            "cached_input_tokens",
            "request_count",
            "average_latency",
            "error_count",
            "cost",
        ]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        input_tokens, output_tokens = attrs.get("input_tokens"), attrs.get("output_tokens")
        cached = attrs.get("cached_input_tokens")
        if cached is not None and cached > (input_tokens or 0):
            raise serializers.ValidationError(
                {"cached_input_tokens": ["Must not exceed input_tokens: cached input tokens are part of them."]}
            )
        if input_tokens is None and output_tokens is None:
            return attrs
        total = (input_tokens or 0) + (output_tokens or 0)
        if total > INT32_MAX:
            raise serializers.ValidationError({"input_tokens": [f"input_tokens + output_tokens exceeds {INT32_MAX}."]})
        if attrs.get("token_count") is not None and attrs["token_count"] != total:
            raise serializers.ValidationError(
                {"token_count": [f"Must be input_tokens + output_tokens ({total}) when they are given."]}
            )
        return attrs


# Metric names whose values are amounts that cannot be negative.
_NON_NEGATIVE_METRIC = re.compile(r"latency|cost|count|tokens|duration|time", re.I)


class PerformanceRecordSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """One measurement of a model, optionally for a task category."""

    timestamp = serializers.DateTimeField(required=False, validators=[not_in_future], help_text="Defaults to now.")
    metric_name = StrictCharField(
        min_length=1,
        max_length=100,
        validators=[validate_printable, RegexValidator(VISIBLE_TEXT_PATTERN, "Must hold a visible character.")],
    )
    metric_value = StrictFloatField(min_value=-MAX_METRIC_MAGNITUDE, max_value=MAX_METRIC_MAGNITUDE)
    task_category = StrictCharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    sample_size = StrictIntegerField(min_value=1, required=False, allow_null=True)

    class Meta:
        model = ModelPerformance
        fields = ["id", "timestamp", "metric_name", "metric_value", "task_category", "sample_size"]
        read_only_fields = ["id"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if _NON_NEGATIVE_METRIC.search(attrs["metric_name"]) and attrs["metric_value"] < 0:
            raise serializers.ValidationError({"metric_value": ["A latency, cost, count or duration is not negative."]})
        return attrs


class BufferedSerializer(serializers.Serializer):
    """A usage post kept in Redis while the database is unreachable, to be written once it is back."""

    buffered = serializers.IntegerField(help_text="Records kept; written in order when the database is back.")
    detail = serializers.CharField()


class UsageQuerySerializer(TimeRangeQuerySerializer):
    MAX_RANGE = {"hour": timedelta(days=93), "day": timedelta(days=3660)}

    bucket = serializers.ChoiceField(choices=["hour", "day"], required=False, default="hour")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        end = attrs.get("to") or timezone.now()
        default_span = timedelta(hours=24) if attrs["bucket"] == "hour" else timedelta(days=30)
        try:
            start = attrs.get("from") or end - default_span
        except OverflowError as exc:
            raise serializers.ValidationError({"to": ["Too early to have a default 'from'."]}) from exc
        if start >= end:
            raise serializers.ValidationError({"from": ["Must be before 'to'."]})
        if end - start > self.MAX_RANGE[attrs["bucket"]]:
            raise serializers.ValidationError(
                {"from": [f"At most {self.MAX_RANGE[attrs['bucket']].days} days of {attrs['bucket']} buckets."]}
            )
        return {"bucket": attrs["bucket"], "start": start, "end": end}


class PerformanceQuerySerializer(TimeRangeQuerySerializer):
    metric_name = QueryTextField(required=False, max_length=100)
    task_category = QueryTextField(required=False, max_length=100)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)


class UsageFiguresSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    tokens = serializers.IntegerField()
    # Shadows Serializer.errors only in the class body: DRF's metaclass moves declared fields out of it.
    errors = serializers.IntegerField()  # type: ignore[assignment]
    error_rate = serializers.FloatField()
    average_latency = serializers.FloatField(allow_null=True, help_text="Request-weighted, seconds.")
    cost = serializers.DecimalField(
        max_digits=20, decimal_places=6, coerce_to_string=False, help_text="Reported, computed and estimated, USD."
    )
    uncosted_requests = serializers.IntegerField(
        help_text="Requests of records without a cost (no tokens, or no price known at their time)."
    )


class UsageBucketSerializer(UsageFiguresSerializer):
    start = serializers.DateTimeField()


class UsageSummarySerializer(serializers.Serializer):
    model = serializers.CharField()
    bucket = serializers.ChoiceField(choices=["hour", "day"])
    totals = UsageFiguresSerializer()
    buckets = UsageBucketSerializer(many=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField()
        fields["to"] = serializers.DateTimeField()
        return fields


class MetricSummarySerializer(serializers.Serializer):
    count = serializers.IntegerField()
    avg = serializers.FloatField()
    min = serializers.FloatField()
    max = serializers.FloatField()


class PerformanceSummarySerializer(serializers.Serializer):
    model = serializers.CharField()
    records = PerformanceRecordSerializer(many=True)
    summary = serializers.DictField(child=MetricSummarySerializer(), help_text="Per metric, over the filtered set.")


class AvailabilityQuerySerializer(TimeRangeQuerySerializer):
    """``from``/``to`` of an availability history: 7 days up to now by default, at most 366 days."""

    DEFAULT_SPAN = timedelta(days=7)
    MAX_RANGE = timedelta(days=366)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        now = timezone.now()
        # A history cannot say what has not happened yet: a `to` in the future reads as now.
        end = min(attrs.get("to") or now, now)
        try:
            start = attrs.get("from") or end - self.DEFAULT_SPAN
        except OverflowError as exc:
            raise serializers.ValidationError({"to": ["Too early to have a default 'from'."]}) from exc
        if start >= end:
            raise serializers.ValidationError({"from": ["Must be before 'to' (and before now)."]})
        if end - start > self.MAX_RANGE:
            raise serializers.ValidationError({"from": [f"At most {self.MAX_RANGE.days} days before 'to'."]})
        return {"start": start, "end": end}


class AvailabilityIntervalSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    state = serializers.CharField(
        help_text="Status lane: available, degraded (available with an error-rate alert open), unavailable, "
        "deprecated, unknown (before the model's first event). Runtime lane: loaded, unloaded, unknown."
    )
    cause = serializers.CharField(help_text="What began the interval: the cause of its first event.")


class AvailabilityEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=StatusEventKind.choices)
    state = serializers.CharField()
    alert_kind = serializers.CharField(allow_blank=True, help_text="Alert events: the alert's kind.")
    origin = serializers.ChoiceField(choices=StatusEventOrigin.choices)
    cause = serializers.CharField(allow_blank=True)
    actor = serializers.CharField(allow_blank=True, help_text="Who acted, for an operator's change.")
    # Shadows Field.source only in the class body, as UsageFiguresSerializer.errors does.
    source = serializers.CharField(  # type: ignore[assignment]
        allow_null=True, help_text="The provider source (host) involved, by name."
    )
    run_id = serializers.IntegerField(allow_null=True)
    alert_id = serializers.IntegerField(allow_null=True)


class AvailabilitySerializer(serializers.Serializer):
    model = serializers.CharField()
    available_fraction = serializers.FloatField(
        allow_null=True,
        help_text="Time available (or degraded) over the time whose state is known; null when none is.",
    )
    known_fraction = serializers.FloatField(help_text="Share of the period whose state is known.")
    seconds = serializers.DictField(child=serializers.FloatField(), help_text="Seconds of the period in each state.")
    intervals = AvailabilityIntervalSerializer(many=True, help_text="The status lane, covering the whole period.")
    runtime = AvailabilityIntervalSerializer(
        many=True, help_text="Loaded on at least one Ollama host or not; empty when no host was asked."
    )
    events = AvailabilityEventSerializer(many=True, help_text="The period's events, oldest first (the last 500).")
    events_total = serializers.IntegerField()

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField()
        fields["to"] = serializers.DateTimeField()
        return fields
