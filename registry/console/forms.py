"""Admin form pieces shared by the registry and discovery consoles.

Two rules hold for every console form:

- **Secrets are write-only.** A stored key is never rendered, not even masked in the HTML source;
  an empty box keeps it, a new value replaces it, and a "clear" tick box removes it.
- **The console validates as the API does.** A form names the API serializer of its resource; its
  cleaned values go through that serializer, and each error appears as a sentence next to its
  field. One set of rules, so the console cannot store what the API would refuse.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from django import forms
from django.db import models
from rest_framework import serializers

SECRET_HELP_STORED = "A value is stored (hidden). Leave blank to keep it, type a new one to replace it."  # noqa: S105 (help text, not a password)
SECRET_HELP_EMPTY = "Nothing stored. Write-only: once saved, it is never shown again."  # noqa: S105 (help text, not a password)


def secret_input(label: str) -> forms.CharField:
    """A password box that never shows what is stored (``render_value=False``), and is never required."""
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        max_length=4096,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "size": 40}),
    )


class WriteOnlySecretsForm(forms.ModelForm):
    """A model form with a write-only ``api_key`` (declared, so the admin renders it) and its "clear" box.

    The key is not in ``Meta.fields``: Django never binds the stored value to the input. ``clean``
    sets a new value on the instance, which is saved with the form. A subclass that must not accept
    secrets (an editor's endpoint form) sets ``secret_fields = ()`` and the two fields to ``None``.
    """

    secret_fields: ClassVar[tuple[str, ...]] = ("api_key",)

    api_key = secret_input("API key")
    clear_api_key = forms.BooleanField(required=False, label="Clear the stored API key")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.secret_fields:
            stored = bool(self.instance.pk and getattr(self.instance, name))
            self.fields[name].help_text = SECRET_HELP_STORED if stored else SECRET_HELP_EMPTY
            clear = self.fields.get(f"clear_{name}")
            if clear is not None and not stored:
                # Nothing to clear. Disabled rather than removed: an inline's rows share one set of fields.
                clear.disabled = True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in self.secret_fields:
            # Set here and dropped from cleaned_data: the admin lists the secret among the form's
            # fields, and Django would otherwise copy the empty box onto the instance.
            typed = cleaned.pop(name, None)
            if cleaned.get(f"clear_{name}"):
                setattr(self.instance, name, None)
            elif typed:
                setattr(self.instance, name, typed)
        return cleaned


class OptionalJSONField(forms.JSONField):
    """A JSON value on one line, where an empty box means "none" (stored as NULL) instead of ``null``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.TextInput(attrs={"size": 10}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if value is None:
            return ""
        return super().prepare_value(value)


def messages_of(detail: Any) -> list[str]:
    """DRF's nested error details as flat sentences."""
    if isinstance(detail, Mapping):
        return [f"{key}: {text}" for key, item in detail.items() for text in messages_of(item)]
    if isinstance(detail, list | tuple):
        return [text for item in detail for text in messages_of(item)]
    return [str(detail)]


@functools.cache
def serializer_field_names(serializer_class: type[serializers.Serializer]) -> frozenset[str]:
    """The fields a serializer declares: read once per class, not built again for every inline row."""
    return frozenset(serializer_class().fields)


class ApiValidatedForm(forms.ModelForm):
    """Runs the form's values through ``api_serializer`` (the API's validation) and shows its errors per field.

    ``api_fields`` are the form fields the serializer checks (by default, every form field the
    serializer knows). Errors the serializer reports for a field the form does not show are the
    form's own (non-field) errors. Django's own checks (unique names, the database's CHECK
    constraints) still run afterwards, for fields that passed.
    """

    api_serializer: ClassVar[type[serializers.Serializer] | None] = None
    api_fields: ClassVar[Iterable[str] | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Django gives a nullable CharField's box ``empty_value=None`` but not a nullable TextField's:
        # an empty description would be stored as '' where the row had NULL, and a save that changed
        # nothing would be audited as "description: None -> ''". An empty box is "none" here too.
        model_fields = {field.name: field for field in self._meta.model._meta.get_fields()}
        for name, form_field in self.fields.items():
            model_field = model_fields.get(name)
            if (
                isinstance(form_field, forms.CharField)
                and isinstance(model_field, models.TextField)
                and model_field.null
            ):
                form_field.empty_value = None

    def api_data(self, cleaned: Mapping[str, Any]) -> dict[str, Any]:
        assert self.api_serializer is not None
        known = serializer_field_names(self.api_serializer)
        names = self.api_fields if self.api_fields is not None else self.fields
        return {name: cleaned[name] for name in names if name in known and name in cleaned}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.api_serializer is None:
            return cleaned
        data = self.api_data(cleaned)
        instance = self.instance if self.instance.pk else None
        serializer = self.api_serializer(instance, data=data, partial=True)
        if not serializer.is_valid():
            for name, detail in serializer.errors.items():
                field = name if name in self.fields and name in cleaned else None
                self.add_error(field, messages_of(detail))
        return cleaned
