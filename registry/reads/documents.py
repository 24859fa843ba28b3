"""Each model's rendered JSON body, kept in ``model_documents`` and invalidated by the database itself.

A read that misses the response cache would otherwise build every model of its page from rows
(5,000 rows and 50 ms for a page of 500). Instead each model's body (the exact bytes
``registry.reads.representations`` writes for it) is stored once, and a miss joins stored bytes.

Staleness is the database's business, not the writers': triggers on every table the body reads
(``DOCUMENT_SOURCES``, the one declaration of them) mark the affected models' documents stale in
the writing statement itself, whoever writes (services, discovery's bulk sync, the admin, a raw
``queryset.update()``). Marking stale clears the body and bumps the row's ``revision``; a model's
deletion deletes its row.

Why a revision and not only a delete: a reader that read a model's rows before a write commits,
and stores the body it built after the write's trigger ran, would leave a stale document behind
for good. So a reader stores a body only on the revision it saw *before* reading the rows
(``store``): a write committed in between has bumped the revision, and the store does nothing.
Revisions only grow, so an old revision never comes back. A row that does not exist yet is
revision 0; a write creates it at 1 or more.

Adding a table the body reads (``model_runtime``): add a ``DocumentSource`` here and a migration
running ``install_triggers`` again (it replaces every trigger it declares);
tests/registry/reads/test_documents.py checks every declared table has its triggers.
"""

# ruff: noqa: S608 - every statement here is built from this module's constants (table and column names), values are parameters

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from django.db import DatabaseError, connection
from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "model_documents"
_PREFIX = "model_documents_"


@dataclass(frozen=True)
class DocumentSource:
    """A table whose rows feed model bodies, and how its rows map to the models whose bodies they change.

    ``models_of`` is SQL selecting model ids (as a column ``id``) from ``{keys}``, a subquery of
    the changed rows' ``key`` column (also named ``id``); ``watched``, when given, limits updates
    to those that change these columns.
    """

    table: str
    key: str
    models_of: str = "{keys}"
    watched: tuple[str, ...] = ()


DOCUMENT_SOURCES: tuple[DocumentSource, ...] = (
    # The model's own row. A deletion drops its document (below) as well as marking it stale.
    DocumentSource("models", "id"),
    DocumentSource("model_capabilities", "model_id"),
    DocumentSource("model_parameters", "model_id"),
    DocumentSource("model_endpoints", "model_id"),
    # What Ollama has loaded now: a poll rewrites checked_at, which the body shows, so every column counts.
    DocumentSource(
        "model_runtime",
        "model_id",
        watched=("model_id", "loaded", "size_vram", "context_length", "expires_at", "checked_at"),
    ),
    # The source's name is written into the model's body and into each of its endpoints'.
    DocumentSource(
        "provider_sources",
        "id",
        models_of="SELECT id FROM models WHERE source_id IN ({keys}) "
        "UNION SELECT model_id AS id FROM model_endpoints WHERE source_id IN ({keys})",
        watched=("name",),
    ),
)

_EVENTS = ("insert", "update", "delete")


def _trigger_name(source: DocumentSource, event: str) -> str:
    return f"{_PREFIX}{source.table}_{event}"


def _mark_stale(models_sql: str) -> str:
    """SQL marking the documents of the models ``models_sql`` selects stale (both vendors' upsert syntax).

    In model id order, as ``store`` writes: two statements locking the same documents take them in
    the same order.
    """
    return (
        # body left out, hence NULL: a typed NULL would need each vendor's type name.
        f"INSERT INTO {TABLE} (model_id, format_version, revision) "
        f"SELECT DISTINCT affected.id, '', 1 FROM ({models_sql}) AS affected "
        "WHERE affected.id IS NOT NULL ORDER BY affected.id "
        f"ON CONFLICT (model_id) DO UPDATE SET body = NULL, revision = {TABLE}.revision + 1"
    )


def _postgresql_triggers(source: DocumentSource) -> list[str]:
    """Statement-level triggers with transition tables: one upsert per statement, however many rows it wrote."""
    statements = []
    for event in _EVENTS:
        name = _trigger_name(source, event)
        if event == "insert":
            keys = f"SELECT {source.key} AS id FROM new_rows"
            referencing = "REFERENCING NEW TABLE AS new_rows"
        elif event == "delete":
            keys = f"SELECT {source.key} AS id FROM old_rows"
            referencing = "REFERENCING OLD TABLE AS old_rows"
        else:
            referencing = "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
            if source.watched:
                changed = " OR ".join(f"n.{column} IS DISTINCT FROM o.{column}" for column in source.watched)
                keys = f"SELECT n.{source.key} AS id FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE {changed}"
            else:
                keys = f"SELECT {source.key} AS id FROM new_rows UNION SELECT {source.key} FROM old_rows"
        body = _mark_stale(source.models_of.format(keys=keys)) + ";"
        if source.table == "models" and event == "delete":
            body = f"DELETE FROM {TABLE} WHERE model_id IN (SELECT id FROM old_rows);"
        statements += [
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {body} RETURN NULL; END $$",
            f"DROP TRIGGER IF EXISTS {name} ON {source.table}",
            f"CREATE TRIGGER {name} AFTER {event.upper()} ON {source.table} {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
        ]
    return statements


def _sqlite_triggers(source: DocumentSource) -> list[str]:
    """Row-level triggers (SQLite has no other kind)."""
    statements = []
    for event in _EVENTS:
        name = _trigger_name(source, event)
        condition = ""
        if event == "insert":
            keys = f"SELECT NEW.{source.key} AS id"
        elif event == "delete":
            keys = f"SELECT OLD.{source.key} AS id"
        else:
            keys = f"SELECT NEW.{source.key} AS id UNION SELECT OLD.{source.key}"
            if source.watched:
                condition = "WHEN " + " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in source.watched) + " "
        body = _mark_stale(source.models_of.format(keys=keys))
        if source.table == "models" and event == "delete":
            body = f"DELETE FROM {TABLE} WHERE model_id = OLD.id"
        statements += [
            f"DROP TRIGGER IF EXISTS {name}",
            f"CREATE TRIGGER {name} AFTER {event.upper()} ON {source.table} FOR EACH ROW {condition}BEGIN {body}; END",
        ]
    return statements


def trigger_statements(vendor: str, sources: Iterable[DocumentSource] = DOCUMENT_SOURCES) -> list[str]:
    if vendor == "postgresql":
        return [statement for source in sources for statement in _postgresql_triggers(source)]
    if vendor == "sqlite":
        return [statement for source in sources for statement in _sqlite_triggers(source)]
    raise NotImplementedError(f"model documents have no triggers for {vendor}")


def drop_statements(vendor: str, sources: Iterable[DocumentSource] = DOCUMENT_SOURCES) -> list[str]:
    statements = []
    for source in sources:
        for event in _EVENTS:
            name = _trigger_name(source, event)
            if vendor == "postgresql":
                statements += [f"DROP TRIGGER IF EXISTS {name} ON {source.table}", f"DROP FUNCTION IF EXISTS {name}()"]
            else:
                statements.append(f"DROP TRIGGER IF EXISTS {name}")
    return statements


def install_triggers(database: BaseDatabaseWrapper) -> None:
    """Create (or replace) every declared trigger; for migrations (``RunPython``, the schema editor's connection)."""
    with database.cursor() as cursor:
        for statement in trigger_statements(database.vendor):
            cursor.execute(statement)


def remove_triggers(database: BaseDatabaseWrapper) -> None:
    with database.cursor() as cursor:
        for statement in drop_statements(database.vendor):
            cursor.execute(statement)


def installed_trigger_tables(database: BaseDatabaseWrapper = connection) -> dict[str, set[str]]:
    """The tables having document triggers in the database, with the events they fire on."""
    with database.cursor() as cursor:
        if database.vendor == "postgresql":
            cursor.execute(
                "SELECT event_object_table, lower(event_manipulation) FROM information_schema.triggers "
                "WHERE trigger_name LIKE %s AND trigger_schema = current_schema()",
                [f"{_PREFIX}%"],
            )
        else:
            cursor.execute(
                "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger' AND name LIKE %s", [f"{_PREFIX}%"]
            )
        found: dict[str, set[str]] = {}
        for table, event in cursor.fetchall():
            found.setdefault(table, set()).add(event.rsplit("_", 1)[-1])
    return found


@dataclass(frozen=True, slots=True)
class Document:
    """A model's document as a read found it: its body (None when stale or absent) and revision."""

    model_id: int
    body: str | None
    revision: int


# A read waits this long at most for SQLite's write lock to store documents (a writer holds it).
SQLITE_STORE_WAIT_MS = 100


def store(documents: Sequence[tuple[int, int, str]], format_version: str) -> None:
    """Store bodies built by a read: ``(model_id, revision seen before reading the rows, body)``.

    A body is written only if its document is still at that revision (revision 0: still absent),
    so a write that committed since leaves its mark. One statement, which does not wait for
    writers: on PostgreSQL a document a writer's open transaction holds is skipped (SKIP LOCKED),
    on SQLite the write lock is awaited for ``SQLITE_STORE_WAIT_MS`` at most. Storing is an
    optimisation: a document not stored is built again by the next read that needs it.
    """
    if not documents:
        return
    rows = sorted(documents)  # the trigger's order: see _mark_stale
    parameters: list[int | str] = []
    for model_id, revision, body in rows:
        parameters += [model_id, body, format_version, revision]
    if connection.vendor == "postgresql":
        values = ", ".join(["(%s::bigint, %s::text, %s::varchar, %s::bigint)"] * len(rows))
        sql = (
            f"WITH incoming (model_id, body, format_version, revision) AS (VALUES {values}), "
            # The documents still at the revision the read saw, and not held by a writer right now.
            f"free AS (SELECT d.model_id FROM {TABLE} d JOIN incoming i "
            "ON i.model_id = d.model_id AND i.revision = d.revision "
            "ORDER BY d.model_id FOR UPDATE OF d SKIP LOCKED), "
            f"updated AS (UPDATE {TABLE} d SET body = i.body, format_version = i.format_version "
            "FROM incoming i JOIN free f ON f.model_id = i.model_id WHERE d.model_id = i.model_id) "
            # A document no write has created yet (revision 0): created unless a write did meanwhile.
            f"INSERT INTO {TABLE} (model_id, body, format_version, revision) "
            "SELECT model_id, body, format_version, 0 FROM incoming WHERE revision = 0 "
            "ON CONFLICT (model_id) DO NOTHING"
        )
    else:
        values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
        sql = (
            f"INSERT INTO {TABLE} (model_id, body, format_version, revision) VALUES {values} "
            "ON CONFLICT (model_id) DO UPDATE SET body = excluded.body, format_version = excluded.format_version "
            f"WHERE {TABLE}.revision = excluded.revision"
        )
    if connection.in_atomic_block:
        # The caller's transaction (a test's, a write's): its errors are the caller's; no savepoint
        # (two more queries) for a statement that conflicts only by design.
        with connection.cursor() as cursor:
            cursor.execute(sql, parameters)
        return
    try:
        with connection.cursor() as cursor, _short_sqlite_wait():
            cursor.execute(sql, parameters)
    except DatabaseError:
        pass  # autocommit: the statement alone failed, nothing else is lost


@contextlib.contextmanager
def _short_sqlite_wait() -> Iterator[None]:
    """SQLite's busy timeout cut to ``SQLITE_STORE_WAIT_MS`` meanwhile (a pragma of the connection, not a query)."""
    if connection.vendor != "sqlite":
        yield
        return
    raw = connection.connection
    (before,) = raw.execute("PRAGMA busy_timeout").fetchone()
    raw.execute(f"PRAGMA busy_timeout = {SQLITE_STORE_WAIT_MS}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(before)}")
