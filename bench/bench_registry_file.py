"""Benchmark: export of 1,000 models as a registry file, and apply of that same file (nothing to change).

Target (issue 23): each under 10 s. Each model has 3 capabilities, 2 parameters, an endpoint with a
stored API key and 2 dated prices (10,000 rows); the file is YAML (and JSON, reported beside it).
The seconds include reading the catalog, writing or parsing the text and, for apply, validating the
whole file and comparing it with the catalog; the query counts show that neither grows per model.
"CPU here" is this process's CPU time: on a busy machine the wall time varies, it much less.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/registry_bench .venv/bin/python bench/bench_registry_file.py
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

from environment import configure, use_bench_redis_only

DATABASE_URL = configure(log_level="error")
use_bench_redis_only()

MODELS = 1000
SECONDS_TARGET = 10.0


def main() -> int:
    from bench_discovery import ensure_database

    try:
        ensure_database(DATABASE_URL)
    except Exception as exc:
        print(f"bench_registry_file: cannot reach the benchmark database {DATABASE_URL}: {exc}", file=sys.stderr)
        return 1

    import django

    django.setup()

    from auditlog.context import disable_auditlog
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from registry.catalog.registry_apply import registry_apply
    from registry.catalog.registry_file import registry_export, registry_file_dump, registry_file_load
    from registry.models import ModelCapability, ModelEndpoint, ModelParameter, ModelPrice, RegisteredModel

    call_command("migrate", verbosity=0, interactive=False)
    prefix = f"bench-file-{os.getpid()}"
    # Seeded in bulk and unaudited: the seed is not what is measured.
    with disable_auditlog():
        models = RegisteredModel.objects.bulk_create(
            RegisteredModel(
                name=f"{prefix}-{index:04d}",
                display_name=f"Bench model {index}",
                provider="ollama",
                model_type="chat",
                context_window=8192,
                details={"family": "llama", "parameter_size": "8B"},
            )
            for index in range(MODELS)
        )
        ModelCapability.objects.bulk_create(
            ModelCapability(model=model, capability=name, capability_score=0.5 + index / 10, evidence="operator")
            for model in models
            for index, name in enumerate(("text", "code", "tools"))
        )
        ModelParameter.objects.bulk_create(
            ModelParameter(model=model, parameter_name=name, default_value=value, min_value=0, max_value=2)
            for model in models
            for name, value in (("temperature", 0.7), ("top_p", 0.9))
        )
        ModelEndpoint.objects.bulk_create(
            ModelEndpoint(
                model=model,
                endpoint_type="rest",
                endpoint_url=f"http://gpu-box:11434/{model.name}",
                api_key="sk-bench-never-exported",
            )
            for model in models
        )
        ModelPrice.objects.bulk_create(
            ModelPrice(
                model=model,
                input_per_mtok=Decimal(price),
                output_per_mtok=Decimal(price) * 4,
                effective_from=datetime(2026, month, 1, tzinfo=UTC),
            )
            for model in models
            for month, price in ((1, "0.15"), (6, "0.125"))
        )
    try:
        ok = True
        for file_format in ("yaml", "json"):
            with CaptureQueriesContext(connection) as export_queries:
                started, cpu = time.perf_counter(), time.process_time()
                text = registry_file_dump(registry_export(), file_format=file_format)
                export_seconds, export_cpu = time.perf_counter() - started, time.process_time() - cpu
            assert "sk-bench-never-exported" not in text
            with CaptureQueriesContext(connection) as apply_queries:
                started, cpu = time.perf_counter(), time.process_time()
                plan = registry_apply(registry_file_load(text))
                apply_seconds, apply_cpu = time.perf_counter() - started, time.process_time() - cpu
            if plan.changes:
                print(f"bench_registry_file: the apply of an unchanged {file_format} file changed {len(plan.changes)}")
                return 2
            size = len(text.encode()) / 1e6
            print(
                f"registry_export_{file_format}_seconds: {export_seconds:.2f} s ({export_cpu:.2f} s CPU here) for "
                f"{MODELS} models ({size:.1f} MB, {len(export_queries)} queries) (target < {SECONDS_TARGET:.0f} s)"
            )
            print(
                f"registry_apply_{file_format}_unchanged_seconds: {apply_seconds:.2f} s ({apply_cpu:.2f} s CPU here) "
                f"for {MODELS} models, 0 changes ({len(apply_queries)} queries) (target < {SECONDS_TARGET:.0f} s)"
            )
            ok = ok and export_seconds < SECONDS_TARGET and apply_seconds < SECONDS_TARGET
        return 0 if ok else 2
    finally:
        with disable_auditlog():
            RegisteredModel.objects.filter(name__startswith=prefix).delete()


if __name__ == "__main__":
    sys.exit(main())
