"""One client module per provider kind; ``fetch_listing`` picks the right one for a source."""

from __future__ import annotations

from collections.abc import Callable

from discovery.clients import anthropic, ollama, openai, openai_compatible
from discovery.clients.base import Listing, Progress, ProviderError
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
