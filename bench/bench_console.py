"""Benchmark of the console's target: the dashboard and a model's charts with 10,000,000 usage rows.

Target: the dashboard (the admin index: models by provider and status, sources' last runs, open
alerts, the last 24 hours of usage by model and hour) answers in well under a second; a model's page
with its 30-day charts too. Measured through the test client as a logged-in superuser, so the
figure is the whole request: session, permissions, selectors, template and SVG.

Uses bench_api's data: 10,000,000 rows over 90 days across 100 models, in a schema of its own that
is dropped at the end (BENCH_USAGE_ROWS changes the count).
"""

from __future__ import annotations

import os
import sys

# Admin pages name static files; the manifest of production's storage needs collectstatic first.
os.environ.setdefault("STATIC_MANIFEST", "false")

from bench_api import ROWS, SCHEMA, ensure_database, generate_usage, median_ms, setup_models  # sets up Django
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

RUNS = 15
TARGET_MS = 1000


def main() -> int:
    try:
        ensure_database(os.environ["DATABASE_URL"])
        call_command("migrate", verbosity=0, interactive=False)
    except Exception as exc:
        print(f"bench_console: cannot prepare the database: {exc}", file=sys.stderr)
        return 2
    try:
        models = setup_models()
        seconds = generate_usage(models)
        print(f"bench_console: generated {ROWS:,} usage rows in {seconds:.1f} s", file=sys.stderr)
        client = Client()
        client.force_login(User.objects.create(username="bench-admin", is_staff=True, is_superuser=True))
        pages = {
            "dashboard (GET /admin/)": "/admin/",
            "model page, 30-day charts": f"/admin/registry/registeredmodel/{models[0].pk}/change/?range=30d",
            "usage list, first page": "/admin/registry/modelusage/",
        }
        for label, path in pages.items():
            response = client.get(path)
            if response.status_code != 200:
                print(f"bench_console: {path} answered {response.status_code}", file=sys.stderr)
                return 2
            with CaptureQueriesContext(connection) as queries:
                client.get(path)
            ms = median_ms(lambda path=path: client.get(path), runs=RUNS)
            verdict = "met" if ms < TARGET_MS else "MISSED"
            print(
                f"console {label}: {ms:.0f} ms median, {len(queries)} queries "
                f"({verdict}: < {TARGET_MS} ms; {ROWS:,} usage rows)"
            )
    finally:
        cache.clear()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    return 0


if __name__ == "__main__":
    sys.exit(main())
