"""One client module per provider kind; ``fetch_listing`` picks the right one for a source.

``fetch_loaded`` asks a host which models it has in memory now: only Ollama says (``GET /api/ps``).
"""

from __future__ import annotations

from collections.abc import Callable

from discovery.clients import anthropic, ollama, openai, openai_compatible
from discovery.clients.base import Listing, LoadedModel, Progress, ProviderError
from discovery.models import ProviderSource, SourceKind

Fetcher = Callable[..., Listing]

FETCHERS: dict[str, Fetcher] = {
    SourceKind.OLLAMA: ollama.fetch,
    SourceKind.OPENAI: openai.fetch,
    SourceKind.ANTHROPIC: anthropic.fetch,
    SourceKind.OPENAI_COMPATIBLE: openai_compatible.fetch,
}


def fetch_listing(source: ProviderSource, *, progress: Progress | None = None) -> Listing:
    """Ask ``source`` what it lists. Raises ProviderError with an operator-readable message."""
    fetcher = FETCHERS.get(source.kind)
    if fetcher is None:
        raise ProviderError(f"source {source.name} has an unknown kind {source.kind!r}")
    return fetcher(source_name=source.name, base_url=source.base_url, api_key=source.api_key, progress=progress)


def fetch_loaded(source: ProviderSource, *, max_retries: int | None = None) -> list[LoadedModel]:
    """What ``source``'s host has loaded now. Raises ProviderError (also for a source that is not Ollama)."""
    if source.kind != SourceKind.OLLAMA:
        raise ProviderError(f"source {source.name} is not an Ollama host: only Ollama says what it has loaded")
    return ollama.fetch_loaded(
        source_name=source.name, base_url=source.base_url, api_key=source.api_key, max_retries=max_retries
    )
