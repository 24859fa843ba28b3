"""The registry's own Prometheus metrics, in one place.

Counters are incremented where the event happens (usage recorded, discovery finished, cache
hit, alert opened); gauges that describe the registry's state (models by provider and status,
open alerts, failing sources) are read from the database at scrape time by ``RegistryStateCollector``,
so they are right whichever process serves the scrape.

Several processes (gunicorn workers, the Celery worker) count events: with
``PROMETHEUS_MULTIPROC_DIR`` set before the processes start (the launcher, gunicorn.conf.py and
the Docker entrypoint set it), prometheus_client writes each process's counters to files in that
directory and a scrape adds them up (``registry_for_scrape``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from decimal import Decimal

from django.apps import apps
from django.db import DatabaseError
from django.db.models import Count
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess, start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from registry.operations import usage_buffer

logger = logging.getLogger(__name__)

USAGE_REQUESTS = Counter("registry_usage_requests", "Requests reported in usage records", ["model"])
USAGE_TOKENS = Counter("registry_usage_tokens", "Tokens reported in usage records", ["model"])
USAGE_ERRORS = Counter("registry_usage_errors", "Errors reported in usage records", ["model"])
USAGE_COST = Counter("registry_usage_cost_usd", "Cost reported in usage records, USD", ["model"])
USAGE_UNPRICED = Counter(
    "registry_usage_unpriced_records",
    "Usage records with tokens but no cost, of models without a known price",
    ["model"],
)

DISCOVERY_RUNS = Counter("registry_discovery_runs", "Discovery runs by source and outcome", ["source", "status"])
DISCOVERY_DURATION = Histogram(
    "registry_discovery_duration_seconds",
    "Duration of discovery runs",
    ["source"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
)

RUNTIME_POLLS = Counter(
    "registry_runtime_polls",
    "Polls of an Ollama host's loaded models (GET /api/ps), by source and outcome",
    ["source", "status"],
)

CACHE_HITS = Counter("registry_cache_hits", "Model reads served from the cache", ["kind"])
CACHE_MISSES = Counter("registry_cache_misses", "Model reads built from the database", ["kind"])

TRUSTED_NETWORK_REQUESTS = Counter(
    "registry_trusted_network_requests",
    "API requests without a token accepted as the service role from PLATFORM_TRUSTED_NETWORKS",
    ["network", "method"],
)
THROTTLED = Counter("registry_requests_throttled", "Requests refused with 429, by throttle scope", ["scope"])

ALERTS_OPENED = Counter("registry_alerts_opened", "Alerts opened, by kind", ["kind"])
ALERTS_RESOLVED = Counter("registry_alerts_resolved", "Alerts resolved, by kind", ["kind"])
ALERT_WEBHOOK_FAILURES = Counter("registry_alert_webhook_failures", "Alert notifications the webhook did not accept")

USAGE_BUFFERED = Counter(
    "registry_usage_buffered_records", "Usage records kept in the Redis buffer while the database was unreachable"
)
USAGE_BUFFER_WRITTEN = Counter(
    "registry_usage_buffer_written_records",
    "Buffered usage records the drain wrote to the database (a request_id already stored is not counted)",
)
USAGE_BUFFER_DEAD = Counter(
    "registry_usage_buffer_dead_records", "Buffered usage records moved to the dead-letter list (never written)"
)

RETENTION_PRUNED = Counter("registry_retention_pruned_rows", "Rows removed by retention (prune), by table", ["table"])


def usage_recorded(*, model: str, requests: int, tokens: int, errors: int, cost: Decimal | float) -> None:
    """Count usage that was committed (call after the transaction, not before)."""
    USAGE_REQUESTS.labels(model=model).inc(requests)
    USAGE_TOKENS.labels(model=model).inc(tokens)
    USAGE_ERRORS.labels(model=model).inc(errors)
    USAGE_COST.labels(model=model).inc(float(cost))


def usage_unpriced(*, model: str, records: int) -> None:
    USAGE_UNPRICED.labels(model=model).inc(records)


def discovery_finished(*, source: str, status: str, duration_seconds: float) -> None:
    DISCOVERY_RUNS.labels(source=source, status=status).inc()
    DISCOVERY_DURATION.labels(source=source).observe(duration_seconds)


def runtime_polled(*, source: str, status: str) -> None:
    RUNTIME_POLLS.labels(source=source, status=status).inc()


def cache_lookup(*, kind: str, hit: bool) -> None:
    (CACHE_HITS if hit else CACHE_MISSES).labels(kind=kind).inc()


def trusted_network_request(*, network: str, method: str) -> None:
    TRUSTED_NETWORK_REQUESTS.labels(network=network, method=method).inc()


def request_throttled(*, scope: str) -> None:
    THROTTLED.labels(scope=scope).inc()


def alert_opened(*, kind: str) -> None:
    ALERTS_OPENED.labels(kind=kind).inc()


def alert_resolved(*, kind: str) -> None:
    ALERTS_RESOLVED.labels(kind=kind).inc()


def alert_webhook_failed() -> None:
    ALERT_WEBHOOK_FAILURES.inc()


def retention_pruned(*, table: str, rows: int) -> None:
    """Count rows a prune removed (call after the batch's transaction committed)."""
    RETENTION_PRUNED.labels(table=table).inc(rows)


def usage_buffered(*, records: int) -> None:
    USAGE_BUFFERED.inc(records)


def usage_buffer_drained(*, written: int, dead: int) -> None:
    """Count what a drain batch wrote and dead-lettered (call after its transaction committed)."""
    USAGE_BUFFER_WRITTEN.inc(written)
    USAGE_BUFFER_DEAD.inc(dead)


class UsageBufferCollector(Collector):
    """Gauges of the usage buffer, read from Redis at scrape time (one round trip)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("registry_usage_buffer_up", "1 when the usage buffer in Redis could be read")
        try:
            state = usage_buffer.buffer_state()
        except (usage_buffer.BufferUnavailable, RedisError) as exc:
            logger.warning("metrics: the usage buffer could not be read: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "registry_usage_buffer_records", "Usage records waiting in the buffer for the database", value=state.records
        )
        yield GaugeMetricFamily(
            "registry_usage_buffer_entries", "Posts (buffer entries) waiting for the database", value=state.entries
        )
        yield GaugeMetricFamily(
            "registry_usage_buffer_oldest_age_seconds",
            "Age of the oldest entry waiting in the buffer (0 when it is empty)",
            value=state.oldest_age_seconds or 0.0,
        )
        yield GaugeMetricFamily(
            "registry_usage_buffer_dead_letters",
            "Buffer entries the drain could not write, kept for an operator",
            value=state.dead_letters,
        )


class RegistryStateCollector(Collector):
    """Gauges of the registry's state, read from the database at scrape time (three queries)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # Looked up by label, not imported: this module is imported by the cache backend, which
        # Django may load before the app registry is ready.
        registered_model = apps.get_model("registry", "RegisteredModel")
        alert = apps.get_model("registry", "Alert")
        provider_source = apps.get_model("discovery", "ProviderSource")
        up = GaugeMetricFamily("registry_state_up", "1 when the registry's state could be read from the database")
        models = GaugeMetricFamily(
            "registry_models", "Registered models by provider and status", labels=["provider", "status"]
        )
        open_alerts = GaugeMetricFamily("registry_open_alerts", "Open alerts by kind", labels=["kind"])
        failures = GaugeMetricFamily(
            "registry_source_consecutive_failures", "Consecutive failed discovery runs by source", labels=["source"]
        )
        try:
            model_rows = list(registered_model.objects.order_by().values("provider", "status").annotate(n=Count("id")))
            alert_rows = list(
                alert.objects.filter(resolved_at__isnull=True).order_by().values("kind").annotate(n=Count("id"))
            )
            source_rows = list(provider_source.objects.order_by("name").values_list("name", "consecutive_failures"))
        except DatabaseError as exc:
            # The scrape still answers (request and process metrics matter most during an outage).
            logger.warning("metrics: the registry's state could not be read: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for row in model_rows:
            models.add_metric([row["provider"], row["status"]], row["n"])
        open_by_kind = {row["kind"]: row["n"] for row in alert_rows}
        for kind, _label in alert._meta.get_field("kind").choices or []:
            open_alerts.add_metric([kind], open_by_kind.get(kind, 0))
        for name, count in source_rows:
            failures.add_metric([name], count)
        yield from (up, models, open_alerts, failures)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def events_registry() -> CollectorRegistry:
    """The event counters: of every process sharing PROMETHEUS_MULTIPROC_DIR, or of this process."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def serve_worker_metrics(port: int, address: str = "0.0.0.0") -> None:  # noqa: S104 - a container's port
    """Serve the counters of a Celery worker (and its pool processes) on their own port, in a thread.

    For deployments where the worker does not share a multiprocess directory (and a process id
    namespace) with the web processes, such as separate containers: Prometheus scrapes both.
    """
    start_http_server(port, addr=address, registry=events_registry())
    logger.info("worker metrics on %s:%d", address, port)


def exposition() -> bytes:
    """The text exposition of every metric: counters of all processes, then the state gauges."""
    events = events_registry()
    state = CollectorRegistry(auto_describe=False)
    state.register(RegistryStateCollector())
    if usage_buffer.enabled():
        state.register(UsageBufferCollector())
    return generate_latest(events) + generate_latest(state)
