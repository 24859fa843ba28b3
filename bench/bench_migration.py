"""How long migrations 0018 (model_usage partitioned by day) and 0019 take on an install that has rows.

In a database of its own (``BENCH_MIGRATION_DATABASE_URL``, default
``postgresql://postgres@127.0.0.1:5432/bench_migration``, dropped and created, dropped again at
the end): migrate to 0017, load ``BENCH_MIGRATION_ROWS`` usage rows (default 10,000,000) over 90
days across 20 models (a tenth of them with a request id), then time ``migrate registry 0018``,
whose PostgreSQL step renames the table, attaches it as the legacy partition (one scan for the
bound) and builds its indexes; then ``migrate registry 0019`` (each rollup's first and last
record, from the raw rows). Prints one line per figure; not a test (docs/BENCHMARKS.md).

    .venv/bin/python bench/bench_migration.py
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from urllib.parse import urlsplit, urlunsplit

from environment import configure, use_bench_redis_only

os.environ.setdefault(
    "BENCH_DATABASE_URL",
    os.environ.get("BENCH_MIGRATION_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_migration"),
)
DATABASE_URL = configure(log_level="warning")
use_bench_redis_only()

import django  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

ROWS = int(os.environ.get("BENCH_MIGRATION_ROWS", "10000000"))
MODELS = 20
SPAN_DAYS = 90


def admin_execute(statement: sql.Composed) -> None:
    parts = urlsplit(DATABASE_URL)
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(statement)


def database_name() -> str:
    name = urlsplit(DATABASE_URL).path.lstrip("/")
    if name in {"postgres", "test", "registry_smoke"}:
        raise SystemExit(f"bench_migration: refusing to recreate the database {name!r}")
    return name


def load() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO models (name, display_name, provider, model_type, status, details, operator_fields, "
            "created_at, updated_at) SELECT 'migration-' || g, 'Migration ' || g, 'ollama', 'chat', 'available', "
            "'{}', '{}', now(), now() FROM generate_series(1, %s) g",
            [MODELS],
        )
        cursor.execute("SELECT array_agg(id ORDER BY id), array_agg(name ORDER BY id) FROM models")
        ids, names = cursor.fetchone()
        cursor.execute("ALTER TABLE model_usage DISABLE TRIGGER model_usage_rollup_add")  # built once, below
        cursor.execute(
            """
            INSERT INTO model_usage (model_id, model_name, "timestamp", token_count, input_tokens, output_tokens,
                                     request_count, average_latency, error_count, cost, cost_source, request_id)
            SELECT (%(ids)s::bigint[])[g %% %(models)s + 1], (%(names)s::text[])[g %% %(models)s + 1],
                   %(now)s - ((%(rows)s - g)::double precision / %(rows)s) * %(span)s * interval '1 day',
                   300, 200, 100, 1, 0.5, 0, 0.001, 'computed',
                   CASE WHEN g %% 10 = 0 THEN 'req-' || g END
            FROM generate_series(1, %(rows)s) AS g
            """,
            {"ids": ids, "names": names, "models": MODELS, "now": timezone.now(), "rows": ROWS, "span": SPAN_DAYS},
        )
        cursor.execute("ALTER TABLE model_usage ENABLE TRIGGER model_usage_rollup_add")
        # The rollups as 0017 builds them for existing rows (0019 then fills their first and last record).
        rollups = importlib.import_module("registry.migrations.0017_usage_rollups")
        cursor.execute(rollups.BUILD_SQL, [rollups.GAMMA])
        cursor.execute("VACUUM (ANALYZE) model_usage")


def main() -> int:
    name = database_name()
    admin_execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        call_command("migrate", "registry", "0017", verbosity=0, interactive=False)
        started = time.perf_counter()
        load()
        print(f"bench_migration: {ROWS:,} rows loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        started = time.perf_counter()
        call_command("migrate", "registry", "0018", verbosity=0, interactive=False)
        seconds = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM model_usage")
            (kept,) = cursor.fetchone()
            cursor.execute("SELECT count(*) FROM model_usage_request_ids")
            (request_ids,) = cursor.fetchone()
        print(
            f"FIGURE migration_0018: {seconds:.1f} s for {ROWS:,} rows "
            f"({kept:,} kept in the legacy partition, {request_ids:,} request ids copied)",
            flush=True,
        )
        # The next one reads every raw row too: each existing rollup's first and last record.
        started = time.perf_counter()
        call_command("migrate", "registry", "0019", verbosity=0, interactive=False)
        print(f"FIGURE migration_0019: {time.perf_counter() - started:.1f} s for {ROWS:,} rows", flush=True)
    finally:
        connection.close()
        admin_execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
