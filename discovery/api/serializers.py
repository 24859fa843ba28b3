"""Provider sources and discovery runs over the API. A source's key is write-only."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from discovery.models import CHANGE_KINDS, CHANGES_NAMES_MAX, DiscoveryRun, ProviderSource, RunStatus
from registry.api.fields import (
    PatternTextField,
    RedactedURLField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictSerializerMixin,
)
from registry.api.validators import INT32_MAX, LABEL_PATTERN, URLValidator


@extend_schema_field(
    {"anyOf": [{"type": "integer", "enum": [0]}, {"type": "integer", "minimum": 5, "maximum": 2_147_483_647}]}
)
class RuntimePollField(StrictIntegerField):
    """0 (no poll) or at least 5 seconds: the schema states both ranges, as the model's check does."""


class ProviderSourceSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """A provider source. Its name is unique: a taken one is a 409 (the service checks, not a validator)."""

    name = PatternTextField(
        max_length=100,
        trim_whitespace=False,
        pattern=LABEL_PATTERN,
        message="Starts and ends with a visible character; no control or format characters.",
    )
    # Not trimmed: a URL with surrounding whitespace is refused (the pattern says so), not silently changed.
    base_url = RedactedURLField(max_length=255, trim_whitespace=False, validators=[URLValidator(instead="api_key")])
    last_status = serializers.ChoiceField(choices=RunStatus.choices, allow_blank=True, read_only=True)
    enabled = StrictBooleanField(required=False, help_text="Whether discovery runs for this source (default true).")
    interval_seconds = StrictIntegerField(
        min_value=10,
        max_value=INT32_MAX,
        required=False,
        help_text="How often discovery runs for this source, in seconds (at least 10).",
    )
    runtime_poll_seconds = RuntimePollField(
        min_value=0,
        max_value=INT32_MAX,
        required=False,
        help_text="How often an Ollama source's /api/ps is polled, in seconds: 0 (off) or at least 5.",
    )
    # Write-only: accepted, stored encrypted, never returned; null (or "") removes a stored key.
    api_key = StrictCharField(
        write_only=True, required=False, allow_null=True, allow_blank=True, max_length=4096, trim_whitespace=True
    )
    has_api_key = serializers.SerializerMethodField(
        help_text="Whether a key is stored (the key itself is never shown)."
    )

    class Meta:
        model = ProviderSource
        fields = [
            "id",
            "name",
            "kind",
            "base_url",
            "api_key",
            "has_api_key",
            "enabled",
            "interval_seconds",
            "runtime_poll_seconds",
            "from_environment",
            "last_run_at",
            "last_status",
            "last_error",
            "consecutive_failures",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "from_environment",
            "last_run_at",
            "last_status",
            "last_error",
            "consecutive_failures",
            "created_at",
            "updated_at",
        ]

    def get_has_api_key(self, source: ProviderSource) -> bool:
        return bool(source.api_key)

    def validate_api_key(self, value: str | None) -> str | None:
        return value or None

    def apply(self, source: ProviderSource) -> ProviderSource:
        """Set the validated values on ``source`` (unsaved); the service validates again and saves."""
        for name, value in self.validated_data.items():
            setattr(source, name, value)
        return source


class DiscoveryRunChangesSerializer(serializers.Serializer):
    """The names behind a run's counts, each list cut at its first CHANGES_NAMES_MAX names."""

    added = serializers.ListField(child=serializers.CharField(), max_length=CHANGES_NAMES_MAX)
    updated = serializers.ListField(child=serializers.CharField(), max_length=CHANGES_NAMES_MAX)
    unavailable = serializers.ListField(child=serializers.CharField(), max_length=CHANGES_NAMES_MAX)
    skipped = serializers.ListField(child=serializers.CharField(), max_length=CHANGES_NAMES_MAX)


class DiscoveryRunSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=RunStatus.choices, read_only=True)
    duration_seconds = serializers.SerializerMethodField()
    changes = serializers.SerializerMethodField(
        help_text="Names of the models added, updated, made unavailable and skipped (the counts are the totals)."
    )
    warnings = serializers.SerializerMethodField(
        help_text="What went wrong without failing the run (an Ollama host's GET /api/ps, say)."
    )

    class Meta:
        model = DiscoveryRun
        fields = [
            "id",
            "trigger",
            "dry_run",
            "status",
            "started_at",
            "finished_at",
            "duration_seconds",
            "models_seen",
            "models_added",
            "models_updated",
            "models_unavailable",
            "models_skipped",
            "changes",
            "error_message",
            "warnings",
        ]
        read_only_fields = fields

    def get_duration_seconds(self, run: DiscoveryRun) -> float | None:
        return run.duration_seconds

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_warnings(self, run: DiscoveryRun) -> list[str]:
        return [str(warning) for warning in run.warnings] if isinstance(run.warnings, list) else []

    @extend_schema_field(DiscoveryRunChangesSerializer)
    def get_changes(self, run: DiscoveryRun) -> dict[str, list[str]]:
        # Every key, always: a failed run (or one recorded before the column existed) stores {}.
        stored = run.changes if isinstance(run.changes, dict) else {}
        return {kind: list(stored.get(kind, [])) for kind in CHANGE_KINDS}


class DiscoveryQueuedSerializer(serializers.Serializer):
    queued = serializers.BooleanField()
    source_name = serializers.CharField()

    def to_representation(self, instance: Any) -> Any:
        return dict(instance)
