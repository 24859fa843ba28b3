"""PostgreSQL advisory locks: one way to hold one for a block of work.

Each user of a lock keeps its own namespace (discovery's 0x4D5201 and 0x4D5202, retention's
0x4D5203, the usage partitions' 0x4D5204), so the keys never collide.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection


@contextlib.contextmanager
def session_advisory_lock(namespace: int, key: int) -> Iterator[bool]:
    """Try the lock (namespace, key) for the block; yields False when someone else holds it.

    Session-level: held across work that must not keep a transaction open (a provider's HTTP call,
    a run of short delete batches), and released by PostgreSQL itself if the process dies. Only
    PostgreSQL has advisory locks: elsewhere this yields True and the caller serializes otherwise.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, key])
