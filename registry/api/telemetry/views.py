"""``/models/{ref}/usage`` and ``/performance`` (records posted in batches, summaries read); ``/availability``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError
from django.db.models import QuerySet
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from registry.access.roles import Role
from registry.api.errors import drop_broken_connections
from registry.api.fields import RecordedSerializer
from registry.api.telemetry.serializers import (
    AvailabilityQuerySerializer,
    AvailabilitySerializer,
    BufferedSerializer,
    PerformanceQuerySerializer,
    PerformanceRecordSerializer,
    PerformanceSummarySerializer,
    UsageQuerySerializer,
    UsageRecordSerializer,
    UsageSummarySerializer,
)
from registry.api.viewsets import ERROR_RESPONSES, RECORDS_RULE, REF_PARAMETER, RegistryViewSet, records_request
from registry.catalog.selectors import model_key_get
from registry.models import RegisteredModel
from registry.operations.usage_buffer import BufferUnavailable
from registry.telemetry.availability import Event, Interval, availability
from registry.telemetry.buffering import UsageKind, usage_buffer_keep
from registry.telemetry.selectors import performance_records, performance_summary, usage_summary
from registry.telemetry.services import performance_record_batch, usage_record_batch

T = TypeVar("T")

logger = logging.getLogger(__name__)

USAGE_RANGE_RULE = (
    "`to` defaults to now and `from` to 24 hours (hour buckets) or 30 days (day buckets) before `to`. "
    "`from` must be before `to`, and the range at most 93 days of hour buckets or 3,660 days of day "
    "buckets: otherwise a 400 naming `from` (or `to`, when it is too early to have a default `from`)."
)


AVAILABILITY_RANGE_RULE = (
    "`to` defaults to now (a later `to` reads as now) and `from` to 7 days before `to`. `from` must be before "
    "`to`, and the range at most 366 days: otherwise a 400 naming `from` (or `to`, when it is too early to "
    "have a default `from`). A date that does not parse is a 400 naming its parameter."
)

AVAILABILITY_EVENTS_MAX = 500


PERFORMANCE_RANGE_RULE = "When both are given, `from` must be before `to`: otherwise a 400 naming `from`."


USAGE_RECORDS_RULE = (
    f"{RECORDS_RULE} A record's `token_count`, when `input_tokens` or `output_tokens` is given, is their sum "
    "(or left out), and the sum is at most 2,147,483,647: otherwise a 400 naming `token_count` (or `input_tokens`)."
)


BUFFERED_RULE = (
    "When the database cannot be reached, valid records are kept in Redis and written once it is back, in order: "
    "the answer is then 202 with the number buffered (docs/api.md#usage-while-the-database-is-away). With Redis "
    "unreachable too (or in the embedded mode), 503 as for any request that needs the database."
)

BUFFERED_DETAIL = "The database is unavailable: the records are kept and will be written when it is back."


@dataclass(frozen=True)
class Buffered:
    """A post kept in the usage buffer instead of the database: how many records."""

    records: int


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _interval(interval: Interval) -> dict[str, Any]:
    return {"start": _iso(interval.start), "end": _iso(interval.end), "state": interval.state, "cause": interval.cause}


def _event(event: Event) -> dict[str, Any]:
    return {
        "at": _iso(event.at),
        "kind": event.kind,
        "state": event.state,
        "alert_kind": event.alert_kind,
        "origin": event.origin,
        "cause": event.cause,
        "actor": event.actor,
        "source": event.source,
        "run_id": event.run_id,
        "alert_id": event.alert_id,
    }


def _usage_figures(figures: dict[str, Any]) -> dict[str, Any]:
    # JSON-native values, shaped as UsageSummarySerializer documents them: the encoder then needs no
    # per-value fallback, and a serializer pass over 720 hourly buckets would cost more than the query.
    return {**figures, "cost": float(figures["cost"])}


@extend_schema_view(
    create=extend_schema(
        summary="Record usage: one record or a list of up to 1,000 (all or nothing)",
        description=f"{USAGE_RECORDS_RULE} {BUFFERED_RULE}",
        parameters=[REF_PARAMETER],
        request=records_request(UsageRecordSerializer, "UsageRecords"),
        responses={201: RecordedSerializer, 202: BufferedSerializer, **ERROR_RESPONSES},
    ),
)
class UsageViewSet(RegistryViewSet):
    serializer_class = UsageRecordSerializer
    action_roles = {"summary": Role.VIEWER, "create": Role.SERVICE}

    @extend_schema(
        summary="Usage statistics: totals and time buckets",
        description=USAGE_RANGE_RULE,
        parameters=[REF_PARAMETER, UsageQuerySerializer],
        responses={200: UsageSummarySerializer, **ERROR_RESPONSES},
    )
    def summary(self, request: Request, ref: str) -> Response:
        query = self.validated_query(UsageQuerySerializer)
        model_id, name = model_key_get(ref)
        summary = usage_summary(model_id=model_id, **query)
        return Response(
            {
                "model": name,
                "bucket": summary["bucket"],
                "from": _iso(summary["from"]),
                "to": _iso(summary["to"]),
                "totals": _usage_figures(summary["totals"]),
                "buckets": [{**_usage_figures(b), "start": _iso(b["start"])} for b in summary["buckets"]],
            }
        )

    def create(self, request: Request, ref: str) -> Response:
        recorded = self.recorded_or_buffered(
            UsageRecordSerializer,
            UsageKind.RECORDS,
            lambda model, records: usage_record_batch(model=model, records=records),
        )
        if isinstance(recorded, Buffered):
            return Response({"buffered": recorded.records, "detail": BUFFERED_DETAIL}, status=status.HTTP_202_ACCEPTED)
        return Response({"recorded": recorded}, status=status.HTTP_201_CREATED)

    def recorded_or_buffered(
        self,
        serializer_class: Any,
        kind: UsageKind,
        write: Callable[[RegisteredModel, list[dict[str, Any]]], T],
    ) -> T | Buffered:
        """``write(model, records)``; when the database cannot be reached, the records kept in the usage buffer.

        The body is validated either way (an invalid one is a 400, database or not). When Redis
        cannot keep them either, the database's error stands: a 503, and the client retries.
        """
        records: list[dict[str, Any]] | None = None
        try:
            model = self.registered_model()
            records = self.records_body(serializer_class)
            return write(model, records)
        except (OperationalError, InterfaceError) as unreachable:
            drop_broken_connections()
            if records is None:
                records = self.records_body(serializer_class)
            try:
                return Buffered(usage_buffer_keep(ref=self.model_ref, kind=kind, records=records))
            except BufferUnavailable as exc:
                logger.warning("usage post refused (503): the database is unreachable and %s", exc)
                raise unreachable from None


@extend_schema_view(
    create=extend_schema(
        summary="Record performance: one record or a list of up to 1,000 (all or nothing)",
        description=RECORDS_RULE,
        parameters=[REF_PARAMETER],
        request=records_request(PerformanceRecordSerializer, "PerformanceRecords"),
        responses={201: RecordedSerializer, **ERROR_RESPONSES},
    ),
)
class PerformanceViewSet(RegistryViewSet):
    serializer_class = PerformanceRecordSerializer
    action_roles = {"summary": Role.VIEWER, "create": Role.SERVICE}

    @extend_schema(
        summary="Performance records and per-metric count/avg/min/max",
        description=PERFORMANCE_RANGE_RULE,
        parameters=[REF_PARAMETER, PerformanceQuerySerializer],
        responses={200: PerformanceSummarySerializer, **ERROR_RESPONSES},
    )
    def summary(self, request: Request, ref: str) -> Response:
        query = self.validated_query(PerformanceQuerySerializer)
        limit = query.pop("limit")
        model_id, name = model_key_get(ref)
        records: QuerySet[Any] = performance_records(
            model_id=model_id,
            metric_name=query.get("metric_name"),
            task_category=query.get("task_category"),
            start=query.get("from"),
            end=query.get("to"),
        )
        body = {"model": name, "records": records[:limit], "summary": performance_summary(records)}
        return Response(PerformanceSummarySerializer(body).data)

    def create(self, request: Request, ref: str) -> Response:
        model = self.registered_model()
        records = self.records_body(PerformanceRecordSerializer)
        created = performance_record_batch(model=model, records=records)
        return Response({"recorded": len(created)}, status=status.HTTP_201_CREATED)


class AvailabilityViewSet(RegistryViewSet):
    serializer_class = AvailabilitySerializer
    action_roles = {"history": Role.VIEWER}

    @extend_schema(
        summary="Availability history: the intervals of a model's status over a period, and its available fraction",
        description=AVAILABILITY_RANGE_RULE,
        parameters=[REF_PARAMETER, AvailabilityQuerySerializer],
        responses={200: AvailabilitySerializer, **ERROR_RESPONSES},
    )
    def history(self, request: Request, ref: str) -> Response:
        query = self.validated_query(AvailabilityQuerySerializer)
        model_id, name = model_key_get(ref)
        found = availability(model_id, query["start"], query["end"])
        # Plain JSON values, shaped as AvailabilitySerializer documents them: a serializer pass over a
        # quarter's runtime lane (thousands of intervals) would cost more than the query.
        body = {
            "model": name,
            "from": _iso(found.start),
            "to": _iso(found.end),
            "available_fraction": found.available_fraction,
            "known_fraction": found.known_fraction,
            "seconds": found.seconds,
            "intervals": [_interval(i) for i in found.intervals],
            "runtime": [_interval(i) for i in found.runtime],
            "events": [_event(e) for e in found.events[-AVAILABILITY_EVENTS_MAX:]],
            "events_total": len(found.events),
        }
        return Response(body)
