"""Reading what functions did: invocation logs and metrics, rendered for people and tools."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any

import click

from faasops.errors import FaasopsError
from faasops.invocation_log import InvocationLog, LogEntry, MetricPoint

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


def open_log(engine: Any) -> InvocationLog:
    return InvocationLog(engine.project.state_dir / "invocations.db")


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def format_entry(entry: LogEntry) -> str:
    lines = [f"{_stamp(entry.time)} {entry.workspace}/{entry.function} {entry.method} {entry.path} "
             f"{entry.status} {entry.duration_s * 1000:.1f}ms cpu={entry.cpu_s * 1000:.1f}ms"]
    for stream, text in (("stdout", entry.stdout), ("stderr", entry.stderr)):
        lines += [f"    {stream}| {line}" for line in text.rstrip("\n").splitlines()]
    if entry.error and entry.error.strip() not in entry.stderr:
        lines += [f"    error| {line}" for line in entry.error.rstrip("\n").splitlines()]
    return "\n".join(lines)


def print_log_entries(entries: list[LogEntry], fmt: str) -> None:
    for entry in entries:
        if fmt == "json":
            click.echo(json.dumps({**entry.__dict__, "function_id": entry.function_id}, sort_keys=True))
        else:
            click.echo(format_entry(entry))


def follow_logs(log: InvocationLog, workspace: str, function: str | None, after_id: int, fmt: str,
                poll_s: float = 0.5, until: float | None = None) -> None:
    """Print entries newer than ``after_id`` as they arrive, each exactly once."""
    while until is None or time.monotonic() < until:
        entries = log.entries(workspace, function, limit=1000, after_id=after_id)
        if entries:
            print_log_entries(entries, fmt)
            after_id = entries[-1].id
        else:
            time.sleep(poll_s)


def sparkline(values: list[float]) -> str:
    top = max(values, default=0)
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1) + 0.5))] for v in values)


def render_metrics(address: str, points: list[MetricPoint], step_s: float, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({
            "function": address, "step_seconds": step_s,
            "points": [{**p.__dict__, "time": _stamp(p.start), "cpu_cores": p.cpu_s / step_s} for p in points],
        }, indent=2) + "\n"
    total = sum(p.requests for p in points)
    errors = sum(p.errors for p in points)
    cpu = [p.cpu_s / step_s for p in points]
    lines = [
        f"{address}: {total} requests, {errors} errors, CPU {sum(p.cpu_s for p in points):.3f}s",
        f"requests  {sparkline([float(p.requests) for p in points])}",
        f"cpu       {sparkline(cpu)}",
        "",
        f"{'TIME':<24} {'REQUESTS':>8} {'ERRORS':>6} {'CPU(cores)':>10} {'P50(ms)':>8} {'P99(ms)':>8}",
    ]
    for p, c in zip(points, cpu):
        if p.requests:
            lines.append(f"{_stamp(p.start):<24} {p.requests:>8} {p.errors:>6} {c:>10.4f} "
                         f"{p.duration_p50_s * 1000:>8.1f} {p.duration_p99_s * 1000:>8.1f}")
    return "\n".join(lines) + "\n"
