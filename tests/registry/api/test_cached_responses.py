"""Cached reads are stored bytes: ETag and 304, gzip compressed once, no query on a hit, fresh after writes."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from registry.api.responses import accepts_gzip, etag_matches
from registry.models import RegisteredModel
from tests.factories import ModelCapabilityFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

READS = ["/models?limit=500", "/models/big-0", "/models/select?capability=code&min_score=0.5&limit=100"]


@pytest.fixture
def models() -> list[RegisteredModel]:
    # Enough of them that the list and the selection pass the gzip threshold.
    created = [RegisteredModelFactory(name=f"big-{i}", description="x" * 200) for i in range(8)]
    for model in created:
        ModelCapabilityFactory(model=model, capability="code", capability_score=0.7)
    return created


@pytest.fixture
def viewer(api_client_for: Callable[[str], APIClient]) -> APIClient:
    return api_client_for("viewer")


@pytest.mark.parametrize("path", READS)
def test_a_read_carries_an_etag_and_if_none_match_answers_304(models: object, viewer: APIClient, path: str) -> None:
    first = viewer.get(path)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = viewer.get(path, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    assert viewer.get(path, HTTP_IF_NONE_MATCH=f'"other", W/{etag}').status_code == 304
    assert viewer.get(path, HTTP_IF_NONE_MATCH='"stale"').status_code == 200


@pytest.mark.parametrize("path", READS)
def test_a_hit_and_a_304_make_no_query(models: object, viewer: APIClient, path: str) -> None:
    etag = viewer.get(path).headers["ETag"]  # fills the cache and the caller's access
    with CaptureQueriesContext(connection) as context:
        assert viewer.get(path).status_code == 200
        assert viewer.get(path, HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert context.captured_queries == []


def test_a_write_changes_the_etag_and_the_body(
    models: list[RegisteredModel],
    viewer: APIClient,
    api_client_for: Callable[[str], APIClient],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    first = viewer.get("/models/big-0")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for("editor").patch("/models/big-0", {"display_name": "Renamed"}, format="json")
    assert response.status_code == 200
    after = viewer.get("/models/big-0", HTTP_IF_NONE_MATCH=first.headers["ETag"])
    assert after.status_code == 200
    assert after.headers["ETag"] != first.headers["ETag"]
    assert after.json()["display_name"] == "Renamed"


def test_usage_records_do_not_change_the_etag(
    models: list[RegisteredModel],
    viewer: APIClient,
    api_client_for: Callable[[str], APIClient],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    etag = viewer.get("/models/big-0").headers["ETag"]
    record = {"token_count": 10, "request_count": 1}
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for("service").post("/models/big-0/usage", record, format="json")
    assert response.status_code == 201
    assert viewer.get("/models/big-0", HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_large_bodies_are_served_gzipped_to_clients_that_accept_it(models: object, viewer: APIClient) -> None:
    plain = viewer.get("/models?limit=500")
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"].count("Accept-Encoding") == 1
    zipped = viewer.get("/models?limit=500", HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == plain.content
    assert len(zipped.content) < len(plain.content) / 3
    refused = viewer.get("/models?limit=500", HTTP_ACCEPT_ENCODING="gzip;q=0, identity")
    assert "Content-Encoding" not in refused.headers


def test_small_bodies_are_not_compressed(viewer: APIClient) -> None:
    RegisteredModelFactory(name="tiny")
    response = viewer.get("/models/tiny/capabilities", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers


def test_an_invalid_query_is_a_400_and_is_not_cached(viewer: APIClient) -> None:
    for _ in range(2):
        response = viewer.get("/models/select?capability=code&min_score=7")
        assert response.status_code == 400
        assert "min_score" in response.json()


def test_a_missing_model_is_a_404(viewer: APIClient) -> None:
    assert viewer.get("/models/nope").status_code == 404
    assert viewer.get("/models/nope").status_code == 404


def test_if_none_match_still_needs_a_token(models: object, viewer: APIClient) -> None:
    etag = viewer.get("/models/big-0").headers["ETag"]
    assert APIClient().get("/models/big-0", HTTP_IF_NONE_MATCH=etag).status_code == 401


@pytest.mark.parametrize(
    ("header", "expected"),
    [("gzip", True), ("GZip;q=0.5", True), ("*", True), ("gzip;q=0", False), ("br, deflate", False), ("", False)],
)
def test_accepts_gzip(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_etag_matching_is_weak_and_accepts_a_star() -> None:
    assert etag_matches('W/"a"', '"a"')
    assert etag_matches("*", '"a"')
    assert not etag_matches('"b", "c"', '"a"')
