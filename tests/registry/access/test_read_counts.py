"""Token-less requests from trusted networks (reads, usage posts) are on the record as counts per client, route and
minute, written in bulk.

The requests go through Django's test client (DRF's TrustedNetworkAuthentication) with the client
address in REMOTE_ADDR; the cached-read front's share is in tests/registry/api/test_fast_reads.py.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from registry.access import read_counts
from registry.access.read_counts import pending_reads, read_counted, read_counts_flush, route_pattern
from registry.models import ModelUsage, TrustedNetworkRead
from tests.factories import RegisteredModelFactory

pytestmark = pytest.mark.django_db

INSIDE, NEIGHBOUR = "10.20.30.40", "10.20.30.41"
NETWORK = "10.0.0.0/8"
# 2026-12-05 12:04:00 UTC, and a second inside the next minute.
T_1204 = datetime(2026, 12, 5, 12, 4, tzinfo=UTC).timestamp()
T_1205 = T_1204 + 61


@pytest.fixture(autouse=True)
def _trusted(settings: Any) -> None:
    settings.PLATFORM_API_COMPAT = "alfred"
    settings.PLATFORM_TRUSTED_NETWORKS = [NETWORK]
    settings.PLATFORM_TRUSTED_PROXIES = []


def rows() -> list[tuple[str, str, str, int]]:
    return sorted(TrustedNetworkRead.objects.values_list("client_address", "method", "route", "count"))


def test_n_reads_in_a_minute_from_one_address_of_one_route_are_one_row_of_n() -> None:
    RegisteredModelFactory(name="qwen2.5-coder:7b")
    client = APIClient()
    for _ in range(25):
        assert client.get("/api/v1/models", REMOTE_ADDR=INSIDE).status_code == 200

    assert TrustedNetworkRead.objects.count() == 0  # nothing written by the reads themselves
    assert read_counts_flush() == 25

    assert rows() == [(INSIDE, "GET", "/api/v1/models", 25)]
    assert LogEntry.objects.filter(action=LogEntry.Action.ACCESS).count() == 0


def test_reads_of_every_model_count_on_their_routes_row_not_one_row_per_model() -> None:
    models = RegisteredModelFactory.create_batch(5)
    client = APIClient()
    for model in models:
        assert client.get(f"/api/v1/models/{model.pk}", REMOTE_ADDR=INSIDE).status_code == 200
        assert client.get(f"/api/v1/models/{model.pk}/capabilities", REMOTE_ADDR=INSIDE).status_code == 200
    read_counts_flush()

    assert rows() == [
        (INSIDE, "GET", "/api/v1/models/{ref}", 5),
        (INSIDE, "GET", "/api/v1/models/{ref}/capabilities", 5),
    ]


def test_addresses_routes_methods_and_minutes_are_rows_of_their_own() -> None:
    read_counted(address=INSIDE, network=NETWORK, method="GET", route="/models", at=T_1204)
    read_counted(address=INSIDE, network=NETWORK, method="GET", route="/models", at=T_1204 + 59)
    read_counted(address=NEIGHBOUR, network=NETWORK, method="GET", route="/models", at=T_1204)
    read_counted(address=INSIDE, network=NETWORK, method="GET", route="/models/{ref}", at=T_1204)
    read_counted(address=INSIDE, network=NETWORK, method="HEAD", route="/models", at=T_1204)
    read_counted(address=INSIDE, network=NETWORK, method="GET", route="/models", at=T_1205)
    read_counts_flush()

    found = sorted(
        (row.minute.strftime("%H:%M"), row.client_address, row.method, row.route, row.count)
        for row in TrustedNetworkRead.objects.all()
    )
    assert found == [
        ("12:04", INSIDE, "GET", "/models", 2),
        ("12:04", INSIDE, "GET", "/models/{ref}", 1),
        ("12:04", INSIDE, "HEAD", "/models", 1),
        ("12:04", NEIGHBOUR, "GET", "/models", 1),
        ("12:05", INSIDE, "GET", "/models", 1),
    ]


def test_a_second_flush_of_the_same_minute_adds_to_its_row() -> None:
    for _ in range(3):
        read_counted(address=INSIDE, network=NETWORK, method="GET", route="/models", at=T_1204)
    read_counts_flush()
    for _ in range(4):
        read_counted(address=INSIDE, network=NETWORK, method="GET", route="/models", at=T_1204 + 30)
    read_counts_flush()

    assert rows() == [(INSIDE, "GET", "/models", 7)]
    assert read_counts_flush() == 0  # nothing left: a flush with nothing to write writes nothing


def test_a_read_on_a_warm_cache_sends_no_query(django_assert_num_queries: Any) -> None:
    RegisteredModelFactory.create_batch(3)
    client = APIClient()
    assert client.get("/api/v1/models", REMOTE_ADDR=INSIDE).status_code == 200  # builds the cache entry
    with django_assert_num_queries(0):
        for _ in range(5):
            assert client.get("/api/v1/models", REMOTE_ADDR=INSIDE).status_code == 200
    assert pending_reads.pending() == 6


def test_a_bad_token_from_a_trusted_network_is_refused_and_not_counted() -> None:
    response = APIClient().get("/api/v1/models", REMOTE_ADDR=INSIDE, HTTP_AUTHORIZATION="Bearer not.a.token")
    assert response.status_code == 401
    assert pending_reads.pending() == 0


def test_a_read_from_outside_the_networks_is_refused_and_not_counted() -> None:
    assert APIClient().get("/api/v1/models", REMOTE_ADDR="192.0.2.7").status_code == 401
    assert pending_reads.pending() == 0


def test_n_usage_posts_in_a_minute_write_no_audit_row_and_one_count_row_of_n() -> None:
    model = RegisteredModelFactory()
    client = APIClient()
    with CaptureQueriesContext(connection) as queries:
        for n in range(12):
            response = client.post(
                f"/api/v1/models/{model.pk}/usage", {"request_id": f"r{n}"}, format="json", REMOTE_ADDR=INSIDE
            )
            assert response.status_code == 200, response.content
    # The records are their own record; the requests themselves write nothing else.
    assert ModelUsage.objects.filter(model=model).count() == 12
    assert not [query["sql"] for query in queries.captured_queries if "auditlog" in query["sql"]]
    assert TrustedNetworkRead.objects.count() == 0

    assert read_counts_flush() == 12

    assert rows() == [(INSIDE, "POST", "/api/v1/models/{ref}/usage", 12)]
    assert LogEntry.objects.filter(action=LogEntry.Action.ACCESS).count() == 0


def test_a_usage_post_with_a_bad_token_from_a_trusted_network_is_refused_and_not_counted() -> None:
    model = RegisteredModelFactory()
    response = APIClient().post(
        f"/api/v1/models/{model.pk}/usage",
        {"request_id": "r1"},
        format="json",
        REMOTE_ADDR=INSIDE,
        HTTP_AUTHORIZATION="Bearer not-a-token",
    )
    assert response.status_code == 401
    assert not ModelUsage.objects.exists()
    assert pending_reads.pending() == 0


def test_a_write_the_network_is_not_trusted_for_is_refused_and_not_counted() -> None:
    response = APIClient().post("/api/v1/models", {"name": "x"}, format="json", REMOTE_ADDR=INSIDE)
    assert response.status_code == 401
    assert pending_reads.pending() == 0


@pytest.mark.parametrize(
    ("route", "shown"),
    [
        ("api/v1/models$", "/api/v1/models"),
        ("^models/(?P<ref>.+)/capabilities$", "/models/{ref}/capabilities"),
        ("^models/(?P<ref>.+)/endpoints/(?P<endpoint_id>[0-9]+)$", "/models/{ref}/endpoints/{endpoint_id}"),
        ("sources/<int:pk>/run", "/sources/{pk}/run"),
        ("audit", "/audit"),
    ],
)
def test_a_route_is_recorded_as_its_pattern(route: str, shown: str) -> None:
    assert route_pattern(route) == shown


@pytest.mark.django_db(transaction=True)
def test_counts_taken_while_reads_go_on_add_up_to_every_read() -> None:
    """Reads counted by several threads while flushes run: the rows hold every read, once."""
    readers, reads_each = 4, 500
    done = threading.Event()

    def read() -> None:
        for index in range(reads_each):
            read_counted(address=INSIDE, network=NETWORK, method="GET", route="/models", at=T_1204 + index % 120)

    def flush_until_done() -> None:
        try:
            while not done.is_set():
                read_counts_flush()
        finally:
            connection.close()

    flusher = threading.Thread(target=flush_until_done)
    flusher.start()
    threads = [threading.Thread(target=read) for _ in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    flusher.join()
    read_counts_flush()

    by_minute = dict(TrustedNetworkRead.objects.values_list("minute", "count"))
    assert sum(by_minute.values()) == readers * reads_each
    assert len(by_minute) == 2  # 12:04 and 12:05


@pytest.mark.django_db(transaction=True)
def test_a_served_process_flushes_its_counts_on_its_own() -> None:
    """What registry_project.wsgi turns on: a thread writes the counts every interval, no request waits for it."""
    read_counts.read_counts_flush_every(0.2)
    try:
        for _ in range(3):
            read_counted(address=INSIDE, network=NETWORK, method="GET", route="/models", at=T_1204)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not TrustedNetworkRead.objects.exists():
            time.sleep(0.05)
        assert rows() == [(INSIDE, "GET", "/models", 3)]
        assert pending_reads.pending() == 0
    finally:
        read_counts.read_counts_flush_every(0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_flush_the_database_refuses_keeps_its_counts_for_the_next(on_postgres: bool) -> None:
    if not on_postgres:
        pytest.skip("an aborted transaction refuses statements on PostgreSQL only")
    for _ in range(3):
        read_counted(address=INSIDE, network=NETWORK, method="GET", route="/models", at=T_1204)
    # A real refusal: inside a transaction PostgreSQL has aborted, every statement fails.
    with transaction.atomic():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1/0")
        except DatabaseError:
            pass
        with pytest.raises(DatabaseError):
            read_counts_flush()
        transaction.set_rollback(True)
    assert pending_reads.pending() == 3

    read_counted(address=INSIDE, network=NETWORK, method="GET", route="/models", at=T_1204)
    assert read_counts_flush() == 4
    assert rows() == [(INSIDE, "GET", "/models", 4)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_processes_flushing_the_same_row_at_once_add_up(on_postgres: bool) -> None:
    """Two connections upsert the same (minute, client, method, route) concurrently: neither count is lost."""
    if not on_postgres:
        pytest.skip("concurrent writers need PostgreSQL")
    rounds = 50
    barrier = threading.Barrier(2)

    def flusher() -> None:
        try:
            barrier.wait()
            for _ in range(rounds):
                read_counts._upsert({(int(T_1204 // 60), INSIDE, NETWORK, "GET", "/models"): 2})
        finally:
            connection.close()

    threads = [threading.Thread(target=flusher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert rows() == [(INSIDE, "GET", "/models", 2 * rounds * 2)]
