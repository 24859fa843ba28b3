"""Benchmark: one discovery run over 1,000 models, and a rerun over the same answer.

Targets (ARCHITECTURE.md): a run over 1,000 models in at most 40 queries; a rerun with nothing
changed writes nothing; matching a model against the catalogs (discovery.catalogs) costs under
1 ms, measured over 1,000 distinct OpenAI and Anthropic ids, none seen before (no cache hit).
The provider is the fake Ollama server of the test suite on loopback (1,000 models, each with 3
capabilities and 5 parameters: 9,000 rows and their audit entries), so the seconds include 1,001
HTTP requests; each of its models is also matched against the catalogs (a local model's lookup).

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/registry_bench .venv/bin/python bench/bench_discovery.py
"""

from __future__ import annotations

import os
import sys
import time

from environment import configure, use_bench_redis_only

DATABASE_URL = configure(log_level="error")
use_bench_redis_only()

MODELS = 1000
QUERY_TARGET = 40
WRITES = ("INSERT", "UPDATE", "DELETE")


def ensure_database(url: str) -> None:
    """Create the benchmark database if it does not exist (the server must)."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def catalog_load_seconds() -> float:
    """Loading the bundled catalogs, once per process (the first discovery run of a worker pays it)."""
    from discovery.catalogs import catalogs_in_use

    started = time.perf_counter()
    catalogs_in_use()
    return time.perf_counter() - started


def catalog_step_ms(source: object) -> float:
    """What matching a run's listing against the catalogs adds to the run (the step sync runs before writing)."""
    from discovery.catalogs import catalogs_in_use, listing_with_catalog_facts
    from discovery.clients import fetch_listing

    listing = fetch_listing(source)  # type: ignore[arg-type]
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        listing_with_catalog_facts(listing, catalogs_in_use())
        best = min(best, time.perf_counter() - started)
    return best * 1000


def catalog_lookup_ms() -> float:
    """Mean time of one catalog lookup of a cloud id never looked up before (the catalogs' caches miss)."""
    from discovery.catalogs import catalogs_in_use, model_with_catalog_facts
    from discovery.clients.base import DiscoveredModel, EndpointClaim

    catalogs = catalogs_in_use()
    bases = {"openai": ["gpt-4o", "gpt-4o-mini", "o3-mini", "gpt-5", "gpt-4.1"], "anthropic": ["claude-sonnet-4"]}
    ids = []
    for index in range(MODELS):
        provider = "openai" if index % 2 else "anthropic"
        base = bases[provider][index % len(bases[provider])]
        # A dated snapshot id per model: distinct, so every lookup runs the catalogs' matching.
        ids.append((provider, f"{base}-{2020 + index // 365}{(index // 28) % 12 + 1:02d}{index % 28 + 1:02d}"))
    endpoint = EndpointClaim(endpoint_type="rest", endpoint_url="https://example.invalid", auth_type="api_key")
    claims = [
        DiscoveredModel(name=name, display_name=name, provider=provider, model_type="chat", endpoint=endpoint)
        for provider, name in ids
    ]
    started = time.perf_counter()
    for claim in claims:
        model_with_catalog_facts(claim, catalogs)
    return (time.perf_counter() - started) * 1000 / len(claims)


def main() -> int:
    try:
        ensure_database(DATABASE_URL)
    except Exception as exc:
        print(f"bench_discovery: cannot reach the benchmark database {DATABASE_URL}: {exc}", file=sys.stderr)
        return 1

    import django

    django.setup()

    from auditlog.context import disable_auditlog
    from auditlog.models import LogEntry
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from discovery.models import DiscoveryRun, ProviderSource, RunStatus, SourceKind
    from discovery.sync import source_sync
    from registry.access.audit import system_actor
    from registry.models import RegisteredModel
    from tests.discovery.fakes.ollama import FakeOllama, generated_models

    call_command("migrate", verbosity=0, interactive=False)
    prefix = f"bench-disc-{os.getpid()}"
    actor = f"bench:{prefix}"
    server = FakeOllama(models=generated_models(MODELS, prefix=prefix)).start()
    with disable_auditlog():  # the bench's own source is not an audit fact either
        source = ProviderSource.objects.create(name=prefix, kind=SourceKind.OLLAMA, base_url=server.url)
    try:
        # Before the runs, so that the first run's seconds compare with the base commit's without it.
        print(f"discovery_catalog_load_seconds: {catalog_load_seconds():.2f} s, once per process (target none)")
        figures = []
        for label in ("first_run", "rerun"):
            with system_actor(actor), CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                run = source_sync(source=source, trigger="command")
                seconds = time.perf_counter() - started
            if run.status != RunStatus.SUCCEEDED:
                print(f"bench_discovery: the {label} failed: {run.error_message}", file=sys.stderr)
                return 1
            writes = [
                q["sql"]
                for q in queries.captured_queries
                if q["sql"].lstrip().upper().startswith(WRITES)
                and "discovery_runs" not in q["sql"]
                and "provider_sources" not in q["sql"]
            ]
            figures.append((label, len(queries.captured_queries), len(writes), seconds, run))
        (_, first_q, _, first_s, first_run), (_, re_q, re_w, re_s, _) = figures
        assert first_run.models_added == MODELS
        print(f"discovery_first_run_queries: {first_q} queries for {MODELS} models (target <= {QUERY_TARGET})")
        print(f"discovery_first_run_seconds: {first_s:.2f} s for {MODELS} models, HTTP included (target none)")
        print(f"discovery_rerun_writes: {re_w} write statements (target 0)")
        print(f"discovery_rerun_queries: {re_q} queries (target <= {QUERY_TARGET})")
        print(f"discovery_rerun_seconds: {re_s:.2f} s, HTTP included (target none)")
        step_ms = catalog_step_ms(source)
        print(f"discovery_catalog_step_ms: {step_ms:.1f} ms to match this run's {MODELS} listed models (best of 5)")
        lookup_ms = catalog_lookup_ms()
        print(f"discovery_catalog_lookup_ms: {lookup_ms:.3f} ms per model, 1,000 distinct cloud ids (target < 1)")
        return 0 if first_q <= QUERY_TARGET and re_w == 0 and lookup_ms < 1 else 2
    finally:
        server.stop()
        # Clean up without writing thousands of audit entries about the cleanup itself.
        with disable_auditlog():
            RegisteredModel.objects.filter(name__startswith=prefix).delete()
            DiscoveryRun.objects.filter(source=source).delete()
            source.delete()
        LogEntry.objects.filter(actor_email=f"system:{actor}").delete()


if __name__ == "__main__":
    sys.exit(main())
