"""Reads of provider sources and discovery runs."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

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


def sources_with_last_run() -> list[tuple[ProviderSource, DiscoveryRun | None]]:
    """Every source with its newest run (two queries whatever the number of sources)."""
    newest = DiscoveryRun.objects.filter(source=OuterRef("pk")).order_by("-started_at", "-id").values("pk")[:1]
    sources = list(ProviderSource.objects.annotate(last_run_id=Subquery(newest)).order_by("name"))
    runs = DiscoveryRun.objects.in_bulk([s.last_run_id for s in sources if s.last_run_id is not None])
    return [(source, runs.get(source.last_run_id)) for source in sources]
