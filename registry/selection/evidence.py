"""A capability score's evidence: where the score came from, as the API and the console show it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final

from registry.catalog.selectors import iso_moment
from registry.models import (
    ModelCapability,
)

# A capability row's columns as its evidence reads them, after model_id, capability and score.
CAPABILITY_EVIDENCE_COLUMNS: Final = (
    "model_id",
    "capability",
    "capability_score",
    *ModelCapability.EVIDENCE_FIELDS,
    "evaluated_at",
)


def evidence_body(
    source: str,
    note: str,
    metric: str | None,
    task_category: str | None,
    sample_size: int | None,
    window_start: datetime | None,
    window_end: datetime | None,
    evaluated_at: datetime | None,
    *,
    moment: Callable[[datetime | None], Any] = iso_moment,
) -> dict[str, Any]:
    """The API's ``evidence`` object of a capability score, from its columns (CAPABILITY_EVIDENCE_COLUMNS[3:]).

    ``window`` is null unless both of its ends are known. ``moment`` writes the datetimes (the
    read path hands the encoder UTC datetimes as they are, which it writes as ``iso_moment`` does).
    """
    window = (
        {"from": moment(window_start), "to": moment(window_end)}
        if window_start is not None and window_end is not None
        else None
    )
    return {
        "source": source,
        "note": note,
        "metric": metric,
        "task_category": task_category,
        "sample_size": sample_size,
        "window": window,
        "evaluated_at": moment(evaluated_at),
    }


def capability_evidence_rows(rows: Sequence[Sequence[Any]]) -> dict[int, dict[str, dict[str, Any]]]:
    """``{model_id: {capability: {"score": ..., "evidence": {...}}}}`` of rows in CAPABILITY_EVIDENCE_COLUMNS order."""
    found: dict[int, dict[str, dict[str, Any]]] = {}
    for model_id, capability, score, *evidence in rows:
        found.setdefault(model_id, {})[capability] = {"score": score, "evidence": evidence_body(*evidence)}
    return found


def capability_evidence_of(ids: list[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """The capabilities of the models ``ids`` with their scores and evidence, in one query.

    ``{model_id: {capability: {"score": 0.82, "evidence": {"source": "measured", ...}}}}``; a model
    without capabilities is absent. Datetimes are ISO 8601 strings, as the API writes them.
    """
    if not ids:
        return {}
    rows = (
        ModelCapability.objects.filter(model_id__in=ids)
        .order_by("model_id", "capability")
        .values_list(*CAPABILITY_EVIDENCE_COLUMNS)
    )
    return capability_evidence_rows(list(rows))
