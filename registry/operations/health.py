"""Dependency checks for ``/health``, each bounded in time.

Every check runs in a worker thread and the caller waits at most ``HEALTH_CHECK_TIMEOUT``
seconds for all of them together: a hung database, Redis or broker makes its check report
``timeout`` instead of holding the request (and the orchestrator's probe) hostage. The threads
are reused from a small pool; each check also carries its own socket or statement timeout so
that a stuck one frees its thread soon after.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from kombu import Connection

from registry.operations import usage_buffer
from registry.reads.cache import ResilientRedisCache

logger = logging.getLogger(__name__)

OK = "ok"
DEGRADED = "degraded"
ERROR = "error"

# Three checks at a time, plus room for the stragglers of an earlier probe that timed out.
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=9, thread_name_prefix="health")


@dataclass(frozen=True)
class HealthReport:
    status: str
    services: dict[str, str]
    # With the usage buffer on: its state (status ``empty``, ``buffering`` while the database is away,
    # ``draining`` once it is back, or ``unknown`` when Redis cannot be read) and depth.
    usage_buffer: dict[str, Any] | None = None

    @property
    def http_status(self) -> int:
        return 503 if self.status == ERROR else 200


def check_database() -> None:
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Bounded on the server too, so a lock or overload cannot pin this connection.
                timeout_ms = max(int(settings.HEALTH_CHECK_TIMEOUT * 1000), 1)
                cursor.execute(f"SET statement_timeout = {timeout_ms}")
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # This thread's own connection: closed, so pool threads hold no idle database sessions.
        connection.close()


def check_cache() -> None:
    backend = caches["default"]
    if isinstance(backend, ResilientRedisCache):
        if not backend.ping():
            raise ConnectionError("Redis does not answer")
        return
    # The embedded file cache: a write and a read back prove the shared directory works.
    backend.set("health:probe", "1", timeout=30)
    if backend.get("health:probe") != "1":
        raise ConnectionError("the cache did not return what was written")


def check_broker() -> None:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem"):
        queue = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        queue.mkdir(parents=True, exist_ok=True)
        probe = queue.parent / ".health-probe"
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
        return
    # The transport the worker will load, imported here too: a production install missing one of its
    # dependencies (kombu's Redis transport needs `packaging`) reachable but unusable is a failing broker.
    Connection(url).get_transport_cls()
    timeout = settings.HEALTH_CHECK_TIMEOUT
    if url.startswith(("redis://", "rediss://")):
        # A direct PING without redis-py's default retries (kombu's connect would back off for seconds).
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=None)
        try:
            client.ping()
        finally:
            client.close()
        return
    with Connection(url, connect_timeout=timeout) as broker:
        broker.connect()


CHECKS: dict[str, Callable[[], None]] = {"database": check_database, "cache": check_cache, "broker": check_broker}


def _usage_buffer_state() -> usage_buffer.BufferState:
    return usage_buffer.buffer_state()


def _usage_buffer_report(
    future: concurrent.futures.Future[usage_buffer.BufferState], database_ok: bool
) -> dict[str, Any]:
    if not future.done() or future.exception() is not None:
        return {"status": "unknown"}
    state = future.result()
    status = "empty" if state.entries == 0 else "draining" if database_ok else "buffering"
    return {"status": status, **asdict(state)}


def health_report() -> HealthReport:
    """Run every check in parallel; the database is essential, the cache and broker are not.

    ``degraded`` too while the usage buffer drains: usage acknowledged during an outage is still on
    its way to the statistics.
    """
    futures = {name: _POOL.submit(check) for name, check in CHECKS.items()}
    buffer_future = _POOL.submit(_usage_buffer_state) if usage_buffer.enabled() else None
    waiting: list[concurrent.futures.Future[Any]] = [*futures.values()]
    if buffer_future is not None:
        waiting.append(buffer_future)
    done, _pending = concurrent.futures.wait(waiting, timeout=settings.HEALTH_CHECK_TIMEOUT)
    services: dict[str, str] = {}
    for name, future in futures.items():
        if future not in done:
            services[name] = "timeout"
            logger.warning("health: %s did not answer within %.2f s", name, settings.HEALTH_CHECK_TIMEOUT)
        elif (error := future.exception()) is not None:
            services[name] = ERROR
            # Exception text only (no traceback): it names hosts, never credentials.
            logger.warning("health: %s failed: %s: %s", name, type(error).__name__, error)
        else:
            services[name] = OK
    buffer = None if buffer_future is None else _usage_buffer_report(buffer_future, services["database"] == OK)
    if services["database"] != OK:
        status = ERROR
    elif any(state != OK for state in services.values()):
        status = DEGRADED
    elif buffer is not None and buffer["status"] == "draining":
        # Usage acknowledged during an outage is not in the statistics yet.
        status = DEGRADED
    else:
        status = OK
    return HealthReport(status=status, services=services, usage_buffer=buffer)
