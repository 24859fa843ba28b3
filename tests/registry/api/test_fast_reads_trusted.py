"""The cached-read front serves a trusted network's token-less reads as it serves a token's, and counts them.

The router's reads (``/api/v1/models``, a model, its capabilities, with ``PLATFORM_API_COMPAT=alfred``)
and the registry's own are answered from the same cache entries whether a JWT or a trusted address
asked, with no query, and each token-less one lands in the read counts on the row Django would use.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import Resolver404, resolve

from registry.access.read_counts import pending_reads, read_counts_flush
from registry.api.fast_reads import PLATFORM_ROUTES, CachedReads, cached_route
from registry.models import TrustedNetworkRead
from tests.registry.api.test_fast_reads import Answer, CountingDjango, django_app, front, token
from tests.tokens import platform_token

pytestmark = pytest.mark.django_db

__all__ = ["django_app", "front", "token"]  # the fixtures, shared with test_fast_reads

INSIDE, OUTSIDE = "10.20.30.40", "192.0.2.7"
NETWORK = "10.0.0.0/8"
# Each read and the route its count is recorded under.
READS = {
    "/models?limit=500": "/models",
    "/models/fast-0": "/models/{ref}",
    "/models/select?capability=code&min_score=0.5&limit=100": "/models/select",
    "/api/v1/models": "/api/v1/models",
    "/api/v1/models?limit=3": "/api/v1/models",
    "/api/v1/models/fast-0": "/api/v1/models/{ref}",
    "/api/v1/models/fast-0/capabilities": "/api/v1/models/{ref}/capabilities",
}


@pytest.fixture(autouse=True)
def _trusted(settings: Any) -> None:
    settings.PLATFORM_API_COMPAT = "alfred"
    settings.PLATFORM_TRUSTED_NETWORKS = [NETWORK]
    settings.PLATFORM_TRUSTED_PROXIES = []


def counted() -> list[tuple[str, str, str, int]]:
    read_counts_flush()
    return sorted(TrustedNetworkRead.objects.values_list("client_address", "method", "route", "count"))


@pytest.mark.parametrize(("path", "route"), READS.items())
def test_a_token_less_hit_is_answered_by_the_front_as_django_answered_it(
    front: CachedReads, django_app: CountingDjango, token: str, path: str, route: str
) -> None:
    first = Answer(front, path, REMOTE_ADDR=INSIDE)
    assert first.code == 200
    assert django_app.calls == 1
    with CaptureQueriesContext(connection) as context:
        second = Answer(front, path, REMOTE_ADDR=INSIDE)
    assert django_app.calls == 1
    assert context.captured_queries == []
    assert (second.status, second.body, second.headers) == (first.status, first.body, first.headers)
    # Django counted the first, the front the second: on one row.
    assert counted() == [(INSIDE, "GET", route, 2)]


@pytest.mark.parametrize("path", ["/api/v1/models", "/api/v1/models/fast-0/capabilities", "/models/fast-0"])
def test_a_jwt_read_and_a_token_less_one_share_the_cache_entry(
    front: CachedReads, django_app: CountingDjango, token: str, path: str
) -> None:
    with_token = Answer(front, path, HTTP_AUTHORIZATION=token, REMOTE_ADDR=OUTSIDE)
    without = Answer(front, path, REMOTE_ADDR=INSIDE)
    assert django_app.calls == 1  # the entry the token's read built serves the token-less one
    assert (without.status, without.body, without.headers["etag"]) == (
        with_token.status,
        with_token.body,
        with_token.headers["etag"],
    )


def test_a_token_less_304_is_answered_by_the_front_and_counted(
    front: CachedReads, django_app: CountingDjango, token: str
) -> None:
    etag = Answer(front, "/api/v1/models", REMOTE_ADDR=INSIDE).headers["etag"]
    Answer(front, "/api/v1/models", REMOTE_ADDR=INSIDE, HTTP_IF_NONE_MATCH=etag)  # Django's 304: headers learnt
    calls = django_app.calls
    answer = Answer(front, "/api/v1/models", REMOTE_ADDR=INSIDE, HTTP_IF_NONE_MATCH=etag)
    assert (answer.code, django_app.calls) == (304, calls)
    assert counted() == [(INSIDE, "GET", "/api/v1/models", 3)]


def test_a_token_less_read_from_outside_is_djangos_401_and_not_counted(
    front: CachedReads, django_app: CountingDjango, token: str
) -> None:
    assert Answer(front, "/api/v1/models", REMOTE_ADDR=INSIDE).code == 200
    answer = Answer(front, "/api/v1/models", REMOTE_ADDR=OUTSIDE)
    assert answer.code == 401
    assert django_app.calls == 2
    assert counted() == [(INSIDE, "GET", "/api/v1/models", 1)]


@pytest.mark.parametrize("authorization", ["Bearer not.a.token", "", f"Bearer {platform_token('anon')}"])
def test_a_bad_or_empty_credential_from_a_trusted_network_is_still_refused(
    front: CachedReads, django_app: CountingDjango, token: str, authorization: str
) -> None:
    assert Answer(front, "/api/v1/models", REMOTE_ADDR=INSIDE).code == 200  # cached, headers learnt
    answer = Answer(front, "/api/v1/models", REMOTE_ADDR=INSIDE, HTTP_AUTHORIZATION=authorization)
    assert answer.code in (401, 403)
    assert django_app.calls == 2
    assert pending_reads.pending() == 1  # only the first, token-less read


def test_without_the_profile_v1_reads_go_to_django(
    front: CachedReads, django_app: CountingDjango, token: str, settings: Any
) -> None:
    settings.PLATFORM_API_COMPAT = ""
    for _ in range(2):
        assert Answer(front, "/api/v1/models/fast-0", REMOTE_ADDR=INSIDE).code == 200
    assert django_app.calls == 2
    assert counted() == [(INSIDE, "GET", "/api/v1/models/{ref}", 2)]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/models",
        "/api/v1/models/42",
        "/api/v1/models/llama3.2:latest",
        "/api/v1/models/hf.co/org/Model-GGUF:Q4_K_M",
        "/api/v1/models/hf.co/org/Model-GGUF:Q4_K_M/capabilities",
        "/api/v1/models/a/capabilities",
        "/api/v1/models/a/capabilities/code",
        "/api/v1/models/a/parameters",
        "/api/v1/models/a/usage",
        "/api/v1/models/select",
        "/api/v1/models/",
        "/api/v1/modelsx",
        "/api/v1/audit",
    ],
)
def test_the_fronts_v1_routing_agrees_with_djangos(path: str) -> None:
    try:
        match = resolve(path)
        expected = PLATFORM_ROUTES.get(match.url_name or "") if match.namespace == "v1" else None
        ref = match.kwargs.get("ref") if expected else None
    except Resolver404:
        expected, ref = None, None
    assert cached_route(path) == ((expected, ref) if expected else None)


def test_a_page_under_v1_without_the_profile_links_to_v1_and_the_registrys_to_itself(
    front: CachedReads, django_app: CountingDjango, token: str, settings: Any
) -> None:
    """Without the profile /api/v1/models is the registry's page again, whose links name the path it was asked at."""
    settings.PLATFORM_API_COMPAT = ""
    for _ in range(2):  # built, then served from the cache (by the front for /models)
        under_v1 = json.loads(Answer(front, "/api/v1/models?limit=1", HTTP_AUTHORIZATION=token).body)
        plain = json.loads(Answer(front, "/models?limit=1", HTTP_AUTHORIZATION=token).body)
        assert under_v1["next"] == "http://testserver/api/v1/models?limit=1&offset=1"
        assert plain["next"] == "http://testserver/models?limit=1&offset=1"
