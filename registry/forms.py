"""Admin form pieces shared by the registry and discovery consoles."""

from __future__ import annotations

from typing import Any

from django import forms


class WriteOnlySecretsForm(forms.ModelForm):
    """A model form whose ``secret_fields`` are write-only.

    The stored value is never rendered (not even masked in the HTML source); an empty box keeps
    it, a new value replaces it, and a "clear" tick box removes it.
    """

    secret_fields: tuple[str, ...] = ("api_key",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.secret_fields:
            stored = bool(self.instance.pk and getattr(self.instance, name))
            self.fields[name] = forms.CharField(
                required=False,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text=("A value is stored (hidden). " if stored else "Nothing stored. ")
                + "Write-only: leave empty to keep the stored value.",
            )
            self.fields[f"clear_{name}"] = forms.BooleanField(required=False, label=f"Clear stored {name}")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in self.secret_fields:
            # The secret is not in Meta.fields (so Django never renders it); set it on the instance here.
            # The form never shows the stored value, so an empty box means "unchanged".
            if cleaned.get(f"clear_{name}"):
                setattr(self.instance, name, None)
            elif cleaned.get(name):
                setattr(self.instance, name, cleaned[name])
        return cleaned
