"""``make load``: 50 clients for 60 s against the production web server on PostgreSQL and Redis.

A mix of what routers and services do: model lists and details (cached reads), selections, and
usage writes (batches of 10 records). Every usage write the server acknowledged (201) is counted;
at the end the rows in ``model_usage`` must equal them. Prints requests/s, p50/p95/p99 per kind
and overall, errors (any status but the expected one, or a connection failure) and rows
acknowledged versus stored; exits 1 on any error or lost row.

The clients are threads with keep-alive sessions (requests), in their own process, on the same
2-core machine as the server: the figures are the service's under contention, not its ceiling.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_server import DATABASE_URL, live_server

CLIENTS = int(os.environ.get("LOAD_CLIENTS", "50"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
BATCH = 10
MODELS = [f"load-model-{n}:latest" for n in range(20)]
# (kind, weight): reads dominate, as for a router; one request in five writes usage.
MIX = [("list", 3), ("detail", 4), ("select", 2), ("usage", 2)]


def client(url: str, tokens: dict[str, str], stop: float, results: dict[str, list[float]], state: dict) -> None:
    session = requests.Session()
    reader = {"Authorization": f"Bearer {tokens['viewer']}"}
    writer = {"Authorization": f"Bearer {tokens['service']}"}
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    rng = random.Random(threading.get_ident())  # noqa: S311 (a load mix, not a secret)
    while time.monotonic() < stop:
        kind = rng.choice(kinds)
        model = rng.choice(MODELS)
        started = time.perf_counter()
        try:
            if kind == "list":
                response = session.get(f"{url}/models", headers=reader, timeout=30)
                expected = 200
            elif kind == "detail":
                response = session.get(f"{url}/models/{model}", headers=reader, timeout=30)
                expected = 200
            elif kind == "select":
                response = session.get(f"{url}/models/select?capability=code&min_score=0.6", headers=reader, timeout=30)
                expected = 200
            else:
                records = [{"token_count": 100, "request_count": 1, "average_latency": 0.2} for _ in range(BATCH)]
                response = session.post(f"{url}/models/{model}/usage", json=records, headers=writer, timeout=30)
                expected = 201
        except requests.RequestException as exc:
            with state["lock"]:
                state["errors"][f"{kind}: {type(exc).__name__}"] += 1
            continue
        elapsed = time.perf_counter() - started
        with state["lock"]:
            if response.status_code != expected:
                state["errors"][f"{kind}: HTTP {response.status_code}"] += 1
                continue
            results[kind].append(elapsed)
            if kind == "usage":
                state["acknowledged"] += response.json()["recorded"]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def main() -> int:
    results: dict[str, list[float]] = defaultdict(list)
    state: dict = {"lock": threading.Lock(), "errors": defaultdict(int), "acknowledged": 0}
    with live_server() as server:
        stop = time.monotonic() + SECONDS
        threads = [
            threading.Thread(target=client, args=(server.url, server.tokens, stop, results, state))
            for _ in range(CLIENTS)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        duration = time.monotonic() - started
        with psycopg.connect(DATABASE_URL) as connection:
            row = connection.execute("SELECT count(*) FROM model_registry.model_usage").fetchone()
            stored = row[0] if row else 0
    everything = [value for values in results.values() for value in values]
    errors = sum(state["errors"].values())
    print(f"{CLIENTS} clients, {duration:.0f} s, WEB_CONCURRENCY={server.env['WEB_CONCURRENCY']}")
    print(f"{'kind':8} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for kind, values in [*sorted(results.items()), ("all", everything)]:
        if values:
            print(
                f"{kind:8} {len(values):9d} {len(values) / duration:8.1f} {statistics.median(values) * 1000:8.1f} "
                f"{percentile(values, 0.95):8.1f} {percentile(values, 0.99):8.1f}"
            )
    print(f"errors: {errors} {dict(state['errors']) if errors else ''}")
    print(f"usage rows acknowledged: {state['acknowledged']}, stored: {stored}")
    return 0 if errors == 0 and stored == state["acknowledged"] else 1


if __name__ == "__main__":
    sys.exit(main())
