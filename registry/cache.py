"""Cached model reads with generation-based invalidation, and a Redis backend that degrades quietly.

Any write to a model or its endpoints, capabilities, parameters or runtime calls ``models_changed()``
after commit, which bumps one generation number. Each cached read is stored with the generation
it was built under, and is served only while that is still the current generation: one write
makes every earlier entry invalid at once, so a read after a write is never stale, and no one has
to know which list pages a change touched. A hit reads the generation and the entry in one round
trip (``get_many``), and an entry's key does not carry the generation, so a rebuild replaces the
old entry instead of piling up beside it. A read racing a write may store a value built from the
old state, but under the old generation, which no reader accepts.

A missing generation key (first start, flush, eviction) is set to the current time in
nanoseconds, never back to a small number: a number used before could match entries that
survived the eviction of the key alone, and serve them stale.

This module imports no models (signals are connected by label) because ``ResilientRedisCache``
is loaded by Django's cache framework, which may happen before the app registry is ready.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django_redis.cache import RedisCache
from django_redis.exceptions import ConnectionInterrupted

from registry import metrics

T = TypeVar("T")

logger = logging.getLogger(__name__)

GENERATION_KEY = "models:generation"
_MISSING = object()
# The configuration rows whose writes change what a model read returns.
INVALIDATING_MODELS = (
    "registry.RegisteredModel",
    "registry.ModelEndpoint",
    "registry.ModelCapability",
    "registry.ModelParameter",
    # Written in bulk by discovery.runtime (which calls models_changed); the signals catch the
    # cascade when a source or a model is deleted.
    "registry.ModelRuntime",
)


class RedisOutage:
    """A per-process circuit breaker for Redis, which also keeps its log to one line per outage.

    After a failed Redis call the cache answers "miss" without touching the network for
    ``retry_seconds`` (a hung Redis would otherwise cost each request a socket timeout per cache
    call); the next call after that window probes Redis with a PING. The outage is logged once when
    it starts and once when Redis answers again, whatever the number of requests in between.
    """

    def __init__(self, *, retry_seconds: float) -> None:
        self.retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    def should_skip(self) -> bool:
        """True while the breaker is open: no Redis call should be attempted."""
        return self._down_since is not None and time.monotonic() < self._retry_at

    def failed(self, error: BaseException | None) -> None:
        with self._lock:
            now = time.monotonic()
            self._retry_at = now + self.retry_seconds
            if self._down_since is not None:
                return
            self._down_since = now
        # The error names the host and port, never the password of the URL.
        logger.warning(
            "Redis is unreachable (%s): model reads are served from the database; retrying every %.0f s, "
            "no further warning until it answers again",
            error,
            self.retry_seconds,
        )

    def recovered(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            down_for = time.monotonic() - self._down_since
            self._down_since = None
        logger.warning("Redis answers again after %.1f s: model reads use the cache again", down_for)


class _OutageLog:
    """Stands in for django-redis's logger of ignored exceptions, which would log every one of them."""

    def __init__(self, outage: RedisOutage) -> None:
        self._outage = outage

    def exception(self, msg: str, *args: object, **kwargs: object) -> None:
        # Called by django-redis's omit_exception inside its ``except`` block.
        error = _current_exception()
        if isinstance(error, _Skipped):
            return  # not an attempt: it must not push the next probe further away
        self._outage.failed(error)


class _Skipped(ConnectionInterrupted):
    """Raised instead of calling Redis while the breaker is open."""


def _current_exception() -> BaseException | None:
    error = sys.exc_info()[1]
    if isinstance(error, ConnectionInterrupted) and error.__cause__ is not None:
        return error.__cause__
    return error


class ResilientRedisCache(RedisCache):
    """django-redis with IGNORE_EXCEPTIONS, a circuit breaker and one warning per outage."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        options = params.get("OPTIONS", {})
        self.outage = RedisOutage(retry_seconds=float(options.get("RETRY_SECONDS", 5.0)))
        self._log_ignored_exceptions = True
        self.logger = _OutageLog(self.outage)

    @property
    def client(self) -> Any:
        if self.outage.should_skip():
            # Raised inside django-redis's omit_exception wrapper: the call returns its default.
            raise _Skipped(connection=None)
        client = super().client
        if self.outage.is_down:
            # First call after the retry window: probe, so recovery is noticed (and logged) once.
            try:
                client.get_client(write=True).ping()
            except Exception as exc:
                raise ConnectionInterrupted(connection=None) from exc
            self.outage.recovered()
        return client

    def ping(self) -> bool:
        """Whether Redis answers now (bounded by the socket timeouts); used by ``/health``."""
        try:
            self.client.get_client(write=True).ping()
        except ConnectionInterrupted:  # skipped (breaker open) or the probe failed: already recorded
            return False
        except Exception as exc:
            self.outage.failed(exc)
            return False
        return True


def _generation(current: int | None = None) -> int:
    """The current generation: ``current`` as read by the caller, or a new one when the key is missing."""
    if current is not None:
        return int(current)
    fresh = time.time_ns()
    # add(): when several processes find the key missing at once, one value wins for all of them.
    cache.add(GENERATION_KEY, fresh, timeout=None)
    value = cache.get(GENERATION_KEY)
    return int(value) if value is not None else fresh


def models_changed() -> None:
    """Invalidate every cached model read, once the current transaction commits."""
    transaction.on_commit(_bump_generation)


def _bump_generation() -> None:
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:
        # The key is missing: whatever readers used is gone with it, and a new time-based value
        # differs from every generation used before.
        cache.set(GENERATION_KEY, time.time_ns(), timeout=None)


def connect_invalidation() -> None:
    """Invalidate on every save or delete of a model's configuration, whoever makes it.

    Signals, not calls in each writer, because the admin's forms and inlines save these rows
    directly. Bulk writers (discovery) bypass signals and call ``models_changed()`` themselves.
    """
    for label in INVALIDATING_MODELS:
        name = label.split(".")[1]
        post_save.connect(_on_model_write, sender=label, dispatch_uid=f"cache-invalidate-save-{name}")
        post_delete.connect(_on_model_write, sender=label, dispatch_uid=f"cache-invalidate-delete-{name}")


def _on_model_write(**kwargs: object) -> None:
    models_changed()


def cached_model_read(kind: str, key: str, build: Callable[[], T]) -> T:
    """Return the cached value of ``kind``/``key`` if it was built under the current generation, else build it."""
    entry_key = f"models:{kind}:{key}"
    found = cache.get_many([GENERATION_KEY, entry_key])
    generation = _generation(found.get(GENERATION_KEY))
    entry = found.get(entry_key)
    if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == generation:
        metrics.cache_lookup(kind=kind, hit=True)
        return entry[1]
    metrics.cache_lookup(kind=kind, hit=False)
    value = build()
    cache.set(entry_key, (generation, value))
    return value


def current_generation() -> int:
    """The generation every cached read must have been built under to be served (one round trip)."""
    return _generation(cache.get(GENERATION_KEY))


def stored_entry(entry_key: str) -> Any:
    """The raw entry stored at ``entry_key``, or None."""
    return cache.get(entry_key)


def store_entry(entry_key: str, value: Any) -> None:
    cache.set(entry_key, value)
