"""Benchmarks of the REST API's usage targets, against PostgreSQL.

- usage ingestion: records per second through ``services.usage_record_batch`` in batches of 1,000
  (target: at least 20,000/s), with reported costs and with costs computed from dated prices;
- usage statistics: median time of one model's 30 days in hourly buckets with 10,000,000 rows in
  ``model_usage`` spread over 100 models (target: under 50 ms), through the selector and through
  ``GET /models/{ref}/usage`` (JWT check, serialization and all);
- the console on the same data (``console_pages.py``): the dashboard, a model's 30-day charts and
  the usage list, each well under a second.

Runs in a schema of its own (``bench_api_<pid>``) in BENCH_DATABASE_URL's database, dropped at the
end, so it neither sees nor leaves anything behind. The 10,000,000 rows come from one
``INSERT ... SELECT generate_series`` statement.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from environment import configure

configure(log_level="warning")
SCHEMA = f"bench_api_{os.getpid()}"
os.environ["DB_SCHEMA"] = SCHEMA
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")
# The console's pages name static files; production's manifest storage would need collectstatic first.
os.environ.setdefault("STATIC_MANIFEST", "false")
os.environ.pop("REDIS_URL", None)  # statistics are not cached: measure the database, not a cache

import warnings  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

import django  # noqa: E402
import psycopg  # noqa: E402

# The test client runs whitenoise, which warns when collectstatic has not run; not a benchmark matter.
warnings.filterwarnings("ignore", message="No directory at")

django.setup()

from console_pages import console_figures  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402
from psycopg import sql  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402
from usage_load import build_rollups, restore_load  # noqa: E402

from registry.catalog.prices import price_set  # noqa: E402
from registry.models import ModelType, Provider, RegisteredModel  # noqa: E402
from registry.telemetry.selectors import usage_summary  # noqa: E402
from registry.telemetry.services import usage_record_batch  # noqa: E402

MODELS = 100
ROWS = int(os.environ.get("BENCH_USAGE_ROWS", "10000000"))
SPAN_DAYS = 90
INGEST_BATCHES = 100
BATCH_SIZE = 1000
QUERY_RUNS = 30


def setup_models() -> list[RegisteredModel]:
    return RegisteredModel.objects.bulk_create(
        RegisteredModel(
            name=f"bench-{i}", display_name=f"Bench {i}", provider=Provider.OLLAMA, model_type=ModelType.CHAT
        )
        for i in range(MODELS)
    )


def bench_ingestion(model: RegisteredModel, *, computed: bool = False) -> float:
    """Records per second; ``computed``: records without a cost, costed at the model's dated prices."""
    now = timezone.now()
    if computed:
        # Two prices, so that each record's price in force is looked up, not the only one.
        price_set(
            model=model,
            input_per_mtok=Decimal("2"),
            output_per_mtok=Decimal("8"),
            effective_from=now - timedelta(days=3),
        )
        price_set(
            model=model,
            input_per_mtok=Decimal("3"),
            output_per_mtok=Decimal("9"),
            effective_from=now - timedelta(hours=6),
        )
    cost: dict[str, Any] = {"input_tokens": 80, "output_tokens": 20} if computed else {"cost": "0.000150"}
    batches = [
        [
            {
                "timestamp": now - timedelta(seconds=b * BATCH_SIZE + i),
                **({} if computed else {"token_count": 100 + i}),
                "request_count": 1,
                "average_latency": 0.25,
                "error_count": int(i % 50 == 0),
                **cost,
            }
            for i in range(BATCH_SIZE)
        ]
        for b in range(INGEST_BATCHES)
    ]
    started = time.perf_counter()
    for batch in batches:
        usage_record_batch(model=model, records=batch)
    elapsed = time.perf_counter() - started
    return INGEST_BATCHES * BATCH_SIZE / elapsed


def generate_usage(models: list[RegisteredModel]) -> float:
    """ROWS usage rows over the last SPAN_DAYS, interleaved across the models as live traffic would be.

    Loaded as a restore would: the table's secondary indexes are dropped, the rows inserted by one
    statement without per-row foreign-key triggers (the ids are the bench's own models), and the
    indexes rebuilt from their own definitions, so the measured table is indexed exactly as migrated.
    """
    first_id = min(m.pk for m in models)
    started = time.perf_counter()
    with restore_load(SPAN_DAYS) as cursor:
        cursor.execute(
            """
            INSERT INTO model_usage
                (model_id, model_name, timestamp, token_count, request_count, average_latency, error_count, cost)
            SELECT %(first)s + g %% %(models)s,
                   'bench-' || (g %% %(models)s),
                   now() - (g::double precision / %(rows)s) * %(span)s * interval '1 day',
                   100 + g %% 900,
                   1 + g %% 3,
                   0.05 + (g %% 1000) / 1000.0,
                   (g %% 97 = 0)::int,
                   (g %% 1000) / 1000000.0
            FROM generate_series(1, %(rows)s) AS g
            """,
            {"first": first_id, "models": MODELS, "rows": ROWS, "span": SPAN_DAYS},
        )
    # The load bypassed the rollups' trigger (replica role): build them, a day at a time, as a restore would.
    build_rollups(SPAN_DAYS)
    return time.perf_counter() - started


def median_ms(run: object, runs: int = QUERY_RUNS) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def ensure_database(url: str) -> None:
    """Create the benchmark database if it does not exist (the server must)."""
    parts = urlsplit(url)
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        name = parts.path.lstrip("/")
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def main() -> int:
    try:
        ensure_database(os.environ["DATABASE_URL"])
        call_command("migrate", verbosity=0, interactive=False)
    except Exception as exc:
        print(f"bench_api: cannot prepare the database: {exc}", file=sys.stderr)
        return 2
    try:
        models = setup_models()
        rate = bench_ingestion(models[0])
        print(f"usage ingestion: {rate:,.0f} records/s (target >= 20,000 records/s; batches of {BATCH_SIZE})")
        rate = bench_ingestion(models[1], computed=True)
        print(f"usage ingestion, cost computed from dated prices: {rate:,.0f} records/s (target >= 20,000 records/s)")

        seconds = generate_usage(models)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM model_usage")
            row = cursor.fetchone()
            total = int(row[0]) if row else 0
        print(f"bench_api: generated {total:,} usage rows in {seconds:.1f} s", file=sys.stderr)

        model = models[MODELS // 2]
        end = timezone.now()
        start = end - timedelta(days=30)
        summary = usage_summary(model_id=model.pk, bucket="hour", start=start, end=end)
        buckets = len(summary["buckets"])
        selector_ms = median_ms(lambda: usage_summary(model_id=model.pk, bucket="hour", start=start, end=end))
        print(
            f"usage statistics (selector): {selector_ms:.1f} ms median "
            f"(target < 50 ms; 30 days, {buckets} hourly buckets, {summary['totals']['requests']:,} requests, "
            f"{total:,} rows in the table)"
        )

        user = User.objects.create(username="bench-viewer")
        user.groups.add(Group.objects.get(name="viewer"))
        client = Client(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
        query = {"bucket": "hour", "from": start.isoformat(), "to": end.isoformat()}
        response = client.get(f"/models/{model.name}/usage", query)
        if response.status_code != 200:
            print(f"bench_api: GET usage answered {response.status_code}", file=sys.stderr)
            return 2
        api_ms = median_ms(lambda: client.get(f"/models/{model.name}/usage", query))
        print(f"usage statistics (GET /models/{{ref}}/usage): {api_ms:.1f} ms median (target < 50 ms)")
        for line in console_figures(models, rows=total):
            print(line)
    finally:
        cache.clear()
        if os.environ.get("BENCH_KEEP_SCHEMA"):
            print(f"bench_api: kept schema {SCHEMA} (BENCH_KEEP_SCHEMA); drop it when done", file=sys.stderr)
        else:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    return 0


if __name__ == "__main__":
    sys.exit(main())
