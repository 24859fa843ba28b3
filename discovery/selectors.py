"""Reads of provider sources and discovery runs."""

from __future__ import annotations

from django.db.models import QuerySet

from discovery.models import DiscoveryRun, ProviderSource


def sources_all() -> QuerySet[ProviderSource]:
    return ProviderSource.objects.order_by("name")


def sources_enabled() -> QuerySet[ProviderSource]:
    return ProviderSource.objects.filter(enabled=True).order_by("name")


def sources_for_discovery(*, name: str | None = None) -> QuerySet[ProviderSource]:
    """The enabled sources, or the one named ``name`` (enabled or not: asking for it by name is explicit)."""
    if name is not None:
        return ProviderSource.objects.filter(name=name)
    return sources_enabled()


def runs_recent(*, source: ProviderSource, limit: int = 50) -> QuerySet[DiscoveryRun]:
    return DiscoveryRun.objects.filter(source=source).select_related("source").order_by("-started_at", "-id")[:limit]
