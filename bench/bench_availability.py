"""Benchmark: a model's availability history, read over 7 and 90 days with a busy host's worth of events.

On PostgreSQL, 100 models with 90 days of history each: a status change every 6 hours and an Ollama
host loading or unloading the model every 10 minutes (13,320 events a model, 1,332,000 in
``model_status_events``, inserted by one ``INSERT ... SELECT generate_series``). Measures, median
milliseconds over ``BENCH_AVAILABILITY_REPEATS`` (default 15):

- the selector ``registry.telemetry.availability.availability(model_id, start, end)`` (what the
  Compare page calls per model), over 7 and 90 days;
- ``GET /models/{ref}/availability`` over 7 and 90 days (JWT check, serialization and all);
- the model's console page with its 90-day timeline (``?availability=90d``) and without usage charts.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/registry_bench .venv/bin/python bench/bench_availability.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta

from environment import ROOT, configure, use_bench_redis_only

DATABASE_URL = configure(log_level="error")
use_bench_redis_only()
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")
os.environ.setdefault("STATIC_MANIFEST", "false")

MODELS = 100
DAYS = 90
REPEATS = int(os.environ.get("BENCH_AVAILABILITY_REPEATS", "15"))

sys.path.insert(0, str(ROOT / "bench"))
from bench_discovery import ensure_database  # noqa: E402


def median_ms(call: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    try:
        ensure_database(DATABASE_URL)
    except Exception as exc:
        print(f"bench_availability: cannot reach the benchmark database {DATABASE_URL}: {exc}", file=sys.stderr)
        return 1

    import warnings

    import django

    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()

    from auditlog.context import disable_auditlog
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import AccessToken

    from discovery.models import ProviderSource, SourceKind
    from registry.models import ModelStatusEvent, ModelType, Provider, RegisteredModel
    from registry.telemetry.availability import availability

    call_command("migrate", verbosity=0, interactive=False)
    prefix = f"bench-av-{os.getpid()}"
    now = timezone.now().replace(microsecond=0)
    with disable_auditlog():
        host = ProviderSource.objects.create(
            name=prefix, kind=SourceKind.OLLAMA, base_url="http://127.0.0.1:9", runtime_poll_seconds=0
        )
        models = RegisteredModel.objects.bulk_create(
            RegisteredModel(
                name=f"{prefix}-{i:03d}", display_name="m", provider=Provider.OLLAMA, model_type=ModelType.CHAT
            )
            for i in range(MODELS)
        )
        admin = User.objects.create_superuser(f"{prefix}-admin", password=None)
    table = ModelStatusEvent._meta.db_table
    ids = [model.pk for model in models]
    try:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            # Status every 6 hours (available, unavailable in turn); runtime every 10 minutes (loaded, unloaded).
            for step, kind, states, origin in (
                ("6 hours", "status", ("available", "unavailable"), "discovery"),
                ("10 minutes", "runtime", ("loaded", "unloaded"), "runtime"),
            ):
                cursor.execute(
                    f"""
                    INSERT INTO {table} (model_id, at, kind, state, alert_kind, origin, cause, actor, source_id)
                    SELECT m, t, %s, CASE WHEN n %% 2 = 0 THEN %s ELSE %s END, '', %s, 'bench', '', %s
                    FROM unnest(%s::bigint[]) AS m,
                         generate_series(%s::timestamptz, %s::timestamptz, %s::interval) WITH ORDINALITY AS g(t, n)
                    """,  # noqa: S608 (the table name is the model's, the values parameters)
                    [kind, *states, origin, host.pk, ids, now - timedelta(days=DAYS), now, step],
                )
            cursor.execute(f"ANALYZE {table}")
        rows = ModelStatusEvent.objects.filter(model_id__in=ids).count()
        seed_seconds = time.perf_counter() - started

        model = models[MODELS // 2]
        week, quarter = (now - timedelta(days=7), now), (now - timedelta(days=DAYS), now)
        assert len(availability(model.pk, *quarter).runtime) > 10_000
        selector_week = median_ms(lambda: availability(model.pk, *week))
        selector_quarter = median_ms(lambda: availability(model.pk, *quarter))

        api = Client()
        header = {"Authorization": f"Bearer {AccessToken.for_user(admin)}"}
        path = f"/models/{model.pk}/availability"

        def get(query: dict[str, str]) -> None:
            response = api.get(path, query, headers=header)
            assert response.status_code == 200, response.status_code

        api_week = median_ms(lambda: get({}))
        api_quarter = median_ms(lambda: get({"from": quarter[0].isoformat().replace("+00:00", "Z")}))

        console = Client()
        console.force_login(admin)
        page = f"/admin/registry/registeredmodel/{model.pk}/change/?availability=90d"
        assert console.get(page).status_code == 200
        page_quarter = median_ms(lambda: console.get(page))

        print(f"seeded {rows:,} status events ({MODELS} models x {DAYS} days) in {seed_seconds:.1f} s")
        print(f"selector availability(): 7 days {selector_week:.1f} ms, 90 days {selector_quarter:.1f} ms")
        print(f"GET /models/{{ref}}/availability: 7 days {api_week:.1f} ms, 90 days {api_quarter:.1f} ms")
        print(f"console: a model's page with its 90-day timeline: {page_quarter:.1f} ms (each a median of {REPEATS})")
        return 0
    finally:
        with disable_auditlog():
            RegisteredModel.objects.filter(name__startswith=prefix).delete()
            ProviderSource.objects.filter(name=prefix).delete()
            User.objects.filter(username__startswith=prefix).delete()


if __name__ == "__main__":
    sys.exit(main())
