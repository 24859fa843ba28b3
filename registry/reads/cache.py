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

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from django.core.cache import cache, caches
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django_redis.cache import RedisCache
from django_redis.exceptions import ConnectionInterrupted

from registry.operations import metrics

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
        # For _GenerationReader's own socket: the first server, and the same timeouts as django-redis'.
        self.first_location = str(server.split(",")[0] if isinstance(server, str) else server[0])
        self.connect_timeout = float(options.get("SOCKET_CONNECT_TIMEOUT", 0.5))
        self.socket_timeout = float(options.get("SOCKET_TIMEOUT", 0.5))
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
    raw = _generation_reader.read()
    if raw is not _MISSING:
        return _generation(raw)  # type: ignore[arg-type]
    return _generation(cache.get(GENERATION_KEY))


class _GenerationReader(threading.local):
    """The GET of the generation over a plain socket of this thread: the one Redis command of a cache hit.

    Through django-redis and redis-py the GET cost about as much Python as the rest of a hit
    (connection pool, retry wrapper, parser; docs/BENCHMARKS.md): here it is one ``sendall`` of
    bytes prepared once and one ``recv``. Anything unusual (no Redis backend, a ``rediss://`` or
    socket URL, the breaker open, an error, a reply that is not a number) answers ``_MISSING``, and
    the caller asks django-redis as before, which handles outages (``ResilientRedisCache``). After
    a failure this thread leaves the generation to django-redis for ``RETRY_SECONDS``, so a setup
    the socket cannot handle costs no connection attempt per request.
    """

    RETRY_SECONDS = 30.0

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.pid = 0
        self.backend: ResilientRedisCache | None = None  # the cache the socket was opened for
        self.command = b""
        self.failed: ResilientRedisCache | None = None  # the cache the socket last failed with, until retry_at
        self.retry_at = 0.0

    def read(self) -> object:
        backend = caches["default"]
        if not isinstance(backend, ResilientRedisCache) or backend.outage.is_down:
            return _MISSING
        if self.sock is None and self.failed is backend and time.monotonic() < self.retry_at:
            return _MISSING
        try:
            stale = self.sock is None or self.pid != os.getpid() or self.backend is not backend
            if stale and not self._connect(backend):
                return _MISSING
            assert self.sock is not None
            self.sock.sendall(self.command)
            return _integer_reply(self.sock)
        except Exception:  # an error here must never fail a read: django-redis answers (and records an outage)
            self.close()
            self.failed, self.retry_at = backend, time.monotonic() + self.RETRY_SECONDS
            return _MISSING

    def _connect(self, backend: ResilientRedisCache) -> bool:
        location = urlsplit(backend.first_location)
        if location.scheme != "redis" or location.query or not location.hostname:
            self.failed, self.retry_at = backend, time.monotonic() + self.RETRY_SECONDS
            return False
        sock = socket.create_connection((location.hostname, location.port or 6379), timeout=backend.connect_timeout)
        sock.settimeout(backend.socket_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if location.password:
                # AUTH <password> without a user name: what Redis before 6 (no ACL users) accepts too.
                credentials = [unquote(location.username)] if location.username else []
                _expect_ok(sock, _command("AUTH", *credentials, unquote(location.password)))
            database = location.path.strip("/") or "0"
            _expect_ok(sock, _command("SELECT", database))
        except (OSError, ValueError):
            sock.close()
            raise
        self.close()
        self.sock, self.pid, self.backend = sock, os.getpid(), backend
        self.command = _command("GET", backend.make_key(GENERATION_KEY))
        return True

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None


def _command(*parts: str) -> bytes:
    encoded = [part.encode() for part in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in encoded)


def _reply(sock: socket.socket) -> bytes:
    data = sock.recv(512)
    if not data:
        raise ConnectionError("Redis closed the connection")
    while not data.endswith(b"\r\n") or (data[:1] == b"$" and len(data) < _bulk_size(data)):
        more = sock.recv(512)
        if not more:
            raise ConnectionError("Redis closed the connection")
        data += more
    return data


def _bulk_size(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n")
    length = int(head[1:])
    return len(head) + 2 + max(length, 0) + (2 if length >= 0 else 0)


def _expect_ok(sock: socket.socket, command: bytes) -> None:
    sock.sendall(command)
    if not _reply(sock).startswith(b"+OK"):
        raise ValueError("Redis refused the connection's setup")


def _integer_reply(sock: socket.socket) -> int | None:
    """The reply to GET of a number (django-redis stores integers as their digits), or None if unset."""
    data = _reply(sock)
    if data.startswith(b"$-1\r\n") or data.startswith(b"_\r\n"):
        return None
    if not data.startswith(b"$"):
        raise ValueError("not a bulk string")
    head, _, rest = data.partition(b"\r\n")
    return int(rest[: int(head[1:])])  # ValueError for anything but digits: the caller falls back


_generation_reader = _GenerationReader()


def stored_entry(entry_key: str) -> Any:
    """The raw entry stored at ``entry_key``, or None."""
    return cache.get(entry_key)


def store_entry(entry_key: str, value: Any) -> None:
    cache.set(entry_key, value)
