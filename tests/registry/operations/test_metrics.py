"""/metrics: the registry's counters and state gauges, django-prometheus's own, access limits, processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from discovery.tasks import discover_source
from registry.models import ModelStatus, Provider
from registry.operations import metrics
from tests.discovery.fakes.ollama import FakeOllama
from tests.factories import ProviderSourceFactory, RegisteredModelFactory

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.django_db


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: Client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def test_usage_records_show_as_counters_by_model(client: Client) -> None:
    metrics.usage_recorded(model="metrics-usage-a", requests=3, tokens=1200, errors=1, cost=0.0125)
    metrics.usage_recorded(model="metrics-usage-a", requests=2, tokens=800, errors=0, cost=0.0075)

    found = scrape(client)

    labels = (("model", "metrics-usage-a"),)
    assert found[("registry_usage_requests_total", labels)] == 5.0
    assert found[("registry_usage_tokens_total", labels)] == 2000.0
    assert found[("registry_usage_errors_total", labels)] == 1.0
    assert found[("registry_usage_cost_usd_total", labels)] == pytest.approx(0.02)


def test_discovery_runs_show_by_source_and_outcome_with_duration(client: Client) -> None:
    metrics.discovery_finished(source="metrics-ollama", status="succeeded", duration_seconds=0.3)
    metrics.discovery_finished(source="metrics-ollama", status="failed", duration_seconds=4.0)

    found = scrape(client)

    assert found[("registry_discovery_runs_total", (("source", "metrics-ollama"), ("status", "succeeded")))] == 1.0
    assert found[("registry_discovery_runs_total", (("source", "metrics-ollama"), ("status", "failed")))] == 1.0
    source = (("source", "metrics-ollama"),)
    assert found[("registry_discovery_duration_seconds_count", source)] == 2.0
    assert found[("registry_discovery_duration_seconds_sum", source)] == pytest.approx(4.3)
    assert found[("registry_discovery_duration_seconds_bucket", (("le", "0.5"), ("source", "metrics-ollama")))] == 1.0


def test_models_are_counted_by_provider_and_status(client: Client) -> None:
    RegisteredModelFactory.create_batch(3, provider=Provider.OLLAMA)
    RegisteredModelFactory(provider=Provider.OLLAMA, status=ModelStatus.UNAVAILABLE)
    RegisteredModelFactory(provider=Provider.OPENAI)

    found = scrape(client)

    assert found[("registry_models", (("provider", "ollama"), ("status", "available")))] == 3.0
    assert found[("registry_models", (("provider", "ollama"), ("status", "unavailable")))] == 1.0
    assert found[("registry_models", (("provider", "openai"), ("status", "available")))] == 1.0
    assert found[("registry_state_up", ())] == 1.0


def test_source_failures_are_exported(client: Client) -> None:
    ProviderSourceFactory(name="metrics-flaky", consecutive_failures=2)

    found = scrape(client)

    assert found[("registry_source_consecutive_failures", (("source", "metrics-flaky"),))] == 2.0


def test_cache_hits_and_misses_are_counted(client: Client) -> None:
    metrics.cache_lookup(kind="metrics-kind", hit=True)
    metrics.cache_lookup(kind="metrics-kind", hit=True)
    metrics.cache_lookup(kind="metrics-kind", hit=False)

    found = scrape(client)

    assert found[("registry_cache_hits_total", (("kind", "metrics-kind"),))] == 2.0
    assert found[("registry_cache_misses_total", (("kind", "metrics-kind"),))] == 1.0


def test_django_prometheus_request_metrics_are_exported(client: Client) -> None:
    client.get("/healthz")

    text = client.get("/metrics").content.decode()

    assert "django_http_requests_total_by_method_total" in text
    assert "django_http_requests_latency_seconds_by_view_method" in text


def test_metrics_needs_no_token_by_default(client: Client) -> None:
    assert client.get("/metrics").status_code == 200


def test_metrics_refuses_an_address_outside_the_allowed_networks(client: Client, settings) -> None:
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]

    assert client.get("/metrics", REMOTE_ADDR="192.168.1.5").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200


def test_metrics_ignores_forwarded_addresses(client: Client, settings) -> None:
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]

    response = client.get("/metrics", REMOTE_ADDR="192.168.1.5", HTTP_X_FORWARDED_FOR="10.1.2.3")

    assert response.status_code == 403


def test_metrics_requires_the_bearer_token_when_set(client: Client, settings) -> None:
    settings.METRICS_BEARER_TOKEN = "scrape-token-0123456789"

    missing = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")

    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'


INCREMENT = """
import django
django.setup()
from discovery.tasks import discover_source
from registry.operations import metrics
metrics.usage_recorded(model="multiprocess-model", requests={requests}, tokens=10, errors=0, cost=0)
"""

SCRAPE = """
import django
django.setup()
from django.test import Client
print(Client().get("/metrics", HTTP_HOST="localhost").content.decode())
"""


@pytest.mark.slow
def test_counters_from_several_processes_add_up_in_one_scrape(tmp_path: Path) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "registry_project.settings",
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "REGISTRY_DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'registry.sqlite3'}",
        }
    )
    # No migrate: the state gauges then report registry_state_up 0, the counters are what is tested.
    for requests_count in (3, 4):
        code = INCREMENT.format(requests=requests_count)
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)

    output = subprocess.run(
        [sys.executable, "-c", SCRAPE], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True
    ).stdout.decode()

    found = samples(output)
    assert found[("registry_usage_requests_total", (("model", "multiprocess-model"),))] == 7.0
    assert found[("registry_state_up", ())] == 0.0


def test_a_worker_can_serve_its_own_counters(free_port: int) -> None:
    metrics.discovery_finished(source="metrics-worker-port", status="succeeded", duration_seconds=1.0)

    metrics.serve_worker_metrics(free_port, address="127.0.0.1")
    text = requests.get(f"http://127.0.0.1:{free_port}/metrics", timeout=5).text

    found = samples(text)
    assert found[("registry_discovery_runs_total", (("source", "metrics-worker-port"), ("status", "succeeded")))] == 1.0


def test_a_discovery_run_and_usage_records_show_with_their_values(
    client: Client, api_client_for, django_capture_on_commit_callbacks
) -> None:
    fake = FakeOllama().start()
    try:
        source = ProviderSourceFactory(name="metrics-e2e-ollama", base_url=fake.url)
        discover_source.apply(args=(source.pk,), kwargs={"trigger": "manual"})
    finally:
        fake.stop()
    model_name = fake.tags[0]["name"]
    records = [
        {"token_count": 1000, "request_count": 4, "error_count": 1, "average_latency": 0.4, "cost": "0.012500"},
        {"token_count": 500, "request_count": 2, "error_count": 0, "average_latency": 0.2, "cost": "0.002500"},
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for("service").post(f"/models/{model_name}/usage", records, format="json")
    assert response.status_code == 201

    found = scrape(client)

    run = (("source", "metrics-e2e-ollama"), ("status", "succeeded"))
    assert found[("registry_discovery_runs_total", run)] == 1.0
    assert found[("registry_discovery_duration_seconds_count", (("source", "metrics-e2e-ollama"),))] == 1.0
    assert found[("registry_models", (("provider", "ollama"), ("status", "available")))] == float(len(fake.tags))
    labels = (("model", model_name),)
    assert found[("registry_usage_requests_total", labels)] == 6.0
    assert found[("registry_usage_tokens_total", labels)] == 1500.0
    assert found[("registry_usage_errors_total", labels)] == 1.0
    assert found[("registry_usage_cost_usd_total", labels)] == pytest.approx(0.015)


def test_database_queries_are_counted_by_django_prometheus(client: Client) -> None:
    before = scrape(client)
    RegisteredModelFactory.create_batch(2)

    after = scrape(client)

    def executed(found: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
        return sum(value for (name, _), value in found.items() if name == "django_db_execute_total")

    # Two inserts (and the scrape's own reads) went through the instrumented backend.
    assert executed(after) >= executed(before) + 2
