"""The partial hours' cost in a 30-day summary (``usage_figures``), read the two ways: from their rollups when
their bounds allow (shipped), and always from raw rows (as before ``first_at``/``last_at``).

Loads ``BENCH_EDGES_ROWS`` (default 5,000,000) rows of ``make bench-scale``'s shape (bench/bench_scale.py:
200 models, the busiest 40 %, 90 days ending now) into ``BENCH_SCALE_DATABASE_URL`` (required: an
existing database, never dropped) unless it holds that many already, then prints per window and way the median time
of 21 runs and the raw rows and buffers the summary's queries read (EXPLAIN ANALYZE of its raw queries).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

if not os.environ.get("BENCH_SCALE_DATABASE_URL"):
    raise SystemExit("Set BENCH_SCALE_DATABASE_URL to an existing database of yours (it is loaded, not dropped).")

import bench_scale  # configures Django on BENCH_SCALE_DATABASE_URL
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from scale import median_ms

from registry.models import ModelUsage, RegisteredModel
from registry.telemetry import usage

ROWS = int(os.environ.get("BENCH_EDGES_ROWS", "5000000"))


def raw_reads(read: Callable[[], Any]) -> tuple[int, int, int]:
    """(queries on model_usage, rows its scans returned, buffers they touched) of one ``read()``."""
    captured: list[tuple[str, Any]] = []

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if '"model_usage"' in sql:
            captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        read()
    rows = buffers = 0
    for sql, params in captured:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
            (plan,) = cursor.fetchone()
        stack = [(json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]]
        while stack:
            node = stack.pop()
            stack.extend(node.get("Plans", []))
            if node.get("Relation Name") == "model_usage":
                rows += int(node["Actual Rows"] * node["Actual Loops"])
                buffers += node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)
    return len(captured), rows, buffers


def main() -> int:
    call_command("migrate", verbosity=0, interactive=False)
    models = list(RegisteredModel.objects.order_by("pk"))
    if not models:
        models = bench_scale.create_models()
    if ModelUsage.objects.count() != ROWS:
        bench_scale.load_usage(models, ROWS)
        bench_scale.build_rollups()
    busiest = models[0]  # the load gives it 40 % of the rows
    now = timezone.now()
    windows: dict[str, tuple[datetime, datetime]] = {
        "30 days ending now": (now - timedelta(days=30), now),
        "30 days ending 2 h 23 min ago": (
            now - timedelta(days=30, hours=2, minutes=23),
            now - timedelta(hours=2, minutes=23),
        ),
        "30 days from an hour's start to now": (usage.hour_of(now) - timedelta(days=30), now),
    }
    shipped = usage.edge_read
    for name, (start, end) in windows.items():
        for way, decide in (("rollup bounds", shipped), ("always raw", lambda *args, **kwargs: "raw")):
            usage.edge_read = decide  # type: ignore[assignment]
            try:

                def read(start: datetime = start, end: datetime = end) -> Any:
                    return usage.usage_figures(start=start, end=end, model_ids=[busiest.pk], bucket="hour")

                ms = median_ms(read)
                queries, rows, buffers = raw_reads(read)
            finally:
                usage.edge_read = shipped
            print(
                f"MEASURE edges window={name!r} way={way!r}: {ms:.2f} ms (median of 21); "
                f"{queries} raw queries, {rows:,} raw rows, {buffers:,} buffers",
                flush=True,
            )
        # What reading the smaller side of the start edge would read instead (not shipped: see docs/BENCHMARKS.md).
        hour = usage.hour_of(start)
        if hour < start:
            records = ModelUsage.objects.filter(model_id=busiest.pk)
            head = records.filter(timestamp__gte=hour, timestamp__lt=start).count()
            tail = records.filter(timestamp__gte=start, timestamp__lt=hour + timedelta(hours=1)).count()
            print(f"MEASURE edges window={name!r}: start edge {tail:,} raw rows inside, {head:,} before", flush=True)
    # Windows of 30 days plus 0, 5, ..., 55 minutes ending now: every minute of the hour for the start.
    for way, decide in (("rollup bounds", shipped), ("always raw", lambda *args, **kwargs: "raw")):
        usage.edge_read = decide  # type: ignore[assignment]
        try:
            read_rows = []
            for minutes in range(0, 60, 5):

                def swept(minutes: int = minutes) -> Any:
                    start = now - timedelta(days=30, minutes=minutes)
                    return usage.usage_figures(start=start, end=now, model_ids=[busiest.pk], bucket="hour")

                read_rows.append(raw_reads(swept)[1])
        finally:
            usage.edge_read = shipped
        print(
            f"MEASURE edges sweep way={way!r}: raw rows of 30 days + 0..55 min ending now: "
            f"mean {sum(read_rows) / len(read_rows):,.0f}, max {max(read_rows):,}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
