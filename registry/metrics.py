"""The registry's own Prometheus metrics, in one place.

Counters are incremented where the event happens (usage recorded, discovery finished, cache
hit); gauges that describe the registry's state (models by provider and status, open alerts) are
read from the database at scrape time, so they are right whichever process serves the scrape.
"""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import Counter, Histogram

USAGE_REQUESTS = Counter("registry_usage_requests", "Requests reported in usage records", ["model"])
USAGE_TOKENS = Counter("registry_usage_tokens", "Tokens reported in usage records", ["model"])
USAGE_ERRORS = Counter("registry_usage_errors", "Errors reported in usage records", ["model"])
USAGE_COST = Counter("registry_usage_cost_usd", "Cost reported in usage records, USD", ["model"])

DISCOVERY_RUNS = Counter("registry_discovery_runs", "Discovery runs by source and outcome", ["source", "status"])
DISCOVERY_DURATION = Histogram(
    "registry_discovery_duration_seconds",
    "Duration of discovery runs",
    ["source"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
)

CACHE_HITS = Counter("registry_cache_hits", "Model reads served from the cache", ["kind"])
CACHE_MISSES = Counter("registry_cache_misses", "Model reads built from the database", ["kind"])


def usage_recorded(*, model: str, requests: int, tokens: int, errors: int, cost: Decimal | float) -> None:
    """Count usage that was committed (call after the transaction, not before)."""
    USAGE_REQUESTS.labels(model=model).inc(requests)
    USAGE_TOKENS.labels(model=model).inc(tokens)
    USAGE_ERRORS.labels(model=model).inc(errors)
    USAGE_COST.labels(model=model).inc(float(cost))


def discovery_finished(*, source: str, status: str, duration_seconds: float) -> None:
    DISCOVERY_RUNS.labels(source=source, status=status).inc()
    DISCOVERY_DURATION.labels(source=source).observe(duration_seconds)


def cache_lookup(*, kind: str, hit: bool) -> None:
    (CACHE_HITS if hit else CACHE_MISSES).labels(kind=kind).inc()
