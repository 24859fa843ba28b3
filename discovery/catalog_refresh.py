"""Refreshing a catalog from its published data: fetched, validated, kept as the new snapshot.

Off by default: with no ``CATALOG_PRICES_UPDATE_URL`` / ``CATALOG_MODELS_UPDATE_URL`` the bundled
snapshots are used and nothing is fetched (an air-gapped install). A refresh is accepted only when
the data passes its catalog's schema (genai-prices' own pydantic schema; models.dev's shape) and
the sanity checks: no negative price, none above ``PRICE_MAX_PER_MTOK``, and not fewer than half
the models of the snapshot in use (a truncated file). A rejected refresh is recorded with its
problems and changes nothing. An accepted one that moves a registered model's price more than
``PRICE_JUMP_FACTOR``-fold logs a warning and opens a ``catalog_price_jump`` alert on that model:
such a change is more often a unit slip than a price change, and an operator should look.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from genai_prices import types as prices_types
from pydantic import ValidationError

from discovery.catalogs import (
    MODELS_PROVIDER,
    PRICES_PROVIDER,
    CatalogFacts,
    Catalogs,
    ModelsCatalog,
    catalogs_in_use,
    prices_from_raw,
)
from discovery.models import CatalogName, CatalogRefreshStatus, CatalogSnapshot
from registry.access.audit import log_bulk
from registry.models import Alert, AlertKind, ModelType, Provider, RegisteredModel

logger = logging.getLogger(__name__)

PRICE_MAX_PER_MTOK = Decimal(10_000)  # the dearest model priced today costs a few hundred USD per million
PRICE_JUMP_FACTOR = Decimal(100)
MAX_BYTES = 64 * 1024 * 1024
MIN_SHARE_OF_CURRENT = 0.5
MODELS_AFFECTED_MAX = 500


class CatalogRejected(Exception):
    """The fetched data is not a usable catalog; ``problems`` says why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def update_url(catalog: str) -> str:
    return str(
        settings.CATALOG_PRICES_UPDATE_URL if catalog == CatalogName.PRICES else settings.CATALOG_MODELS_UPDATE_URL
    )


def _fetch(url: str) -> bytes:
    timeout = (float(settings.DISCOVERY_CONNECT_TIMEOUT), float(settings.DISCOVERY_READ_TIMEOUT))
    with requests.get(url, timeout=timeout, stream=True) as response:
        response.raise_for_status()
        body = bytearray()
        for chunk in response.iter_content(chunk_size=65536):
            body.extend(chunk)
            if len(body) > MAX_BYTES:
                raise CatalogRejected([f"the answer is larger than {MAX_BYTES} bytes"])
        return bytes(body)


def _price_values(price: prices_types.ModelPrice) -> Iterator[tuple[str, Any]]:
    for key, value in vars(price).items():
        if key.startswith("_") or value is None:
            continue
        if isinstance(value, prices_types.TieredPrices):
            yield key, value.base
            for tier in value.tiers:
                yield key, tier.price
        else:
            yield key, value


def _check_price(where: str, key: str, value: Any, problems: list[str]) -> None:
    amount = Decimal(str(value))
    if amount < 0:
        problems.append(f"{where}: {key} is negative ({amount})")
    elif key.endswith("_mtok") and amount > PRICE_MAX_PER_MTOK:
        problems.append(f"{where}: {key} is {amount} USD per million tokens (more than {PRICE_MAX_PER_MTOK})")


def validate_prices(raw: Any) -> tuple[Any, int]:
    """genai-prices' published data (a provider array), checked; returns (the parsed snapshot, model count)."""
    if not isinstance(raw, list):
        raise CatalogRejected(["schema: expected a list of providers"])
    try:
        snapshot = prices_from_raw(raw)
    except (ValidationError, ValueError, TypeError) as exc:
        raise CatalogRejected([f"schema: {str(exc)[:500]}"]) from exc
    problems: list[str] = []
    count = 0
    for provider in snapshot.providers:
        for model in provider.models:
            count += 1
            prices = [model.prices] if isinstance(model.prices, prices_types.ModelPrice) else model.prices
            for entry in prices:
                price = entry if isinstance(entry, prices_types.ModelPrice) else entry.prices
                for key, value in _price_values(price):
                    _check_price(f"{provider.id}/{model.id}", key, value, problems)
    if problems:
        raise CatalogRejected(problems[:20])
    return snapshot, count


def validate_models(raw: Any) -> int:
    """models.dev's ``api.json``, checked; returns its model count."""
    if not isinstance(raw, dict):
        raise CatalogRejected(["schema: expected an object of providers"])
    problems: list[str] = []
    count = 0
    for provider_id, provider in raw.items():
        models = provider.get("models") if isinstance(provider, dict) else None
        if not isinstance(models, dict):
            problems.append(f"schema: provider {provider_id!r} has no 'models' object")
            continue
        for model_id, entry in models.items():
            count += 1
            where = f"{provider_id}/{model_id}"
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                problems.append(f"schema: {where} has no id")
                continue
            limit = entry.get("limit", {})
            if not isinstance(limit, dict):
                problems.append(f"schema: {where}: limit is not an object")
                continue
            for key in ("context", "input", "output"):
                value = limit.get(key)
                if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                    problems.append(f"{where}: limit.{key} is not a non-negative integer ({value!r})")
            cost = entry.get("cost") or {}
            if isinstance(cost, dict):
                for key, value in cost.items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        _check_price(where, f"cost.{key}_mtok", value, problems)
    if problems:
        raise CatalogRejected(problems[:20])
    return count


def _current_count(catalog: str, catalogs: Catalogs) -> int:
    if catalog == CatalogName.PRICES:
        return sum(len(provider.models) for provider in catalogs.prices.providers)
    return sum(len((provider or {}).get("models") or {}) for provider in catalogs.models.raw.values())


def _lookup(catalogs: Catalogs, model: RegisteredModel) -> CatalogFacts | None:
    if model.provider == Provider.OLLAMA:
        return catalogs.lookup_local(model.name, model.details if isinstance(model.details, dict) else {})
    if model.provider in PRICES_PROVIDER or model.provider in MODELS_PROVIDER:
        return catalogs.lookup(model.provider, model.name, model_type=model.model_type or ModelType.CHAT)
    return None


def _jump(old: Decimal, new: Decimal) -> bool:
    if old == 0 or new == 0:
        return False  # a free model priced, or a price removed: not a unit slip
    ratio = new / old
    return ratio > PRICE_JUMP_FACTOR or ratio < 1 / PRICE_JUMP_FACTOR


@dataclass(frozen=True)
class Comparison:
    affected: list[str]
    jumps: list[tuple[RegisteredModel, str]]


def _compare(old: Catalogs, new: Catalogs) -> Comparison:
    """Registered models whose catalog facts differ between ``old`` and ``new``, and the >100x price moves."""
    now = timezone.now()
    affected: list[str] = []
    jumps: list[tuple[RegisteredModel, str]] = []
    models = RegisteredModel.objects.filter(provider__in=[*PRICES_PROVIDER, *MODELS_PROVIDER, Provider.OLLAMA])
    for model in models.only("pk", "name", "provider", "model_type", "details").order_by("name"):
        before, after = _lookup(old, model), _lookup(new, model)
        if before == after:
            continue
        affected.append(model.name)
        old_price = before.price_at(now) if before else None
        new_price = after.price_at(now) if after else None
        if old_price is None or new_price is None:
            continue
        for what, was, becomes in (
            ("input", old_price.input_per_mtok, new_price.input_per_mtok),
            ("output", old_price.output_per_mtok, new_price.output_per_mtok),
        ):
            if _jump(was, becomes):
                jumps.append((model, f"{what} price {was} -> {becomes} USD per million tokens"))
    return Comparison(affected, jumps)


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:12]


@transaction.atomic
def _record(
    *,
    catalog: str,
    status: str,
    url: str,
    version: str,
    data: Any,
    entries: int,
    affected: list[str],
    problems: list[str],
) -> CatalogSnapshot:
    row = CatalogSnapshot.objects.create(
        catalog=catalog,
        status=status,
        url=url[:500],
        version=version[:80],
        fetched_at=timezone.now(),
        data=data,
        entries=entries,
        models_affected=affected[:MODELS_AFFECTED_MAX],
        problems=problems,
    )
    log_bulk(
        "create",
        [row],
        [
            {
                "catalog": ["None", catalog],
                "status": ["None", status],
                "version": ["None", row.version],
                "url": ["None", row.url],
                "models_affected": ["None", str(len(affected))],
            }
        ],
    )
    return row


def catalog_refresh(*, catalog: str, url: str | None = None) -> CatalogSnapshot | None:
    """Fetch ``catalog`` from its update URL, validate it, and keep it as the snapshot in use.

    Returns the recorded refresh (accepted or rejected), or None when no URL is configured or the
    data is the snapshot already in use. A failed fetch is logged and raised (the task retries on
    its schedule). Call it inside ``registry.access.audit.system_actor``.
    """
    url = url or update_url(catalog)
    if not url:
        return None
    body = _fetch(url)
    version = f"{timezone.now():%Y-%m-%d} sha256:{_digest(body)}"
    latest = CatalogSnapshot.objects.filter(catalog=catalog, status=CatalogRefreshStatus.ACCEPTED).first()
    if latest is not None and latest.version.endswith(_digest(body)):
        return None  # unchanged since the last refresh
    current = catalogs_in_use()
    try:
        raw = json.loads(body)
        if catalog == CatalogName.PRICES:
            snapshot, entries = validate_prices(raw)
            candidate = Catalogs(prices=snapshot, prices_label=f"genai-prices {version}", models=current.models)
        else:
            entries = validate_models(raw)
            candidate = Catalogs(
                prices=current.prices,
                prices_label=current.prices_label,
                models=ModelsCatalog(raw, f"models.dev {version}"),
            )
        floor = int(_current_count(catalog, current) * MIN_SHARE_OF_CURRENT)
        if entries < floor:
            raise CatalogRejected([f"only {entries} models, fewer than half of the {floor * 2} in use"])
    except (CatalogRejected, json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems = exc.problems if isinstance(exc, CatalogRejected) else [f"not JSON: {exc}"]
        logger.warning("catalog %s refresh from %s rejected: %s", catalog, url, "; ".join(problems)[:1000])
        return _record(
            catalog=catalog,
            status=CatalogRefreshStatus.REJECTED,
            url=url,
            version=version,
            data=None,
            entries=0,
            affected=[],
            problems=problems,
        )
    comparison = _compare(current, candidate)
    warnings = [f"{model.name}: {change}" for model, change in comparison.jumps]
    with transaction.atomic():
        row = _record(
            catalog=catalog,
            status=CatalogRefreshStatus.ACCEPTED,
            url=url,
            version=version,
            data=raw,
            entries=entries,
            affected=comparison.affected,
            problems=warnings,
        )
        for model, change in comparison.jumps:
            logger.warning(
                "catalog %s %s moves the price of %s more than 100-fold: %s", catalog, version, model, change
            )
            _open_jump_alert(model=model, message=f"Catalog {catalog} {version}: {change}", snapshot=row)
    return row


def _open_jump_alert(*, model: RegisteredModel, message: str, snapshot: CatalogSnapshot) -> None:
    details: Mapping[str, Any] = {"catalog": snapshot.catalog, "version": snapshot.version, "snapshot": snapshot.pk}
    if Alert.objects.open().filter(kind=AlertKind.CATALOG_PRICE_JUMP, model=model).exists():
        return
    Alert.objects.create(kind=AlertKind.CATALOG_PRICE_JUMP, model=model, message=message[:2000], details=dict(details))


def catalogs_refresh_all() -> list[CatalogSnapshot]:
    """Refresh every catalog that has an update URL; a failed fetch of one does not stop the other."""
    done = []
    for catalog in (CatalogName.PRICES, CatalogName.MODELS):
        try:
            row = catalog_refresh(catalog=catalog)
        except (requests.RequestException, CatalogRejected) as exc:
            logger.warning("catalog %s could not be fetched: %s", catalog, exc)
            continue
        if row is not None:
            done.append(row)
    return done
