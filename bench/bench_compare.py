"""Benchmarks of Compare and of the dashboard's spend chart, against PostgreSQL (issue 23's figures).

- compare: 6 models with 30 days of usage each, ``BENCH_COMPARE_ROWS`` rows (default 10,000,000)
  in ``model_usage`` over 90 days across 100 models; the selector (``models_compare``), then
  ``GET /models/compare`` and the console's Compare page as whole requests (target: under 300 ms);
  the availability history a busy fleet would have (about 1.3 million status events, most of them
  a host loading and unloading each model every 10 minutes), and the availability rows alone;
- the dashboard (``GET /admin/`` as a superuser: every panel, the spend chart by model included)
  with its spend chart over 24 h (the default: target under 200 ms), 7 d and 30 d.

Runs in a schema of its own (``bench_compare_<pid>``) in BENCH_DATABASE_URL's database, dropped at
the end. The rows come from one ``INSERT ... SELECT generate_series`` statement, indexed as
migrated, then their hourly rollups are built as after a restore (``usage_rollups_rebuild``, a
day at a time); one record in 50 has no cost (uncosted), as usage without tokens or price would.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from environment import configure

configure(log_level="warning")
SCHEMA = f"bench_compare_{os.getpid()}"
os.environ["DB_SCHEMA"] = SCHEMA
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")
os.environ.setdefault("STATIC_MANIFEST", "false")  # the console's pages name static files
os.environ.pop("REDIS_URL", None)  # nothing here is cached: measure the database

import warnings  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

import django  # noqa: E402
import psycopg  # noqa: E402

warnings.filterwarnings("ignore", message="No directory at")

django.setup()

import scale  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from psycopg import sql  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402
from usage_load import build_rollups, restore_load  # noqa: E402

from registry.models import ModelStatusEvent, ModelType, Provider, RegisteredModel  # noqa: E402
from registry.selection.compare import models_compare  # noqa: E402
from registry.telemetry.availability import availability_shares  # noqa: E402

MODELS = 100
COMPARED = 6
ROWS = int(os.environ.get("BENCH_COMPARE_ROWS", "10000000"))
SPAN_DAYS = 90
RUNS = int(os.environ.get("BENCH_COMPARE_RUNS", "15"))
COMPARE_TARGET_MS = 300
DASHBOARD_TARGET_MS = 200


def ensure_database(url: str) -> None:
    """Create the benchmark database if it does not exist (the server must)."""
    parts = urlsplit(url)
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        name = parts.path.lstrip("/")
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_models() -> list[RegisteredModel]:
    return [
        RegisteredModel.objects.create(
            name=f"bench-{i}",
            display_name=f"Bench {i}",
            provider=Provider.OPENAI if i % 2 else Provider.OLLAMA,
            model_type=ModelType.CHAT,
            context_window=8192 * (1 + i % 16),
            input_cost_per_mtok=(i % 7) / 10 or None,
            output_cost_per_mtok=(i % 7) / 5 or None,
        )
        for i in range(MODELS)
    ]


def generate_usage(models: list[RegisteredModel]) -> float:
    """ROWS usage rows over the last SPAN_DAYS, interleaved across the models, indexed as migrated."""
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
                   CASE WHEN g %% 50 = 0 THEN NULL ELSE (g %% 1000) / 1000000.0 END
            FROM generate_series(1, %(rows)s) AS g
            """,
            {"first": first_id, "models": MODELS, "rows": ROWS, "span": SPAN_DAYS},
        )
    # The load bypassed the rollup trigger (session_replication_role): build the hours' rollups as a
    # restore would, a day at a time, so that the figures read what production reads.
    build_rollups(SPAN_DAYS)
    return time.perf_counter() - started


def generate_status_events(models: list[RegisteredModel]) -> float:
    """The availability history of a busy fleet over SPAN_DAYS: per model, a host loading and unloading
    it every 10 minutes (the runtime lane, which availability reads past), a status change every 6 hours
    and an error-rate alert opened or resolved every 12 hours."""
    first_id = min(m.pk for m in models)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for kind, every_minutes, states, origin, alert_kind in (
            ("runtime", 10, ("loaded", "unloaded"), "runtime", ""),
            ("status", 360, ("available", "unavailable"), "discovery", ""),
            ("alert", 720, ("opened", "resolved"), "alert_check", "error_rate"),
        ):
            cursor.execute(
                """
                INSERT INTO model_status_events (model_id, at, kind, state, alert_kind, origin, cause, actor)
                SELECT %(first)s + m, now() - (g * %(every)s + m) * interval '1 minute', %(kind)s,
                       CASE WHEN g %% 2 = 0 THEN %(even)s ELSE %(odd)s END, %(alert_kind)s, %(origin)s, 'bench', ''
                FROM generate_series(0, %(models)s - 1) AS m,
                     generate_series(0, %(span)s * 1440 / %(every)s) AS g
                """,
                {
                    "first": first_id,
                    "models": MODELS,
                    "span": SPAN_DAYS,
                    "every": every_minutes,
                    "kind": kind,
                    "even": states[0],
                    "odd": states[1],
                    "origin": origin,
                    "alert_kind": alert_kind,
                },
            )
        cursor.execute("VACUUM (ANALYZE) model_status_events")
    return time.perf_counter() - started


def median_ms(run: Callable[[], Any], runs: int = RUNS) -> float:
    # One warm-up run: plans, connection, the first page's template.
    return scale.median_ms(run, runs=runs, warmup=1)


def verdict(ms: float, target: int) -> str:
    return f"target < {target} ms: {'met' if ms < target else 'NOT MET'}"


def checked(client: Client, path: str, query: dict[str, str] | None = None) -> Callable[[], Any]:
    response = client.get(path, query or {})
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.content[:300]!r}")
    return lambda: client.get(path, query or {})


def main() -> int:
    try:
        ensure_database(os.environ["DATABASE_URL"])
        call_command("migrate", verbosity=0, interactive=False)
    except Exception as exc:
        print(f"bench_compare: cannot prepare the database: {exc}", file=sys.stderr)
        return 2
    try:
        models = setup_models()
        seconds = generate_usage(models)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM model_usage")
            row = cursor.fetchone()
            total = int(row[0]) if row else 0
        print(f"bench_compare: generated {total:,} usage rows in {seconds:.1f} s", file=sys.stderr)
        event_seconds = generate_status_events(models)
        events = ModelStatusEvent.objects.count()
        print(f"bench_compare: generated {events:,} status events in {event_seconds:.1f} s", file=sys.stderr)
        scale = f"{total:,} rows in model_usage over {SPAN_DAYS} days, {MODELS} models"

        compared = models[:COMPARED]
        comparison = models_compare(compared)
        month = next(row for row in comparison.rows if row.key == "requests_30d")
        selector_ms = median_ms(lambda: models_compare(compared))
        print(
            f"compare (selector), {COMPARED} models: {selector_ms:.0f} ms median "
            f"({verdict(selector_ms, COMPARE_TARGET_MS)}; {sum(month.values):,} requests in their 30 days; {scale})"
        )

        ids = [model.pk for model in compared]
        availability_ms = median_ms(lambda: availability_shares(ids, comparison.windows))
        print(
            f"compare's availability rows (availability_shares), {COMPARED} models x 3 windows: "
            f"{availability_ms:.0f} ms median (part of the selector's figure; {events:,} status events "
            f"over {SPAN_DAYS} days, {MODELS} models)"
        )

        viewer = User.objects.create(username="bench-viewer")
        viewer.groups.add(Group.objects.get(name="viewer"))
        api = Client(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(viewer)}")
        refs = ",".join(model.name for model in compared)
        api_ms = median_ms(checked(api, "/models/compare", {"models": refs}))
        print(f"compare (GET /models/compare): {api_ms:.0f} ms median ({verdict(api_ms, COMPARE_TARGET_MS)})")

        console = Client()
        console.force_login(User.objects.create(username="bench-admin", is_staff=True, is_superuser=True))
        page_ms = median_ms(checked(console, "/admin/compare/", {"models": refs}))
        page_verdict = verdict(page_ms, COMPARE_TARGET_MS)
        print(f"compare (console page /admin/compare/): {page_ms:.0f} ms median ({page_verdict})")

        for spend_range in ("24h", "7d", "30d"):
            ms = median_ms(checked(console, "/admin/", {"spend": spend_range}))
            target = f"; {verdict(ms, DASHBOARD_TARGET_MS)}" if spend_range == "24h" else ""
            print(f"dashboard with the spend chart over {spend_range} (GET /admin/): {ms:.0f} ms median{target}")
    finally:
        if os.environ.get("BENCH_KEEP_SCHEMA"):
            print(f"bench_compare: kept schema {SCHEMA} (BENCH_KEEP_SCHEMA); drop it when done", file=sys.stderr)
        else:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    return 0


if __name__ == "__main__":
    sys.exit(main())
