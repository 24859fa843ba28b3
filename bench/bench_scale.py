"""Scale benchmark (``make bench-scale``): usage statistics, ingestion and retention at platform size.

On PostgreSQL, in a database of its own (``BENCH_SCALE_DATABASE_URL``, default
``postgresql://postgres@127.0.0.1:5432/bench_scale``, dropped and created; dropped again at the end
unless ``BENCH_SCALE_KEEP=1``; ``BENCH_SCALE_REUSE=1`` measures a kept pair again without loading
them): 200 models, the busiest holding 40 % of the rows, and
``BENCH_SCALE_ROWS`` usage rows (default 100,000,000) over 90 days, generated server-side
(``INSERT ... SELECT generate_series``, loaded as a restore is: secondary indexes dropped and
rebuilt), then their hourly rollups built (``usage_rollups_rebuild``, a day at a time).

A 1,000,000-row dataset of the same shape is built first in a database of its own (the URL's name
+ ``_small``), kept until the end: the 30-day summary's goal is both an absolute time and a ratio
to the small scale, measured in rounds alternating between the two databases (one ratio a round,
so that the machine's drifting load falls on both alike).
Then each module of ``FIGURE_MODULES`` (bench/scale/) measures its figures and prints one line each:
``FIGURE <name>: <measured> (goal <goal>) ok|MISSED``. Not a test: figures go to docs/BENCHMARKS.md.
Redis: ``BENCH_REDIS_URL`` if set (``make bench-scale REDISDB=n`` sets it), else none.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from environment import configure, use_bench_redis_only

os.environ.setdefault(
    "BENCH_DATABASE_URL", os.environ.get("BENCH_SCALE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_scale")
)
DATABASE_URL = configure(log_level="warning")
use_bench_redis_only()
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")
os.environ.setdefault("STATIC_MANIFEST", "false")  # the console's pages without collectstatic

import warnings  # noqa: E402

import django  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

warnings.filterwarnings("ignore", message="No directory at")  # whitenoise, collectstatic not run
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from scale import ScaleContext, database, median_ms  # noqa: E402
from usage_load import build_rollups as build_usage_rollups  # noqa: E402
from usage_load import restore_load  # noqa: E402

from registry.models import ModelType, Provider, RegisteredModel  # noqa: E402
from registry.telemetry.selectors import usage_summary  # noqa: E402

# The figure modules, in order; each exposes figures(context) -> Iterator[Figure]. Append yours.
FIGURE_MODULES: list[str] = ["scale.rollup"]

MODELS = 200
BUSIEST_SHARE = 0.4
SPAN_DAYS = 90
ROWS = int(os.environ.get("BENCH_SCALE_ROWS", "100000000"))
SMALL_ROWS = 1_000_000
CHUNK_ROWS = 5_000_000  # rows per INSERT statement: progress, and bounded transactions


def log(message: str) -> None:
    print(f"bench_scale: {message}", file=sys.stderr, flush=True)


def recreate_database(url: str) -> None:
    parts = urlsplit(url)
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    name = parts.path.lstrip("/")
    if name in {"postgres", "test", "registry_smoke"}:
        raise SystemExit(f"bench_scale: refusing to recreate the database {name!r}")
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    connection.close()
    parts = urlsplit(url)
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(parts.path.lstrip("/"))))


def create_models() -> list[RegisteredModel]:
    """MODELS models, the busiest first."""
    return RegisteredModel.objects.bulk_create(
        RegisteredModel(
            name=f"scale-{i:03d}", display_name=f"Scale {i}", provider=Provider.OLLAMA, model_type=ModelType.CHAT
        )
        for i in range(MODELS)
    )


def load_usage(models: list[RegisteredModel], rows: int) -> float:
    """Replace model_usage with ``rows`` rows over the last SPAN_DAYS, in time order as they arrive; seconds.

    Every fifth row in two goes to the busiest model (40 %), the others round the other 199. Latency
    is log-normal-ish (a product of uniforms), tokens vary, 2 % of the records are errors, every
    record is costed. Secondary indexes are dropped for the load and rebuilt from their definitions.
    """
    ids = [m.pk for m in models]
    names = [m.name for m in models]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE model_usage, model_usage_rollup")
    now = timezone.now()
    with restore_load(SPAN_DAYS, log=log) as cursor:
        for first in range(0, rows, CHUNK_ROWS):
            last = min(rows, first + CHUNK_ROWS)
            cursor.execute(
                """
                INSERT INTO model_usage (model_id, model_name, timestamp, token_count, input_tokens, output_tokens,
                                         request_count, average_latency, error_count, cost, cost_source)
                SELECT (%(ids)s::int[])[m + 1], (%(names)s::text[])[m + 1],
                       %(now)s - ((%(rows)s - g)::double precision / %(rows)s) * %(span)s * interval '1 day',
                       i + o, i, o, 1,
                       0.05 * exp(3.0 * random() * random() + random()),
                       (random() < 0.02)::int,
                       round((i * 2.5 + o * 10) / 1000000.0, 6), 'computed'
                FROM (
                    SELECT g,
                           CASE WHEN g %% 5 < 2 THEN 0 ELSE 1 + (g %% 199) END AS m,
                           200 + (random() * 2000)::int AS i,
                           50 + (random() * 800)::int AS o
                    FROM generate_series(%(first)s, %(last)s - 1) AS g
                ) AS generated
                """,
                {
                    "ids": ids,
                    "names": names,
                    "now": now,
                    "rows": rows,
                    "span": SPAN_DAYS,
                    "first": first,
                    "last": last,
                },
            )
            log(f"{last:,} of {rows:,} rows loaded ({time.perf_counter() - started:.0f} s)")
    return time.perf_counter() - started


def build_rollups() -> float:
    """The rollups of every hour of the load, a day per statement; seconds."""
    started = time.perf_counter()
    build_usage_rollups(SPAN_DAYS)
    return time.perf_counter() - started


def summary_ms(model: RegisteredModel) -> float:
    end = timezone.now()
    start = end - timedelta(days=30)
    return median_ms(lambda: usage_summary(model_id=model.pk, bucket="hour", start=start, end=end))


def scale_context(models: list[RegisteredModel], superuser: User, small_url: str) -> ScaleContext:
    """What the figure modules share; without a small dataset (a run at 1,000,000 rows or fewer),
    the summary's own time is the baseline its ratio is taken to."""
    context = ScaleContext(
        database_url=DATABASE_URL,
        rows=ROWS,
        models=models,
        now=timezone.now(),
        span_days=SPAN_DAYS,
        superuser=superuser,
        small_database_url=small_url if ROWS > SMALL_ROWS else None,
    )
    if context.small_database_url is None:
        context.baseline["summary_ms"] = summary_ms(models[0])
    return context


def build(small_url: str) -> ScaleContext:
    """Both databases from scratch: migrated, the models, the usage and its rollups."""
    recreate_database(DATABASE_URL)
    recreate_database(small_url)
    call_command("migrate", verbosity=0, interactive=False)
    models = create_models()
    superuser = User.objects.create(username="bench-scale-admin", is_staff=True, is_superuser=True)
    if ROWS > SMALL_ROWS:
        with database(small_url):
            call_command("migrate", verbosity=0, interactive=False)
            small_models = create_models()
            seconds = load_usage(small_models, SMALL_ROWS) + build_rollups()
        if [m.pk for m in small_models] != [m.pk for m in models]:
            raise SystemExit("bench_scale: the two databases' models must have the same ids")
        log(f"{SMALL_ROWS:,} rows and rollups in {seconds:.0f} s, in {small_url} (kept until the end)")
    seconds = load_usage(models, ROWS)
    log(f"{ROWS:,} rows loaded in {seconds:.0f} s")
    seconds = build_rollups()
    log(f"rollups built in {seconds:.0f} s")
    return scale_context(models, superuser, small_url)


def reused(small_url: str) -> ScaleContext:
    """The databases a run kept (BENCH_SCALE_KEEP), measured again as they are (BENCH_SCALE_REUSE).

    The figures change what they measure (retention drops the oldest day, ingestion adds records),
    and the data ends when it was loaded: a second run measures a slightly different table.
    """
    log(f"reusing {DATABASE_URL} ({ROWS:,} rows as loaded) and {small_url}")
    models = list(RegisteredModel.objects.order_by("pk"))
    return scale_context(models, User.objects.get(username="bench-scale-admin"), small_url)


def main() -> int:
    parts = urlsplit(DATABASE_URL)
    small_url = urlunsplit(parts._replace(path=parts.path + "_small"))
    failed = False
    try:
        context = reused(small_url) if os.environ.get("BENCH_SCALE_REUSE") else build(small_url)
        for module_name in FIGURE_MODULES:
            module = importlib.import_module(module_name)
            for figure in module.figures(context):
                print(figure.line(), flush=True)
                failed |= not figure.ok
    finally:
        if os.environ.get("BENCH_SCALE_KEEP"):
            log(f"kept the databases ({DATABASE_URL} and {small_url}; BENCH_SCALE_KEEP): drop them when done")
        else:
            drop_database(DATABASE_URL)
            drop_database(small_url)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
