"""How the console prints figures that could mislead: a cost that may be unknown (never as zero), an unload time.

A summed cost leaves out the requests of records without one (no tokens, or no price known at
their time); the summaries count those as ``uncosted_requests`` (``registry.telemetry.selectors``).
A figure whose requests are all uncosted is unknown, and a partly uncosted one says how many it
leaves out, so that a missing price never reads as a free model.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils.timesince import timesince, timeuntil


def requests_uncosted_text(count: int) -> str:
    return f"{count:,} request{'' if count == 1 else 's'} uncosted"


def count_text(count: int | None) -> str:
    """Requests and tokens with thousands separators, as every figure of the console prints them: 1,234,567."""
    return "-" if count is None else f"{count:,}"


def percent_text(fraction: float | None) -> str:
    """A rate (0-1) as the charts beside it draw it: in percent, two decimals below 10 % (0.25 %), one above."""
    if fraction is None:
        return "-"
    percent = fraction * 100
    return f"{percent:.2f} %" if percent < 10 else f"{percent:.1f} %"


def cost_text(*, cost: Decimal | float | int | None, requests: int, uncosted_requests: int, unit: str = "") -> str:
    """``cost`` to 4 places, "unknown (N requests uncosted)" when no request is costed, or the known part "+ N"."""
    if uncosted_requests and uncosted_requests >= requests:
        return f"unknown ({requests_uncosted_text(uncosted_requests)})"
    known = f"{cost or 0:.4f}{unit}"
    return f"{known} + {requests_uncosted_text(uncosted_requests)}" if uncosted_requests else known


# Past this, an expiry is Ollama's "keep loaded for ever" (keep_alive=-1 reports a moment centuries away).
FOREVER = timedelta(days=365 * 10)


def unload_text(*, loaded: bool, expires_at: datetime | None, checked_at: datetime | None = None, now: datetime) -> str:
    """When a host unloads a model, as of now: "in 4 minutes", "expired 1 year ago", "kept loaded", "unloaded".

    An expiry in the past is said as such, never as "in 0 minutes": the host said it would unload
    the model then, so it has, or its last check is that old.
    """
    if not loaded:
        return "unloaded" + (f" (checked {timesince(checked_at, now)} ago)" if checked_at else "")
    if expires_at is None:
        return "-"
    if expires_at <= now:
        return f"expired {timesince(expires_at, now)} ago"
    if expires_at - now > FOREVER:
        return "kept loaded (no expiry)"
    return f"in {timeuntil(expires_at, now)}"
