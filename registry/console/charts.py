"""Charts of the console, rendered on the server as inline SVG.

No JavaScript and nothing loaded from elsewhere: a chart is part of the page's HTML, readable
without a network, printable, and testable as text. Colours come from CSS classes (``series-0``
... in ``static/registry/console.css``), so the same SVG follows the admin's light and dark themes.
Every point carries a ``<title>``: hovering it shows the bucket and the exact value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from registry.console.figures import requests_uncosted_text

WIDTH = 720
HEIGHT = 200
MARGIN_LEFT = 56
MARGIN_RIGHT = 12
MARGIN_TOP = 12
MARGIN_BOTTOM = 28
PALETTE_SIZE = 8


@dataclass(frozen=True)
class Series:
    """One line (or one layer of stacked bars): a value per label, ``None`` where there is none."""

    name: str
    values: Sequence[float | None]


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value``: round axis ticks."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover (the loop always returns)


def format_number(value: float, unit: str = "") -> str:
    """Short numbers for axes and tooltips: 1.2k, 3.4M, 0.25."""
    magnitude = abs(value)
    if magnitude >= 1_000_000:
        text = f"{value / 1_000_000:.1f}M"
    elif magnitude >= 10_000:
        text = f"{value / 1000:.0f}k"
    elif magnitude >= 1000:
        text = f"{value / 1000:.1f}k"
    elif magnitude >= 10 or value == int(value):
        text = f"{value:.0f}"
    else:
        text = f"{value:.3g}"  # 0.125, 0.375, 2.5: a quarter of a round axis stays exact
    return f"{text}{unit}"


def _frame(labels: Sequence[str], top: float, unit: str) -> list[str]:
    """Axes, horizontal grid lines with their values, and a few x labels."""
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    parts = []
    for i in range(5):
        value = top * i / 4
        y = MARGIN_TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(format_number(value, unit))}</text>"
        )
    count = len(labels)
    every = max(1, math.ceil(count / 8))
    for index in range(0, count, every):
        x = MARGIN_LEFT + plot_w * (index + 0.5) / count
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(labels[index])}</text>'
        )
    return parts


def _legend(series: Sequence[Series]) -> str:
    items = "".join(
        f'<li><span class="swatch series-{index % PALETTE_SIZE}"></span>{escape(item.name)}</li>'
        for index, item in enumerate(series)
    )
    return f'<ul class="chart-legend">{items}</ul>'


def _empty(message: str) -> SafeString:
    return format_html('<p class="chart-empty">{}</p>', message)


def _svg(title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'preserveAspectRatio="xMidYMid meet">{"".join(body)}</svg>'
    )


def line_chart(
    *, title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "", empty: str
) -> SafeString:
    """Lines over ``labels``; a gap where a value is ``None``. ``empty`` is said when there is no value at all."""
    values = [v for item in series for v in item.values if v is not None]
    if not values or not labels:
        return _empty(empty)
    top = _nice_ceiling(max(values))
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    body = _frame(labels, top, unit)
    for index, item in enumerate(series):
        css = f"series-{index % PALETTE_SIZE}"
        segment: list[str] = []
        segments: list[list[str]] = []
        dots = []
        for position, value in enumerate(item.values):
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            x = MARGIN_LEFT + plot_w * (position + 0.5) / len(labels)
            y = MARGIN_TOP + plot_h - plot_h * value / top
            segment.append(f"{x:.1f},{y:.1f}")
            tip = f"{item.name} · {labels[position]}: {format_number(value, unit)}"
            dots.append(
                f'<circle class="dot {css}" cx="{x:.1f}" cy="{y:.1f}" r="2.5"><title>{escape(tip)}</title></circle>'
            )
        if segment:
            segments.append(segment)
        body.extend(f'<polyline class="line {css}" points="{" ".join(points)}"/>' for points in segments)
        body.extend(dots)
    return mark_safe(_svg(title, body) + _legend(series))  # noqa: S308 (every text in it is escaped above)


def _uncosted_marks(labels: Sequence[str], uncosted: Sequence[int]) -> list[str]:
    """A mark under each bucket with uncosted requests: its cost is unknown, which a bar of 0 would hide."""
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    slot = plot_w / len(labels)
    y = HEIGHT - MARGIN_BOTTOM + 2
    marks = []
    for position, count in enumerate(uncosted):
        if count:
            tip = f"{labels[position]}: cost unknown for {requests_uncosted_text(count)}"
            marks.append(
                f'<rect class="uncosted" x="{MARGIN_LEFT + slot * position + slot * 0.1:.1f}" y="{y:.1f}" '
                f'width="{max(slot * 0.8, 2):.1f}" height="5"><title>{escape(tip)}</title></rect>'
            )
    return marks


def stacked_bar_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    unit: str = "",
    empty: str,
    uncosted: Sequence[int] | None = None,
) -> SafeString:
    """One bar per label, stacked by series (e.g. requests per hour, by model).

    ``uncosted`` (a cost chart's): the requests of each bucket whose cost is unknown, marked under
    the bucket and named in the legend, so that an unknown cost never reads as a zero bar.
    """
    totals = [sum(item.values[i] or 0 for item in series) for i in range(len(labels))]
    if not labels or not (any(totals) or any(uncosted or ())):
        return _empty(empty)
    top = _nice_ceiling(max(totals))
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    slot = plot_w / len(labels)
    body = _frame(labels, top, unit)
    for position, label in enumerate(labels):
        base = 0.0
        for index, item in enumerate(series):
            value = item.values[position] or 0
            if not value:
                continue
            height = plot_h * value / top
            y = MARGIN_TOP + plot_h - plot_h * base / top - height
            tip = f"{item.name} · {label}: {format_number(value, unit)}"
            body.append(
                f'<rect class="bar series-{index % PALETTE_SIZE}" x="{MARGIN_LEFT + slot * position + slot * 0.1:.1f}" '
                f'y="{y:.1f}" width="{slot * 0.8:.1f}" height="{height:.1f}"><title>{escape(tip)}</title></rect>'
            )
            base += value
    legend = _legend(series)
    if uncosted is not None and any(uncosted):
        body.extend(_uncosted_marks(labels, uncosted))
        total = sum(uncosted)
        legend = legend.replace(
            "</ul>",
            f'<li class="uncosted-legend"><span class="swatch uncosted"></span>cost unknown: '
            f"{escape(requests_uncosted_text(total))}</li></ul>",
        )
    return mark_safe(_svg(title, body) + legend)  # noqa: S308 (every text in it is escaped above)


SPARK_WIDTH = 132
SPARK_HEIGHT = 30


def sparkline(*, title: str, values: Sequence[float | None], top: float, unit: str = "") -> SafeString:
    """A small line without axes over ``values``, scaled to ``top`` (shared by a row, so lines compare).

    A gap where a value is ``None``; the title (shown on hover) says the range and the peak.
    """
    known = [value for value in values if value is not None]
    if not values or not known:
        return format_html('<span class="sparkline-empty quiet">{}</span>', "no data")
    scale = top if top > 0 else 1.0
    step = SPARK_WIDTH / max(len(values) - 1, 1)
    segments: list[list[str]] = [[]]
    for position, value in enumerate(values):
        if value is None:
            segments.append([])
            continue
        y = SPARK_HEIGHT - 2 - (SPARK_HEIGHT - 4) * value / scale
        segments[-1].append(f"{position * step:.1f},{y:.1f}")
    lines = "".join(
        f'<polyline class="line" points="{" ".join(points)}"/>'
        if len(points) > 1
        else f'<circle class="dot" cx="{points[0].split(",")[0]}" cy="{points[0].split(",")[1]}" r="1.5"/>'
        for points in segments
        if points
    )
    tip = f"{title}: peak {format_number(max(known), unit)} (scale {format_number(top, unit)})"
    return mark_safe(  # noqa: S308 (the only text, the title, is escaped)
        f'<svg class="sparkline" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" width="{SPARK_WIDTH}" '
        f'height="{SPARK_HEIGHT}" role="img" aria-label="{escape(tip)}"><title>{escape(tip)}</title>{lines}</svg>'
    )


@dataclass(frozen=True)
class Span:
    """A stretch of a timeline lane: from ``start`` to ``end`` in ``state``, with its hover text's cause."""

    start: datetime
    end: datetime
    state: str
    cause: str


TIMELINE_LABEL_WIDTH = 90
TIMELINE_LANE_HEIGHT = 22
TIMELINE_LANE_GAP = 8
TIMELINE_AXIS_HEIGHT = 20


def duration_text(seconds: float) -> str:
    """A duration as an operator reads it: 45 s, 12 min, 3 h 20 min, 2 d 4 h."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _moment_text(moment: datetime, span: timedelta) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if span > timedelta(days=2) else f"{moment:%m-%d %H:%M}"


def _span_tip(lane: str, span: Span) -> str:
    seconds = (span.end - span.start).total_seconds()
    return (
        f"{lane}: {span.state} · {span.start:%Y-%m-%d %H:%M} → {span.end:%Y-%m-%d %H:%M} UTC "
        f"({duration_text(seconds)})" + (f" · {span.cause}" if span.cause else "")
    )


def _timeline_marks(
    lane: str, spans: Sequence[Span], start: datetime, total: float, plot_w: float
) -> list[tuple[float, float, str, str]]:
    """Each mark to draw as (x, width, state, hover text); spans narrower than a pixel are drawn together.

    A host that loads and unloads a model every few minutes gives thousands of spans over 90 days:
    drawn one by one they would weigh megabytes and show nothing more. Consecutive spans under a
    pixel wide become one mark in the state that lasted longest among them, whose hover text says
    how many changes it holds and each state's share, so the page's size is bounded by its width.
    """
    marks: list[tuple[float, float, str, str]] = []
    group: list[Span] = []

    def x_of(moment: datetime) -> float:
        return TIMELINE_LABEL_WIDTH + plot_w * (moment - start).total_seconds() / total

    def flush() -> None:
        if not group:
            return
        if len(group) == 1:
            only = group[0]
            marks.append(
                (x_of(only.start), max(1.0, x_of(only.end) - x_of(only.start)), only.state, _span_tip(lane, only))
            )
        else:
            shares: dict[str, float] = {}
            for span in group:
                shares[span.state] = shares.get(span.state, 0.0) + (span.end - span.start).total_seconds()
            seconds = sum(shares.values())
            state = max(shares, key=lambda name: shares[name])
            mix = ", ".join(
                f"{name} {value / seconds:.0%}" for name, value in sorted(shares.items(), key=lambda i: -i[1])
            )
            tip = (
                f"{lane}: {len(group)} changes · {group[0].start:%Y-%m-%d %H:%M} → {group[-1].end:%Y-%m-%d %H:%M} UTC "
                f"({duration_text(seconds)}): {mix}"
            )
            marks.append((x_of(group[0].start), max(1.0, x_of(group[-1].end) - x_of(group[0].start)), state, tip))
        group.clear()

    for span in spans:
        narrow = x_of(span.end) - x_of(span.start) < 1.0
        if not narrow:
            flush()
            group.append(span)
            flush()
            continue
        group.append(span)
        if x_of(span.end) - x_of(group[0].start) >= 1.0:
            flush()
    flush()
    return marks


def timeline_chart(
    *, title: str, start: datetime, end: datetime, lanes: Sequence[tuple[str, Sequence[Span]]], states: Sequence[str]
) -> SafeString:
    """Horizontal lanes of spans over ``[start, end)``, one colour per state (``timeline-<state>`` classes).

    Each span's ``<title>`` says its state, its moments (UTC), its duration and its cause; the
    legend gives each state's share of the first lane. Lanes without spans are left out.
    """
    lanes = [(name, spans) for name, spans in lanes if spans]
    total = (end - start).total_seconds()
    if not lanes or total <= 0:
        return _empty("Nothing recorded in this period.")
    plot_w = WIDTH - TIMELINE_LABEL_WIDTH - MARGIN_RIGHT
    height = len(lanes) * (TIMELINE_LANE_HEIGHT + TIMELINE_LANE_GAP) + TIMELINE_AXIS_HEIGHT
    body: list[str] = []
    for row, (name, spans) in enumerate(lanes):
        y = row * (TIMELINE_LANE_HEIGHT + TIMELINE_LANE_GAP)
        body.append(
            f'<text class="axis" x="{TIMELINE_LABEL_WIDTH - 6}" y="{y + TIMELINE_LANE_HEIGHT / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(name)}</text>'
        )
        for x, width, state, tip in _timeline_marks(name, spans, start, total, plot_w):
            body.append(
                f'<rect class="timeline-span timeline-{escape(state)}" x="{x:.1f}" y="{y}" '
                f'width="{width:.1f}" height="{TIMELINE_LANE_HEIGHT}" data-state="{escape(state)}">'
                f"<title>{escape(tip)}</title></rect>"
            )
    axis_y = height - 6
    for index in range(5):
        moment = start + (end - start) * index / 4
        x = TIMELINE_LABEL_WIDTH + plot_w * index / 4
        anchor = "start" if index == 0 else "end" if index == 4 else "middle"
        body.append(
            f'<text class="axis" x="{x:.1f}" y="{axis_y}" text-anchor="{anchor}">'
            f"{escape(_moment_text(moment, end - start))}</text>"
        )
    svg = (
        f'<svg class="chart timeline" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
        f'preserveAspectRatio="xMidYMid meet">{"".join(body)}</svg>'
    )
    shares: dict[str, float] = {}
    for span in lanes[0][1]:
        shares[span.state] = shares.get(span.state, 0.0) + (span.end - span.start).total_seconds()
    seen = {span.state for _, spans in lanes for span in spans}
    legend = "".join(
        f'<li><span class="swatch timeline-{escape(state)}"></span>{escape(state)}'
        + (f" {shares[state] / total:.1%}" if state in shares else "")
        + "</li>"
        for state in states
        if state in seen
    )
    return mark_safe(f'{svg}<ul class="chart-legend timeline-legend">{legend}</ul>')  # noqa: S308 (escaped above)
