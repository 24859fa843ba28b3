"""The evidence of a capability score in the API: what a score rests on, read as one object.

Every capability the API returns carries ``{"source", "note", "metric", "task_category",
"sample_size", "window", "evaluated_at"}`` (``registry.selection.evidence.evidence_body`` builds it, for
the serializers here and for the lean read path alike). On input an operator gives only the note:
the source of an operator's score is ``operator``, and the measurement facts are the registry's.
"""

from __future__ import annotations

from typing import Any, Final

from rest_framework import serializers

from registry.models import EvidenceSource, ModelCapability, RegisteredModel
from registry.selection.evidence import evidence_body

NOTE_MAX_LENGTH: Final = 300  # model_capabilities.evidence
# Keys of the evidence object that only the registry sets: accepted on input when null (what an
# operator's evidence reads as, so a client may send back what it read), refused otherwise.
MEASURED_KEYS: Final = ("metric", "task_category", "sample_size", "window", "evaluated_at")


class EvidenceWindowSerializer(serializers.Serializer):
    """The span of the performance records a measured score averages: first and last record."""

    to = serializers.DateTimeField(help_text="The newest record averaged.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # "from" is a Python keyword: declared here, first, as the body writes it.
        fields: dict[str, serializers.Field] = {
            "from": serializers.DateTimeField(help_text="The oldest record averaged.")
        }
        fields.update(super().get_fields())
        return fields


class EvidenceSerializer(serializers.Serializer):
    """What a capability score rests on. Describes the schema; ``evidence_body`` writes the values."""

    # DRF's metaclass takes declared fields off the class: this "source" does not shadow Field.source.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=EvidenceSource.choices,
        help_text="operator: set by hand; provider: the provider declares the capability (a default score); "
        "catalog: a catalog's declaration (genai-prices, models.dev); measured: derived from performance records.",
    )
    note = serializers.CharField(help_text="Free text: the catalog entry and its source, the operator's note, ...")
    metric = serializers.CharField(allow_null=True, help_text="Measured scores: the performance metric averaged.")
    task_category = serializers.CharField(
        allow_null=True, help_text="Measured scores: the task category of the records (null: any)."
    )
    sample_size = serializers.IntegerField(
        allow_null=True, help_text="Measured scores: the samples averaged (a record without one counts as 1)."
    )
    window = EvidenceWindowSerializer(allow_null=True, help_text="Measured scores: the records' span.")
    evaluated_at = serializers.DateTimeField(
        allow_null=True, help_text="When the score was last evaluated (null: not known, e.g. set before it was kept)."
    )


def capability_evidence(row: ModelCapability) -> dict[str, Any]:
    """The evidence object of one capability row."""
    return evidence_body(
        row.evidence_source,
        row.evidence,
        row.metric_name,
        row.task_category,
        row.sample_size,
        row.window_start,
        row.window_end,
        row.evaluated_at,
    )


class CapabilityEvidenceField(serializers.Field):
    """A capability's ``evidence``: the object on output; on input its note, as an object or a plain string.

    Its schema (one for requests, one for responses) is stated by ``registry.api.schema.CapabilityEvidenceSchema``.
    """

    default_error_messages = {"invalid": "Expected the evidence's note: a string, or an object with a note."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("source", "*")
        super().__init__(**kwargs)

    def to_representation(self, value: ModelCapability) -> dict[str, Any]:
        return capability_evidence(value)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        """``{"evidence": note}`` (the field reads the whole row, so its value merges into the validated data).

        An operator's evidence has no other part it may set.
        """
        if isinstance(data, str):
            return {"evidence": self._note(data)}
        if not isinstance(data, dict):
            self.fail("invalid")
        errors: dict[str, list[str]] = {}
        for key, value in data.items():
            if key == "note":
                if not isinstance(value, str):
                    errors[key] = ["Expected a string."]
                elif len(value) > NOTE_MAX_LENGTH:
                    errors[key] = [f"At most {NOTE_MAX_LENGTH} characters."]
            elif key == "source":
                if value != EvidenceSource.OPERATOR:
                    errors[key] = [
                        "An operator's score has the source 'operator'; provider, catalog and measured scores "
                        "are set by discovery and the score derivation, not through this API."
                    ]
            elif key in MEASURED_KEYS:
                if value is not None:
                    errors[key] = ["Set by the registry for measured scores; an operator's evidence is its note."]
            else:
                errors[key] = ["Unknown field."]
        if errors:
            raise serializers.ValidationError(errors)
        return {"evidence": self._note(data.get("note", ""))}

    def _note(self, value: str) -> str:
        if len(value) > NOTE_MAX_LENGTH:
            raise serializers.ValidationError(f"At most {NOTE_MAX_LENGTH} characters.")
        return value.strip()


class CapabilityEvidenceMapField(serializers.Field):
    """A model's ``capability_evidence``: ``{capability: evidence}``, beside its ``capabilities`` scores.

    Read-only; its schema is stated by ``registry.api.schema.CapabilityEvidenceMapSchema``.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        kwargs.setdefault(
            "help_text", "Each capability's evidence (the same keys as capabilities): what its score rests on."
        )
        super().__init__(**kwargs)

    def get_attribute(self, instance: RegisteredModel) -> dict[str, dict[str, Any]]:
        # From the prefetched capabilities (with_representation): no query of its own.
        return {row.capability: capability_evidence(row) for row in instance.capabilities.all()}

    def to_representation(self, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return dict(value)
