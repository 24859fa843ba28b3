"""Credentials inside URLs: refused by the API, and never shown, audited or logged in clear."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command
from rest_framework.test import APIClient

from registry.catalog.credentials import RedactCredentialsFilter, redact_text, url_credentials
from tests.factories import ModelEndpointFactory, ProviderSourceFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

PASSWORD = "hunter2-s3cret"
LEAKY_URLS = [
    f"https://user:{PASSWORD}@gpu.example/v1",
    f"https://gpu.example/v1?api_key={PASSWORD}",
    f"https://gpu.example/v1?x=1&key={PASSWORD}",
    f"https://gpu.example/v1?access_token={PASSWORD}",
    # In the fragment, as OAuth's implicit flow and some dashboards' links carry them.
    f"https://gpu.example/v1#api_key={PASSWORD}",
    f"https://gpu.example/v1#token={PASSWORD}",
    f"https://gpu.example/v1?model=x#state=1&access_token={PASSWORD}",
]


@pytest.mark.parametrize(
    ("url", "found"),
    [
        ("https://u:p@h/v1", ["user info"]),
        ("https://h/v1?apiKey=x&X-Amz-Signature=y", ["apiKey", "X-Amz-Signature"]),
        ("https://h/v1?design=1&author=2&model=gpt", []),
        ("https://h/v1#api_key=x", ["api_key"]),
        ("https://h/v1?model=gpt#token=x&design=1", ["token"]),
        ("https://h/docs#authentication", []),
    ],
)
def test_credential_like_parts_of_a_url_are_found_by_name(url: str, found: list[str]) -> None:
    assert url_credentials(url) == found


def test_redaction_covers_urls_and_bare_paths_in_text() -> None:
    text = f"GET https://u:{PASSWORD}@h/v1 failed: Max retries exceeded with url: /v1/models?key={PASSWORD}"
    assert PASSWORD not in redact_text(text)
    assert redact_text(text) == "GET https://***@h/v1 failed: Max retries exceeded with url: /v1/models?key=***"


@pytest.mark.parametrize("url", LEAKY_URLS)
def test_an_endpoint_url_with_a_credential_is_refused_with_400(
    api_client_for: Callable[[str], APIClient], url: str
) -> None:
    model = RegisteredModelFactory()
    response = api_client_for("editor").post(
        f"/models/{model.pk}/endpoints", {"endpoint_type": "api", "endpoint_url": url}, format="json"
    )
    assert response.status_code == 400
    assert "api_key or secret_headers" in response.json()["endpoint_url"][0]
    created = api_client_for("editor").post(
        "/models",
        {
            "name": "m",
            "display_name": "M",
            "provider": "openai",
            "model_type": "chat",
            "endpoints": [{"endpoint_url": url}],
        },
        format="json",
    )
    assert created.status_code == 400
    assert PASSWORD not in created.content.decode()


@pytest.mark.parametrize("url", LEAKY_URLS)
def test_a_source_base_url_with_a_credential_is_refused_with_400(
    api_client_for: Callable[[str], APIClient], url: str
) -> None:
    response = api_client_for("admin").post("/sources", {"name": "s", "kind": "openai", "base_url": url}, format="json")
    assert response.status_code == 400
    assert "api_key" in response.json()["base_url"][0]


def test_redaction_covers_a_credential_in_a_fragment() -> None:
    text = f"calling https://h/v1#token={PASSWORD} and https://h/v2#api_key={PASSWORD}&x=1"
    assert redact_text(text) == "calling https://h/v1#token=*** and https://h/v2#api_key=***&x=1"


def test_urls_stored_with_credentials_are_redacted_in_every_response(
    api_client_for: Callable[[str], APIClient],
) -> None:
    # Stored another way than the API (the environment, the admin, rows from before the check).
    source = ProviderSourceFactory(name="leaky", base_url=f"http://ops:{PASSWORD}@ollama:11434")
    model = RegisteredModelFactory(name="leaky-model")
    endpoint = ModelEndpointFactory(model=model, endpoint_url=f"https://gpu.example/v1?key={PASSWORD}")
    viewer, admin = api_client_for("viewer"), api_client_for("admin")
    bodies = [
        viewer.get("/models"),
        viewer.get(f"/models/{model.name}"),
        viewer.get(f"/models/{model.pk}/endpoints"),
        viewer.get(f"/models/{model.pk}/endpoints/{endpoint.pk}"),
        viewer.get("/models/select"),
        admin.get("/sources"),
        admin.get(f"/sources/{source.pk}"),
    ]
    for response in bodies:
        assert response.status_code == 200, response.content
        assert PASSWORD not in response.content.decode()
    assert viewer.get(f"/models/{model.pk}/endpoints").json()[0]["endpoint_url"] == "https://gpu.example/v1?key=***"
    assert admin.get(f"/sources/{source.pk}").json()["base_url"] == "http://***@ollama:11434"


def test_audit_entries_never_hold_a_url_credential() -> None:
    source = ProviderSourceFactory(name="audited", base_url=f"http://ops:{PASSWORD}@ollama:11434")
    endpoint = ModelEndpointFactory(endpoint_url=f"https://gpu.example/v1?api_key={PASSWORD}")
    endpoint.endpoint_url = f"https://u:{PASSWORD}@gpu2.example/v1"
    endpoint.save()
    entries = LogEntry.objects.filter(object_pk__in=[str(source.pk), str(endpoint.pk)])
    dumped = json.dumps([entry.changes for entry in entries])
    assert entries.count() >= 3
    assert PASSWORD not in dumped
    assert "gpu2.example" in dumped  # the host is still an audit fact


def test_log_lines_are_redacted() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "calling %s", (f"https://h/v1?key={PASSWORD}",), None)
    RedactCredentialsFilter().filter(record)
    assert record.getMessage() == "calling https://h/v1?key=***"


def test_the_discover_command_does_not_print_a_base_urls_credential(monkeypatch: pytest.MonkeyPatch, settings) -> None:
    monkeypatch.delenv("OLLAMA_URL", raising=False)
    settings.DISCOVERY_MAX_RETRIES = 0
    ProviderSourceFactory(name="cmd", base_url=f"http://ops:{PASSWORD}@127.0.0.1:9", enabled=True)
    out = StringIO()
    with pytest.raises(BaseException):  # noqa: B017, PT011 (the source is unreachable: the command fails)
        call_command("discover", stdout=out, stderr=StringIO())
    assert "http://***@127.0.0.1:9" in out.getvalue()
    assert PASSWORD not in out.getvalue()
