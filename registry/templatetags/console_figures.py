"""``{% load console_figures %}``: figures printed so that they cannot mislead (registry.console.figures)."""

from __future__ import annotations

from django import template
from django.utils import timezone

from registry.console.figures import unload_text
from registry.models import ModelRuntime

register = template.Library()


@register.filter
def unloads(row: ModelRuntime) -> str:
    """When the host unloads ``row``'s model: "in 4 minutes", "expired 1 year ago", "kept loaded", "unloaded"."""
    return unload_text(loaded=row.loaded, expires_at=row.expires_at, now=timezone.now())
