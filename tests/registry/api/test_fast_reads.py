"""The WSGI front answers cache hits exactly as Django would, and hands everything else to Django."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import OperationalError, close_old_connections, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import Resolver404, resolve
from rest_framework_simplejwt.tokens import AccessToken

from registry.api import fast_reads
from registry.api.fast_reads import CACHED_ROUTES, CachedReads, cached_route
from registry.models import RegisteredModel
from registry.reads.cache import models_changed
from registry.selection import explain as selection
from registry_project.wsgi import fronted
from tests.factories import ModelCapabilityFactory, RegisteredModelFactory, UserFactory
from tests.tokens import platform_token

pytestmark = pytest.mark.django_db

READS = ["/models?limit=500", "/models/fast-0", "/models/select?capability=code&min_score=0.5&limit=100"]


class CountingDjango:
    """The real Django WSGI handler, counting the requests it answers."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.calls += 1
        return self.handler(environ, start_response)


class Answer:
    def __init__(self, app: Callable[..., Iterable[bytes]], path: str, **headers: str) -> None:
        environ = RequestFactory().get(path, **headers).environ
        # As a server sends it (PEP 3333: the path's bytes as latin-1); RequestFactory's request decoded it in place.
        environ["PATH_INFO"] = unquote_to_bytes(urlsplit(path).path).decode("iso-8859-1")
        self.status = ""
        self.headers: dict[str, str] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            self.status = status
            self.headers = {name.lower(): value for name, value in headers}

        chunks = app(environ, start_response)
        self.body = b"".join(chunks)
        getattr(chunks, "close", lambda: None)()

    @property
    def code(self) -> int:
        return int(self.status[:3])


@pytest.fixture
def django_app() -> Iterator[CountingDjango]:
    # As Django's test client does: the test's transaction must survive the end of each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield CountingDjango()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def front(django_app: CountingDjango) -> CachedReads:
    return CachedReads(django_app)


@pytest.fixture
def token() -> str:
    for i in range(8):
        model = RegisteredModelFactory(name=f"fast-{i}", description="y" * 200)
        ModelCapabilityFactory(model=model, capability="code", capability_score=0.7)
    user = UserFactory(username="fast-viewer")
    user.groups.add(Group.objects.get(name="viewer"))
    return f"Bearer {AccessToken.for_user(user)}"


@pytest.mark.parametrize("path", READS)
def test_a_hit_is_answered_by_the_front_as_django_answered_it(
    front: CachedReads, django_app: CountingDjango, token: str, path: str
) -> None:
    first = Answer(front, path, HTTP_AUTHORIZATION=token)
    assert first.code == 200
    assert django_app.calls == 1
    with CaptureQueriesContext(connection) as context:
        second = Answer(front, path, HTTP_AUTHORIZATION=token)
    assert django_app.calls == 1
    assert context.captured_queries == []
    assert (second.status, second.body) == (first.status, first.body)
    assert second.headers == first.headers
    assert {"x-content-type-options", "x-frame-options", "vary", "allow", "etag"} <= set(second.headers)


@pytest.mark.parametrize("path", READS)
def test_if_none_match_is_answered_304_by_the_front(
    front: CachedReads, django_app: CountingDjango, token: str, path: str
) -> None:
    etag = Answer(front, path, HTTP_AUTHORIZATION=token).headers["etag"]
    from_django = Answer(front, path, HTTP_AUTHORIZATION=token, HTTP_IF_NONE_MATCH=etag)
    assert from_django.code == 304
    calls = django_app.calls
    from_front = Answer(front, path, HTTP_AUTHORIZATION=token, HTTP_IF_NONE_MATCH=etag)
    assert django_app.calls == calls
    assert (from_front.status, from_front.body, from_front.headers.get("etag")) == ("304 Not Modified", b"", etag)


def test_the_front_serves_the_gzip_form(front: CachedReads, django_app: CountingDjango, token: str) -> None:
    plain = Answer(front, "/models?limit=500", HTTP_AUTHORIZATION=token)
    zipped = Answer(front, "/models?limit=500", HTTP_AUTHORIZATION=token, HTTP_ACCEPT_ENCODING="gzip")
    assert django_app.calls == 1
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped.body) == plain.body


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"HTTP_AUTHORIZATION": ""}, 401),
        ({"HTTP_AUTHORIZATION": "Bearer not-a-token"}, 401),
        ({"HTTP_ACCEPT": "text/html"}, 406),
        ({"HTTP_HOST": "evil.example"}, 400),
    ],
)
def test_what_the_front_refuses_django_answers(
    front: CachedReads, django_app: CountingDjango, token: str, headers: dict[str, str], status: int
) -> None:
    assert Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token).code == 200  # cached, headers learnt
    calls = django_app.calls
    answer = Answer(front, "/models/fast-0", **{"HTTP_AUTHORIZATION": token, **headers})
    assert django_app.calls == calls + 1
    assert answer.code == status


def test_a_caller_without_a_role_gets_django_403(front: CachedReads, django_app: CountingDjango, token: str) -> None:
    assert Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token).code == 200
    nobody = UserFactory(username="no-role")
    answer = Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(nobody)}")
    assert answer.code == 403


def test_other_routes_and_methods_go_to_django(front: CachedReads, django_app: CountingDjango, token: str) -> None:
    for _ in range(2):
        assert Answer(front, "/models/fast-0/capabilities", HTTP_AUTHORIZATION=token).code == 200
    assert django_app.calls == 2


def test_after_a_write_the_front_serves_the_new_body(
    front: CachedReads, django_app: CountingDjango, token: str, django_capture_on_commit_callbacks: Any
) -> None:
    Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token)
    Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token)
    with django_capture_on_commit_callbacks(execute=True):
        model = RegisteredModel.objects.get(name="fast-0")
        model.display_name = "Changed"
        model.save()
    assert b'"display_name":"Changed"' in Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token).body
    assert b'"display_name":"Changed"' in Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token).body


def test_a_deactivated_user_is_refused_by_the_front_at_once(front: CachedReads, django_app: CountingDjango) -> None:
    RegisteredModelFactory(name="fast-0")
    user = UserFactory(username="leaving")
    user.groups.add(Group.objects.get(name="viewer"))
    token = f"Bearer {AccessToken.for_user(user)}"
    assert Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token).code == 200
    assert Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token).code == 200
    user.is_active = False
    user.save()  # drops the cached access (registry.access.accounts)
    assert Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token).code == 401


def test_an_expired_token_is_refused_although_it_was_verified_before(
    front: CachedReads, django_app: CountingDjango
) -> None:
    RegisteredModelFactory(name="fast-0")
    user = UserFactory(username="brief")
    user.groups.add(Group.objects.get(name="viewer"))
    access = AccessToken.for_user(user)
    # Long enough that the first two requests are served before it expires on a loaded machine.
    access.set_exp(lifetime=timedelta(seconds=4))
    token = f"Bearer {access}"
    assert Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token).code == 200
    assert Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token).code == 200
    time.sleep(max(0.0, int(access["exp"]) - time.time()) + 1.1)  # exp has whole seconds
    assert Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token).code == 401


def test_a_platform_token_is_served_by_the_front(front: CachedReads, django_app: CountingDjango) -> None:
    RegisteredModelFactory(name="fast-0")
    token = f"Bearer {platform_token('authenticated')}"
    assert Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token).code == 200
    assert Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token).code == 200
    assert django_app.calls == 1
    assert Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=f"Bearer {platform_token('anon')}").code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/models",
        "/models/select",
        "/models/llama3.2:latest",
        "/models/42",
        "/models/gpt-4o",
        "/models/hf.co/org/Model-GGUF:Q4_K_M",
        "/models/a/capabilities",
        "/models/a/capabilities/code",
        "/models/a/parameters",
        "/models/a/endpoints",
        "/models/a/endpoints/3",
        "/models/a/usage",
        "/models/a/performance",
        "/models/hf.co/org/m/usage",
        "/models/",
        "/modelsx",
        "/health",
    ],
)
def test_the_fronts_routing_agrees_with_djangos(path: str) -> None:
    try:
        match = resolve(path)
        expected = CACHED_ROUTES.get(match.url_name or "")
        ref = match.kwargs.get("ref") if expected else None
    except Resolver404:
        expected, ref = None, None
    assert cached_route(path) == ((expected, ref) if expected else None)


def test_a_hit_over_the_request_limits_is_refused_by_django_as_json(
    front: CachedReads, django_app: CountingDjango, token: str, settings: Any
) -> None:
    assert Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token).code == 200
    settings.MAX_HEADER_FIELDS = 3

    refused = Answer(front, "/models/fast-0", HTTP_AUTHORIZATION=token, HTTP_X_A="1", HTTP_X_B="2", HTTP_X_C="3")

    assert refused.code == 431
    assert django_app.calls == 2
    assert refused.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/models/%F3%B7%B0%86", "/models/%E2%9C%93"])
@pytest.mark.parametrize("wrap", ["fronted", "front alone"])
def test_a_path_beyond_latin_1_reaches_django_as_the_server_sent_it(
    django_app: CountingDjango, token: str, path: str, wrap: str
) -> None:
    """Found by make fuzz: an empty 500 on the first such request of a worker.

    The front builds a WSGIRequest to validate the Host (once per host, memoized), which writes the
    decoded path into the environ; Django then read it as latin-1 and raised. The service's
    application (registry_project.wsgi.fronted) gives Django the server's path back.
    """
    fast_reads._origins.clear()  # a worker's first request: the front has no memoized Host yet
    app = fronted(django_app) if wrap == "fronted" else CachedReads(django_app)

    # The front alone no longer builds a request for such a path (cached_route leaves non-ASCII paths
    # to Django), and the service's application restores the server's path whatever the front did.
    answers = [Answer(app, path, HTTP_AUTHORIZATION=token) for _ in range(2)]

    assert [answer.code for answer in answers] == [404, 404]
    assert answers[0].body == b'{"detail":"No such model."}'


def test_a_detail_miss_is_served_by_the_front_from_the_stored_document(
    front: CachedReads, django_app: CountingDjango, token: str, django_capture_on_commit_callbacks: Any
) -> None:
    first = Answer(front, "/models/fast-1", HTTP_AUTHORIZATION=token)  # Django: builds and stores the document
    assert django_app.calls == 1
    with django_capture_on_commit_callbacks(execute=True):
        # A write to another model: every cached read is invalid, fast-1's document still current.
        RegisteredModel.objects.filter(name="fast-2").update(display_name="Other")
        models_changed()
    with CaptureQueriesContext(connection) as context:
        second = Answer(front, "/models/fast-1", HTTP_AUTHORIZATION=token)
    assert django_app.calls == 1
    assert len(context.captured_queries) == 1  # the document, nothing else
    assert second.headers.pop("etag") != first.headers.pop("etag")  # a new generation
    assert (second.status, second.body, second.headers) == (first.status, first.body, first.headers)
    # By id too, as the view looks it up: the same document, still without Django.
    model_id = RegisteredModel.objects.get(name="fast-1").pk
    assert Answer(front, f"/models/{model_id}", HTTP_AUTHORIZATION=token).body == first.body
    assert django_app.calls == 1


def test_a_detail_miss_with_a_stale_document_goes_to_django(
    front: CachedReads, django_app: CountingDjango, token: str, django_capture_on_commit_callbacks: Any
) -> None:
    Answer(front, "/models/fast-1", HTTP_AUTHORIZATION=token)
    with django_capture_on_commit_callbacks(execute=True):
        RegisteredModel.objects.filter(name="fast-1").update(display_name="Renamed")  # the trigger marks it stale
        models_changed()
    answer = Answer(front, "/models/fast-1", HTTP_AUTHORIZATION=token)
    assert django_app.calls == 2
    assert b'"display_name":"Renamed"' in answer.body
    assert Answer(front, "/models/no-such-model", HTTP_AUTHORIZATION=token).code == 404
    assert django_app.calls == 3


@pytest.mark.parametrize("path", ["/models/\u00c3\u00a9", "/models/caf\u00c3\u00a9/capabilities"])
def test_a_path_beyond_ascii_is_left_to_django(path: str) -> None:
    # PATH_INFO holds the path's bytes as latin-1: "é" arrives as "Ã©", which is another valid name.
    assert cached_route(path) is None


def post_select(
    app: Callable[..., Iterable[bytes]], body: bytes, token: str, content_type: str = "application/json"
) -> Answer:
    environ = RequestFactory().post("/models/select", body, content_type=content_type, HTTP_AUTHORIZATION=token).environ
    answer = Answer.__new__(Answer)
    answer.status = ""
    answer.headers = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer.status = status
        answer.headers = {name.lower(): value for name, value in headers}

    chunks = app(environ, start_response)
    answer.body = b"".join(chunks)
    return answer


def test_an_explained_selection_hit_is_served_by_the_front_with_djangos_bytes(
    front: CachedReads, django_app: CountingDjango, token: str
) -> None:
    question = b'{"capabilities": {"code": 0.5}, "limit": 3}'
    first = post_select(front, question, token)  # Django: validates, builds and stores the answer
    assert first.code == 200
    assert django_app.calls == 1
    with CaptureQueriesContext(connection) as context:
        second = post_select(front, question, token)
    assert django_app.calls == 1
    assert context.captured_queries == []
    assert (second.status, second.body, second.headers) == (first.status, first.body, first.headers)
    # A body the view refuses is Django's to answer, every time: a refusal is never stored.
    for _ in range(2):
        assert post_select(front, b'{"capabilities": {}}', token).code == 400
    assert django_app.calls == 3
    # As is a body whose type only starts like JSON's: DRF has no parser for it.
    refused = post_select(front, b'{"capabilities": {"code": 0.5}}', token, content_type="application/json-seq")
    assert refused.code == 415
    assert django_app.calls == 4


def test_an_explained_selection_miss_is_built_by_the_front_as_django_builds_it(
    front: CachedReads, django_app: CountingDjango, token: str
) -> None:
    post_select(front, b'{"capabilities": {"code": 0.5}}', token)  # Django: the front learns the headers
    assert django_app.calls == 1
    question = b'{"capabilities": {"code": 0.6}, "exclude": ["fast-3"], "limit": 2}'
    with CaptureQueriesContext(connection) as context:
        built = post_select(front, question, token)
    assert django_app.calls == 1
    assert context.captured_queries  # built from the tables, not found
    assert post_select(front, question, token).body == built.body  # stored: a hit now
    assert django_app.calls == 1
    cache.clear()
    by_django = post_select(django_app, question, token)
    assert built.code == by_django.code == 200
    # The ETag names the cache generation, which the clear above moved on.
    del built.headers["etag"], by_django.headers["etag"]
    assert (built.body, built.headers) == (by_django.body, by_django.headers)
    assert json.loads(built.body)["excluded"][0] == {
        "id": RegisteredModel.objects.get(name="fast-3").pk,
        "name": "fast-3",
        "check": "excluded",
        "reason": "Named in the request's exclude list.",
    }


def test_an_exclude_item_over_its_length_as_sent_is_refused_by_django(
    front: CachedReads, django_app: CountingDjango, token: str
) -> None:
    """The front validates with the view's serializer: an item padded past 100 characters is Django's 400 to answer."""
    post_select(front, b'{"capabilities": {"code": 0.5}}', token)  # Django: the front learns the headers
    padded = json.dumps({"capabilities": {"code": 0.5}, "exclude": [" " * 100 + "fast-3"]}).encode()
    answer = post_select(front, padded, token)
    assert answer.code == 400
    assert "exclude" in json.loads(answer.body)
    assert django_app.calls == 2


def test_when_the_front_fails_to_build_a_selection_django_answers(
    front: CachedReads, django_app: CountingDjango, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    post_select(front, b'{"capabilities": {"code": 0.5}}', token)
    real = selection.select_explained
    calls = []

    def failing_once(request: selection.SelectionRequest, **kwargs: Any) -> dict[str, Any]:
        calls.append(request)
        if len(calls) == 1:
            raise OperationalError("the connection was lost")
        return real(request, **kwargs)

    monkeypatch.setattr(selection, "select_explained", failing_once)
    answer = post_select(front, b'{"capabilities": {"code": 0.6}}', token)
    assert answer.code == 200
    assert django_app.calls == 2  # the front's attempt failed; Django built the answer
    assert len(calls) == 2
