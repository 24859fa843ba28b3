"""Token-less requests from trusted networks, on the record as counts: per client address, method, route and minute.

Every request a ``PLATFORM_TRUSTED_NETWORKS`` caller makes without a token used to write one audit
entry, which made the router's hot path a database write (docs/BENCHMARKS.md) and its usage posts
fail while the database was away. Now each web process adds its requests up in memory
(``read_counted``: a dictionary increment under a lock) and writes the sums every
``PLATFORM_READ_COUNTS_FLUSH_SECONDS`` with one upsert that adds to the row of
``(minute, client_address, method, route)`` (``read_counts_flush``), so several processes, and a
process flushing the same minute twice, add up on one row. Reads and the one write those networks
may make (usage posts, ``POST /api/v1/models/{ref}/usage``) are counted alike; the usage records a
post carries are their own record (``model_usage``, or the usage buffer while the database is away).

What a flush takes is restored if its write fails, and flushed again the next time: a database
outage delays counts, it does not lose them. A process that is killed (not stopped) loses what it
had not flushed yet, at most one interval of its reads; a stopped one flushes at exit.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing.util
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.db import DatabaseError, connection, transaction

from registry.models import TrustedNetworkRead

logger = logging.getLogger(__name__)

# (minute since the epoch, client address, network, method, route)
CountKey = tuple[int, str, str, str, str]
ROUTE_MAX = TrustedNetworkRead._meta.get_field("route").max_length or 255
# Rows a statement upserts: 6 parameters each, well under SQLite's and PostgreSQL's limits.
_UPSERT_ROWS = 500


@functools.lru_cache(maxsize=256)
def route_pattern(route: str) -> str:
    """A URL pattern as an operator reads it: ``api/v1/models/(?P<ref>.+)/capabilities$`` is
    ``/api/v1/models/{ref}/capabilities`` (``path()``'s ``<int:pk>`` is ``{pk}``)."""
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)
    text = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", text)
    return "/" + text.strip("^$").lstrip("/")


class ReadCounts:
    """One process's counts not yet written."""

    def __init__(self) -> None:
        self._counts: dict[CountKey, int] = {}
        self._lock = threading.Lock()

    def add(self, key: CountKey, count: int = 1) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + count

    def take(self) -> dict[CountKey, int]:
        """Everything counted so far; the counts start again from nothing."""
        with self._lock:
            taken, self._counts = self._counts, {}
        return taken

    def restore(self, taken: dict[CountKey, int]) -> None:
        """Give back what a failed flush took, added to what was counted meanwhile."""
        with self._lock:
            for key, count in taken.items():
                self._counts[key] = self._counts.get(key, 0) + count

    def pending(self) -> int:
        with self._lock:
            return sum(self._counts.values())


pending_reads = ReadCounts()


def read_counted(*, address: str, network: str, method: str, route: str, at: float | None = None) -> None:
    """Count one token-less read (``at``: its time in seconds since the epoch, default now); writes nothing."""
    minute = int((time.time() if at is None else at) // 60)
    pending_reads.add((minute, address, network, method[:10], route[:ROUTE_MAX]))
    _flusher.ensure_started()


def _chunks(rows: list[tuple[CountKey, int]]) -> Iterator[list[tuple[CountKey, int]]]:
    for start in range(0, len(rows), _UPSERT_ROWS):
        yield rows[start : start + _UPSERT_ROWS]


def _upsert(counts: dict[CountKey, int]) -> None:
    table = connection.ops.quote_name(TrustedNetworkRead._meta.db_table)
    columns = "(minute, client_address, network, method, route, count)"
    # ON CONFLICT ... DO UPDATE adds to the stored count (PostgreSQL, and SQLite since 3.24): Django's
    # bulk_create(update_conflicts=True) can only overwrite it, which would lose another process's counts.
    # The table's name is ours and every value a parameter.
    upsert = (
        f"INSERT INTO {table} {columns} VALUES {{values}} ON CONFLICT (minute, client_address, method, route) "  # noqa: S608
        f"DO UPDATE SET count = {table}.count + excluded.count, network = excluded.network"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # Sorted: two processes flushing the same rows lock them in one order, so they never deadlock.
        for chunk in _chunks(sorted(counts.items())):
            parameters: list[Any] = []
            for (minute, address, network, method, route), count in chunk:
                when = connection.ops.adapt_datetimefield_value(datetime.fromtimestamp(minute * 60, tz=UTC))
                parameters.extend([when, address, network, method, route, count])
            cursor.execute(upsert.format(values=", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))), parameters)


def read_counts_flush() -> int:
    """Write this process's counts (one upsert per 500 rows); the number of reads written.

    When the write fails the counts are kept for the next flush and the error is raised.
    """
    taken = pending_reads.take()
    if not taken:
        return 0
    try:
        _upsert(taken)
    except BaseException:
        pending_reads.restore(taken)
        raise
    return sum(taken.values())


class _Flusher:
    """The thread that flushes a web process's counts every interval (started by the web server's entry point)."""

    def __init__(self) -> None:
        self.interval = 0.0
        self._started = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # A forked worker has no thread of its parent: it starts its own on its first counted read.
        os.register_at_fork(after_in_child=self._forgotten)

    def _forgotten(self) -> None:
        self._started = False
        self._lock = threading.Lock()

    def enable(self, interval: float) -> None:
        self.interval = interval
        if interval <= 0:
            self._stop.set()  # a running thread ends at its next wake-up, without flushing
            self._started = False

    def ensure_started(self) -> None:
        # Started by the first counted read of each process, never at import; tests and commands that
        # never enable it flush by hand.
        if self._started or self.interval <= 0:
            return
        with self._lock:
            if self._started:
                return
            self._started = True
            self._stop = threading.Event()
            threading.Thread(target=self._run, name="read-counts-flush", daemon=True).start()
            # At the process's exit: multiprocessing's finalizers run both at a plain interpreter's exit
            # (atexit) and at a multiprocessing child's, such as a granian worker, which skips atexit.
            multiprocessing.util.Finalize(None, self._at_exit, exitpriority=10)

    def _run(self) -> None:
        stop = self._stop  # its own: a later thread gets a new event
        while not stop.wait(self.interval):
            self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            read_counts_flush()
        except DatabaseError as exc:
            logger.warning("trusted-network read counts not written, kept for the next flush: %s", exc)
        except Exception:
            logger.exception("trusted-network read counts not written, kept for the next flush")
        finally:
            # This thread's own connection: closed so that it never outlives a database restart.
            connection.close()

    def _at_exit(self) -> None:
        self._stop.set()
        self._flush_logged()


_flusher = _Flusher()


def read_counts_flush_every(seconds: float) -> None:
    """Flush this process's counts every ``seconds`` from a background thread (0: only by hand, and stop the thread)."""
    _flusher.enable(seconds)
