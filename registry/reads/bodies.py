"""Model bodies for the read path from ``model_documents`` (registry/reads/documents.py), built only where missing.

A page's query fetches each model's stored body beside its id (one LEFT JOIN, ``with_documents``);
``bodies`` builds the missing or stale ones through the representation itself
(``representations.model_bodies``, so a field added there is in every document) and stores them
for the next read. A page whose documents are all stored costs its one query, whatever its size.

A document is used only when its ``format_version`` is the current one: a fingerprint of the code
that writes the bytes (representations, credential redaction, selectors) and the settings that change
them (USE_TZ, the current time zone). A deployment that changes either rebuilds documents as
they are read, without a migration.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from registry.catalog import credentials
from registry.catalog import selectors as catalog_selectors
from registry.catalog.selectors import is_model_id
from registry.models import RegisteredModel
from registry.reads import compiled, documents, representations
from registry.reads.representations import json_bytes
from registry.selection import evidence, ranking
from registry.selection.ranking import RECENT_LATENCY_WINDOW, models_ranked

BODY = "document__body"
FORMAT = "document__format_version"
REVISION = "document__revision"


def _code_fingerprint() -> str:
    # Every module whose code writes a document's bytes: the representation, the redaction of
    # endpoint URLs, the selectors the representation borrows helpers from, and the compiled
    # queries that read its rows (a module too many costs only rebuilt documents after a
    # deployment; one too few would serve old bytes).
    digest = hashlib.blake2b(digest_size=8)
    for module in (representations, credentials, catalog_selectors, evidence, ranking, compiled):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()


_CODE = _code_fingerprint()


def format_version() -> str:
    """What the stored bytes depend on besides the rows: the code writing them, the time settings."""
    return f"{_CODE}:{int(settings.USE_TZ)}:{timezone.get_current_timezone_name()}"[:100]


def with_documents(queryset: QuerySet[RegisteredModel], *annotations: str) -> QuerySet[Any, dict[str, Any]]:
    """``queryset`` as the model's rows (``representations.model_values``) with each stored document
    (body, format, revision) and ``annotations``; still lazy.

    The model's own columns come with the page, so that a missing document is built without reading
    the models again (a page's reads stay within the eight queries the read path may make).
    """
    return representations.model_values(queryset, BODY, FORMAT, REVISION, *annotations)


def ranked_rows(*, capabilities: list[str], limit: int, **filters: Any) -> list[dict[str, Any]]:
    """The first ``limit`` of ``selectors.models_ranked`` as rows of ``with_documents`` (``score``, ``cap_<i>``...).

    Building and compiling the ranking's queryset costs Python more than PostgreSQL takes to run it
    (6 of 15 ms, measured): its SQL is compiled once per query shape (registry/reads/compiled.py) and run
    again with the current ``since``, its one parameter that changes from request to request.
    """
    figures = [f"cap_{index}" for index in range(len(capabilities))]

    def build(since: datetime) -> QuerySet[Any, dict[str, Any]]:
        ranked = models_ranked(capabilities=capabilities, since=since, **filters)
        return with_documents(ranked[:limit], "score", "recent_latency", "cost_per_mtok", "alerting", *figures)

    key = ("documents.ranked_rows", tuple(capabilities), limit, tuple(sorted(filters.items())))
    return compiled.dict_rows(key, build, timezone.now() - RECENT_LATENCY_WINDOW)


def stored_body(ref: str) -> bytes | None:
    """The stored, current document of model ``ref`` (its id or its name, as ``selectors.model_lookup``), or None.

    One query, for the WSGI front's detail misses; None when there is no such model or its document
    is missing or stale (the view then builds it).
    """
    by_id = is_model_id(ref)
    column = "m.id" if by_id else "m.name"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT d.body, d.format_version FROM models m JOIN {documents.TABLE} d ON d.model_id = m.id "  # noqa: S608 - constants
            f"WHERE {column} = %s",
            [int(ref) if by_id else ref],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None or row[1] != format_version():
        return None
    return str(row[0]).encode()


def bodies(rows: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Each of ``rows`` (from ``with_documents``) with its model's JSON body, in their order.

    Stored bodies as they are; the others built from the models' rows (four queries for their
    related rows) and stored (one more).
    """
    current = format_version()
    missing = {row["id"]: row[REVISION] or 0 for row in rows if row[BODY] is None or row[FORMAT] != current}
    built: dict[int, str] = {}
    if missing:
        model_rows = [row for row in rows if row["id"] in missing]
        for model_row, body in zip(model_rows, representations.model_bodies(model_rows), strict=True):
            built[model_row["id"]] = json_bytes(body).decode()
        # The revision read with the page, before the rows: a write committed since wins (documents.store).
        documents.store([(pk, missing[pk], body) for pk, body in built.items()], current)
    found: list[tuple[dict[str, Any], str]] = []
    for row in rows:
        pk = row["id"]
        if pk not in missing:
            found.append((row, row[BODY]))
        elif pk in built:
            found.append((row, built[pk]))
    return found
