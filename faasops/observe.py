"""Showing what functions did: log records and metric series, for people and for tools."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import click

from faasops.errors import FaasopsError
from faasops.providers import LogRecord, MetricSeries

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
SPARKS = "▁▂▃▄▅▆▇█"


def parse_duration(text: str) -> float:
    """``30s``, ``15m``, ``2h``, ``1d`` → seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise FaasopsError(f"invalid duration {text!r}: use a number and a unit (ms, s, m, h, d), e.g. 15m")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise FaasopsError(f"invalid duration {text!r}: must be positive")
    return seconds


def stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def format_record(record: LogRecord) -> str:
    first, *rest = record.message.splitlines() or [""]
    return "\n".join([f"{stamp(record.time)} {record.workspace}/{record.function} {first}",
                      *(f"    {line}" for line in rest)])


def print_log_records(records: list[LogRecord], fmt: str) -> None:
    for record in records:
        if fmt == "json":
            click.echo(json.dumps({**record.__dict__, "function_id": record.function_id}, sort_keys=True))
        else:
            click.echo(format_record(record))


def sparkline(values: list[float]) -> str:
    top = max(values, default=0)
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1) + 0.5))] for v in values)


def _number(value: float) -> str:
    return f"{value:.4g}" if value else "0"


def render_metrics(address: str, series: list[MetricSeries], step_s: float, fmt: str) -> str:
    """A table (one row per time step, one column per series) with a sparkline per series,
    or the documented JSON: ``{"function", "step_seconds", "series": [{"name", "unit",
    "points": [[time, value], …]}]}``."""
    if fmt == "json":
        return json.dumps({
            "function": address, "step_seconds": step_s,
            "series": [{"name": s.name, "unit": s.unit, "points": [list(p) for p in s.points]} for s in series],
        }, indent=2) + "\n"
    width = max((len(s.name) for s in series), default=4)
    lines = [f"{address} (step {step_s:g}s)"]
    if not any(s.points for s in series):
        return "\n".join(lines + ["  no data: nothing recorded for this function in this window"]) + "\n"
    for s in series:
        values = [v for _, v in s.points]
        if not values:
            lines.append(f"  {s.name:<{width}}  no data")
            continue
        latest = values[-1] if values else 0.0
        lines.append(f"  {s.name:<{width}}  {sparkline(values)}  max {_number(max(values, default=0))} "
                     f"last {_number(latest)} {s.unit}")
    times = sorted({t for s in series for t, _ in s.points})
    if times:
        lines.append("")
        lines.append(f"{'TIME':<24} " + " ".join(f"{s.name.upper():>14}" for s in series))
        by_series = [dict(s.points) for s in series]
        for t in times:
            row = [values.get(t) for values in by_series]
            if all(not v for v in row):
                continue  # quiet steps add nothing to the table (they are in the sparklines)
            lines.append(f"{stamp(t):<24} " + " ".join(f"{_number(v) if v is not None else '-':>14}" for v in row))
    return "\n".join(lines) + "\n"


def plot_metrics(address: str, series: list[MetricSeries], path: Path) -> None:
    """One PNG with a panel per series (matplotlib, an optional dependency)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise FaasopsError("--plot needs matplotlib: pip install 'faasops[plot]'") from exc
    fig, axes = plt.subplots(len(series) or 1, 1, figsize=(9, 2.2 * max(1, len(series))), sharex=True, squeeze=False)
    for ax, s in zip(axes[:, 0], series):
        times = [datetime.fromtimestamp(t, timezone.utc) for t, _ in s.points]
        ax.plot(times, [v for _, v in s.points], linewidth=1.5)
        ax.set_ylabel(f"{s.name}\n({s.unit})", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(address)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
