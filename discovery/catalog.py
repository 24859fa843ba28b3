"""The curated catalog (``catalog.json``): what the cloud providers' list endpoints do not say.

OpenAI's ``GET /v1/models`` returns only ``id``, ``created`` and ``owned_by``; Anthropic's may omit
limits. For well-known models the catalog supplies context window, prices and capability
scores, each entry citing its source. Ids the catalog does not know are registered with what the
provider said and no invented scores.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).with_name("catalog.json")

# A dated snapshot of a catalogued model: "-20250514", "-2024-08-06", or the "-latest" alias.
_SNAPSHOT_SUFFIX = re.compile(r"^-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$")


@dataclass(frozen=True)
class CatalogEntry:
    key: str
    context_window: int | None
    input_cost_per_mtok: Decimal | None
    output_cost_per_mtok: Decimal | None
    capabilities: dict[str, float]
    source: str


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@cache
def _load(provider: str) -> dict[str, CatalogEntry]:
    raw: dict[str, Any] = json.loads(CATALOG_PATH.read_text(encoding="utf-8")).get(provider, {})
    return {
        key: CatalogEntry(
            key=key,
            context_window=entry.get("context_window"),
            input_cost_per_mtok=_decimal(entry.get("input_cost_per_mtok")),
            output_cost_per_mtok=_decimal(entry.get("output_cost_per_mtok")),
            capabilities=dict(entry.get("capabilities", {})),
            source=entry["source"],
        )
        for key, entry in raw.items()
    }


def catalog_lookup(provider: str, model_id: str) -> CatalogEntry | None:
    """The catalog entry of ``model_id`` (exact, or a dated snapshot of a key), else None."""
    entries = _load(provider)
    if model_id in entries:
        return entries[model_id]
    matches = [key for key in entries if model_id.startswith(key) and _SNAPSHOT_SUFFIX.match(model_id[len(key) :])]
    return entries[max(matches, key=len)] if matches else None
