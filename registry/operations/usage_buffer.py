"""The usage buffer's storage in Redis: where usage posted while PostgreSQL is away waits to be written.

Four keys under ``REDIS_URL``:

- a **stream** with one entry per accepted post, appended in the order the posts were answered
  (a stream id grows with time and never repeats, so reading from its head is reading in order);
- a **counter** of the records the stream holds: the depth ``/metrics`` and ``/health`` show, and
  the cap (``USAGE_BUFFER_MAX_RECORDS``), updated atomically with the stream;
- a **dead-letter list** of entries the drain could not write (their model no longer resolves, the
  database refuses a value), kept for an operator, never dropped;
- a **lock** so that one drain runs at a time. A Redis lock rather than PostgreSQL's advisory lock:
  the drain starts just as the database comes back, and a lock that lives in the database would
  drop with every connection the recovery breaks.

What an entry means (its fields, how its records are written and deduplicated) is
``registry.telemetry.buffering``'s; this module knows only Redis. "Durable" is what Redis's
persistence makes it: with ``appendonly yes`` (the compose file's Redis) an answered post survives
a Redis restart, up to the last second with ``appendfsync everysec``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis
from django.conf import settings
from redis.exceptions import LockError, RedisError

STREAM: Final = "model-registry:usage-buffer"
RECORDS: Final = "model-registry:usage-buffer:records"
DEAD: Final = "model-registry:usage-buffer:dead"
LOCK: Final = "model-registry:usage-buffer:drain"

# Check the cap, append, count: one atomic step, so that concurrent posts cannot overshoot the cap
# together, and the counter never disagrees with the stream.
_APPEND: Final = """
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
local adding = tonumber(ARGV[1])
if held + adding > tonumber(ARGV[2]) then
    return false
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
redis.call('INCRBY', KEYS[2], adding)
return id
"""


# Dead letters back to the end of the stream, each with the fields it was posted with (its id too:
# a dead entry was never written, so its id was never claimed), atomically.
_REQUEUE: Final = """
local moved = 0
while true do
    local item = redis.call('LPOP', KEYS[1])
    if not item then
        break
    end
    local entry = cjson.decode(item)
    redis.call('XADD', KEYS[2], '*', 'uid', entry.uid, 'ref', entry.ref, 'kind', entry.kind,
        'received', entry.received, 'count', entry.count, 'records', entry.records)
    redis.call('INCRBY', KEYS[3], tonumber(entry.count))
    moved = moved + 1
end
return moved
"""


class BufferUnavailable(Exception):
    """The buffer cannot take a post: no Redis configured, Redis unreachable, or the buffer full."""


@dataclass(frozen=True)
class BufferEntry:
    """One buffered post: its stream id (``<milliseconds>-<sequence>``) and its fields."""

    id: str
    fields: dict[str, str]

    @property
    def appended_at(self) -> float:
        """When Redis appended it, in seconds since the epoch (from the stream id)."""
        return int(self.id.split("-", 1)[0]) / 1000


@dataclass(frozen=True)
class BufferState:
    """What the buffer holds now."""

    records: int
    entries: int
    oldest_age_seconds: float | None
    dead_letters: int


def enabled() -> bool:
    return bool(settings.USAGE_BUFFER_ENABLED and settings.REDIS_URL)


@functools.lru_cache(maxsize=8)
def _client(url: str, connect_timeout: float, socket_timeout: float) -> redis.Redis:
    # Short timeouts and no retries: the caller is a request whose database just failed, and it
    # must answer (202 or 503) promptly whichever way Redis goes.
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout,
        socket_timeout=socket_timeout,
        retry_on_timeout=False,
        decode_responses=True,
    )


def client() -> redis.Redis:
    """The buffer's Redis client (one pool per process and URL); raises BufferUnavailable when disabled."""
    if not enabled():
        raise BufferUnavailable("no Redis for the usage buffer (REDIS_URL unset or USAGE_BUFFER_ENABLED off)")
    return _client(str(settings.REDIS_URL), settings.USAGE_BUFFER_CONNECT_TIMEOUT, settings.USAGE_BUFFER_SOCKET_TIMEOUT)


def buffer_append(fields: Mapping[str, str], *, records: int) -> str:
    """Append one entry holding ``records`` records; its stream id. BufferUnavailable when it cannot be kept."""
    arguments: list[Any] = [records, settings.USAGE_BUFFER_MAX_RECORDS]
    for name, value in fields.items():
        arguments.extend((name, value))
    try:
        appended = client().eval(_APPEND, 2, STREAM, RECORDS, *arguments)
    except RedisError as exc:
        raise BufferUnavailable(f"Redis did not take the entry: {exc}") from exc
    if appended is None:
        raise BufferUnavailable(f"the usage buffer is full ({settings.USAGE_BUFFER_MAX_RECORDS} records)")
    return str(appended)


def buffer_head(count: int) -> list[BufferEntry]:
    """The oldest ``count`` entries, oldest first. Raises RedisError."""
    entries: list[tuple[str, dict[str, str]]] = client().xrange(STREAM, count=count)  # type: ignore[assignment]
    return [BufferEntry(id=entry_id, fields=dict(fields)) for entry_id, fields in entries]


def buffer_remove(
    written: Sequence[BufferEntry], dead: Sequence[tuple[BufferEntry, dict[str, Any]]], *, records: int
) -> None:
    """Remove entries the drain is done with, moving ``dead`` ones to the dead-letter list, in one transaction.

    ``records`` is how many records the removed entries held (the counter goes down by as much).
    Raises RedisError (then nothing changed: MULTI applies all of it or none).
    """
    ids = [entry.id for entry in written] + [entry.id for entry, _ in dead]
    if not ids:
        return
    with client().pipeline(transaction=True) as pipeline:
        for entry, details in dead:
            pipeline.rpush(DEAD, json.dumps({"id": entry.id, **entry.fields, **details}))
        pipeline.xdel(STREAM, *ids)
        pipeline.decrby(RECORDS, records)
        pipeline.execute()


def buffer_state() -> BufferState:
    """Depth, age of the oldest entry and dead letters, in one round trip. Raises BufferUnavailable, RedisError."""
    with client().pipeline(transaction=False) as pipeline:
        pipeline.get(RECORDS)
        pipeline.xlen(STREAM)
        pipeline.xrange(STREAM, count=1)
        pipeline.llen(DEAD)
        held, entries, head, dead = pipeline.execute()
    oldest = BufferEntry(id=head[0][0], fields={}).appended_at if head else None
    return BufferState(
        records=max(int(held or 0), 0),
        entries=int(entries),
        oldest_age_seconds=None if oldest is None else max(time.time() - oldest, 0.0),
        dead_letters=int(dead),
    )


def dead_letters(count: int = 100) -> list[dict[str, Any]]:
    """The oldest ``count`` dead-lettered entries, as stored (for an operator)."""
    return [json.loads(item) for item in client().lrange(DEAD, 0, count - 1)]


def dead_letters_requeue() -> int:
    """Move every dead letter back to the end of the buffer, to be drained again; how many. Raises RedisError."""
    return int(client().eval(_REQUEUE, 3, DEAD, STREAM, RECORDS))


@contextlib.contextmanager
def drain_lock(seconds: float) -> Iterator[Any]:
    """Hold the drain's lock for the block (yields the lock, to extend), or yield None when another drain holds it.

    The lock expires after ``seconds`` unless extended: a drain that dies releases it by itself.
    """
    lock = client().lock(LOCK, timeout=seconds, blocking=False)
    if not lock.acquire():
        yield None
        return
    try:
        yield lock
    finally:
        # Expired and taken by another drain meanwhile: theirs now, nothing to release.
        with contextlib.suppress(LockError, RedisError):
            lock.release()
