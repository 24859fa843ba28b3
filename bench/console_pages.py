"""The console's target, measured by bench_api.py on its data: pages with 10,000,000 usage rows.

Target: the dashboard (the admin index: models by provider and status, sources' last runs, open
alerts, the last 24 hours of usage by model and hour) answers in well under a second; a model's page
with its 30-day charts and the usage list too. Measured through the test client as a logged-in
superuser, so the figure is the whole request: session, permissions, selectors, template and SVG.
Not a ``bench_*.py`` of its own: it needs the 10,000,000 rows bench_api.py has just generated.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from django.contrib.auth.models import User
from django.test import Client

from registry.models import RegisteredModel

RUNS = 15
TARGET_MS = 1000


def console_figures(models: Sequence[RegisteredModel], *, rows: int) -> list[str]:
    """One line a page: its median time over RUNS requests and whether it meets the target."""
    client = Client()
    client.force_login(User.objects.create(username="bench-console-admin", is_staff=True, is_superuser=True))
    pages = {
        "dashboard (GET /admin/)": "/admin/",
        "model page, 30-day charts": f"/admin/registry/registeredmodel/{models[0].pk}/change/?range=30d",
        "usage list, first page": "/admin/registry/modelusage/",
    }
    lines = []
    for label, path in pages.items():
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"console page {path} answered {response.status_code}")
        timings = []
        for _ in range(RUNS):
            started = time.perf_counter()
            client.get(path)
            timings.append((time.perf_counter() - started) * 1000)
        ms = statistics.median(timings)
        verdict = "met" if ms < TARGET_MS else "NOT MET"
        lines.append(f"console {label}: {ms:.0f} ms median (target < {TARGET_MS} ms: {verdict}; {rows:,} usage rows)")
    return lines
