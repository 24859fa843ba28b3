"""Querysets of the hot read paths compiled to SQL once, then run again with the values that change.

A cache miss of a read runs a handful of small queries (the models, recent usage, the chain's
evidence, runtime and endpoints). For each, Django spends longer building and compiling the
queryset than PostgreSQL spends answering it (0.6 of 0.9 ms for ten models' runtime rows,
measured). The shape of each query is fixed by a few things (the capabilities asked for, a
limit); what changes from request to request is a parameter or two: a list of model ids, the
start of a window. So on PostgreSQL ``rows`` compiles the queryset once per shape and reruns its
SQL with the new values, applying the same converters Django would (decryption, JSON). Other
databases run the queryset as it is: SQLite is the embedded default, not the fast path.

The values that change are found in the compiled parameters by identity: ``build`` must pass
each of them to the ORM as one parameter, unchanged (a datetime to a lookup, a list of ids through
``selectors.ids_in``, whose array is one parameter on PostgreSQL). When one is not found exactly
once, the query is not compiled ahead and runs as a queryset every time: slower, never wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import QuerySet

# Shapes are few (one per query and capability list); the bound only stops an unbounded variety
# of capability lists from growing a worker's memory.
MAX_SHAPES = 512


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    positions: tuple[int, ...]  # where each of the changing values goes in ``params``
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]  # (column, converters, expression)


_compiled: dict[Hashable, _Compiled | None] = {}


def _compile(queryset: QuerySet[Any, Any], values: Sequence[Any]) -> _Compiled | None:
    compiler = queryset.query.get_compiler(using=queryset.db)
    sql, params = compiler.as_sql()
    positions = []
    for value in values:
        found = [index for index, param in enumerate(params) if param is value]
        if len(found) != 1:
            return None
        positions.append(found[0])
    selected = [select[0] for select in compiler.select[: compiler.col_count]]
    converters = tuple(
        (column, tuple(functions), expression)
        for column, (functions, expression) in compiler.get_converters(selected).items()
    )
    return _Compiled(sql, tuple(params), tuple(positions), converters)


def _fetch(
    key: Hashable, build: Callable[..., QuerySet[Any, Any]], values: Sequence[Any]
) -> tuple[list[str], list[tuple[Any, ...]]] | None:
    """The column names and converted rows of the compiled query of ``key``; None where it runs as a queryset."""
    if connection.vendor != "postgresql":
        return None
    if key not in _compiled:
        if len(_compiled) >= MAX_SHAPES:
            _compiled.clear()
        _compiled[key] = _compile(build(*values), values)
    compiled = _compiled[key]
    if compiled is None:
        return None
    params = list(compiled.params)
    for position, value in zip(compiled.positions, values, strict=True):
        params[position] = value
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, params)
        columns = [column.name for column in cursor.description]
        fetched = cursor.fetchall()
    if not compiled.converters:
        return columns, fetched
    converted = []
    for row in fetched:
        cells = list(row)
        for column, functions, expression in compiled.converters:
            value = cells[column]
            for function in functions:
                value = function(value, expression, connection)
            cells[column] = value
        converted.append(tuple(cells))
    return columns, converted


def rows(key: Hashable, build: Callable[..., QuerySet[Any, Any]], *values: Any) -> list[tuple[Any, ...]]:
    """The rows of ``build(*values)``, a ``values_list`` queryset, as tuples; its SQL compiled once per ``key``.

    ``key`` names everything that shapes the query besides ``values`` (which capabilities, which
    limit): two calls with the same key must build the same SQL.
    """
    fetched = _fetch(key, build, values)
    return [tuple(row) for row in build(*values)] if fetched is None else fetched[1]


def dict_rows(key: Hashable, build: Callable[..., QuerySet[Any, Any]], *values: Any) -> list[dict[str, Any]]:
    """The rows of ``build(*values)``, a ``values()`` queryset, as dicts; its SQL compiled once per ``key``."""
    fetched = _fetch(key, build, values)
    if fetched is None:
        return list(build(*values))
    columns, found = fetched
    return [dict(zip(columns, row, strict=True)) for row in found]
