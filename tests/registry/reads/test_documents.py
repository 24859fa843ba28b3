"""Stored model documents: the triggers mark them stale on every kind of write, and a read never stores stale bytes.

Each write test stores the documents of two models through the read path, writes one of them the
way some writer does (a service, a bulk write as discovery's, a raw ``queryset.update()``, SQL),
and checks that exactly that model's document lost its body, and that the next read serves the
bytes the serializer writes for the new state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from discovery.models import ProviderSource
from registry.api.catalog.serializers import RegisteredModelSerializer
from registry.catalog.selectors import model_get
from registry.catalog.services import (
    capability_remove,
    capability_set,
    endpoint_delete,
    model_delete,
    model_update,
    parameter_set,
)
from registry.models import ModelCapability, ModelDocument, ModelEndpoint, ModelParameter, RegisteredModel
from registry.reads import bodies as model_documents
from registry.reads import documents
from registry.selection.ranking import RECENT_LATENCY_WINDOW, models_ranked
from tests.factories import (
    ModelCapabilityFactory,
    ModelEndpointFactory,
    ModelParameterFactory,
    ModelUsageFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db


def read(*models: RegisteredModel) -> dict[int, bytes]:
    """The read path's bodies of ``models`` (building and storing missing documents)."""
    rows = list(model_documents.with_documents(RegisteredModel.objects.filter(pk__in=[m.pk for m in models])))
    return {row["id"]: body.encode() for row, body in model_documents.bodies(rows)}


def stored(model: RegisteredModel) -> bytes | None:
    document = ModelDocument.objects.filter(model_id=model.pk).first()
    return None if document is None or document.body is None else document.body.encode()


def serialized(model: RegisteredModel) -> bytes:
    return JSONRenderer().render(RegisteredModelSerializer(model_get(str(model.pk))).data)


@pytest.fixture
def pair() -> tuple[RegisteredModel, RegisteredModel]:
    """Two models with one of each related row, one source for both; their documents stored."""
    source = ProviderSourceFactory(name="lab")
    models = []
    for name in ("a-written", "b-untouched"):
        model = RegisteredModelFactory(name=name, source=source)
        ModelCapabilityFactory(model=model, capability="code", capability_score=0.5)
        ModelParameterFactory(model=model, parameter_name="temperature", default_value=0.7)
        ModelEndpointFactory(model=model, endpoint_url="http://h:1/api", source=source)
        models.append(model)
    read(*models)
    assert stored(models[0]) is not None
    assert stored(models[1]) is not None
    return models[0], models[1]


def test_every_declared_table_has_its_triggers() -> None:
    installed = documents.installed_trigger_tables()
    assert {source.table for source in documents.DOCUMENT_SOURCES} == set(installed)
    assert all(events == {"insert", "update", "delete"} for events in installed.values())


def test_a_stored_document_is_the_serializers_bytes(pair: tuple[RegisteredModel, RegisteredModel]) -> None:
    written, untouched = pair
    assert stored(written) == serialized(written)
    assert read(written, untouched) == {written.pk: serialized(written), untouched.pk: serialized(untouched)}


def _source(model: RegisteredModel) -> ProviderSource:
    assert model.source is not None
    return model.source


WRITES: dict[str, Callable[[RegisteredModel], object]] = {
    "service model_update": lambda m: model_update(model=m, fields={"description": "changed"}),
    "model save()": lambda m: RegisteredModel.objects.get(pk=m.pk).save(),
    "models queryset.update()": lambda m: RegisteredModel.objects.filter(pk=m.pk).update(display_name="Changed"),
    "models bulk_update()": lambda m: RegisteredModel.objects.bulk_update(
        [RegisteredModel(pk=m.pk, last_seen_at=timezone.now())], ["last_seen_at"]
    ),
    "raw SQL on models": lambda m: _raw("UPDATE models SET version = 'raw' WHERE id = %s", m.pk),
    "service capability_set": lambda m: capability_set(model=m, capability="text", score=0.9),
    "service capability_remove": lambda m: capability_remove(model=m, capability="code"),
    "capabilities bulk_create()": lambda m: ModelCapability.objects.bulk_create(
        [ModelCapability(model=m, capability="vision", capability_score=0.1)]
    ),
    "capabilities queryset.update()": lambda m: ModelCapability.objects.filter(model=m).update(capability_score=1.0),
    "capabilities queryset.delete()": lambda m: ModelCapability.objects.filter(model=m).delete(),
    "service parameter_set": lambda m: parameter_set(model=m, parameter_name="top_p", default_value=0.9),
    "parameters bulk_update()": lambda m: ModelParameter.objects.bulk_update(
        [ModelParameter(pk=p.pk, default_value=0.1) for p in m.parameters.all()], ["default_value"]
    ),
    "endpoints queryset.update()": lambda m: ModelEndpoint.objects.filter(model=m).update(endpoint_url="http://x/"),
    "service endpoint_delete": lambda m: endpoint_delete(endpoint=m.endpoints.get()),
    "endpoint moved to another model": lambda m: ModelEndpoint.objects.filter(model=m).update(
        model=RegisteredModelFactory(name="c-receiver")
    ),
}


@pytest.mark.parametrize("write", list(WRITES), ids=list(WRITES))
def test_a_write_marks_only_its_models_document_stale(
    pair: tuple[RegisteredModel, RegisteredModel], write: str
) -> None:
    written, untouched = pair
    revision = ModelDocument.objects.get(model_id=written.pk).revision
    WRITES[write](written)
    assert stored(written) is None
    assert ModelDocument.objects.get(model_id=written.pk).revision > revision
    assert stored(untouched) == serialized(untouched)
    assert read(written)[written.pk] == serialized(written)
    assert stored(written) == serialized(written)


def _raw(sql: str, *parameters: object) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)


def test_renaming_a_source_marks_its_models_and_endpoints_stale(pair: tuple[RegisteredModel, RegisteredModel]) -> None:
    written, untouched = pair
    source = _source(written)
    # A model of another source whose endpoint the renamed source manages: its body names it too.
    other = RegisteredModelFactory(name="c-other", source=ProviderSourceFactory(name="elsewhere"))
    ModelEndpointFactory(model=other, source=source)
    read(other)
    ProviderSource.objects.filter(pk=source.pk).update(name="lab-renamed")
    assert stored(written) is None
    assert stored(untouched) is None
    assert stored(other) is None
    assert b'"source":"lab-renamed"' in read(written)[written.pk]
    assert read(other)[other.pk] == serialized(other)


def test_source_bookkeeping_leaves_documents_alone(pair: tuple[RegisteredModel, RegisteredModel]) -> None:
    written, _ = pair
    # What every discovery run writes to its source: nothing a body shows.
    ProviderSource.objects.filter(pk=_source(written).pk).update(last_run_at=timezone.now(), consecutive_failures=3)
    assert stored(written) == serialized(written)


def test_deleting_a_source_marks_its_models_stale(pair: tuple[RegisteredModel, RegisteredModel]) -> None:
    written, untouched = pair
    _source(written).delete()
    assert stored(written) is None
    assert stored(untouched) is None
    assert b'"source":null' in read(written)[written.pk]
    assert read(written)[written.pk] == serialized(written)


def test_deleting_a_model_deletes_its_document(pair: tuple[RegisteredModel, RegisteredModel]) -> None:
    written, untouched = pair
    model_delete(model=written)
    assert not ModelDocument.objects.filter(model_id=written.pk).exists()
    assert stored(untouched) == serialized(untouched)


def test_a_body_built_before_a_write_is_not_stored_after_it(pair: tuple[RegisteredModel, RegisteredModel]) -> None:
    """A read that saw revision r, then read the rows, then stores: a write in between wins."""
    written, _ = pair
    RegisteredModel.objects.filter(pk=written.pk).update(description="first")
    seen = ModelDocument.objects.get(model_id=written.pk).revision  # the read's page query
    old_body = read(written)[written.pk]  # stores at revision ``seen``
    RegisteredModel.objects.filter(pk=written.pk).update(description="second")  # the write, revision + 1
    documents.store([(written.pk, seen, old_body.decode())], model_documents.format_version())  # the late store
    assert stored(written) is None
    assert b'"description":"second"' in read(written)[written.pk]


def test_a_late_store_for_a_document_a_write_created_does_nothing() -> None:
    """A read that found no document row (revision 0) loses to a write that created one meanwhile."""
    model = RegisteredModelFactory(name="fresh")
    ModelDocument.objects.filter(model_id=model.pk).delete()  # as before any write or read
    RegisteredModel.objects.filter(pk=model.pk).update(description="written")  # creates the row, revision 1
    documents.store([(model.pk, 0, '{"stale":true}')], model_documents.format_version())
    assert stored(model) is None


def test_a_document_of_another_format_is_rebuilt(pair: tuple[RegisteredModel, RegisteredModel]) -> None:
    written, _ = pair
    ModelDocument.objects.filter(model_id=written.pk).update(body='{"old":"format"}', format_version="other")
    assert read(written)[written.pk] == serialized(written)
    assert stored(written) == serialized(written)


def test_the_format_names_the_time_zone(settings: object) -> None:
    before = model_documents.format_version()
    with timezone.override("Europe/Paris"):
        assert model_documents.format_version() != before


def test_a_compiled_ranking_runs_with_the_current_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ranking's SQL is reused per query shape; its time window must still move with the clock."""
    model = RegisteredModelFactory(name="ranked")
    ModelCapabilityFactory(model=model, capability="code", capability_score=0.9)
    start = timezone.now()
    ModelUsageFactory(model=model, timestamp=start - timedelta(hours=23), average_latency=0.25, request_count=4)

    def ranked_at(moment: datetime) -> list[dict[str, object]]:
        monkeypatch.setattr(model_documents.timezone, "now", lambda: moment)
        return model_documents.ranked_rows(capabilities=["code"], limit=10, min_score=0.5)

    assert ranked_at(start)[0]["recent_latency"] == 0.25  # the usage is within the last 24 h
    later = ranked_at(start + timedelta(hours=2))  # the same shape: the compiled query again
    assert later[0]["recent_latency"] is None  # 25 h old now
    expected = models_ranked(
        capabilities=["code"], min_score=0.5, since=start + timedelta(hours=2) - RECENT_LATENCY_WINDOW
    ).values("id", "score", "recent_latency")
    assert [(row["id"], row["score"], row["recent_latency"]) for row in later] == [
        (row["id"], row["score"], row["recent_latency"]) for row in expected
    ]


@pytest.mark.django_db(transaction=True)
def test_a_read_does_not_wait_for_a_writer_holding_the_document() -> None:
    """A writer's open transaction holds the document it marked stale: a read's store skips it, waiting for nothing."""
    model = RegisteredModelFactory(name="held")
    RegisteredModel.objects.filter(pk=model.pk).update(description="before")
    body = read(model)[model.pk].decode()
    seen = ModelDocument.objects.get(model_id=model.pk).revision
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        try:
            with transaction.atomic():
                RegisteredModel.objects.filter(pk=model.pk).update(description="during")
                holding.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(timeout=10)
        started = time.monotonic()
        documents.store([(model.pk, seen, body)], model_documents.format_version())
        waited = time.monotonic() - started
    finally:
        release.set()
        thread.join()
    assert waited < 1.0 if connection.vendor == "postgresql" else waited < 2 * documents.SQLITE_STORE_WAIT_MS / 1000 + 1
    assert stored(model) is None  # the writer's mark, not the read's older body
    assert b'"description":"during"' in read(model)[model.pk]
