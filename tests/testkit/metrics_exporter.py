"""Container metrics of function pods, made up for tests: what Prometheus holds about a
function's pods in a cluster, as a scrape target or as history to remote-write.

A :class:`FunctionLoad` is a function whose pods each use ``cpu_cores`` and ``memory_bytes``.
From it come the series the ``prometheus`` metrics source reads, with the labels a platform
produces once its pipeline copies each pod's ``function_id``/``workspace_id`` labels onto the
cAdvisor series:

* ``container_cpu_usage_seconds_total`` (counter, ``cpu_cores`` × seconds since ``started``) and
  ``container_memory_working_set_bytes`` (gauge) per pod, for the function's container and for
  the pod-level cgroup (``container=""``, as cAdvisor reports it too: queries must not count it
  twice);
* kube-state-metrics' ``kube_pod_labels`` (``label_function_id``, ``label_workspace_id``) and
  ``kube_deployment_status_replicas_available``, for queries that join instead.

Two ways to feed Prometheus:

* :meth:`FunctionLoad.history` gives ``(labels, [(time, value), …])`` samples over a past
  window, for :meth:`testkit.prometheus.PrometheusServer.remote_write` — exact values at
  exact times, so tests can assert rates precisely without waiting;
* :class:`MetricsExporter` serves ``/metrics`` in the Prometheus text format with values computed
  at scrape time (counters advance with the clock), for a scrape job::

      with MetricsExporter([FunctionLoad("storefront", "hello", pods=2, cpu_cores=0.25)]) as exporter:
          PrometheusServer(scrape_targets=[exporter.target]) …
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Iterable

Labels = dict[str, str]
MIB = 1024 * 1024

CPU_METRIC = "container_cpu_usage_seconds_total"
MEMORY_METRIC = "container_memory_working_set_bytes"
POD_LABELS_METRIC = "kube_pod_labels"
REPLICAS_METRIC = "kube_deployment_status_replicas_available"
METRIC_TYPES = {CPU_METRIC: "counter", MEMORY_METRIC: "gauge", POD_LABELS_METRIC: "gauge", REPLICAS_METRIC: "gauge"}


@dataclass(frozen=True)
class FunctionLoad:
    """A function's pods and what each uses: ``cpu_cores`` (a constant rate, so the CPU counter
    grows linearly from 0 at ``started``) and ``memory_bytes``. ``namespace`` defaults to the
    workspace's name, as faasops' does."""

    workspace: str
    function: str
    pods: int = 1
    cpu_cores: float = 0.1
    memory_bytes: float = 64 * MIB
    namespace: str = ""
    started: float = field(default_factory=time.time)

    @property
    def function_id(self) -> str:
        return f"{self.workspace}.{self.function}"

    def pod_names(self) -> list[str]:
        """Deployment-style pod names: ``<function>-<template hash>-<suffix>``."""
        return [f"{self.function}-7d9c5b8f4-p{i:04d}" for i in range(self.pods)]

    def samples(self, at: float) -> list[tuple[Labels, float]]:
        """Every series of this function with its value at time ``at``."""
        namespace = self.namespace or self.workspace
        cpu_seconds = self.cpu_cores * max(0.0, at - self.started)
        found: list[tuple[Labels, float]] = []
        for pod in self.pod_names():
            relabelled = {"namespace": namespace, "pod": pod,
                          "function_id": self.function_id, "workspace_id": self.workspace}
            for container in (self.function, ""):  # the function's container, the pod's cgroup
                found.append(({"__name__": CPU_METRIC, **relabelled, "container": container}, cpu_seconds))
                found.append(({"__name__": MEMORY_METRIC, **relabelled, "container": container}, self.memory_bytes))
            found.append(({"__name__": POD_LABELS_METRIC, "namespace": namespace, "pod": pod,
                           "label_function_id": self.function_id, "label_workspace_id": self.workspace}, 1.0))
        found.append(({"__name__": REPLICAS_METRIC, "namespace": namespace, "deployment": self.function},
                      float(self.pods)))
        return found

    def history(self, start: float, end: float, interval_s: float) -> list[tuple[Labels, list[tuple[float, float]]]]:
        """Samples every ``interval_s`` from ``start`` to ``end`` (inclusive), per series."""
        times = [start + i * interval_s for i in range(int((end - start) / interval_s) + 1)]
        by_series: dict[tuple[tuple[str, str], ...], tuple[Labels, list[tuple[float, float]]]] = {}
        for t in times:
            for labels, value in self.samples(t):
                key = tuple(sorted(labels.items()))
                by_series.setdefault(key, (labels, []))[1].append((t, value))
        return list(by_series.values())


def exposition(loads: Iterable[FunctionLoad], at: float) -> str:
    """The Prometheus text format (0.0.4) of every load's series at time ``at``."""
    by_metric: dict[str, list[str]] = {}
    for load in loads:
        for labels, value in load.samples(at):
            name = labels["__name__"]
            rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()) if k != "__name__")
            by_metric.setdefault(name, []).append(f"{name}{{{rendered}}} {value!r}")
    lines: list[str] = []
    for name, samples in by_metric.items():
        lines.append(f"# TYPE {name} {METRIC_TYPES[name]}")
        lines.extend(samples)
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class MetricsExporter:
    """An HTTP server on ``127.0.0.1`` (a free port) serving ``/metrics`` for ``loads``.

    ``target`` is ``127.0.0.1:<port>`` for a scrape config; ``loads`` may be replaced while it
    runs (``exporter.loads = [...]``): the next scrape shows the new set.
    """

    def __init__(self, loads: Iterable[FunctionLoad]):
        self.loads = list(loads)
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exposition(exporter.loads, time.time()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-exporter", daemon=True)
        self._thread.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.target}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MetricsExporter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
