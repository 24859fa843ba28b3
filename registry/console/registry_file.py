"""The console's registry file: "Export" (download YAML or JSON) and "Apply a file" (upload, diff, confirm).

Both call what ``manage.py registry`` calls (``registry.catalog.registry_file``, ``registry_apply``).
Apply is two steps: an upload is validated and its diff shown (a dry run, which changes nothing);
"Apply these changes" posts the same text back with the diff's fingerprint, and the apply is refused
if the registry changed since (the operator confirms the diff they saw, not a later one). No state is
kept on the server between the steps. The changes are audited with the operator as actor, by the
audit middleware, as every console write is.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from registry.catalog.registry_apply import Plan, PlanStale, registry_apply, registry_plan
from registry.catalog.registry_file import (
    FORMATS,
    RegistryFileInvalid,
    registry_export,
    registry_file_dump,
    registry_file_load,
)
from registry.models import Provider

CONTENT_TYPES = {"yaml": "application/yaml; charset=utf-8", "json": "application/json; charset=utf-8"}


def export_view(request: HttpRequest) -> HttpResponse:
    """The registry (or ``?provider=``'s models) as a download; viewers may export (no secret is in it)."""
    if not request.user.has_perm("registry.view_registeredmodel"):
        raise PermissionDenied
    file_format = request.GET.get("format", "yaml")
    if file_format not in FORMATS:
        return HttpResponseBadRequest(f"format: must be one of {', '.join(FORMATS)}", content_type="text/plain")
    providers = request.GET.getlist("provider")
    if unknown := [provider for provider in providers if provider not in Provider.values]:
        return HttpResponseBadRequest(
            f"provider: {', '.join(unknown)} is not one of {', '.join(Provider.values)}", content_type="text/plain"
        )
    text = registry_file_dump(registry_export(providers=providers), file_format=file_format)
    response = HttpResponse(text, content_type=CONTENT_TYPES[file_format])
    scope = f"-{'-'.join(sorted(providers))}" if providers else ""
    filename = f"registry{scope}-{timezone.now():%Y%m%d-%H%M%S}.{file_format}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Registry file", help_text="A file written by Export or <code>manage.py registry export</code>."
    )
    prune = forms.BooleanField(
        required=False,
        label="Also delete what the file leaves out",
        help_text="Models of the file's scope not in it, a listed model's rows it does not list, rules. "
        "Unticked: what the file leaves out stays as it is.",
    )

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        # The confirmation posts the text back as a form field, which Django limits to this size (less
        # room for the form's other fields).
        limit = None if settings.DATA_UPLOAD_MAX_MEMORY_SIZE is None else settings.DATA_UPLOAD_MAX_MEMORY_SIZE - 4096
        if limit is not None and upload.size > limit:
            raise forms.ValidationError(
                f"The file has {upload.size} bytes; the console takes at most {limit} "
                "(MAX_REQUEST_BODY_BYTES). Use manage.py registry apply for larger files."
            )
        try:
            return str(upload.read().decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise forms.ValidationError("The file is not UTF-8 text.") from exc


class ConfirmForm(forms.Form):
    text = forms.CharField(widget=forms.HiddenInput, strip=False)
    prune = forms.BooleanField(required=False, widget=forms.HiddenInput)
    fingerprint = forms.CharField(widget=forms.HiddenInput, max_length=64)


def _missing_permissions(request: HttpRequest, plan: Plan) -> list[str]:
    return sorted({change.permission for change in plan.changes if not request.user.has_perm(change.permission)})


def apply_view(site: AdminSite, request: HttpRequest) -> TemplateResponse:
    """Upload → validation → the diff (a dry run) → confirm → applied."""
    user = request.user
    if not user.has_perm("registry.change_registeredmodel"):
        raise PermissionDenied
    context: dict[str, Any] = {**site.each_context(request), "title": "Apply a registry file"}
    upload = UploadForm()
    text, prune, confirmed = None, False, None
    if request.method == "POST" and "fingerprint" in request.POST:
        confirm = ConfirmForm(request.POST)
        if confirm.is_valid():
            text, prune, confirmed = (
                confirm.cleaned_data["text"],
                confirm.cleaned_data["prune"],
                confirm.cleaned_data["fingerprint"],
            )
    elif request.method == "POST":
        upload = UploadForm(request.POST, request.FILES)
        if upload.is_valid():
            text, prune = upload.cleaned_data["file"], upload.cleaned_data["prune"]
    if text is not None:
        try:
            document = registry_file_load(text)
            plan = registry_plan(document, prune=prune)
            missing = _missing_permissions(request, plan)
            if missing:
                context["missing_permissions"] = missing
            elif confirmed is not None:
                plan = registry_apply(document, prune=prune, confirmed=confirmed)
                messages.success(request, f"Applied {len(plan.changes)} change{'s' if len(plan.changes) != 1 else ''}.")
            context["plan"] = plan
            context["confirm"] = ConfirmForm(initial={"text": text, "prune": prune, "fingerprint": plan.fingerprint})
            context["prune"] = prune
        except RegistryFileInvalid as exc:
            context["file_errors"] = exc.errors
        except PlanStale as exc:
            context["stale"] = str(exc)
            context["plan"] = registry_plan(registry_file_load(text), prune=prune)
            context["confirm"] = ConfirmForm(
                initial={"text": text, "prune": prune, "fingerprint": context["plan"].fingerprint}
            )
    context["upload"] = upload
    return TemplateResponse(request, "admin/registry_file.html", context)
