"""The query of ``GET /models/compare`` and the shape of its answer."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import serializers

from registry.api.fields import QuerySerializer
from registry.catalog.selectors import models_of_refs
from registry.selection.compare import MAX_MODELS, MIN_MODELS

MODELS_HELP = (
    f"{MIN_MODELS} to {MAX_MODELS} model ids or names, separated by commas (a name that holds a comma: "
    "give its id), each model once."
)
DATE_HELP = (
    "Also show the prices in force at this moment: a date (`2026-11-01`, its start in UTC) or a date and time "
    "(ISO 8601; without a zone, UTC)."
)


class CompareQuerySerializer(QuerySerializer):
    models = serializers.CharField(max_length=2000, help_text=MODELS_HELP)
    date = serializers.CharField(max_length=40, required=False, help_text=DATE_HELP)

    def validate_models(self, value: str) -> list[Any]:
        refs = [ref.strip() for ref in value.split(",") if ref.strip()]
        if len(refs) < MIN_MODELS:
            raise serializers.ValidationError(f"Name at least {MIN_MODELS} models, separated by commas.")
        if len(refs) > MAX_MODELS:
            raise serializers.ValidationError(f"At most {MAX_MODELS} models ({len(refs)} given).")
        found = models_of_refs(refs)
        unknown = [ref for ref in refs if ref not in found]
        if unknown:
            raise serializers.ValidationError(f"No such model: {', '.join(unknown)}.")
        seen: dict[int, str] = {}
        for ref in refs:
            model = found[ref]
            if model.pk in seen:
                raise serializers.ValidationError(f"{ref} and {seen[model.pk]} are the same model ({model.name}).")
            seen[model.pk] = ref
        return [found[ref] for ref in refs]

    def validate_date(self, value: str) -> datetime:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value) if len(value) == 10 else None
            if day is None:
                raise serializers.ValidationError("A date (2026-11-01) or an ISO 8601 date and time.")
            moment = datetime.combine(day, time(0), tzinfo=UTC)
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=UTC)
        return moment


class ComparedModelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    display_name = serializers.CharField()
    status = serializers.CharField()
    provider = serializers.CharField()
    model_type = serializers.CharField()


class CompareWindowSerializer(serializers.Serializer):
    # "from" is a Python keyword: declared through get_fields.
    to = serializers.DateTimeField()

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField()
        return fields


class CompareRowSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="`status`, `input_price`, `capability:code`, `latency_p95_7d`, ...")
    group = serializers.CharField()
    kind = serializers.CharField(
        help_text="How to read the values: text, count, price (USD per million tokens), score "
        "({score, evidence}), seconds, percent (a fraction 0-1), cost ({cost, requests, uncosted_requests}; "
        "cost null when every request is uncosted), availability ({available_fraction, known_fraction}, fractions "
        "0-1: the time available or degraded over the time whose state is known, and how much of the window is "
        "known; null when no state is known), runtime ({loaded, expires_at, checked_at}), alerts "
        "({count, alerts})."
    )
    better = serializers.ChoiceField(
        choices=["lower", "higher"], allow_null=True, help_text="Null: neither (a volume), nothing is marked."
    )
    values = serializers.ListField(child=serializers.JSONField(allow_null=True), help_text="One per model, in order.")
    best = serializers.ListField(
        child=serializers.BooleanField(), help_text="One per model: its value is the row's best (ties alike)."
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        # "label" is an attribute of every serializer field: declared here rather than as a class attribute.
        fields = super().get_fields()
        fields["label"] = serializers.CharField(help_text="What the row is, as the console prints it.")
        return fields


class SparklinesSerializer(serializers.Serializer):
    bucket = serializers.ChoiceField(choices=["day"])
    starts = serializers.ListField(child=serializers.DateTimeField(), help_text="The buckets' starts (UTC days).")
    requests = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    latency = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="Request-weighted mean latency (s); null where no record reports one.",
    )
    spend = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="Known cost (USD); null where every request of the day is uncosted.",
    )
    uncosted_requests = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))


class ComparisonSerializer(serializers.Serializer):
    models = ComparedModelSerializer(many=True)
    price_date = serializers.DateTimeField(allow_null=True)
    windows = serializers.DictField(child=CompareWindowSerializer(), help_text="24h, 7d and 30d, each ending now.")
    rows = CompareRowSerializer(many=True)
    sparklines = SparklinesSerializer(help_text="Per series, one list of values per model, on `starts`.")
