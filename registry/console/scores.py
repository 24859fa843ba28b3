"""Capability metrics: the rules by which the score derivation measures capabilities (registry.selection.scores)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from registry.api.validators import CAPABILITY_NAME
from registry.models import CapabilityMetric

# Longer windows or half-lives than ten years are typing mistakes, not rules.
MAX_DAYS = 3650
# What an operator sets of a rule: the form's fields, and the list's columns.
RULE_FIELDS = (
    "capability",
    "metric_name",
    "task_category",
    "window_days",
    "min_samples",
    "stale_after_days",
    "enabled",
)


class CapabilityMetricForm(forms.ModelForm):
    """Validated as the rule is used: a capability name routers select by, a metric, sensible day counts."""

    window_days = forms.IntegerField(
        min_value=1, max_value=MAX_DAYS, initial=30, help_text="Records of the last N days count."
    )
    min_samples = forms.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        initial=50,
        help_text="Fewer samples than this in the window: no new measured score (a record without a sample size "
        "counts as 1).",
    )
    stale_after_days = forms.IntegerField(
        min_value=1,
        max_value=MAX_DAYS,
        initial=7,
        label="Decay half-life (days)",
        help_text="Without enough fresh samples, a measured score's sample size halves every N days since it was "
        "evaluated; below the minimum it is removed.",
    )

    class Meta:
        model = CapabilityMetric
        fields = list(RULE_FIELDS)

    def clean_capability(self) -> str:
        value = str(self.cleaned_data["capability"]).strip()
        if not CAPABILITY_NAME.match(value):
            raise forms.ValidationError(
                "Capability names are lower-case slugs (a-z, 0-9, '-', '_'), as routers use them."
            )
        return value

    def clean_metric_name(self) -> str:
        value = str(self.cleaned_data["metric_name"]).strip()
        if not value or any(ord(char) < 32 for char in value):
            raise forms.ValidationError("The name of a performance metric, as records report it (success_rate).")
        return value

    def clean_task_category(self) -> str | None:
        value = (self.cleaned_data.get("task_category") or "").strip()
        return value or None


@admin.register(CapabilityMetric)
class CapabilityMetricAdmin(admin.ModelAdmin):
    form = CapabilityMetricForm
    list_display = list(RULE_FIELDS)
    list_filter = ["enabled"]
    list_editable = ["enabled"]
    search_fields = ["capability", "metric_name", "task_category"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["capability", ("metric_name", "task_category"), "enabled"]}),
        (
            "Window and decay",
            {
                "fields": [("window_days", "min_samples", "stale_after_days")],
                "description": "Metric values are 0-1 rates; a record outside 0..1 is not counted. The task "
                "'registry: measured scores' (periodic tasks) applies the rules; it never changes an operator's "
                "score.",
            },
        ),
        ("Record", {"fields": [("created_at", "updated_at")]}),
    ]

    def get_changeform_initial_data(self, request: Any) -> dict[str, Any]:
        return {
            "window_days": 30,
            "min_samples": 50,
            "stale_after_days": 7,
            **super().get_changeform_initial_data(request),
        }
