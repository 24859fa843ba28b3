"""Latency histograms with log-spaced buckets: percentiles of any window from hourly rollups, within a stated bound.

A latency ``x > 0`` (seconds) is counted in bucket ``i = ceil(log(x) / log(GAMMA))``, which holds
``(GAMMA**(i-1), GAMMA**i]``; zero latencies have a bucket of their own (``"z"``). A bucket stands
for ``2 * GAMMA**i / (GAMMA + 1)``, whose relative distance to any value of the bucket is at most
``(GAMMA - 1) / (GAMMA + 1)`` = ``RELATIVE_ERROR`` (the scheme of DDSketch, Masson et al., VLDB
2019). Histograms merge by adding counts, so an hour's histogram sums into a day's or a month's.

``percentile`` returns what PostgreSQL's ``percentile_cont`` returns over the same values
(interpolation between the two closest ranks) with each rank's value replaced by its bucket's: both
ranks within ``RELATIVE_ERROR``, so their interpolation is too. The bound holds for any positive
latency (there is no range cap: indexes are unbounded) and zero is exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Final

GAMMA: Final = 1.04
RELATIVE_ERROR: Final = (GAMMA - 1) / (GAMMA + 1)  # 0.0196: within 2 %
ZERO: Final = "z"
_LOG_GAMMA: Final = math.log(GAMMA)

Histogram = dict[str, int]


def bucket_of(latency: float) -> str:
    """The key of ``latency``'s bucket (a string: histograms are stored as JSON objects)."""
    if latency <= 0:
        return ZERO
    return str(math.ceil(math.log(latency) / _LOG_GAMMA))


def value_of(key: str) -> float:
    """The value a bucket stands for."""
    if key == ZERO:
        return 0.0
    return 2 * GAMMA ** int(key) / (GAMMA + 1)


def histogram_of(latencies: Iterable[float | None]) -> Histogram:
    """The histogram of ``latencies`` (None, a record without latency, is left out)."""
    counts: Histogram = {}
    for latency in latencies:
        if latency is not None:
            key = bucket_of(latency)
            counts[key] = counts.get(key, 0) + 1
    return counts


def merge_into(target: Histogram, other: Mapping[str, int]) -> Histogram:
    """Add ``other``'s counts to ``target`` (in place) and return it."""
    for key, count in other.items():
        target[key] = target.get(key, 0) + int(count)
    return target


def _order(key: str) -> float:
    return -math.inf if key == ZERO else int(key)


def percentile(histogram: Mapping[str, int], fraction: float) -> float | None:
    """The ``fraction`` percentile as percentile_cont gives it, within ``RELATIVE_ERROR``; None if empty."""
    ordered = [(key, histogram[key]) for key in sorted(histogram, key=_order) if histogram[key] > 0]
    total = sum(count for _, count in ordered)
    if total <= 0:
        return None
    position = (total - 1) * fraction
    low = int(position)
    high = min(low + 1, total - 1)

    def value_at(rank: int) -> float:
        """The value standing for the ``rank``-th (0-based) smallest counted value."""
        seen = 0
        for key, count in ordered:
            seen += count
            if rank < seen:
                return value_of(key)
        return value_of(ordered[-1][0])  # pragma: no cover (rank < total)

    low_value = value_at(low)
    return low_value + (value_at(high) - low_value) * (position - low)
