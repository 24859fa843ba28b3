"""Benchmark: what Ollama has loaded now, at the size of a large host.

Measures, on PostgreSQL, with the fake Ollama of the test suite on loopback serving 1,000 models:

- a runtime poll (``discovery.poll_runtime``) of a host with all 1,000 loaded: the first (creates
  every row), one where every value changed, one where nothing but ``checked_at`` did, and one of
  an idle host that never had a model loaded: queries and seconds, HTTP included;
- on the read path, a page of 500 model bodies (``representations.model_bodies``) with a runtime
  row per model, and the one query of ``selectors.runtimes_of`` it includes: median milliseconds
  over ``BENCH_RUNTIME_REPEATS`` (default 15) builds.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/registry_bench .venv/bin/python bench/bench_runtime.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

from environment import ROOT, configure, use_bench_redis_only

DATABASE_URL = configure(log_level="error")
use_bench_redis_only()

MODELS = 1000
PAGE = 500
REPEATS = int(os.environ.get("BENCH_RUNTIME_REPEATS", "15"))
POLL_QUERY_TARGET = 8  # a fixed number, whatever the number of models (discovery.runtime)

sys.path.insert(0, str(ROOT / "bench"))
from bench_discovery import ensure_database  # noqa: E402

from registry.catalog.selectors import runtimes_of  # noqa: E402


def median_ms(build: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        build()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    try:
        ensure_database(DATABASE_URL)
    except Exception as exc:
        print(f"bench_runtime: cannot reach the benchmark database {DATABASE_URL}: {exc}", file=sys.stderr)
        return 1

    import django

    django.setup()

    from auditlog.context import disable_auditlog
    from auditlog.models import LogEntry
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from discovery.models import DiscoveryRun, ProviderSource, RunStatus, SourceKind
    from discovery.runtime import runtime_poll
    from discovery.sync import source_sync
    from discovery.tasks import poll_runtime
    from registry.access.audit import system_actor
    from registry.models import ModelRuntime, RegisteredModel
    from registry.reads import representations
    from tests.discovery.fakes.ollama import FakeOllama, generated_models

    call_command("migrate", verbosity=0, interactive=False)
    prefix = f"bench-rt-{os.getpid()}"
    actor = f"bench:{prefix}"
    models = generated_models(MODELS, prefix=prefix)
    names = [tag["name"] for tag, _ in models]
    server = FakeOllama(models=models)
    server.start()
    with disable_auditlog():
        source = ProviderSource.objects.create(
            name=prefix, kind=SourceKind.OLLAMA, base_url=server.url, runtime_poll_seconds=0
        )
        idle = ProviderSource.objects.create(
            name=f"{prefix}-idle", kind=SourceKind.OLLAMA, base_url=server.url, runtime_poll_seconds=0
        )
    try:
        with system_actor(actor):
            run = source_sync(source=source, trigger="command")
        if run.status != RunStatus.SUCCEEDED or run.models_added != MODELS:
            print(f"bench_runtime: the discovery run failed: {run.error_message}", file=sys.stderr)
            return 1
        # poll_runtime skips a source whose poll is off (no beat task of the bench's): it calls the task's service.
        polls = []
        for label, facts in (
            ("first poll, 1,000 loaded (creates the rows)", {"size_vram": 1}),
            ("every value changed", {"size_vram": 2}),
            ("nothing changed but checked_at", {"size_vram": 2}),
        ):
            server.load(*names, **facts)
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                poll = runtime_poll(source=source)
                seconds = time.perf_counter() - started
            assert poll.status == "succeeded", poll.error
            polls.append((label, len(queries.captured_queries), seconds))
        server.set_loaded([])
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            assert runtime_poll(source=idle).status == "succeeded"
            polls.append(
                ("idle host, never had a model loaded", len(queries.captured_queries), time.perf_counter() - started)
            )
        assert ModelRuntime.objects.filter(source=source, loaded=True, size_vram=2).count() == MODELS
        assert poll_runtime(source.pk) is None  # the task itself: off for this source

        rows = representations.model_rows(
            RegisteredModel.objects.filter(name__startswith=prefix).order_by("name")[:PAGE]
        )
        ids = [row["id"] for row in rows]
        assert all(body["runtime"] is not None for body in representations.model_bodies(rows))
        page_ms = median_ms(lambda: representations.model_bodies(rows))
        runtimes_ms = median_ms(lambda: runtimes_of(ids))

        for label, count, seconds in polls:
            state = "met" if count <= POLL_QUERY_TARGET else "MISSED"
            print(
                f"runtime_poll: {label}: {count} queries (target <= {POLL_QUERY_TARGET}: {state}), "
                f"{seconds * 1000:.1f} ms"
            )
        print(f"read: {PAGE} model bodies with runtime: {page_ms:.1f} ms (median of {REPEATS})")
        print(f"read: of which runtimes_of({PAGE} ids), one query: {runtimes_ms:.1f} ms ({runtimes_ms / page_ms:.1%})")
        return 0 if all(count <= POLL_QUERY_TARGET for _, count, _ in polls) else 2
    finally:
        server.stop()
        with disable_auditlog():
            RegisteredModel.objects.filter(name__startswith=prefix).delete()
            DiscoveryRun.objects.filter(source__name__startswith=prefix).delete()
            ProviderSource.objects.filter(name__startswith=prefix).delete()
        LogEntry.objects.filter(actor_email=f"system:{actor}").delete()


if __name__ == "__main__":
    sys.exit(main())
