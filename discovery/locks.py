"""PostgreSQL advisory locks of discovery, in one namespace so they never collide with others'.

Keys are (namespace, n): n is a source's id for its discovery runs, and 0 (ids start at 1) for
the registration of the environment's sources. Writes of a source's runtime (what its host has
loaded) take a transaction lock of their own namespace, so a poll never makes a discovery run
skip. SQLite has no advisory locks; there the database's single-writer lock serializes writes,
which is what the embedded mode needs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection

from discovery.models import ProviderSource
from registry.operations.locks import session_advisory_lock

NAMESPACE = 0x4D5201  # "MR" + 1: the registry's discovery locks
REGISTRATION = 0
RUNTIME_NAMESPACE = 0x4D5202  # "MR" + 2: writes of a source's runtime rows


@contextlib.contextmanager
def source_lock(source: ProviderSource) -> Iterator[bool]:
    """Hold the source's discovery lock for the block; yields False when another run holds it.

    Session-level: held across the provider call without keeping a transaction open while waiting
    on HTTP, and released by PostgreSQL itself if the process dies.
    """
    with session_advisory_lock(NAMESPACE, source.pk) as acquired:
        yield acquired


def registration_lock() -> None:
    """Serialize registrations until the current transaction ends (several containers start at once)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [NAMESPACE, REGISTRATION])


def runtime_lock(source: ProviderSource) -> None:
    """Serialize writes of ``source``'s runtime rows until the current transaction ends.

    A poll and a discovery run of one host may record at once; in turn, each sees the other's rows
    (no unique-constraint race on a new row) and an older observation cannot overwrite a newer one.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [RUNTIME_NAMESPACE, source.pk])
