"""What a running reconciler tells the outside: Prometheus metrics at ``/metrics``, liveness at
``/healthz`` and readiness at ``/readyz``, served from a background thread.

The exposition format is ``prometheus_client``'s (text format 0.0.4, or OpenMetrics when the
scraper asks for it); the reconcile loop only records what each round did (:meth:`Status.record`).

Health:

* ``/healthz`` answers 200 while the loop is alive: 503 once a round has been running for longer
  than ``unhealthy_after`` (stuck: a hung fetch or API call), or rounds have been failing without
  a success in between for longer than ``unhealthy_after`` (a restart may help, e.g. after a
  credential rotation; the failures themselves are in the metrics and the log).
* ``/readyz`` answers 200 once a round has reconciled (applied, found nothing to change, or
  reported in ``--dry-run``) and the latest finished round did not fail; 503 before and while
  failing. A lock held by another run (a skipped round) changes neither.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OUTCOMES = ("applied", "no_changes", "dry_run", "locked", "failed", "interrupted")
#: The outcomes of a round that brought the deployment to (or, in a dry run, compared it with) the branch.
RECONCILED = frozenset({"applied", "no_changes", "dry_run"})
STAGES = ("fetch", "load", "plan", "apply")


@dataclass(frozen=True)
class RoundReport:
    """What one round did, for the metrics, the health checks and its log line.

    ``outcome`` is one of :data:`OUTCOMES`; ``stage`` (one of :data:`STAGES`) says where a failed
    round failed; ``changes`` counts the plan's actionable changes, ``drift`` those of them that
    correct drift, ``applied`` what apply completed."""

    outcome: str
    started: float  # wall-clock seconds
    duration_s: float
    revision: str = ""
    changes: int = 0
    drift: int = 0
    applied: int = 0
    failed: int = 0
    stage: str = ""
    error: str = ""
    named: str = ""  # the plan's changes, "create demo, update demo/hello (drift)"


@dataclass
class _Health:
    round_started: float | None = None  # monotonic; None between rounds
    failing_since: float | None = None  # monotonic start of the current streak of failed rounds
    reconciled: bool = False
    last_failed: bool = False


@dataclass
class Status:
    """The metrics registry and the health of one reconciler; thread-safe.

    ``clock`` is monotonic seconds (injectable for tests of the health rules)."""

    unhealthy_after_s: float
    source: str = ""
    clock: Callable[[], float] = time.monotonic
    _health: _Health = field(default_factory=_Health)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Info
        from prometheus_client.process_collector import ProcessCollector

        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.last_run = Gauge("faasops_reconcile_last_run_timestamp_seconds",
                              "When the last round started (Unix time).", registry=r)
        self.last_duration = Gauge("faasops_reconcile_last_run_duration_seconds",
                                   "How long the last round took.", registry=r)
        self.last_success = Gauge("faasops_reconcile_last_success_timestamp_seconds",
                                  "When the last round that reconciled (applied, no changes, dry run) started.",
                                  registry=r)
        self.rounds = Counter("faasops_reconcile_rounds", "Rounds by outcome.", ["outcome"], registry=r)
        self.failures = Counter("faasops_reconcile_failures", "Failed rounds by the stage that failed.", ["stage"],
                                registry=r)
        self.consecutive_failures = Gauge("faasops_reconcile_consecutive_failures",
                                          "Failed rounds since the last one that reconciled.", registry=r)
        self.changes_applied = Counter("faasops_reconcile_changes_applied",
                                       "Changes (functions and workspaces) applied.", registry=r)
        self.pending = Gauge("faasops_reconcile_pending_changes",
                             "Changes the last plan found (what --dry-run would apply).", registry=r)
        self.drift = Gauge("faasops_reconcile_drift_found",
                           "Resources whose live objects drifted from the manifests, in the last plan.", registry=r)
        self.drift_total = Counter("faasops_reconcile_drift_detected",
                                   "Drifted resources found, summed over rounds.", registry=r)
        self.next_run = Gauge("faasops_reconcile_next_run_timestamp_seconds",
                              "When the next round starts (Unix time), backoff included.", registry=r)
        self.revision = Info("faasops_reconcile_revision",
                             "The revision last reconciled (revision) and the last fetched (fetched).", registry=r)
        for outcome in OUTCOMES:
            self.rounds.labels(outcome)
        for stage in STAGES:
            self.failures.labels(stage)
        self._revisions = {"revision": "", "fetched": "", "source": self.source}
        self.revision.info(self._revisions)

    # ------------------------------------------------------------------ recording

    def round_started(self) -> None:
        with self._lock:
            self._health.round_started = self.clock()

    def record(self, report: RoundReport) -> None:
        """Account for a finished round."""
        now = self.clock()
        self.last_run.set(report.started)
        self.last_duration.set(report.duration_s)
        self.rounds.labels(report.outcome).inc()
        if report.revision:
            self._revisions["fetched"] = report.revision
        if report.outcome in RECONCILED:
            self.last_success.set(report.started)
            self.consecutive_failures.set(0)
            self._revisions["revision"] = report.revision
        if report.outcome == "failed":
            self.failures.labels(report.stage or "apply").inc()
            self.consecutive_failures.inc()
        planned = report.outcome in RECONCILED or report.stage == "apply"
        if planned:  # else the last plan's figures stand
            self.pending.set(report.changes)
            self.drift.set(report.drift)
            self.drift_total.inc(report.drift)
        self.changes_applied.inc(report.applied)
        self.revision.info(self._revisions)
        with self._lock:
            health = self._health
            health.round_started = None
            if report.outcome == "failed":
                health.last_failed = True
                if health.failing_since is None:
                    health.failing_since = now - report.duration_s
            elif report.outcome in RECONCILED:
                health.failing_since = None
                health.reconciled = True
                health.last_failed = False

    def next_round_at(self, unix_time: float) -> None:
        self.next_run.set(unix_time)

    # ------------------------------------------------------------------ health

    def healthy(self) -> tuple[bool, str]:
        """(alive?, why) — see the module docstring."""
        now = self.clock()
        with self._lock:
            health = self._health
            if health.round_started is not None and now - health.round_started > self.unhealthy_after_s:
                return False, f"a round has been running for {now - health.round_started:.0f}s"
            if health.failing_since is not None and now - health.failing_since > self.unhealthy_after_s:
                return False, f"rounds have been failing for {now - health.failing_since:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        with self._lock:
            if not self._health.reconciled:
                return False, "no round has reconciled yet"
            if self._health.last_failed:
                return False, "the last round failed"
        return True, "ok"

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The metrics in the format the scraper accepts, and its content type."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


class StatusServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` (port 0: any free port), in a
    daemon thread: the process never waits for it to exit."""

    def __init__(self, status: Status, host: str, port: int):
        handler = type("Handler", (_Handler,), {"status": status})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="faasops-reconcile-status", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    status: Status
    server_version = "faasops-reconcile"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every 15 s is not worth a log line

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, content_type = self.status.exposition(self.headers.get("Accept", ""))
            self._answer(200, body, content_type)
        elif path in ("/healthz", "/readyz"):
            good, why = self.status.healthy() if path == "/healthz" else self.status.ready()
            self._answer(200 if good else 503, (why + "\n").encode(), "text/plain; charset=utf-8")
        else:
            self._answer(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain; charset=utf-8")

    def _answer(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
