"""What a provider client returns: the models a source lists, in the registry's terms.

Clients only talk HTTP and translate; they never touch the database. The sync service compares
their ``Listing`` with the registry and writes the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from registry.models import EvidenceSource

# Called as progress(done, total) by clients that make one request per model (Ollama's /api/show).
Progress = Callable[[int, int], None]


class ProviderError(Exception):
    """A source could not be listed; the message is for operators and never holds a secret."""


class SourceKeyRejected(ProviderError):
    """The provider answered 401 or 403."""


@dataclass(frozen=True)
class CapabilityClaim:
    """A score a source states for a capability, the note saying why, and what kind of evidence it is."""

    score: float
    evidence: str
    # ``EvidenceSource.PROVIDER`` (the provider declares it) or ``CATALOG`` (a catalog does: discovery.catalogs).
    source: str = EvidenceSource.PROVIDER


@dataclass(frozen=True)
class ParameterClaim:
    default: Any
    min_value: Any = None
    max_value: Any = None
    description: str | None = None


@dataclass(frozen=True)
class EndpointClaim:
    endpoint_type: str
    endpoint_url: str
    auth_type: str
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class DatedPrice:
    """A price per million tokens (USD) in force from ``starts`` (None: no date given), as a catalog states it."""

    starts: date | None
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None

    @property
    def starts_at(self) -> datetime | None:
        return None if self.starts is None else datetime.combine(self.starts, time.min, tzinfo=UTC)

    def amounts(self) -> tuple[Decimal, Decimal, Decimal | None, Decimal | None]:
        return (self.input_per_mtok, self.output_per_mtok, self.cache_read_per_mtok, self.cache_write_per_mtok)


@dataclass
class DiscoveredModel:
    """One model as a source lists it, already mapped to the registry's vocabulary."""

    name: str
    display_name: str
    provider: str
    model_type: str
    endpoint: EndpointClaim
    version: str | None = None
    description: str | None = None
    context_window: int | None = None
    input_cost_per_mtok: Decimal | None = None
    output_cost_per_mtok: Decimal | None = None
    cache_read_cost_per_mtok: Decimal | None = None
    cache_write_cost_per_mtok: Decimal | None = None
    # A catalog's prices with the dates they started, oldest first: each dated one becomes a dated
    # price of the model (discovery.sync). Empty when the price (if any) has no history.
    price_history: tuple[DatedPrice, ...] = ()
    # The provider listed the model's capabilities itself (Anthropic's ``capabilities``, Ollama's
    # /api/show ``capabilities``): that list is complete, and a catalog adds none to it.
    capabilities_declared: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    capabilities: dict[str, CapabilityClaim] = field(default_factory=dict)
    parameters: dict[str, ParameterClaim] = field(default_factory=dict)


@dataclass
class Listing:
    """Everything one source lists: the models to register and the ids deliberately skipped."""

    models: list[DiscoveredModel] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add_entries(
        self,
        entries: list[Any],
        map_entry: Callable[[dict[str, Any]], DiscoveredModel | None],
        *,
        source_name: str,
        what: str,
    ) -> None:
        """Map each ``{"id": ...}`` entry of a model listing: kept when mapped, counted as skipped when not."""
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise ProviderError(f"source {source_name}: a {what} entry has no id")
            model = map_entry(entry)
            if model is None:
                self.skipped.append(entry["id"])
            else:
                self.models.append(model)


@dataclass(frozen=True)
class LoadedModel:
    """A model a host has in memory now (Ollama's ``GET /api/ps``); a fact the host omits is None."""

    name: str
    size_vram: int | None
    context_length: int | None
    expires_at: datetime | None
    # The entry as the host sent it: enough to register a model the host has loaded but does not list.
    entry: dict[str, Any] = field(default_factory=dict, compare=False)
