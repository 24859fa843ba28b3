"""Cached model reads with generation-based invalidation.

Every cached read of models (list, detail, selection) is keyed by a generation number. Any write
to a model or its endpoints, capabilities or parameters calls ``models_changed()`` after commit,
which bumps the generation: all earlier entries become unreachable at once, so a read after a
write is never stale, and no one has to know which list pages a change touched. A read racing a
write may store a stale value, but only under the old generation, which no one reads again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from registry import metrics
from registry.models import ModelCapability, ModelEndpoint, ModelParameter, RegisteredModel

T = TypeVar("T")

GENERATION_KEY = "models:generation"
_MISSING = object()


def _generation() -> int:
    value = cache.get(GENERATION_KEY)
    return int(value) if value is not None else 0


def models_changed() -> None:
    """Invalidate every cached model read, once the current transaction commits."""
    transaction.on_commit(_bump_generation)


def _bump_generation() -> None:
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:
        # The key does not exist yet (first write, or the cache was flushed): any new value works,
        # as long as it differs from what readers used; they used 0.
        cache.set(GENERATION_KEY, 1, timeout=None)


def connect_invalidation() -> None:
    """Invalidate on every save or delete of a model's configuration, whoever makes it.

    Signals, not calls in each writer, because the admin's forms and inlines save these rows
    directly. Bulk writers (discovery) bypass signals and call ``models_changed()`` themselves.
    """
    for model in (RegisteredModel, ModelEndpoint, ModelCapability, ModelParameter):
        post_save.connect(_on_model_write, sender=model, dispatch_uid=f"cache-invalidate-save-{model.__name__}")
        post_delete.connect(_on_model_write, sender=model, dispatch_uid=f"cache-invalidate-delete-{model.__name__}")


def _on_model_write(**kwargs: object) -> None:
    models_changed()


def cached_model_read(kind: str, key: str, build: Callable[[], T]) -> T:
    """Return the cached value of ``kind``/``key`` for the current generation, building it on a miss."""
    full_key = f"models:{_generation()}:{kind}:{key}"
    value = cache.get(full_key, _MISSING)
    if value is not _MISSING:
        metrics.cache_lookup(kind=kind, hit=True)
        return value
    metrics.cache_lookup(kind=kind, hit=False)
    value = build()
    cache.set(full_key, value)
    return value
