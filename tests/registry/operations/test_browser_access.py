"""What a person in a browser reaches: ``/`` leads to the console, and a staff session opens the docs and the audit log.

The rest of the API stays for programs, with a JWT: a session opens nothing else, but the docs page's own "Try it out"
requests (they carry ``X-Registry-Docs``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import AbstractUser
from django.test import Client

from tests.tokens import platform_token

pytestmark = pytest.mark.django_db

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.fixture(autouse=True)
def _pages_render_without_a_collectstatic_manifest(settings: Any) -> None:
    # The HTML pages name their static files; the manifest comes from the image's collectstatic.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def session_of(user: AbstractUser, *, staff: bool = True, csrf_checks: bool = False) -> Client:
    """A browser logged in as ``user`` (a staff member by default), as the admin's login leaves it."""
    user.is_staff = staff
    user.save()
    client = Client(enforce_csrf_checks=csrf_checks)
    client.force_login(user)
    return client


def test_a_browser_opening_the_root_goes_to_the_admin() -> None:
    response = Client().get("/", HTTP_ACCEPT=BROWSER_ACCEPT)

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


@pytest.mark.parametrize("accept", ["*/*", "application/json", None])
def test_an_api_client_opening_the_root_gets_an_index_of_links(accept: str | None) -> None:
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = Client().get("/", **headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "Accept" in response["Vary"]
    body = response.json()
    assert body["service"] == "model-registry"
    assert body["version"]
    assert body["links"] == {
        "admin": "http://testserver/admin/",
        "docs": "http://testserver/api/docs",
        "schema": "http://testserver/api/schema",
        "health": "http://testserver/health",
    }


def test_every_link_of_the_index_answers(role_users: dict[str, AbstractUser]) -> None:
    links = Client().get("/").json()["links"]
    browser = session_of(role_users["viewer"])

    # The admin and the docs for a staff member in a browser, health for anyone.
    assert browser.get(links["admin"]).status_code == 200
    assert browser.get(links["docs"]).status_code == 200
    assert browser.get(links["schema"]).status_code == 200
    assert Client().get(links["health"]).status_code == 200


def test_the_root_answers_405_to_a_post() -> None:
    assert Client().post("/").status_code == 405


@pytest.mark.parametrize("path", ["/api/docs", "/api/schema"])
def test_staff_logged_into_the_admin_open_the_api_docs(role_users: dict[str, AbstractUser], path: str) -> None:
    response = session_of(role_users["viewer"]).get(path, HTTP_ACCEPT=BROWSER_ACCEPT)

    assert response.status_code == 200


def test_the_docs_page_in_a_browser_is_the_swagger_ui(role_users: dict[str, AbstractUser]) -> None:
    page = session_of(role_users["viewer"]).get("/api/docs", HTTP_ACCEPT=BROWSER_ACCEPT).content.decode()

    assert "swagger-ui" in page


def test_an_admin_logged_into_the_admin_reads_the_audit_log(role_users: dict[str, AbstractUser]) -> None:
    response = session_of(role_users["admin"]).get("/audit")

    assert response.status_code == 200
    assert "results" in response.json()


def test_staff_below_the_admin_role_may_not_read_the_audit_log(role_users: dict[str, AbstractUser]) -> None:
    assert session_of(role_users["editor"]).get("/audit").status_code == 403


@pytest.mark.parametrize("path", ["/api/schema", "/audit"])
def test_anonymous_browsers_still_get_401(path: str) -> None:
    response = Client().get(path, HTTP_ACCEPT=BROWSER_ACCEPT)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "accept", [None, "*/*", "application/json", "application/vnd.oai.openapi", "application/vnd.oai.openapi+json"]
)
@pytest.mark.parametrize("path", ["/api/docs", "/api/schema", "/api/schema?format=json"])
def test_anonymous_callers_of_the_docs_get_a_json_401_naming_the_admin_login(path: str, accept: str | None) -> None:
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = Client().get(path, **headers)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == 'Bearer realm="model-registry"'
    body = response.json()
    assert set(body) == {"detail"}
    assert f"/admin/login/?next={quote(path, safe='/')}" in body["detail"]


def test_an_anonymous_browser_asking_for_the_schema_gets_the_json_401() -> None:
    response = Client().get("/api/schema", HTTP_ACCEPT=BROWSER_ACCEPT)

    assert response["Content-Type"] == "application/json"
    assert "/admin/login/?next=/api/schema" in response.json()["detail"]


def test_an_anonymous_browser_opening_the_docs_is_sent_to_the_admin_login() -> None:
    response = Client().get("/api/docs", HTTP_ACCEPT=BROWSER_ACCEPT)

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/api/docs"
    assert "Accept" in response["Vary"]


def test_a_browser_logging_in_at_the_admin_comes_back_to_the_docs(
    role_users: dict[str, AbstractUser], settings: Any
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = role_users["viewer"]
    user.is_staff = True
    user.set_password("correct-horse-battery-staple")
    user.save()
    browser = Client()

    login_page = browser.get("/api/docs", HTTP_ACCEPT=BROWSER_ACCEPT, follow=True)
    assert login_page.redirect_chain == [("/admin/login/?next=/api/docs", 302)]
    assert login_page.status_code == 200
    logged_in = browser.post(
        "/admin/login/?next=/api/docs",
        {"username": "viewer", "password": "correct-horse-battery-staple", "next": "/api/docs"},
        HTTP_ACCEPT=BROWSER_ACCEPT,
    )
    assert logged_in.status_code == 302
    assert logged_in["Location"] == "/api/docs"
    docs = browser.get("/api/docs", HTTP_ACCEPT=BROWSER_ACCEPT)

    assert docs.status_code == 200
    assert "swagger-ui" in docs.content.decode()


@pytest.mark.parametrize("path", ["/api/docs", "/api/schema"])
@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "application/json"])
def test_a_caller_without_a_role_gets_a_json_403_from_the_docs(path: str, accept: str) -> None:
    token = platform_token("anon")

    response = Client().get(path, HTTP_ACCEPT=accept, HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize("path", ["/api/docs", "/audit"])
def test_a_session_of_a_user_who_is_not_staff_counts_for_nothing(
    role_users: dict[str, AbstractUser], path: str
) -> None:
    assert session_of(role_users["admin"], staff=False).get(path).status_code == 401


@pytest.mark.parametrize("path", ["/models", "/models/select?capability=code", "/sources", "/auth/token/verify"])
def test_the_rest_of_the_api_takes_no_session(role_users: dict[str, AbstractUser], path: str) -> None:
    browser = session_of(role_users["admin"])

    assert browser.get(path).status_code in {401, 405}
    assert browser.post("/models", {"name": "x"}, content_type="application/json").status_code == 401


def test_a_session_cannot_post_without_its_csrf_token(role_users: dict[str, AbstractUser]) -> None:
    browser = session_of(role_users["admin"], csrf_checks=True)

    response = browser.post("/audit", {}, content_type="application/json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_the_console_has_a_favicon_served_at_favicon_ico_too(role_users: dict[str, AbstractUser]) -> None:
    """Issue 23, item 6k: no favicon, and /favicon.ico answered the API's JSON 404."""
    page = session_of(role_users["viewer"]).get("/admin/").content.decode()
    assert '<link rel="icon" href="/static/registry/favicon.ico" sizes="any">' in page
    assert 'href="/static/registry/favicon.svg" type="image/svg+xml"' in page

    response = Client().get("/favicon.ico")  # browsers ask without a session, whatever the page links
    assert response.status_code == 302
    assert response["Location"] == "/static/registry/favicon.ico"
    assert "max-age=86400" in response["Cache-Control"]
    icon = Client().get(response["Location"])
    assert icon.status_code == 200
    assert b"".join(icon.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file's header


DOCS = {"HTTP_X_REGISTRY_DOCS": "try-it-out"}


def test_the_docs_try_it_out_requests_use_the_staff_session(role_users: dict[str, AbstractUser]) -> None:
    """Issue 23, item 6l: "Try it out" answered 401 to a staff user logged into the admin."""
    browser = session_of(role_users["viewer"])
    assert browser.get("/models", **DOCS).status_code == 200
    assert browser.get("/models", **DOCS).json()["count"] == 0
    # The role is the user's, as with a token: a viewer may not write.
    assert browser.post("/models", {"name": "x"}, content_type="application/json", **DOCS).status_code == 403


def test_a_docs_request_that_writes_needs_the_csrf_token(role_users: dict[str, AbstractUser]) -> None:
    browser = session_of(role_users["editor"], csrf_checks=True)
    body = {"name": "qwen2.5-coder:7b", "display_name": "Qwen 2.5 Coder 7B", "provider": "ollama", "model_type": "chat"}

    refused = browser.post("/models", body, content_type="application/json", **DOCS)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]

    browser.get("/admin/")  # the docs page is served with the token the admin's session set
    token = browser.cookies["csrftoken"].value
    created = browser.post("/models", body, content_type="application/json", HTTP_X_CSRFTOKEN=token, **DOCS)
    assert created.status_code == 201, created.content
    entry = LogEntry.objects.filter(object_repr="qwen2.5-coder:7b").get()
    assert entry.actor == role_users["editor"]


def test_a_session_counts_for_nothing_without_the_docs_header_or_staff(role_users: dict[str, AbstractUser]) -> None:
    assert session_of(role_users["admin"]).get("/models").status_code == 401
    assert session_of(role_users["admin"], staff=False).get("/models", **DOCS).status_code == 401
    assert Client().get("/models", **DOCS).status_code == 401
    # A token still wins over a session, and the API's 401 still challenges for a bearer token.
    response = Client().get("/models", HTTP_X_REGISTRY_DOCS="other")
    assert response["WWW-Authenticate"].startswith("Bearer")
