"""A metric series drawn as inline SVG on the server: no chart library, no script needed to see
it, and every point carries its value (``data-value``, a ``<title>`` tooltip) for a table
view and for tests."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28
#: The windows the page offers: (label, since, step), about 60 points each.
WINDOWS = (("15 minutes", "15m", "15s"), ("1 hour", "1h", "1m"), ("6 hours", "6h", "6m"), ("1 day", "1d", "24m"))
DEFAULT_WINDOW = "15m"


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    time: float
    value: float


@dataclass(frozen=True)
class Chart:
    """What the template draws for one series: SVG coordinates and axis labels."""

    name: str
    unit: str
    points: tuple[ChartPoint, ...]
    polyline: str
    y_max: float
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM
    right: int = WIDTH - RIGHT


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    scale = 10.0 ** (len(str(int(value))) - 1) if value >= 1 else 1.0
    while scale > value:
        scale /= 10
    for factor in (1, 2, 5, 10):
        if factor * scale >= value:
            return factor * scale
    return 10 * scale


def chart(name: str, unit: str, points: list[tuple[float, float]], since: float, until: float) -> Chart:
    """The series ``points`` ([time, value], oldest first) over the window ``since``..``until``."""
    y_max = _nice_max(max((v for _, v in points), default=0.0))
    span = max(until - since, 1e-9)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    drawn = tuple(
        ChartPoint(round(LEFT + plot_w * min(max((t - since) / span, 0.0), 1.0), 1),
                   round(TOP + plot_h * (1 - v / y_max), 1), t, v)
        for t, v in points
    )
    return Chart(name, unit, drawn, " ".join(f"{p.x},{p.y}" for p in drawn), y_max)
