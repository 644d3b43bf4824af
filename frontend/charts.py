"""Small line charts, drawn as inline SVG on the server: no JavaScript, no library. The x axis is
time (datetimes or days) or a number (a learning curve's training labels).

`line_chart` does the arithmetic (scales, ticks, polyline points, interval bands, a threshold
line) and returns plain data; the template `frontend/chart.html` draws it, so every name and
label in a chart is escaped like any other template text. No Django imports: it can be tested
on its own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

# Distinct on white and for the common colour-vision deficiencies, roughly in that order.
PALETTE = ["#4f46e5", "#d97706", "#0891b2", "#db2777", "#059669", "#7c3aed", "#65a30d", "#b91c1c"]

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 10, 26  # room for the y labels on the left, x labels below


@dataclass
class Series:
    """One line: `points` are (x, value) with value None for a gap; `band` is an optional
    interval (x, low, high) drawn as a shaded area behind the line. x is a time or a number."""

    name: str
    points: list[tuple[datetime | float, float | None]]
    band: list[tuple[datetime | float, float, float]] = field(default_factory=list)
    color: str | None = None


def line_chart(series: list[Series], *, title: str, y_min: float | None = None, y_max: float | None = None,
               threshold: float | None = None, threshold_label: str = "threshold", time_format: str = "%m-%d %H:%M",
               value_format: str = "{:.3f}", x_label: str = "", y_label: str = "") -> dict:
    """The geometry of a chart of `series` against time or a number. Without `y_min`/`y_max` the
    value axis runs from 0 (or the lowest value, if negative) to a round number above the highest.
    A numeric x axis starts at 0 with round ticks; a time axis spans the times present."""
    times = sorted({_moment(t) for s in series for t, v in s.points if v is not None}
                   | {_moment(t) for s in series for t, _, _ in s.band})
    values = [v for s in series for _, v in s.points if v is not None] + [x for s in series for _, lo, hi in s.band for x in (lo, hi)]
    chart = {"title": title, "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT,
             "top": TOP, "bottom": HEIGHT - BOTTOM, "empty": not times, "series": [], "x_ticks": [], "y_ticks": [],
             "threshold": None, "x_label": x_label, "y_label": y_label}
    if not times:
        return chart
    numeric = not isinstance(times[0], datetime)
    if threshold is not None:
        values.append(threshold)
    low = y_min if y_min is not None else min(0.0, -_nice_ceil(-min(values)) if min(values) < 0 else 0.0)
    high = y_max if y_max is not None else _nice_ceil(max(values))
    if high <= low:
        high = low + 1
    t0, t1 = (0.0, _nice_ceil(times[-1])) if numeric else (times[0], times[-1])

    def px(moment) -> float:
        span = (t1 - t0) if numeric else (t1 - t0).total_seconds()
        offset = (_moment(moment) - t0) if numeric else (_moment(moment) - t0).total_seconds()
        share = 0.5 if span == 0 else offset / span
        return round(LEFT + (WIDTH - LEFT - RIGHT) * share, 1)

    def x_text(moment) -> str:
        return _tick(moment) if numeric else moment.strftime(time_format)

    def py(value: float) -> float:
        share = (min(max(value, low), high) - low) / (high - low)
        return round(HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * share, 1)

    for i, s in enumerate(series):
        present = sorted(((_moment(t), v) for t, v in s.points if v is not None), key=lambda p: p[0])
        band = sorted(((_moment(t), lo, hi) for t, lo, hi in s.band), key=lambda p: p[0])
        if not present and not band:
            continue
        chart["series"].append({
            "name": s.name,
            "color": s.color or PALETTE[i % len(PALETTE)],
            "segments": [" ".join(f"{px(t)},{py(v)}" for t, v in segment) for segment in _segments(s.points)],
            "dots": [{"x": px(t), "y": py(v), "title": f"{s.name} · {x_text(t)} · {value_format.format(v)}"}
                     for t, v in present],
            "band": " ".join([f"{px(t)},{py(hi)}" for t, _, hi in band] + [f"{px(t)},{py(lo)}" for t, lo, _ in reversed(band)]),
        })
    chart["y_ticks"] = [{"y": py(low + (high - low) * k / 4), "label": _tick(low + (high - low) * k / 4)} for k in range(5)]
    if numeric:
        shown = [t0 + (t1 - t0) * k / 4 for k in range(5)]
    else:
        shown = [times[0]] if t0 == t1 else [t0, times[len(times) // 2], t1] if len(times) > 2 else [t0, t1]
    chart["x_ticks"] = [{"x": px(t), "label": x_text(t),
                         "anchor": "start" if t == t0 and t0 != t1 else "end" if t == t1 and t0 != t1 else "middle"}
                        for t in dict.fromkeys(shown)]
    if threshold is not None:
        chart["threshold"] = {"y": py(threshold), "label": f"{threshold_label} {_tick(threshold)}"}
    return chart


def _moment(value) -> datetime | float:
    """Days (schema violations are counted per day) are drawn at their midnight; numbers as they are."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise TypeError(f"a chart's x axis is a time or a number, not {type(value).__name__}")


def _segments(points):
    """Runs of consecutive present values: a missing value breaks the line rather than bridging it."""
    run = []
    for t, v in sorted(points, key=lambda p: _moment(p[0])):
        if v is None:
            if run:
                yield run
            run = []
        else:
            run.append((_moment(t), v))
    if run:
        yield run


def _nice_ceil(value: float) -> float:
    """The smallest of 1, 2, 2.5 and 5 times a power of ten that is at least `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value - 1e-12)


def _tick(value: float) -> str:
    if float(value).is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:.3g}"


# Horizontal bar charts: one row per category (an annotator, a source), one bar per series.
BAR_WIDTH, BAR_LABELS, BAR_HEIGHT, BAR_GAP, BAR_TOP, BAR_AXIS = 560, 120, 12, 8, 6, 22
BAR_VALUES = 40  # room right of the longest bar for its value


@dataclass
class Bars:
    """One series of a bar chart: a value (or None, drawn as "no data") per category."""

    name: str
    values: list[float | None]
    color: str | None = None


def bar_chart(categories: list[str], series: list[Bars], *, title: str, x_max: float | None = None,
              value_format: str = "{:.0%}") -> dict:
    """The geometry of horizontal grouped bars: `categories` down the left, each with one bar per
    series. Without `x_max` the value axis runs from 0 to a round number above the highest value."""
    values = [v for s in series for v in s.values if v is not None]
    high = x_max if x_max is not None else _nice_ceil(max(values, default=0.0))
    right = BAR_WIDTH - BAR_VALUES
    row = len(series) * BAR_HEIGHT + BAR_GAP
    height = BAR_TOP + row * len(categories) + BAR_AXIS
    chart = {"title": title, "width": BAR_WIDTH, "height": height, "left": BAR_LABELS, "right": right,
             "top": BAR_TOP, "bottom": height - BAR_AXIS, "empty": not values, "rows": [], "x_ticks": [],
             "series": [{"name": s.name, "color": s.color or PALETTE[i % len(PALETTE)]} for i, s in enumerate(series)]}
    if not values:
        return chart

    def px(value: float) -> float:
        return round(BAR_LABELS + (right - BAR_LABELS) * min(max(value, 0.0), high) / high, 1)

    for c, category in enumerate(categories):
        top = BAR_TOP + c * row
        bars = []
        for s, legend in zip(series, chart["series"]):
            y = top + len(bars) * BAR_HEIGHT
            value = s.values[c]
            shown = "no data" if value is None else value_format.format(value)
            bars.append({"y": y, "height": BAR_HEIGHT - 2, "width": 0 if value is None else round(px(value) - BAR_LABELS, 1),
                         "color": legend["color"], "text": shown, "text_x": BAR_LABELS + 4 if value is None else px(value) + 4,
                         "title": f"{category} · {s.name} · {shown}", "missing": value is None})
        chart["rows"].append({"label": category, "y": top + (row - BAR_GAP) / 2, "bars": bars})
    chart["x_ticks"] = [{"x": px(high * k / 4), "label": value_format.format(high * k / 4)} for k in range(5)]
    return chart
