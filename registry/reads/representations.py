"""The JSON of models for the read path, built from ``values()`` rows instead of nested DRF serializers.

A page of 500 models through ``RegisteredModelSerializer`` costs about a second of field objects;
here it is one query per table (models with their source's name, capabilities, parameters,
endpoints with their source's name, runtime rows aggregated by ``selectors.runtimes_of``) and
plain dicts. The output is byte for byte what the
serializers and DRF's ``JSONRenderer`` produce for the same rows (tests/registry/api/
test_representations.py compares both): same keys in the same order, datetimes in DRF's ISO
format, decimals as JSON numbers, ``\\u2028``/``\\u2029`` escaped. The serializers stay the
schema (drf-spectacular) and the write path; a field added there must be added here too, which
that test catches.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import orjson
from django.db.models import QuerySet
from django.utils import timezone

from registry.catalog.credentials import redact_text
from registry.catalog.selectors import fact_sources, of_model_ids, runtimes_of
from registry.models import ModelCapability, ModelEndpoint, ModelParameter, ModelStatus, RegisteredModel
from registry.reads import compiled
from registry.selection.evidence import CAPABILITY_EVIDENCE_COLUMNS, evidence_body

# The model's own columns, in the serializer's field order (RegisteredModelSerializer.Meta.fields).
_MODEL_COLUMNS = (
    "id",
    "name",
    "display_name",
    "provider",
    "model_type",
    "version",
    "description",
    "status",
    "context_window",
    "input_cost_per_mtok",
    "output_cost_per_mtok",
    "cache_read_cost_per_mtok",
    "cache_write_cost_per_mtok",
    "details",
    "source__name",
    "first_seen_at",
    "last_seen_at",
    "created_at",
    "updated_at",
    # Not output: what fact_sources needs.
    "operator_fields",
    "source_id",
)
Moment = Callable[[datetime | None], datetime | str | None]
# orjson and Python's json module write every float alike except below 1e-4 ("0.00001" against
# "1e-05", "1e-6" against "1e-06"); an output holding either form is encoded again the slow way.
# The scan for them starts from a literal ("e-"): a pattern opening with a class scans a 100 KB
# body ten times slower (1.4 ms against 0.14, measured), and this runs on every body built.
_NEGATIVE_EXPONENT = re.compile(rb"e-[0-9]")


def _has_float_forms_that_differ(body: bytes) -> bool:
    if b"0.0000" in body:
        return True
    return any(body[match.start() - 1 : match.start()].isdigit() for match in _NEGATIVE_EXPONENT.finditer(body))


def json_bytes(data: Any) -> bytes:
    """``data`` as DRF's JSONRenderer writes it (compact, UTF-8, no NaN), with orjson's speed where it agrees.

    UTC datetimes may be left as objects: orjson writes them as DRF does (ISO 8601, microseconds
    only when not zero, "Z"), and so does the fallback.
    """
    try:
        body = orjson.dumps(data, option=orjson.OPT_UTC_Z)
    except TypeError:  # an integer beyond 64 bits (a provider's detail), a Decimal: the json module writes them
        body = b""
    if not body or _has_float_forms_that_differ(body):
        text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_drf_default)
        body = text.encode()
    # DRF escapes these two (valid JSON, but line breaks to JavaScript); so must every cached body.
    if b"\xe2\x80\xa8" in body or b"\xe2\x80\xa9" in body:
        body = body.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
    return body


def _drf_datetime(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _drf_default(value: object) -> str | float:
    """What DRF's JSON encoder makes of the values it knows and json does not: datetimes, Decimals."""
    if isinstance(value, datetime):
        return _drf_datetime(value)
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _datetime_in(zone: tzinfo) -> Moment:
    """DRF's DateTimeField: the value in the current time zone, written in ISO 8601 with "Z" for UTC."""
    if zone.utcoffset(None) == timedelta(0) and str(zone) == "UTC":
        # The database hands back UTC datetimes (USE_TZ); the encoder writes them (json_bytes).
        return lambda value: value
    return lambda value: None if value is None else _drf_datetime(value.astimezone(zone))


def _number(value: Decimal | None) -> float | None:
    # DecimalField(coerce_to_string=False) hands DRF's encoder a Decimal, which it writes as float().
    return float(value) if value is not None else None


def model_values(queryset: QuerySet[RegisteredModel], *annotations: str) -> QuerySet[Any, dict[str, Any]]:
    """``queryset`` as the rows the representation reads (plus its ``annotations``), still lazy (to paginate)."""
    return queryset.prefetch_related(None).values(*_MODEL_COLUMNS, *annotations)


def model_rows(queryset: QuerySet[RegisteredModel], *annotations: str) -> list[dict[str, Any]]:
    """The rows of ``model_values``, in one query."""
    return list(model_values(queryset, *annotations))


def model_bodies(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The representation of each of the model ``rows`` (from ``model_rows``), in four more queries."""
    if not rows:
        return []
    # Thousands of small acyclic objects: without a pause the cyclic collector would scan the whole
    # heap several times over while they are made (a third of a page's build time, measured).
    paused = gc.isenabled()
    gc.disable()
    try:
        return _bodies(rows)
    finally:
        if paused:
            gc.enable()


def list_body(count: int, next_link: str | None, previous_link: str | None, bodies: Sequence[str]) -> bytes:
    """A page of models, as ``json_bytes`` writes the paginated serializer's output, from each model's body."""
    head = b'{"count":%d,"next":%s,"previous":%s,"results":[' % (
        count,
        json_bytes(next_link),
        json_bytes(previous_link),
    )
    return head + ",".join(bodies).encode() + b"]}"


def selection_body(rankings: Sequence[dict[str, Any]], bodies: Sequence[str]) -> bytes:
    """A selection (SelectionSerializer): each model's body beside its ranking, best first."""
    results = ",".join(
        f'{{"model":{body},"ranking":{json_bytes(ranking).decode()}}}'
        for body, ranking in zip(bodies, rankings, strict=True)
    )
    return f'{{"count":{len(bodies)},"results":[{results}]}}'.encode()


def _bodies(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    moment = _datetime_in(timezone.get_current_timezone())
    ids = [row["id"] for row in rows]
    capabilities, evidence = _capabilities(ids, moment)
    parameters = _parameters(ids)
    endpoints = _endpoints(ids, moment)
    runtimes = runtimes_of(ids)
    return [
        {
            "id": row["id"],
            "name": row["name"],
            "display_name": row["display_name"],
            "provider": row["provider"],
            "model_type": row["model_type"],
            "version": row["version"],
            "description": row["description"],
            "status": row["status"],
            "available": row["status"] == ModelStatus.AVAILABLE,
            "context_window": row["context_window"],
            "input_cost_per_mtok": _number(row["input_cost_per_mtok"]),
            "output_cost_per_mtok": _number(row["output_cost_per_mtok"]),
            "cache_read_cost_per_mtok": _number(row["cache_read_cost_per_mtok"]),
            "cache_write_cost_per_mtok": _number(row["cache_write_cost_per_mtok"]),
            "details": row["details"],
            "fact_sources": fact_sources(
                details=row["details"],
                operator_fields=row["operator_fields"],
                registered_by_hand=row["source_id"] is None,
                values=row,
            ),
            "source": row["source__name"],
            "first_seen_at": moment(row["first_seen_at"]),
            "last_seen_at": moment(row["last_seen_at"]),
            "created_at": moment(row["created_at"]),
            "updated_at": moment(row["updated_at"]),
            "capabilities": capabilities.get(row["id"], {}),
            "capability_evidence": evidence.get(row["id"], {}),
            "parameters": parameters.get(row["id"], []),
            "endpoints": endpoints.get(row["id"], []),
            "runtime": _runtime(runtimes.get(row["id"]), moment),
        }
        for row in rows
    ]


def _runtime(summary: dict[str, Any] | None, moment: Moment) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {
        "loaded": summary["loaded"],
        "size_vram": summary["size_vram"],
        "context_length": summary["context_length"],
        "expires_at": moment(summary["expires_at"]),
        "checked_at": moment(summary["checked_at"]),
    }


def _capabilities(ids: list[int], moment: Moment) -> tuple[dict[int, dict[str, float]], dict[int, dict[str, Any]]]:
    """Each model's ``capabilities`` (name to score) and ``capability_evidence`` (name to evidence), in one query."""
    scores: dict[int, dict[str, float]] = {}
    evidence: dict[int, dict[str, Any]] = {}
    rows = (
        ModelCapability.objects.filter(**of_model_ids(ids))
        .order_by("capability")
        .values_list(*CAPABILITY_EVIDENCE_COLUMNS)
    )
    for model_id, capability, score, *columns in rows:
        scores.setdefault(model_id, {})[capability] = score
        evidence.setdefault(model_id, {})[capability] = evidence_body(*columns, moment=moment)
    return scores, evidence


def _parameters(ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    rows = (
        ModelParameter.objects.filter(**of_model_ids(ids))
        .order_by("parameter_name")
        .values_list("model_id", "parameter_name", "default_value", "min_value", "max_value", "description", "set_by")
    )
    for model_id, name, default, low, high, description, set_by in rows:
        found.setdefault(model_id, []).append(
            {
                "parameter_name": name,
                "default_value": default,
                "min_value": low,
                "max_value": high,
                "description": description,
                "set_by": set_by,
            }
        )
    return found


def endpoint_bodies(ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The endpoints of each of the models ``ids`` as model bodies show them, in one query."""
    return _endpoints(ids, _datetime_in(timezone.get_current_timezone())) if ids else {}


def _endpoint_rows(ids: list[int]) -> QuerySet[ModelEndpoint, tuple[Any, ...]]:
    return (
        ModelEndpoint.objects.filter(**of_model_ids(ids))
        .order_by("id")
        .values_list(
            "model_id",
            "id",
            "endpoint_type",
            "endpoint_url",
            "auth_type",
            "headers",
            # Decrypted only where set (NULL is not): what the representation says is whether they are.
            "api_key",
            "secret_headers",
            "source__name",
            "created_at",
            "updated_at",
        )
    )


def _endpoints(ids: list[int], moment: Moment) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    rows = compiled.rows("representations.endpoints", _endpoint_rows, ids)
    for model_id, pk, kind, url, auth, headers, api_key, secret, source, created, updated in rows:
        found.setdefault(model_id, []).append(
            {
                "id": pk,
                "endpoint_type": kind,
                # Shown as EndpointSerializer shows it: any credential in the URL as *** (registry.catalog.credentials).
                "endpoint_url": redact_text(url) if url is not None else None,
                "auth_type": auth,
                "headers": headers,  # DRF writes null for None without asking the field
                "has_api_key": bool(api_key),
                "secret_header_names": sorted(secret or {}),
                "source": source,
                "created_at": moment(created),
                "updated_at": moment(updated),
            }
        )
    return found
