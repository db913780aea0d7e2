"""Server-rendered SVG line charts for the admin dashboards: no JavaScript, no CDN, no build step."""

# Every piece of text that reaches the SVG (title, axis label, variant names, tick labels) goes
# through html.escape, so the returned string is safe to mark_safe in a template.

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from html import escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies; dashes tell lines
# apart in grey-scale print too.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3")

WIDTH, HEIGHT = 640, 280
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 40, 32, 72
LEGEND_ROW = 16
Y_TICKS = 5
X_TICKS = 6
HOUR_STEPS = (1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 720)

Series = Mapping[str, Sequence[tuple[datetime, float | None]]]


def default_format(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def percent_format(value: float) -> str:
    return f"{value * 100:.2g} %" if abs(value) < 0.1 else f"{value * 100:.1f} %"


def nice_step(span: float, ticks: int = Y_TICKS) -> float:
    """A round tick step (1, 2 or 5 x 10^k) giving about `ticks` intervals over `span`."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def _fmt(number: float) -> str:
    return f"{number:.1f}"


def line_chart(
    series: Series,
    title: str,
    y_label: str,
    *,
    y_format: Callable[[float], str] = default_format,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """An accessible SVG line chart of {variant: [(hour, value), ...]} (UTC hours on x).

    Points with a None value (nothing to divide by yet) are left out of their line.
    """
    chart_id = "chart-" + hashlib.sha1(title.encode(), usedforsecurity=False).hexdigest()[:10]
    lines = {
        name: sorted((_utc(at), float(value)) for at, value in points if value is not None)
        for name, points in series.items()
    }
    lines = {name: points for name, points in lines.items() if points}
    legend = _legend_positions(list(lines), MARGIN_LEFT, width - MARGIN_RIGHT)
    extra_rows = max((row for _, row in legend.values()), default=0)
    height += LEGEND_ROW * extra_rows
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="aisle-chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
    )
    if not lines:
        return (
            f'{head}<desc id="{chart_id}-desc">No data yet.</desc>'
            f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" '
            f'font-size="14" fill="#666">No data yet</text></svg>'
        )

    left, right = MARGIN_LEFT, width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, height - MARGIN_BOTTOM - LEGEND_ROW * extra_rows
    times = [at for points in lines.values() for at, _ in points]
    values = [value for points in lines.values() for _, value in points]
    t_min, t_max = min(times), max(times)
    if t_min == t_max:  # one hour of data: centre it in a two-hour window
        t_min, t_max = t_min - timedelta(hours=1), t_max + timedelta(hours=1)
    y_min = min(0.0, min(values))
    y_max = max(values)
    step = nice_step(y_max - y_min)
    y_min = math.floor(y_min / step) * step
    # Headroom: a line along the top edge would hide in the frame.
    y_max = max((math.floor(y_max / step) + 1) * step, y_min + step)
    t_span = (t_max - t_min).total_seconds()

    def x_of(at: datetime) -> float:
        return left + (at - t_min).total_seconds() / t_span * (right - left)

    def y_of(value: float) -> float:
        return bottom - (value - y_min) / (y_max - y_min) * (bottom - top)

    parts = [
        head,
        f'<desc id="{chart_id}-desc">{escape(_description(lines, y_label, y_format))}</desc>',
        f'<text x="{left}" y="18" font-size="13" font-weight="600">{escape(title)}</text>',
    ]
    # Horizontal grid lines and y tick labels.
    n_steps = round((y_max - y_min) / step)
    for i in range(n_steps + 1):
        value = y_min + i * step
        y = _fmt(y_of(value))
        parts.append(
            f'<line class="grid" x1="{left}" x2="{right}" y1="{y}" y2="{y}" stroke="#ddd"/>'
            f'<text class="tick" x="{left - 6}" y="{y}" font-size="11" text-anchor="end" '
            f'dominant-baseline="middle">{escape(y_format(value))}</text>'
        )
    # X ticks on whole UTC hours (or days), the date shown where it changes.
    previous_day = None
    for at in hour_ticks(t_min, t_max):
        x = _fmt(x_of(at))
        day = at.date()
        label = at.strftime("%H:%M") if day == previous_day else at.strftime("%d %b %H:%M")
        previous_day = day
        parts.append(
            f'<line x1="{x}" x2="{x}" y1="{bottom}" y2="{bottom + 4}" stroke="#333"/>'
            f'<text class="tick" x="{x}" y="{bottom + 16}" font-size="11" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    # Axes and their labels.
    parts.append(
        f'<line class="axis" x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#333"/>'
        f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{bottom}" stroke="#333"/>'
        f'<text x="14" y="{(top + bottom) / 2:.0f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 14 {(top + bottom) / 2:.0f})">{escape(y_label)}</text>'
        f'<text x="{(left + right) / 2:.0f}" y="{bottom + 32}" font-size="11" '
        f'text-anchor="middle">hour (UTC)</text>'
    )
    # One line per variant, with a marker (and a hover title) per point, then the legend.
    for index, (name, points) in enumerate(lines.items()):
        colour = COLOURS[index % len(COLOURS)]
        dash = DASHES[index % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        coordinates = " ".join(f"{_fmt(x_of(at))},{_fmt(y_of(value))}" for at, value in points)
        label = escape(name)
        parts.append(f'<g class="series" data-variant="{label}">')
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash_attr} '
            f'points="{coordinates}"/>'
        )
        for at, value in points:
            parts.append(
                f'<circle cx="{_fmt(x_of(at))}" cy="{_fmt(y_of(value))}" r="2.5" fill="{colour}">'
                f"<title>{label}, {escape(_time_label(at))}: {escape(y_format(value))}</title>"
                "</circle>"
            )
        parts.append("</g>")
        legend_x, row = legend[name]
        legend_y = bottom + 56 + LEGEND_ROW * row
        parts.append(
            f'<g class="legend-item"><line x1="{_fmt(legend_x)}" x2="{_fmt(legend_x + 18)}" '
            f'y1="{legend_y - 4}" y2="{legend_y - 4}" stroke="{colour}" stroke-width="2"'
            f'{dash_attr}/><text x="{_fmt(legend_x + 22)}" y="{legend_y}" font-size="11">'
            f"{label}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def hour_ticks(t_min: datetime, t_max: datetime, ticks: int = X_TICKS) -> list[datetime]:
    """Moments on whole UTC hours, a round number of hours apart, at most `ticks` + 1 of them."""
    span_h = (t_max - t_min).total_seconds() / 3600
    step_h = next(
        (step for step in HOUR_STEPS if span_h / step <= ticks), math.ceil(span_h / ticks / 24) * 24
    )
    step_s = step_h * 3600
    first_s = math.ceil(t_min.timestamp() / step_s) * step_s
    count = int((t_max.timestamp() - first_s) // step_s) + 1
    return [datetime.fromtimestamp(first_s + i * step_s, tz=UTC) for i in range(max(count, 0))]


def _legend_positions(names: list[str], left: float, right: float) -> dict[str, tuple[float, int]]:
    """(x, row) of each legend entry, wrapping onto further rows when a row is full."""
    positions, x, row = {}, left, 0
    for name in names:
        item_width = 34 + 6.5 * len(name)  # swatch, gap and an estimate of the text's width
        if x > left and x + item_width > right:
            x, row = left, row + 1
        positions[name] = (x, row)
        x += item_width
    return positions


def _utc(at: datetime) -> datetime:
    """Aware UTC (a naive time is taken to be UTC already, as the rollups' hours are)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _time_label(at: datetime) -> str:
    return _utc(at).strftime("%d %b %H:%M")


def _description(
    lines: Mapping[str, Sequence[tuple[datetime, float]]],
    y_label: str,
    y_format: Callable[[float], str],
) -> str:
    """A sentence per line for screen readers: its range and its latest value."""
    sentences = []
    for name, points in lines.items():
        first, last = points[0][0], points[-1][0]
        sentences.append(
            f"{name}: {len(points)} points from {_time_label(first)} to {_time_label(last)} UTC, "
            f"latest {y_label} {y_format(points[-1][1])}."
        )
    return " ".join(sentences)
