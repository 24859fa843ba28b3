"""Dated prices of a model: set, removed, and followed from the model's own price fields.

A model's price in force at a moment is its latest dated price at or before it; usage is costed with that.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from registry.catalog.services import PRICE_FIELDS, operator_fields_mark
from registry.models import (
    ModelPrice,
    RegisteredModel,
    SetBy,
)
from registry.telemetry.costing import price_in_force, usage_recost_for

__all__ = ["model_price_follow", "price_delete", "price_in_force", "price_set", "prices_follow_all"]


def model_price_follow(*, model: RegisteredModel, now: datetime | None = None) -> bool:
    """Set the model's current price fields to the price in force now; True when they changed.

    A price dated in the future takes over when this runs after its moment (the price task, or
    the next price change); past usage keeps the cost it was stored with.
    """
    prices = list(ModelPrice.objects.filter(model=model).order_by("effective_from"))
    current = price_in_force(prices, now or timezone.now())
    if current is None:
        return False
    fields = {
        "input_cost_per_mtok": current.input_per_mtok,
        "output_cost_per_mtok": current.output_per_mtok,
        "cache_read_cost_per_mtok": current.cache_read_per_mtok,
        "cache_write_cost_per_mtok": current.cache_write_per_mtok,
    }
    if all(getattr(model, name) == value for name, value in fields.items()):
        return False
    for name, value in fields.items():
        setattr(model, name, value)
    model.save(update_fields=[*fields, "updated_at"])
    return True


@transaction.atomic
def price_set(
    *,
    model: RegisteredModel,
    input_per_mtok: Decimal,
    output_per_mtok: Decimal,
    effective_from: datetime | None = None,
    set_by: str = SetBy.OPERATOR,
    cache_read_per_mtok: Decimal | None = None,
    cache_write_per_mtok: Decimal | None = None,
) -> tuple[ModelPrice, bool]:
    """Add the model's price from ``effective_from`` (default now), or correct the one of that moment.

    Costs already stored on usage records stay as they are; the records of the price's period
    stored without a cost (it was not known yet) are costed at it, and a price without a date (its
    start unknown) that is the model's first also costs the usage before it (registry/telemetry/
    costing.py). An operator's price makes the model's price fields the operator's, so discovery
    no longer changes them. Returns (row, created).
    """
    row, created = ModelPrice.objects.update_or_create(
        model=model,
        effective_from=effective_from or timezone.now(),
        defaults={
            "input_per_mtok": input_per_mtok,
            "output_per_mtok": output_per_mtok,
            "cache_read_per_mtok": cache_read_per_mtok,
            "cache_write_per_mtok": cache_write_per_mtok,
            "set_by": set_by,
            "start_known": effective_from is not None,
        },
    )
    if set_by == SetBy.OPERATOR and not set(PRICE_FIELDS) <= set(model.operator_fields or []):
        operator_fields_mark(model, PRICE_FIELDS)
        model.save(update_fields=["operator_fields", "updated_at"])
    model_price_follow(model=model)
    usage_recost_for(row)  # and resolves the unpriced-usage alert once nothing is left uncosted
    return row, created


@transaction.atomic
def price_delete(*, price: ModelPrice) -> None:
    """Remove a price row (a mistake); the model's price fields follow what is then in force."""
    model = price.model
    price.delete()
    model_price_follow(model=model)


def prices_follow_all(*, now: datetime | None = None) -> int:
    """Bring every model's price fields to the price in force now (future-dated prices taking over)."""
    now = now or timezone.now()
    changed = 0
    due = ModelPrice.objects.filter(effective_from__lte=now).values_list("model_id", flat=True).distinct()
    for model in RegisteredModel.objects.filter(pk__in=due):
        with transaction.atomic():
            changed += model_price_follow(model=model, now=now)
    return changed
