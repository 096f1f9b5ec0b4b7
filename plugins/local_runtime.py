"""Day-2 providers of the embedded local backend: logs, metrics and invoke, on the local runtime.

``faasops up`` and in-process ``faasops invoke`` record every request in
``.faasops/invocations.db``; these providers read it, and call functions through a running
``faasops up`` or in-process.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

from faasops.hookspecs import hookimpl
from faasops.invocation_log import InvocationLog, LogEntry
from faasops.model import Project, ProviderConfig
from faasops.providers import InvokeRequest, InvokeResponse, LogRecord, MetricSeries


def _record(entry: LogEntry) -> LogRecord:
    lines = [f"{entry.method} {entry.path} {entry.status} {entry.duration_s * 1000:.1f}ms "
             f"cpu={entry.cpu_s * 1000:.1f}ms"]
    for stream, text in (("stdout", entry.stdout), ("stderr", entry.stderr)):
        lines += [f"{stream}| {line}" for line in text.rstrip("\n").splitlines()]
    if entry.error and entry.error.strip() not in entry.stderr:
        lines += [f"error| {line}" for line in entry.error.rstrip("\n").splitlines()]
    return LogRecord(entry.time, entry.workspace, entry.function, "\n".join(lines), entry.status,
                     entry.duration_s, {"function_id": entry.function_id}, str(entry.id))


class LocalLogSource:
    def __init__(self, project: Project):
        self.log = InvocationLog(project.state_dir / "invocations.db")

    def read(self, workspace: str, function: str | None, *, limit: int, since: float | None = None,
             grep: str | None = None) -> list[LogRecord]:
        records = [_record(e) for e in self.log.entries(workspace, function, limit=limit if not grep else 100_000, since=since)]
        if grep:
            records = [r for r in records if grep in r.message][:limit]
        return records

    def follow(self, workspace: str, function: str | None, *, since: float | None = None,
               grep: str | None = None, poll_s: float = 0.5) -> Iterator[LogRecord]:
        newest = self.log.entries(workspace, function, limit=1)
        after = newest[0].id if newest else 0
        while True:
            entries = self.log.entries(workspace, function, limit=1000, after_id=after)
            for entry in entries:
                record = _record(entry)
                if (since is None or record.time >= since) and (not grep or grep in record.message):
                    yield record
            if entries:
                after = entries[-1].id
            else:
                time.sleep(poll_s)


class LocalMetricsSource:
    def __init__(self, project: Project):
        self.log = InvocationLog(project.state_dir / "invocations.db")

    def query(self, workspace: str, function: str, *, since: float, until: float, step_s: float) -> list[MetricSeries]:
        points = self.log.metrics(workspace, function, since, until, step_s)

        def series(name: str, unit: str, value: Any) -> MetricSeries:
            return MetricSeries(name, unit, tuple((p.start, float(value(p))) for p in points))

        return [
            series("cpu_cores", "cores", lambda p: p.cpu_s / step_s),
            series("requests", "requests", lambda p: p.requests),
            series("errors", "requests", lambda p: p.errors),
            series("latency_p50_ms", "ms", lambda p: p.duration_p50_s * 1000),
            series("latency_p99_ms", "ms", lambda p: p.duration_p99_s * 1000),
        ]


class LocalInvoker:
    def __init__(self, project: Project):
        self.project = project

    def invoke(self, workspace: str, function: str, request: InvokeRequest) -> InvokeResponse:
        from faasops.engine import Engine
        from faasops.serving import invoke_function

        with Engine(self.project) as engine:
            response = invoke_function(engine, workspace, function, request.method, request.path,
                                       request.headers, request.body)
        return InvokeResponse(response.status, response.headers, response.body, response.error)


@hookimpl
def faasops_provider_options() -> list[tuple[str, str, dict[str, Any]]]:
    # None of them has an option: anything under these slots is a mistake.
    return [(slot, "local", {"type": "object", "properties": {}}) for slot in ("logs", "metrics", "invoker")]


@hookimpl
def faasops_provider_types() -> list[tuple[str, str, str]]:
    return [
        ("logs", "local", "invocations recorded by the local runtime (.faasops/invocations.db)"),
        ("metrics", "local", "requests, errors, latency and CPU from the local invocation log"),
        ("invoker", "local", "a running `faasops up`, else the local runtime in-process"),
    ]


@hookimpl
def faasops_log_source(config: ProviderConfig, project: Project) -> LocalLogSource | None:
    return LocalLogSource(project) if config.type == "local" else None


@hookimpl
def faasops_metrics_source(config: ProviderConfig, project: Project) -> LocalMetricsSource | None:
    return LocalMetricsSource(project) if config.type == "local" else None


@hookimpl
def faasops_invoker(config: ProviderConfig, project: Project) -> LocalInvoker | None:
    return LocalInvoker(project) if config.type == "local" else None
