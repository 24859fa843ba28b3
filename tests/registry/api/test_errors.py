"""Every error on an API path is JSON: deep nesting, huge bodies, bad Host, unknown paths, the database down."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connections
from django.test import Client, override_settings
from rest_framework.test import APIClient

from registry.api.parsers import MAX_JSON_DEPTH
from tests.faults import TcpProxy

pytestmark = pytest.mark.django_db

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def nested(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


@pytest.mark.parametrize("kind", ["list", "object"])
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 100_000])
def test_deeply_nested_json_to_the_token_endpoint_is_a_400_naming_the_nesting(kind: str, depth: int) -> None:
    response = Client().post("/auth/token", data=nested(depth, kind), content_type="application/json")
    assert response.status_code == 400
    assert "nested deeper than" in response.json()["detail"]


@pytest.mark.parametrize("kind", ["list", "object"])
def test_deeply_nested_json_in_a_model_body_is_a_400(api_client_for: Callable[[str], APIClient], kind: str) -> None:
    body = '{"name": "m", "display_name": "M", "provider": "ollama", "model_type": "chat", "details": '
    body += nested(1000, kind) + "}"
    response = api_client_for("editor").post("/models", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "nested deeper than" in response.json()["detail"]


def test_nesting_within_the_limit_is_accepted(api_client_for: Callable[[str], APIClient]) -> None:
    details = '{"a":' * (MAX_JSON_DEPTH - 2) + "1" + "}" * (MAX_JSON_DEPTH - 2)
    body = f'{{"name": "m", "display_name": "M", "provider": "ollama", "model_type": "chat", "details": {details}}}'
    response = api_client_for("editor").post("/models", data=body, content_type="application/json")
    assert response.status_code == 201, response.content


def test_a_body_over_the_limit_is_a_413_json(api_client_for: Callable[[str], APIClient], settings) -> None:
    body = b'{"name": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + b'"}'
    response = api_client_for("editor").post("/models", data=body, content_type="application/json")
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_a_bad_host_header_is_a_400_json() -> None:
    response = Client().get("/models", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Bad request."}


def test_an_unknown_path_is_a_404_json() -> None:
    response = Client().get("/no/such/path")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@override_settings(DEBUG=True)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("path", ["/no/such/path", "/api/nothing", "/healthz/extra", "/static/no-such-file.js"])
@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "application/json"])
def test_an_unknown_path_is_a_404_json_also_with_debug(method: str, path: str, accept: str) -> None:
    # Django answers its technical HTML 404 page under DEBUG, whatever handler404 says.
    response = getattr(Client(), method)(path, HTTP_ACCEPT=accept)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_the_admin_keeps_its_html_404(admin_client: Client) -> None:
    response = admin_client.get("/admin/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@override_settings(DEBUG=True)
def test_the_admin_keeps_its_html_404_with_debug(admin_client: Client) -> None:
    response = admin_client.get("/admin/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_api_answers_503_json_while_postgresql_is_cut_and_recovers(
    api_client_for: Callable[[str], APIClient], on_postgres: bool
) -> None:
    if not on_postgres:
        pytest.skip("PostgreSQL only: the proxy sits between Django and the database server")
    connection = connections["default"]
    original = dict(connection.settings_dict)
    proxy = TcpProxy((original["HOST"] or "127.0.0.1", int(original["PORT"] or 5432)))
    client = api_client_for("viewer")
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(proxy.port))
    try:
        assert client.get("/models?search=a").status_code == 200
        proxy.cut()
        down = client.get("/models?search=b")  # not cached yet: needs the database
        assert down.status_code == 503
        assert down["Retry-After"] == "5"
        assert down.json() == {"detail": "The database is unavailable; retry later."}
        proxy.restore()
        assert client.get("/models?search=c").status_code == 200  # recovers without a restart
    finally:
        connection.close()
        connection.settings_dict.update(HOST=original["HOST"], PORT=original["PORT"])
        proxy.close()


def test_a_uri_over_the_limit_is_a_414_json(settings) -> None:
    response = Client().get("/models?search=" + "x" * settings.MAX_URI_BYTES)
    assert response.status_code == 414
    assert "URI is longer" in response.json()["detail"]


def test_headers_over_the_limit_are_a_431_json(settings) -> None:
    many = {f"HTTP_X_FILLER_{n}": "v" for n in range(settings.MAX_HEADER_FIELDS + 1)}
    assert Client().get("/models", **many).status_code == 431
    large = {f"HTTP_X_FILLER_{n}": "v" * 8000 for n in range(settings.MAX_HEADER_BYTES // 8000 + 1)}
    response = Client().get("/models", **large)
    assert response.status_code == 431
    assert "headers exceed" in response.json()["detail"]


def test_a_declared_body_over_the_limit_is_a_413_before_it_is_read(settings) -> None:
    response = Client().generic(
        "POST", "/auth/token", b"{}", content_type="application/json", CONTENT_LENGTH=str(10 * 1024 * 1024)
    )
    assert response.status_code == 413
