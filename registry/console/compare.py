"""The console's Compare page: two to six models side by side, with the best value of each row marked.

The figures are ``registry.selection.compare``'s, the same as ``GET /models/compare``; the query
(``?models=a,b,c&date=``) is validated by the API's serializer, so a link to the page can be
shared and a bad one is refused beside its field as the API would refuse it. This module only
turns each value into the text an operator reads, and draws the sparklines on one scale per row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil

from registry.api.compare.serializers import CompareQuerySerializer
from registry.catalog.selectors import models_of_refs
from registry.console.charts import sparkline
from registry.console.figures import cost_text, count_text, percent_text, requests_uncosted_text
from registry.console.forms import messages_of
from registry.models import RegisteredModel
from registry.selection.compare import MAX_MODELS, Comparison, Row, models_compare

# The models offered by the "add a model" box, by name: enough for a registry an operator browses.
PICKER_LIMIT: Final = 1000

SPARKLINES: Final = (
    ("requests", "requests a day", ""),
    ("latency", "mean latency a day", "s"),
    ("spend", "spend a day (USD)", ""),
)


@dataclass(frozen=True)
class Cell:
    text: SafeString | str
    best: bool


def _evidence(evidence: dict[str, Any]) -> str:
    """A score's evidence in one line, as the model page prints it: source, samples, window, metric, note."""
    parts = [str(evidence.get("source") or "")]
    if evidence.get("sample_size") is not None:
        parts.append(f"n={evidence['sample_size']:,}")
    window = evidence.get("window")
    if window:
        parts.append(f"{str(window['from'])[:10]} → {str(window['to'])[:10]}")
    if evidence.get("metric"):
        task = evidence.get("task_category")
        parts.append(evidence["metric"] + (f" ({task})" if task else ""))
    if evidence.get("note") and evidence["note"] != "operator":
        parts.append(evidence["note"])
    return " · ".join(part for part in parts if part)


def _price_text(value: float) -> str:
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def _runtime_text(value: dict[str, Any], now: datetime) -> SafeString | str:
    if not value["loaded"]:
        return format_html(
            'not loaded <span class="quiet">(checked {} ago)</span>', timesince(value["checked_at"], now)
        )
    expires = value["expires_at"]
    if expires is None:
        return "loaded"
    if expires <= now:
        # The host's expiry has passed since its last check: say when, not "in 0 minutes".
        return format_html("loaded, expired {} ago", timesince(expires, now))
    return format_html(
        'loaded, unloads in {} <span class="quiet">({} UTC)</span>',
        timeuntil(expires, now),
        f"{expires:%Y-%m-%d %H:%M}",
    )


def _alerts_text(value: dict[str, Any]) -> SafeString | str:
    if not value["count"]:
        return "none"
    items = format_html_join(
        "",
        '<li><a href="{}">{}</a></li>',
        (
            (reverse("admin:registry_alert_change", args=[alert["id"]]), alert["message"][:90])
            for alert in value["alerts"]
        ),
    )
    return format_html('{} <ul class="plain">{}</ul>', value["count"], items)


def availability_text(value: dict[str, float]) -> SafeString | str:
    """An available fraction in percent, floored to 0.1 % (99.96 % is not "100.0 %"), and how much of
    the window the history covers when it is not all of it: "99.2 % (of 60 % known)"."""
    percent = math.floor(value["available_fraction"] * 1000) / 10
    known = value["known_fraction"]
    if known >= 1:
        return f"{percent:.1f} %"
    # Floored too: a window known but for a second is not "100 % known".
    return format_html('{} <span class="quiet">(of {} % known)</span>', f"{percent:.1f} %", math.floor(known * 100))


def cell_text(row: Row, value: Any, now: datetime) -> SafeString | str:
    """What the page prints for one value of ``row``: units, separators, unknown cost, evidence."""
    if row.kind == "cost":
        return cost_text(cost=value["cost"], requests=value["requests"], uncosted_requests=value["uncosted_requests"])
    if value is None:
        return format_html('<span class="quiet">{}</span>', "unknown" if row.kind in ("price", "availability") else "-")
    if row.kind == "count":
        return count_text(value)
    if row.kind == "price":
        return _price_text(value)
    if row.kind == "seconds":
        return f"{value:.3f} s"
    if row.kind == "percent":
        return percent_text(value)
    if row.kind == "availability":
        return availability_text(value)
    if row.kind == "score":
        return format_html(
            '{}<span class="evidence">{}</span>', f"{value['score']:.2f}", _evidence(value.get("evidence") or {})
        )
    if row.kind == "runtime":
        return _runtime_text(value, now)
    if row.kind == "alerts":
        return _alerts_text(value)
    if row.key == "status":
        return format_html('<span class="status status-{}">{}</span>', value, value)
    return str(value)


def _group_rows(comparison: Comparison) -> list[tuple[str, list[tuple[Row, list[Cell]]]]]:
    groups: list[tuple[str, list[tuple[Row, list[Cell]]]]] = []
    for row in comparison.rows:
        cells = [
            Cell(cell_text(row, value, comparison.now), best) for value, best in zip(row.values, row.best, strict=True)
        ]
        if not groups or groups[-1][0] != row.group:
            groups.append((row.group, []))
        groups[-1][1].append((row, cells))
    return groups


def _sparkline_rows(comparison: Comparison) -> list[tuple[str, list[SafeString]]]:
    """One row per series, each model's line on the row's one scale (the largest value of any model)."""
    rows = []
    for series, label, unit in SPARKLINES:
        lines: Sequence[Sequence[float | None]] = comparison.sparklines[series]
        top = max((value for line in lines for value in line if value is not None), default=0.0)
        cells = [
            sparkline(title=f"{model.name}, {label}", values=line, top=top, unit=unit)
            for model, line in zip(comparison.models, lines, strict=True)
        ]
        if series == "spend":
            cells = [
                _spend_cell(cell, line, uncosted)
                for cell, line, uncosted in zip(cells, lines, comparison.sparklines["uncosted_requests"], strict=True)
            ]
        rows.append((label, cells))
    return rows


def _spend_cell(cell: SafeString, line: Sequence[float | None], uncosted: Sequence[float | None]) -> SafeString:
    """A spend sparkline says what it leaves out: days of uncosted requests are gaps, not zeros."""
    count = int(sum(value or 0 for value in uncosted))
    if not count:
        return cell
    if all(value is None for value in line):
        return format_html('<span class="uncosted-note">cost unknown: {}</span>', requests_uncosted_text(count))
    return format_html('{}<span class="uncosted-note evidence">+ {}</span>', cell, requests_uncosted_text(count))


def model_ref(model: RegisteredModel) -> str:
    """How a link names a model: by name, readable in a shared link; by id when the name holds a comma."""
    return str(model.pk) if "," in model.name else model.name


def compare_url(refs: Sequence[str | int], date: str | None = None) -> str:
    """The Compare page of these models (ids or names): a link to share."""
    query: dict[str, str] = {"models": ",".join(str(ref) for ref in refs)}
    if date:
        query["date"] = date
    return f"{reverse('admin:compare')}?{urlencode(query)}"


def compare_view(site: AdminSite, request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("registry.view_registeredmodel"):
        raise PermissionDenied
    refs_text = request.GET.get("models", "").strip()
    added = request.GET.get("add", "").strip()
    if added:
        # "Add a model": the same page with one more model, at its shareable address.
        refs = [ref for ref in refs_text.split(",") if ref.strip()] + [added]
        return HttpResponseRedirect(compare_url(refs, request.GET.get("date") or None))
    errors: dict[str, list[str]] = {}
    comparison = None
    refs = [ref.strip() for ref in refs_text.split(",") if ref.strip()]
    query = {name: request.GET[name] for name in ("models", "date") if request.GET.get(name)}
    if len(refs) >= 2 or "date" in query:
        serializer = CompareQuerySerializer(data=query)
        if serializer.is_valid():
            comparison = models_compare(
                serializer.validated_data["models"], price_moment=serializer.validated_data.get("date")
            )
        else:
            errors = {name: messages_of(detail) for name, detail in serializer.errors.items()}
    picker = list(RegisteredModel.objects.order_by("name").values_list("name", flat=True)[:PICKER_LIMIT])
    chosen = models_of_refs(refs) if comparison is None else {str(m.pk): m for m in comparison.models}
    chosen_names = {model.name for model in chosen.values()}
    context = {
        **site.each_context(request),
        "title": "Compare models",
        "models_text": refs_text,
        "date_text": request.GET.get("date", ""),
        "errors": errors,
        "comparison": comparison,
        "picker": [name for name in picker if name not in chosen_names],
        "first_name": chosen[refs[0]].name if refs and refs[0] in chosen else (refs[0] if refs else ""),
        "can_add": len(refs) < MAX_MODELS,
        "max_models": MAX_MODELS,
        "needs_more": comparison is None and not errors and len(refs) < 2,
        "refs": refs,
        "now": timezone.now(),
    }
    if comparison is not None:
        context["groups"] = _group_rows(comparison)
        context["sparkline_rows"] = _sparkline_rows(comparison)
        context["models"] = comparison.models
        context["first_day"] = comparison.bucket_starts[0]
        context["last_day"] = comparison.bucket_starts[-1]
    return TemplateResponse(request, "admin/compare.html", context)
