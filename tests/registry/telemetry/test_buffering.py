"""Usage posted while PostgreSQL is away: kept in Redis, written once it is back, in order and once.

PostgreSQL (and, for the 503, Redis) sits behind a real TCP proxy that the tests cut; Redis is
the suite's (``REDIS_URL``), of which the buffer's four keys are emptied around each test.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from auditlog.models import LogEntry
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import DatabaseError, connections
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from registry.access.accounts import clear_local_access
from registry.access.read_counts import pending_reads, read_counts_flush
from registry.models import ModelPrice, ModelUsage, RegisteredModel, TrustedNetworkRead, UsageBufferApplied
from registry.operations import usage_buffer
from registry.tasks import drain_usage_buffer
from registry.telemetry import buffering
from registry.telemetry.buffering import usage_buffer_drain
from registry.telemetry.services import usage_record_idempotent
from tests.factories import RegisteredModelFactory
from tests.faults import TcpProxy
from tests.tokens import platform_token

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BUFFER_KEYS = (usage_buffer.STREAM, usage_buffer.RECORDS, usage_buffer.DEAD, usage_buffer.LOCK)


class Outage:
    """PostgreSQL and Redis behind proxies the test can cut and restore."""

    def __init__(self, database: TcpProxy, redis: TcpProxy) -> None:
        self.database = database
        self.redis = redis

    def cut_database(self) -> None:
        self.database.cut()

    def restore_database(self) -> None:
        self.database.restore()
        for connection in connections.all(initialized_only=True):
            connection.close()


@pytest.fixture
def outage(on_postgres: bool) -> Iterator[Outage]:
    if not on_postgres:
        pytest.skip("PostgreSQL only: the proxy sits between Django and the database server (SQLite has no outage)")
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL): the usage buffer lives there (the embedded mode answers 503)")
    redis_url = urlsplit(settings.REDIS_URL)
    redis_proxy = TcpProxy((redis_url.hostname or "127.0.0.1", redis_url.port or 6379))
    proxied_redis = redis_url._replace(netloc=f"127.0.0.1:{redis_proxy.port}").geturl()
    connection = connections["default"]
    original = dict(connection.settings_dict)
    database_proxy = TcpProxy((original["HOST"] or "127.0.0.1", int(original["PORT"] or 5432)))
    connection.close()
    # The dict every thread's connection is built from (health checks run in a pool).
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(database_proxy.port))
    with override_settings(REDIS_URL=proxied_redis, USAGE_BUFFER_ENABLED=True):
        usage_buffer.client().delete(*BUFFER_KEYS)
        try:
            yield Outage(database_proxy, redis_proxy)
        finally:
            redis_proxy.restore()
            usage_buffer.client().delete(*BUFFER_KEYS)
            for each in connections.all(initialized_only=True):
                each.close()
            connection.settings_dict.update(HOST=original["HOST"], PORT=original["PORT"])
            database_proxy.close()
            redis_proxy.close()


@pytest.fixture
def service(api_client_for: Callable[[str], APIClient]) -> APIClient:
    return api_client_for("service")


def warm(client: APIClient, model: RegisteredModel) -> None:
    """One post while the database answers: the caller's access is then remembered, as in a running service."""
    assert client.post(f"/models/{model.pk}/usage", {"token_count": 1}, format="json").status_code == 201


def buffered_records() -> int:
    return usage_buffer.buffer_state().records


def test_usage_posted_while_the_database_is_cut_is_written_once_in_order_after_it_returns(
    outage: Outage, service: APIClient
) -> None:
    model = RegisteredModelFactory(name="buffered:latest")
    warm(service, model)
    usage_record_idempotent(model=model, records=[{"request_id": "before-outage", "token_count": 5}])
    already = ModelUsage.objects.get(request_id="before-outage")
    outage.cut_database()
    acknowledged: list[int] = []  # token_count of each record answered as kept, in the order answered
    sequence = iter(range(100, 10_000))
    with override_settings(PLATFORM_API_COMPAT="alfred"):
        for round_ in range(6):
            batch = [{"token_count": next(sequence)} for _ in range(3)]
            plain = service.post(f"/models/{model.pk}/usage", batch, format="json")
            assert plain.status_code == 202, plain.content
            assert plain.json()["buffered"] == 3
            acknowledged += [record["token_count"] for record in batch]
            routed = {"request_id": f"req-{round_}", "content_token_count": next(sequence)}
            answer = service.post(f"/api/v1/models/{model.name}/usage", routed, format="json")
            assert answer.status_code == 200, answer.content
            assert answer.json() == {"recorded": 0, "duplicates": 0, "buffered": 1}
            acknowledged.append(routed["content_token_count"])
            # The router retries a post it did not see answered, and one stored before the outage.
            retry = {**routed, "content_token_count": 1}
            assert service.post(f"/api/v1/models/{model.name}/usage", retry, format="json").status_code == 200
        again = {"request_id": "before-outage", "content_token_count": 1}
        assert service.post(f"/api/v1/models/{model.name}/usage", again, format="json").status_code == 200
    assert buffered_records() == 6 * 3 + 6 * 2 + 1

    outage.restore_database()
    outcome = drain_usage_buffer()

    assert outcome["stopped"] is None
    stored = list(ModelUsage.objects.filter(model=model).exclude(pk=already.pk).order_by("id"))
    written = [record.token_count for record in stored][1:]  # after the warm-up record
    assert written == acknowledged  # every acknowledged record, once, in the order answered
    request_ids = [record.request_id for record in stored if record.request_id]
    assert request_ids == [f"req-{n}" for n in range(6)]
    assert ModelUsage.objects.filter(request_id="before-outage").count() == 1
    assert outcome["records"] == len(acknowledged)
    assert usage_buffer.buffer_state() == usage_buffer.BufferState(
        records=0, entries=0, oldest_age_seconds=None, dead_letters=0
    )
    assert not UsageBufferApplied.objects.exists()  # the markers go once their entries left Redis


@pytest.mark.parametrize("with_token", [True, False], ids=["platform-token", "trusted-network"])
def test_router_posts_in_flight_when_the_database_is_cut_are_each_stored_once(
    outage: Outage, live_server: Any, with_token: bool
) -> None:
    """Clients post concurrently over HTTP while the database is cut and restored under them: with a
    platform token, or with none from a trusted network (the live server's clients come from loopback)."""
    model = RegisteredModelFactory(name="in-flight:latest")
    url = f"{live_server.url}/api/v1/models/{model.name}/usage"
    headers = {"Authorization": f"Bearer {platform_token(registry_role='service')}"} if with_token else {}
    acknowledged: set[str] = set()
    answers: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def router(client_number: int) -> None:
        with requests.Session() as session:
            for n in itertools.count():
                if stop.is_set():
                    return
                metric = {"request_id": f"c{client_number}-{n}", "content_token_count": 10}
                while True:  # retried with the same id until answered 2xx, as the router does
                    status = session.post(url, json=metric, headers=headers, timeout=10).status_code
                    with lock:
                        answers.append(status)
                        if status == 200:
                            acknowledged.add(metric["request_id"])
                    if status == 200:
                        break
                    time.sleep(0.05)

    trusted = [] if with_token else ["127.0.0.0/8"]
    with override_settings(PLATFORM_API_COMPAT="alfred", PLATFORM_TRUSTED_NETWORKS=trusted):
        clients = [threading.Thread(target=router, args=(n,)) for n in range(4)]
        for thread in clients:
            thread.start()
        time.sleep(0.5)
        outage.cut_database()
        time.sleep(1.0)
        outage.restore_database()
        time.sleep(0.5)
        stop.set()
        for thread in clients:
            thread.join(timeout=30)
    connections.close_all()

    outcome = usage_buffer_drain()

    assert outcome.stopped is None
    assert outcome.records > 0  # some posts were kept while the database was cut
    stored = list(ModelUsage.objects.filter(model_name=model.name).values_list("request_id", flat=True))
    assert len(stored) == len(set(stored))  # none twice
    assert set(stored) == acknowledged  # every acknowledged record, and only those
    # 200, or a 503 when Redis too was slower than its timeout on this shared machine: retried, never lost.
    assert set(answers) <= {200, 503}
    assert answers.count(200) >= len(acknowledged)


TRUSTED_ROUTER = "172.28.1.5"  # docker-compose's container range, trusted below; no token


def test_a_token_less_router_post_while_the_database_is_cut_is_answered_and_stored_once_after_the_drain(
    outage: Outage,
) -> None:
    """The router's normal path (docker-compose): no token, trusted for its network. Authenticating it
    touches no database, so its posts are kept in the buffer like a token's, and counted, not audited."""
    model = RegisteredModelFactory(name="trusted:latest")
    router = APIClient(REMOTE_ADDR=TRUSTED_ROUTER)
    url = f"/api/v1/models/{model.pk}/usage"
    with override_settings(PLATFORM_API_COMPAT="alfred", PLATFORM_TRUSTED_NETWORKS=["172.28.1.0/24"]):
        # Warm: the database answers, and this first post is stored at once.
        assert router.post(url, {"request_id": "warm", "content_token_count": 1}, format="json").status_code == 200
        outage.cut_database()
        answers = []
        for n in range(3):
            metric = {"request_id": f"cut-{n}", "content_token_count": 100 + n}
            answers.append(router.post(url, metric, format="json"))
        retry = router.post(url, {"request_id": "cut-0", "content_token_count": 100}, format="json")
        # Without the profile, the plain API's answer for a kept post: 202.
        with override_settings(PLATFORM_API_COMPAT=""):
            plain = router.post(f"/models/{model.pk}/usage", {"token_count": 7}, format="json")
        # The counts cannot be written while the database is away: the flush fails and keeps them.
        with pytest.raises(DatabaseError):
            read_counts_flush()
        assert pending_reads.pending() == 6

    for answer in [*answers, retry]:
        assert answer.status_code == 200, answer.content
        assert answer.json() == {"recorded": 0, "duplicates": 0, "buffered": 1}
    assert plain.status_code == 202, plain.content
    assert plain.json()["buffered"] == 1
    assert buffered_records() == 5

    outage.restore_database()
    outcome = drain_usage_buffer()
    flushed = read_counts_flush()

    assert outcome["stopped"] is None
    stored = ModelUsage.objects.filter(model=model).order_by("id")
    assert [(row.request_id, row.token_count) for row in stored] == [
        ("warm", 1),
        ("cut-0", 100),  # once, the retry included
        ("cut-1", 101),
        ("cut-2", 102),
        (None, 7),
    ]
    assert buffered_records() == 0
    # Every post on the record as a count of its route, none as an audit entry.
    assert flushed == 6
    assert sorted(TrustedNetworkRead.objects.values_list("client_address", "method", "route", "count")) == [
        (TRUSTED_ROUTER, "POST", "/api/v1/models/{ref}/usage", 5),
        (TRUSTED_ROUTER, "POST", "/models/{ref}/usage", 1),
    ]
    assert not LogEntry.objects.filter(action=LogEntry.Action.ACCESS).exists()


def test_a_local_token_posts_usage_through_an_outage_longer_than_its_cached_access(
    outage: Outage, service: APIClient, role_users: dict[str, Any]
) -> None:
    model = RegisteredModelFactory()
    warm(service, model)
    outage.cut_database()
    # USER_ACCESS_CACHE_SECONDS later: the fresh entry is gone, in Redis and in this process.
    cache.delete(f"user-access:{role_users['service'].pk}")
    clear_local_access()

    response = service.post(f"/models/{model.pk}/usage", {"token_count": 6}, format="json")

    assert response.status_code == 202, response.content


def test_buffered_usage_is_costed_at_the_price_in_force_at_its_moment(outage: Outage, service: APIClient) -> None:
    model = RegisteredModelFactory()
    now = timezone.now()
    ModelPrice.objects.create(
        model=model, input_per_mtok=Decimal(1), output_per_mtok=Decimal(1), effective_from=now - timedelta(days=2)
    )
    ModelPrice.objects.create(
        model=model, input_per_mtok=Decimal(10), output_per_mtok=Decimal(10), effective_from=now - timedelta(hours=1)
    )
    warm(service, model)
    outage.cut_database()
    earlier = (now - timedelta(hours=3)).isoformat()
    posted = [{"timestamp": earlier, "input_tokens": 1_000_000}, {"input_tokens": 1_000_000}]
    assert service.post(f"/models/{model.pk}/usage", posted, format="json").status_code == 202
    answered = timezone.now()
    outage.restore_database()

    drain_usage_buffer()

    old, new = ModelUsage.objects.filter(model=model, input_tokens=1_000_000).order_by("id")
    assert (old.cost, new.cost) == (Decimal("1.000000"), Decimal("10.000000"))
    # Without a timestamp a record is usage of the moment it was answered, not of the drain.
    assert now <= new.timestamp <= answered


def test_an_entry_written_by_a_drain_that_died_before_removing_it_is_not_written_again(
    outage: Outage, service: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = RegisteredModelFactory()
    warm(service, model)
    outage.cut_database()
    for n in range(3):
        assert service.post(f"/models/{model.pk}/usage", {"token_count": 10 + n}, format="json").status_code == 202
    outage.restore_database()
    remove = usage_buffer.buffer_remove

    def redis_gone_after_the_commit(*args: Any, **kwargs: Any) -> None:
        outage.redis.cut()  # a real fault: the commit is done, the removal meets a dead socket
        remove(*args, **kwargs)

    monkeypatch.setattr(usage_buffer, "buffer_remove", redis_gone_after_the_commit)
    first = usage_buffer_drain()
    assert first.stopped == "redis"
    assert ModelUsage.objects.filter(model=model, token_count__gte=10).count() == 3
    monkeypatch.undo()
    outage.redis.restore()
    # The dead drain's lock could not be released: it expires after its TTL, here at once.
    assert usage_buffer.client().pttl(usage_buffer.LOCK) > 0
    usage_buffer.client().delete(usage_buffer.LOCK)

    second = usage_buffer_drain()

    assert (second.entries, second.already_applied, second.stopped) == (0, 3, None)
    stored = ModelUsage.objects.filter(model=model, token_count__gte=10).values_list("token_count", flat=True)
    assert sorted(stored) == [10, 11, 12]
    assert buffered_records() == 0


def test_a_usage_post_is_a_503_when_redis_is_down_too(outage: Outage, service: APIClient) -> None:
    model = RegisteredModelFactory()
    warm(service, model)
    outage.cut_database()
    outage.redis.cut()

    response = service.post(f"/models/{model.pk}/usage", {"token_count": 5}, format="json")

    assert response.status_code == 503
    assert response.json() == {"detail": "The database is unavailable; retry later."}
    assert response["Retry-After"] == str(settings.RETRY_AFTER_SECONDS)
    outage.redis.restore()
    assert buffered_records() == 0


def test_a_usage_post_is_a_503_without_a_buffer(outage: Outage, service: APIClient) -> None:
    model = RegisteredModelFactory()
    warm(service, model)
    outage.cut_database()
    with override_settings(USAGE_BUFFER_ENABLED=False):  # as the embedded mode, which has no Redis
        response = service.post(f"/models/{model.pk}/usage", {"token_count": 5}, format="json")
    assert response.status_code == 503


def test_a_post_beyond_the_buffers_cap_is_a_503(outage: Outage, service: APIClient) -> None:
    model = RegisteredModelFactory()
    warm(service, model)
    outage.cut_database()
    with override_settings(USAGE_BUFFER_MAX_RECORDS=4):
        assert service.post(f"/models/{model.pk}/usage", [{"token_count": 1}] * 3, format="json").status_code == 202
        assert service.post(f"/models/{model.pk}/usage", [{"token_count": 1}] * 2, format="json").status_code == 503
    assert buffered_records() == 3


def test_an_invalid_post_is_a_400_naming_the_field_while_the_database_is_cut(
    outage: Outage, service: APIClient
) -> None:
    model = RegisteredModelFactory()
    warm(service, model)
    outage.cut_database()

    response = service.post(f"/models/{model.pk}/usage", [{"token_count": 1}, {"token_count": -1}], format="json")

    assert response.status_code == 400
    assert "token_count" in response.json()["1"]
    assert buffered_records() == 0


def test_an_entry_whose_model_no_longer_resolves_goes_to_the_dead_letter_list(
    outage: Outage, service: APIClient, caplog: pytest.LogCaptureFixture
) -> None:
    model = RegisteredModelFactory(name="soon-gone")
    kept = RegisteredModelFactory()
    warm(service, model)
    outage.cut_database()
    assert service.post("/models/soon-gone/usage", {"token_count": 7}, format="json").status_code == 202
    assert service.post(f"/models/{kept.pk}/usage", {"token_count": 8}, format="json").status_code == 202
    outage.restore_database()
    model.delete()

    with caplog.at_level(logging.WARNING, logger="registry.telemetry.buffering"):
        outcome = usage_buffer_drain()

    assert (outcome.entries, outcome.dead) == (1, 1)
    assert ModelUsage.objects.filter(model=kept, token_count=8).count() == 1
    [dead] = usage_buffer.dead_letters()
    assert (dead["ref"], dead["count"]) == ("soon-gone", "1")
    assert "no model 'soon-gone'" in dead["reason"]
    assert buffering.records_decode(dead["records"])[0]["token_count"] == 7
    assert any("dead-letter" in record.getMessage() for record in caplog.records)
    assert usage_buffer.buffer_state().dead_letters == 1


def test_an_operator_requeues_dead_letters_once_their_model_exists_again(outage: Outage, service: APIClient) -> None:
    model = RegisteredModelFactory(name="renamed-away")
    warm(service, model)
    outage.cut_database()
    assert service.post("/models/renamed-away/usage", {"token_count": 9}, format="json").status_code == 202
    outage.restore_database()
    model.name = "renamed"
    model.save()
    assert usage_buffer_drain().dead == 1
    listing = StringIO()
    call_command("usage_buffer", stdout=listing)
    assert "dead letters: 1" in listing.getvalue()
    assert "1 records for 'renamed-away'" in listing.getvalue()
    model.name = "renamed-away"
    model.save()
    output = StringIO()

    call_command("usage_buffer", "--requeue-dead", "--drain", stdout=output)

    assert "requeued 1 dead letters" in output.getvalue()
    assert "wrote 1 records of 1 posts" in output.getvalue()
    assert ModelUsage.objects.filter(model=model, token_count=9).count() == 1
    assert usage_buffer.buffer_state().dead_letters == 0


def test_a_router_metric_naming_another_model_is_dead_lettered_at_the_drain(outage: Outage, service: APIClient) -> None:
    model = RegisteredModelFactory()
    other = RegisteredModelFactory()
    warm(service, model)
    outage.cut_database()
    with override_settings(PLATFORM_API_COMPAT="alfred"):
        # Whether model_id names the URL's model needs the database: checked when the metric is written.
        for model_id in (model.name, other.name):
            metric = {"request_id": f"for-{model_id}", "model_id": model_id, "content_token_count": 4}
            assert service.post(f"/api/v1/models/{model.pk}/usage", metric, format="json").status_code == 200
    outage.restore_database()

    outcome = usage_buffer_drain()

    assert (outcome.entries, outcome.dead) == (1, 1)
    assert list(ModelUsage.objects.filter(request_id__startswith="for-").values_list("request_id", flat=True)) == [
        f"for-{model.name}"
    ]
    [dead] = usage_buffer.dead_letters()
    assert "model_id does not name the model of the URL" in dead["reason"]


def test_a_post_the_database_refuses_at_the_drain_is_dead_lettered_alone(outage: Outage, service: APIClient) -> None:
    model = RegisteredModelFactory()
    ModelPrice.objects.create(
        model=model,
        input_per_mtok=Decimal(999_999),
        output_per_mtok=Decimal(999_999),
        effective_from=timezone.now() - timedelta(days=1),
    )
    warm(service, model)
    outage.cut_database()
    # The price is not known while the database is away: the too-large cost shows only at the drain.
    for tokens in (1, 2_000_000_000, 3):
        assert service.post(f"/models/{model.pk}/usage", {"input_tokens": tokens}, format="json").status_code == 202
    outage.restore_database()

    outcome = usage_buffer_drain()

    assert (outcome.entries, outcome.dead) == (2, 1)
    written = ModelUsage.objects.filter(model=model, input_tokens__isnull=False).order_by("id")
    assert [record.input_tokens for record in written] == [1, 3]
    [dead] = usage_buffer.dead_letters()
    assert dead["reason"].startswith("UsageRejected: The computed cost")


def test_a_drain_of_an_empty_buffer_asks_nothing_of_the_database(
    outage: Outage, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        outcome = usage_buffer_drain()
    assert outcome.as_dict() == {"entries": 0, "records": 0, "already_applied": 0, "dead": 0, "stopped": None}


def test_a_drain_stops_at_the_database_and_keeps_every_entry(
    outage: Outage, service: APIClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(buffering, "_outage", buffering._DatabaseOutage())  # this test's outage only
    model = RegisteredModelFactory()
    warm(service, model)
    outage.cut_database()
    assert service.post(f"/models/{model.pk}/usage", {"token_count": 3}, format="json").status_code == 202

    with caplog.at_level(logging.WARNING, logger="registry.telemetry.buffering"):
        outcomes = [usage_buffer_drain() for _ in range(3)]
        assert [outcome.stopped for outcome in outcomes] == ["database"] * 3
        assert buffered_records() == 1
        outage.restore_database()
        assert usage_buffer_drain().records == 1

    warnings = [record.getMessage() for record in caplog.records if record.name == "registry.telemetry.buffering"]
    assert len(warnings) == 2  # one when the outage starts, one when it ends: not one a run
    assert "unreachable" in warnings[0]
    assert "answers again" in warnings[1]


def test_metrics_and_health_say_when_the_buffer_cannot_be_read(outage: Outage) -> None:
    outage.redis.cut()

    exposition = Client().get("/metrics").content.decode()
    body = Client().get("/health").json()

    assert "registry_usage_buffer_up 0.0" in exposition
    assert body["usage_buffer"] == {"status": "unknown"}


def test_a_second_drain_finds_the_lock_held_and_writes_nothing(outage: Outage, service: APIClient) -> None:
    model = RegisteredModelFactory()
    warm(service, model)
    outage.cut_database()
    assert service.post(f"/models/{model.pk}/usage", {"token_count": 3}, format="json").status_code == 202
    outage.restore_database()

    with usage_buffer.drain_lock(30) as held:
        assert held is not None
        assert usage_buffer_drain().stopped == "locked"
        assert buffered_records() == 1
    assert usage_buffer_drain().records == 1


def test_metrics_and_health_show_the_buffer_while_it_holds_records(outage: Outage, service: APIClient) -> None:
    model = RegisteredModelFactory()
    warm(service, model)
    outage.cut_database()
    assert service.post(f"/models/{model.pk}/usage", [{"token_count": 3}] * 4, format="json").status_code == 202

    down = Client().get("/health").json()
    assert down["status"] == "error"
    assert down["usage_buffer"]["status"] == "buffering"
    assert down["usage_buffer"]["records"] == 4
    exposition = Client().get("/metrics").content.decode()
    assert "registry_usage_buffer_records 4.0" in exposition
    assert "registry_usage_buffer_entries 1.0" in exposition

    outage.restore_database()
    draining = Client().get("/health").json()
    assert set(draining["services"].values()) == {"ok"}  # degraded for the buffer alone
    assert draining["status"] == "degraded"
    assert draining["usage_buffer"]["status"] == "draining"
    assert draining["usage_buffer"]["oldest_age_seconds"] >= 0

    drain_usage_buffer()

    after = Client().get("/health").json()
    assert after["status"] == "ok"
    assert after["usage_buffer"] == {
        "status": "empty",
        "records": 0,
        "entries": 0,
        "oldest_age_seconds": None,
        "dead_letters": 0,
    }
    assert "registry_usage_buffer_records 0.0" in Client().get("/metrics").content.decode()
