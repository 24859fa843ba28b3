"""Reads of the catalog: model lookups by id or name, filtered lists, runtimes and prices.

Every function here runs a fixed number of queries whatever the number of models: representations
come from ``with_representation()`` (one query per related table). Rankings are
``registry.selection.ranking``'s, usage and performance roll-ups ``registry.telemetry.selectors``'.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.db.models import (
    Exists,
    OuterRef,
    Prefetch,
    Q,
)
from django.db.models.expressions import RawSQL
from django.utils import timezone

from registry.models import (
    ModelCapability,
    ModelEndpoint,
    ModelPrice,
    ModelRuntime,
    Provider,
    RegisteredModel,
    RegisteredModelQuerySet,
)
from registry.reads import compiled

# Providers whose models run in someone else's cloud; every other provider is served by the platform.
CLOUD_PROVIDERS = (Provider.OPENAI, Provider.ANTHROPIC)


def is_model_id(ref: str) -> bool:
    """Whether ``ref`` reads as a model's id: ASCII digits only ("²" is a digit to ``str.isdigit``, not to ``int``)."""
    return ref.isascii() and ref.isdigit()


def iso_moment(value: datetime | None) -> str | None:
    """A datetime as DRF's DateTimeField writes it: in the current time zone, ISO 8601, "Z" for UTC."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def ids_in(field: str, ids: list[int]) -> dict[str, Any]:
    """The filter ``field`` in ``ids``: one array parameter on PostgreSQL, not one per id."""
    if connection.vendor == "postgresql":
        # Django would prepare 500 parameters one by one (a tenth of a page's build) for a plain IN list.
        return {f"{field}__in": RawSQL("SELECT unnest(%s::bigint[])", (ids,))}
    return {f"{field}__in": ids}


def of_model_ids(ids: list[int]) -> dict[str, Any]:
    """The filter on ``model_id`` for these ids (``ids_in``)."""
    return ids_in("model_id", ids)


def with_representation(queryset: RegisteredModelQuerySet) -> RegisteredModelQuerySet:
    """Everything the API's representation of a model reads, in a fixed number of queries.

    ``with_related()`` plus each endpoint's source, joined into the endpoints' query rather than
    fetched by one more.
    """
    return queryset.select_related("source").prefetch_related(
        "capabilities",
        "parameters",
        Prefetch("endpoints", queryset=ModelEndpoint.objects.select_related("source")),
        "runtimes",
    )


# A model's runtime rows as ``runtime_summary`` reads them: (loaded, size_vram, context_length, expires_at, checked_at).
RuntimeRow = tuple[bool, int | None, int | None, datetime | None, datetime]


_RUNTIME_COLUMNS = ("loaded", "size_vram", "context_length", "expires_at", "checked_at")


def runtime_summary(rows: Iterable[RuntimeRow]) -> dict[str, Any] | None:
    """A model's runtime over its hosts' rows; None when no host was ever asked (no row).

    ``loaded`` when any host has it loaded; ``size_vram``, ``context_length`` and ``expires_at``
    from the loaded row that expires last (a row without an expiry counts as the earliest), all
    None when no host has it loaded; ``checked_at`` the latest of the rows'.
    """
    rows = list(rows)
    if not rows:
        return None
    if len(rows) == 1:  # one host, most models: no choosing to do
        (is_loaded, size_vram, context_length, expires_at, checked_at) = rows[0]
        return {
            "loaded": is_loaded,
            "size_vram": size_vram if is_loaded else None,
            "context_length": context_length if is_loaded else None,
            "expires_at": expires_at if is_loaded else None,
            "checked_at": checked_at,
        }
    loaded = [row for row in rows if row[0]]
    # max() keeps the first of equals: rows come ordered by source id, so the choice is stable.
    best = (
        max(loaded, key=lambda row: (row[3] is not None, row[3] or datetime.min.replace(tzinfo=UTC)))
        if loaded
        else None
    )
    return {
        "loaded": best is not None,
        "size_vram": best[1] if best else None,
        "context_length": best[2] if best else None,
        "expires_at": best[3] if best else None,
        "checked_at": max(row[4] for row in rows),
    }


def runtime_rows_of(model: RegisteredModel) -> list[RuntimeRow]:
    """A model's runtime rows, from its prefetched ``runtimes`` (``with_representation``) when there are."""
    return [
        (row.loaded, row.size_vram, row.context_length, row.expires_at, row.checked_at)
        for row in sorted(model.runtimes.all(), key=lambda row: row.source_id)
    ]


def runtimes_of(ids: list[int]) -> dict[int, dict[str, Any]]:
    """The runtime of each of the models ``ids`` that a host was ever asked about, in one query.

    ``{model_id: {"loaded", "size_vram", "context_length", "expires_at", "checked_at"}}`` (see
    ``runtime_summary``); a model missing from the answer has ``runtime: null``. Datetimes are
    aware UTC datetimes: ``representations.json_bytes`` writes them as DRF does.
    """
    if not ids:
        return {}
    by_model: dict[int, list[RuntimeRow]] = {}

    def build(ids: list[int]) -> Any:
        runtimes = ModelRuntime.objects.filter(**of_model_ids(ids)).order_by("model_id", "source_id")
        return runtimes.values_list("model_id", *_RUNTIME_COLUMNS)

    for row in compiled.rows("selectors.runtimes_of", build, ids):
        by_model.setdefault(row[0], []).append(row[1:])
    return {model_id: summary for model_id, found in by_model.items() if (summary := runtime_summary(found))}


def model_get(ref: str, *, related: bool = True) -> RegisteredModel:
    """The model named ``ref``, or whose id is ``ref`` when it is all digits (names may not be).

    ``related`` prefetches what the model's representation shows. Raises ``RegisteredModel.DoesNotExist``.
    """
    queryset = with_representation(RegisteredModel.objects.all()) if related else RegisteredModel.objects.all()
    if is_model_id(ref):
        return queryset.get(pk=int(ref))
    return queryset.get(name=ref)


def model_lookup(ref: str) -> RegisteredModelQuerySet:
    """The models (none or one) named ``ref``, or whose id is ``ref`` when it is all digits."""
    if is_model_id(ref):
        return RegisteredModel.objects.filter(pk=int(ref))
    return RegisteredModel.objects.filter(name=ref)


def model_key_get(ref: str) -> tuple[int, str]:
    """The id and name of the model ``ref`` (id or name), with one small query; raises ``DoesNotExist``."""
    lookup: dict[str, Any] = {"pk": int(ref)} if is_model_id(ref) else {"name": ref}
    row = RegisteredModel.objects.filter(**lookup).values_list("pk", "name").first()
    if row is None:
        raise RegisteredModel.DoesNotExist(f"No model {ref!r}.")
    return int(row[0]), str(row[1])


def models_filtered(
    *,
    provider: str | None = None,
    model_type: str | None = None,
    status: str | None = None,
    available: bool | None = None,
    capability: str | None = None,
    min_score: float | None = None,
    search: str | None = None,
    ordering: str = "name",
) -> RegisteredModelQuerySet:
    """Models matching every given filter, in ``ordering`` then id (a stable order for pagination)."""
    queryset = with_representation(RegisteredModel.objects.all())
    if provider:
        queryset = queryset.filter(provider=provider)
    if model_type:
        queryset = queryset.filter(model_type=model_type)
    if status:
        queryset = queryset.filter(status=status)
    if available is not None:
        queryset = queryset.available() if available else queryset.exclude(pk__in=RegisteredModel.objects.available())
    if capability:
        # Exists, not a join: a join would repeat a model once per matching capability row.
        queryset = queryset.filter(
            Exists(
                ModelCapability.objects.filter(
                    model=OuterRef("pk"), capability=capability, capability_score__gte=min_score or 0.0
                )
            )
        )
    if search:
        queryset = queryset.filter(
            Q(name__icontains=search) | Q(display_name__icontains=search) | Q(description__icontains=search)
        )
    return queryset.order_by(ordering, "pk" if not ordering.startswith("-") else "-pk")


def model_prices(*, model_id: int) -> list[ModelPrice]:
    """A model's price history, newest first."""
    return list(ModelPrice.objects.filter(model_id=model_id).order_by("-effective_from"))


def price_in_force_id(prices: list[ModelPrice], *, now: datetime | None = None) -> int | None:
    """The id of the price of ``prices`` (newest first) in force at ``now``."""
    now = now or timezone.now()
    return next((price.pk for price in prices if price.effective_from <= now), None)


def models_of_refs(refs: list[str]) -> dict[str, RegisteredModel]:
    """``{ref: model}`` of the refs (ids or names, as ``model_get`` reads them) that name a model, in one query."""
    ids = [int(ref) for ref in refs if is_model_id(ref)]
    names = [ref for ref in refs if not is_model_id(ref)]
    found = RegisteredModel.objects.filter(Q(pk__in=ids) | Q(name__in=names)).select_related("source")
    by_id = {model.pk: model for model in found}
    by_name = {model.name: model for model in by_id.values()}
    return {
        ref: model
        for ref in refs
        if (model := by_id.get(int(ref)) if is_model_id(ref) else by_name.get(ref)) is not None
    }


# The facts whose origin a model's representation tells: the model field holding each (None: a key of ``details``).
FACT_FIELDS: dict[str, str | None] = {
    "context_window": "context_window",
    "prices": "input_cost_per_mtok",
    "max_output_tokens": None,
    "release_date": None,
    "knowledge": None,
}


def model_fact_sources(model: RegisteredModel) -> dict[str, str | None]:
    """Where each of a model's facts came from (see ``fact_sources``); no query."""
    return fact_sources(
        details=model.details,
        operator_fields=model.operator_fields,
        registered_by_hand=model.source_id is None,
        values={"context_window": model.context_window, "input_cost_per_mtok": model.input_cost_per_mtok},
    )


def fact_sources(
    *, details: Any, operator_fields: Any, registered_by_hand: bool, values: dict[str, Any]
) -> dict[str, str | None]:
    """Where each fact came from: "operator", "provider", "catalog: <name> <version>", or None (unknown).

    An operator's field (``operator_fields``, or any field of a model registered by hand) wins;
    then a fact discovery took from a catalog (``details["catalog"]["given"]``, written by
    discovery.catalogs); any other known fact is the provider's. ``values`` holds the model's
    ``context_window`` and ``input_cost_per_mtok``; the other facts are keys of ``details``.
    """
    details = details if isinstance(details, dict) else {}
    catalog = details.get("catalog")
    given: dict[str, Any] = catalog.get("given") or {} if isinstance(catalog, dict) else {}
    owned = set(operator_fields or [])
    sources: dict[str, str | None] = {}
    for fact, field_name in FACT_FIELDS.items():
        value = values.get(field_name) if field_name else details.get(fact)
        if value is None:
            sources[fact] = None
        elif registered_by_hand or (field_name or "details") in owned:
            sources[fact] = "operator"
        elif fact in given:
            sources[fact] = f"catalog: {given[fact]}"
        else:
            sources[fact] = "provider"
    return sources


def models_unpriced() -> RegisteredModelQuerySet:
    """Available models without a price (input or output unknown): their usage cannot be costed."""
    return RegisteredModel.objects.available().filter(
        Q(input_cost_per_mtok__isnull=True) | Q(output_cost_per_mtok__isnull=True)
    )
