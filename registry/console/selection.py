"""The console's "Try a selection" page: ask what a router would ask, see the chain and why each other model is out.

An operator debugging routing asks "why not this one?": the page takes the requirements of
``POST /models/select`` as a GET form (so an answer can be linked and shared), validates them with
the API's serializer, and shows the same answer the API gives, laid out as two tables.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse

from registry.api.selection.serializers import SelectionRequestSerializer
from registry.console.compare import compare_url
from registry.console.figures import percent_text
from registry.console.forms import messages_of
from registry.selection import explain as selection
from registry.selection.compare import MAX_MODELS, MIN_MODELS

# Form field -> the request's field (the price ceilings are one object in the API).
_REQUEST_FIELDS = {
    "min_context": "min_context",
    "max_latency_p95": "max_latency_p95",
    "max_error_rate": "max_error_rate",
    "local_only": "local_only",
    "prefer_loaded": "prefer_loaded",
    "limit": "limit",
}


class SelectionForm(forms.Form):
    capabilities = forms.CharField(
        max_length=1000,
        help_text="Each required capability with its minimum score: <code>code=0.7, text=0.5</code>.",
        widget=forms.TextInput(attrs={"size": 40, "placeholder": "code=0.7"}),
    )
    min_context = forms.IntegerField(required=False, label="Minimum context (tokens)")
    max_input_cost = forms.DecimalField(required=False, label="Input price at most (USD / Mtok)")
    max_output_cost = forms.DecimalField(required=False, label="Output price at most (USD / Mtok)")
    max_latency_p95 = forms.FloatField(required=False, label="p95 latency at most (s)")
    max_error_rate = forms.FloatField(required=False, label="Error rate at most (0-1)")
    local_only = forms.BooleanField(required=False, label="Local models only")
    prefer_loaded = forms.BooleanField(required=False, label="Prefer models loaded now")
    exclude = forms.CharField(required=False, max_length=5000, help_text="Names or ids, separated by commas or spaces.")
    limit = forms.IntegerField(required=False, initial=5, label="Chain length")

    def clean_capabilities(self) -> dict[str, Any]:
        minimums: dict[str, Any] = {}
        for item in self.cleaned_data["capabilities"].replace(";", ",").split(","):
            if not item.strip():
                continue
            name, equals, score = item.partition("=")
            if not equals:
                raise forms.ValidationError(f"“{item.strip()}” needs a minimum score: name=0.7.")
            try:
                minimums[name.strip()] = float(score)
            except ValueError:
                raise forms.ValidationError(f"“{score.strip()}” is not a number.") from None
        return minimums

    def request_data(self) -> dict[str, Any]:
        """The body of the API request these values stand for."""
        cleaned = self.cleaned_data
        data: dict[str, Any] = {"capabilities": cleaned["capabilities"]}
        for name, field in _REQUEST_FIELDS.items():
            if cleaned.get(name) not in (None, ""):
                data[field] = cleaned[name]
        ceilings = {
            side: float(cleaned[f"max_{side}_cost"])
            for side in ("input", "output")
            if cleaned.get(f"max_{side}_cost") is not None
        }
        if ceilings:
            data["max_cost_per_mtok"] = ceilings
        excluded = cleaned.get("exclude", "").replace(",", " ").split()
        if excluded:
            data["exclude"] = excluded
        return data

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        serializer = SelectionRequestSerializer(data=self.request_data())
        if serializer.is_valid():
            cleaned["request"] = serializer.validated_data
            return cleaned
        for name, detail in serializer.errors.items():
            if name == "max_cost_per_mtok" and isinstance(detail, dict):
                for side, side_detail in detail.items():
                    field = f"max_{side}_cost"
                    self.add_error(field if field in self.fields else None, messages_of(side_detail))
                continue
            self.add_error(name if name in self.fields else None, messages_of(detail))
        return cleaned


def selection_view(site: AdminSite, request: HttpRequest) -> TemplateResponse:
    if not request.user.has_perm("registry.view_registeredmodel"):
        raise PermissionDenied
    form = SelectionForm(request.GET or None)
    answer = None
    if form.is_valid():
        answer = selection.select_explained(selection.SelectionRequest.from_validated(form.cleaned_data["request"]))
    context = {
        **site.each_context(request),
        "title": "Try a selection",
        "form": form,
        "answer": answer,
        "error_window_minutes": int(selection.error_rate_window().total_seconds() // 60),
    }
    if answer is not None:
        for entry in answer["chain"]:
            # As the charts and the dashboard print a rate: in percent.
            entry["error_rate_text"] = percent_text(entry["error_rate"]["value"])
        chain = answer["chain"][:MAX_MODELS]
        if len(chain) >= MIN_MODELS:
            context["compare_chain_link"] = compare_url(
                [str(entry["id"]) if "," in entry["name"] else entry["name"] for entry in chain]
            )
    return TemplateResponse(request, "admin/selection.html", context)
