"""What usage costs: a record's cost at a price, and the re-costing of records a price arrived too late for.

A usage record is costed when it is stored, at the price in force at its moment. Two cases leave
records uncosted although the registry later knows what they cost (issue 23, item 2):

- a model's **first price with an unknown start** (``ModelPrice.start_known`` false: discovery saw
  the price at a run, an operator typed it on the model without a date): usage from before that
  moment has no price in force. Such a price costs it, when it is recorded and at ingestion later:
  no other price can;
- a **back-dated price** (an operator's or the API's ``effective_from`` in the past): the records
  of its period (up to the next price) that were stored uncosted.

Re-costing only ever fills a cost that is missing: a record with a cost, the caller's
(``cost_source=reported``) above all, is never changed. It runs in batches of ``RECOST_BATCH``
rows, walked in the order of the ``(model_id, timestamp)`` index; a request does at most
``RECOST_INLINE_LIMIT`` records and leaves the rest to the ``registry.usage_recost`` task. Each run
writes one audit entry on the price ("re-costed N records").
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Final

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from registry.access.audit import log_bulk
from registry.models import Alert, AlertKind, CostSource, ModelPrice, ModelUsage
from registry.telemetry.rollups import usage_rollups_costed

logger = logging.getLogger(__name__)

USAGE_RECOST_TASK_NAME: Final = "registry.usage_recost"

# Rows read and written per statement, and per transaction.
RECOST_BATCH: Final = 2_000
# The most records a request (a price set in the console or the API) re-costs before it answers.
RECOST_INLINE_LIMIT: Final = 20_000

_MTOK: Final = Decimal(1_000_000)
_COST_QUANTUM: Final = Decimal("0.000001")
# model_usage.cost is NUMERIC(10, 6).
COST_MAX: Final = Decimal("9999.999999")


class CostTooLarge(Exception):
    """A computed cost that ``model_usage.cost`` cannot hold."""


def price_in_force(prices: Sequence[ModelPrice], moment: datetime) -> ModelPrice | None:
    """The price of ``prices`` (sorted by ``effective_from``, oldest first) in force at ``moment``."""
    index = bisect.bisect_right([price.effective_from for price in prices], moment)
    return prices[index - 1] if index else None


def price_for_usage(prices: Sequence[ModelPrice], moment: datetime) -> ModelPrice | None:
    """The price usage of ``moment`` is costed at: the one in force, or else a first price whose start is unknown."""
    price = price_in_force(prices, moment)
    if price is None and prices and not prices[0].start_known:
        return prices[0]
    return price


def usage_cost(
    *,
    token_count: int,
    input_tokens: int | None,
    output_tokens: int | None,
    price: ModelPrice,
    cached_input_tokens: int | None = None,
) -> tuple[Decimal, str]:
    """(cost, cost_source) of a record's tokens at ``price``: computed from the split, estimated from a bare count.

    ``cached_input_tokens`` are part of ``input_tokens`` (OpenAI's convention: prompt_tokens includes
    cached_tokens), priced at the cache-read price when one is known; the serializer checks cached <= input.
    """
    if input_tokens is not None or output_tokens is not None:
        cached = min(cached_input_tokens or 0, input_tokens or 0)
        cache_read = price.input_per_mtok if price.cache_read_per_mtok is None else price.cache_read_per_mtok
        amount = (
            Decimal((input_tokens or 0) - cached) * price.input_per_mtok
            + Decimal(cached) * cache_read
            + Decimal(output_tokens or 0) * price.output_per_mtok
        ) / _MTOK
        source = CostSource.COMPUTED
    else:
        amount = Decimal(token_count) * (price.input_per_mtok + price.output_per_mtok) / 2 / _MTOK
        source = CostSource.ESTIMATED
    try:
        amount = amount.quantize(_COST_QUANTUM)
    except InvalidOperation as exc:
        raise CostTooLarge("The computed cost is too large to store; report the cost.") from exc
    if amount > COST_MAX:
        raise CostTooLarge(f"The computed cost ({amount} USD) exceeds {COST_MAX}; report records in smaller parts.")
    return amount, str(source)


@dataclass(frozen=True)
class RecostOutcome:
    """What a re-costing run did: records costed, and whether records of the period may remain."""

    recosted: int
    more: bool


def _period(price: ModelPrice) -> tuple[datetime | None, datetime | None] | None:
    """``[start, end)`` of the usage ``price`` costs (None: unbounded), or None when the price is gone."""
    moments = list(
        ModelPrice.objects.filter(model_id=price.model_id)
        .order_by("effective_from")
        .values_list("pk", "effective_from")
    )
    ids = [pk for pk, _ in moments]
    if price.pk not in ids:
        return None
    index = ids.index(price.pk)
    start = None if index == 0 and not price.start_known else price.effective_from
    end = moments[index + 1][1] if index + 1 < len(moments) else None
    return start, end


def usage_recost(*, price: ModelPrice, limit: int | None = RECOST_INLINE_LIMIT) -> RecostOutcome:
    """Cost the uncosted records of ``price``'s period at ``price``, at most ``limit`` (None: all), in batches.

    Only a missing cost is filled (``cost IS NULL``, checked again under a row lock as each batch
    is written): a reported cost, or one a concurrent run wrote, stays. A record whose cost is too
    large to store stays uncosted (as it would have been refused at ingestion). One audit entry.
    """
    period = _period(price)
    if period is None:
        return RecostOutcome(0, False)
    start, end = period
    uncosted = ModelUsage.objects.filter(model_id=price.model_id, cost__isnull=True, token_count__isnull=False)
    if start is not None:
        uncosted = uncosted.filter(timestamp__gte=start)
    if end is not None:
        uncosted = uncosted.filter(timestamp__lt=end)
    recosted = 0
    after: tuple[datetime, int] | None = None
    more = False
    while True:
        page = uncosted.order_by("timestamp", "pk")
        if after is not None:
            page = page.filter(Q(timestamp__gt=after[0]) | Q(timestamp=after[0], pk__gt=after[1]))
        rows = list(
            page.values_list("pk", "timestamp", "token_count", "input_tokens", "output_tokens", "cached_input_tokens")[
                :RECOST_BATCH
            ]
        )
        if not rows:
            break
        after = (rows[-1][1], rows[-1][0])
        costs: dict[int, tuple[Decimal, str]] = {}
        for pk, _, token_count, input_tokens, output_tokens, cached_input_tokens in rows:
            if token_count is None:  # excluded by the filter; narrows the type
                continue
            try:
                costs[pk] = usage_cost(
                    token_count=token_count,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cached_input_tokens=cached_input_tokens,
                    price=price,
                )
            except CostTooLarge:
                continue
        recosted += _write_costs(costs)
        if limit is not None and recosted >= limit:
            more = True
            break
    if recosted:
        records = f"{recosted} record{'' if recosted == 1 else 's'}"
        log_bulk("update", [price], [{"usage": ["uncosted", f"re-costed {records}"]}])
        logger.info("re-costed %s usage records of model #%s at price #%s", recosted, price.model_id, price.pk)
    return RecostOutcome(recosted, more)


@transaction.atomic
def _write_costs(costs: dict[int, tuple[Decimal, str]]) -> int:
    """Write ``costs`` ({pk: (cost, source)}) to the records still uncosted; returns how many were."""
    if not costs:
        return 0
    still = list(
        ModelUsage.objects.select_for_update()
        .filter(pk__in=list(costs), cost__isnull=True)
        .values_list("pk", "model_id", "model_name", "timestamp", "request_count")
    )
    rows = [ModelUsage(pk=pk, cost=costs[pk][0], cost_source=costs[pk][1]) for pk, *_ in still]
    ModelUsage.objects.bulk_update(rows, ["cost", "cost_source"], batch_size=500)
    # Their hours' rollups, which statistics read, in the same transaction: known cost up, uncosted down.
    usage_rollups_costed(
        (model_id, model_name, moment, requests, costs[pk][0]) for pk, model_id, model_name, moment, requests in still
    )
    return len(rows)


def usage_recost_for(price: ModelPrice) -> RecostOutcome:
    """Re-cost what ``price`` covers now, up to RECOST_INLINE_LIMIT records; the task does the rest after commit.

    For the writers of prices (``price_set``, a price typed on the model, discovery): call it after
    the price row is saved. The model's unpriced-usage alert is resolved when nothing is left; with
    a backlog left to the task it stays open until the task is done (a broker that cannot be reached
    is logged, and saving the price again resumes).
    """
    outcome = usage_recost(price=price, limit=RECOST_INLINE_LIMIT)
    if outcome.more:
        price_id = price.pk

        def send() -> None:
            try:
                current_app.send_task(USAGE_RECOST_TASK_NAME, args=(price_id,))
            except Exception as exc:  # a broker that cannot be reached must not fail the price
                logger.warning("could not queue the re-costing of price #%s: %s", price_id, exc)

        transaction.on_commit(send)
    else:
        unpriced_usage_resolve(model_id=price.model_id)
    return outcome


def usage_recost_all(price: ModelPrice) -> int:
    """The task's part: re-cost every uncosted record ``price`` covers, batch by batch, then resolve the alert."""
    recosted = usage_recost(price=price, limit=None).recosted
    unpriced_usage_resolve(model_id=price.model_id)
    return recosted


def unpriced_usage_resolve(*, model_id: int, now: datetime | None = None) -> bool:
    """Resolve the model's unpriced-usage alert (its usage is costed now); True when one was open."""
    alerts = Alert.objects.filter(kind=AlertKind.UNPRICED_USAGE, model_id=model_id, resolved_at__isnull=True)
    return bool(alerts.update(resolved_at=now or timezone.now()))


def usage_recost_unpriced(prices: Iterable[ModelPrice]) -> int:
    """Re-cost, at new ``prices``, the models with an open unpriced-usage alert (``usage_recost_for`` each).

    For a writer of many prices at once (a discovery run): only a model whose usage arrived
    unpriced has records to re-cost, and its open alert says so, so a run that prices a thousand new
    models reads no usage. Returns the records re-costed.
    """
    by_model: dict[int, list[ModelPrice]] = {}
    for price in prices:
        by_model.setdefault(price.model_id, []).append(price)
    if not by_model:
        return 0
    alerts = Alert.objects.filter(kind=AlertKind.UNPRICED_USAGE, model_id__in=list(by_model), resolved_at__isnull=True)
    # Each new price costs its own period: a catalog's dated prices cover the past one after another.
    return sum(
        usage_recost_for(price).recosted
        for model_id in sorted(set(alerts.values_list("model_id", flat=True)))
        for price in sorted(by_model[model_id], key=lambda price: price.effective_from)
    )
