"""Pull-mode reconcile: a loop that keeps the deployment equal to a git branch, as Argo CD and
Flux do, with faasops' own engine.

Each round:

1. **fetch** — bring the checkout to the branch's head (:mod:`faasops.reconcile_checkout`);
2. **load** — read the manifests at that revision (an invalid push fails here, before anything
   is touched: the deployment stays at the last good revision);
3. **plan** — with refresh, so live objects changed behind faasops' back show as drift;
4. **apply** — under the state lock, like ``faasops apply --auto-approve --continue-on-error
   --force-conflicts``, which heals the drift. With ``dry_run`` the round stops after planning
   and takes no lock.

A lock held by another run (a CI apply, a second reconciler) skips the round cleanly after
``lock_timeout_s``: nothing failed, the next round tries again. A failed round is retried after a
growing wait (:meth:`Reconciler.delay_after`); a round that reconciled resets it.

Signals: between rounds (waiting, fetching, planning without the lock) SIGTERM or SIGINT stops
the loop at once (a git command that rewrites the checkout finishes first). While the lock is
held, :meth:`faasops.engine.Engine.locked` applies exactly ``faasops apply``'s rules: running
steps finish and are recorded, the lock is released, then the loop stops; a second signal aborts
them (see :mod:`faasops.interruption`). A SIGKILL leaves a stale lock and the steps that were
running unrecorded; the next reconciler takes the lock over, redoes them and converges.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from faasops.errors import FaasopsError, LockError, ManifestError
from faasops.interruption import RunAbandoned, RunInterrupted, signals_handled
from faasops.plan import Plan, PlanOptions
from faasops.progress import PlainReporter
from faasops.reconcile_checkout import Checkout, Repository, redacted
from faasops.reconcile_status import RECONCILED, RoundReport, Status
from faasops.retry import RetryPolicy

SHOWN_CHANGES = 10  # changes named on a round's log line; the rest are counted


@dataclass(frozen=True)
class Settings:
    """How the loop runs (the ``faasops reconcile`` options)."""

    interval_s: float = 60.0
    max_backoff_s: float = 600.0
    dry_run: bool = False
    prune: bool = False
    parallelism: int = 4
    lock_timeout_s: float = 0.0
    environment: str | None = None
    # Git is the source of truth: fields another field manager (`kubectl edit`) took over are
    # taken back, as Argo CD's self-heal does. Off: such drift fails the round instead.
    force_conflicts: bool = True


class Reconciler:
    """The reconcile loop of one repository. ``log`` receives one line per round; ``abandon``
    ends the process when a second signal left a step running (it must not return); ``rng``
    draws the backoff's jitter."""

    def __init__(self, repository: Repository, settings: Settings, status: Status, log: Callable[[str], None],
                 abandon: Callable[[RunAbandoned], NoReturn], *, rng: random.Random | None = None):
        self.repository = repository
        self.settings = settings
        self.status = status
        self.log = log
        self.abandon = abandon  # exits the process holding the lock (see faasops.interruption)
        self.rng = rng or random.Random()
        # The backoff of failed rounds is retry.py's full-jitter exponential, on top of the interval.
        self.backoff = RetryPolicy(base_delay_s=settings.interval_s, max_delay_s=settings.max_backoff_s)
        self.rounds = 0
        self.consecutive_failures = 0
        self.signum: int | None = None
        self._deferring = False

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        """Reconcile until SIGTERM or SIGINT stops the loop; returns that signal's number."""
        # Outside Engine.locked, which routes signals to its own handler while the lock is held
        # and restores this one after.
        with signals_handled(self._handle):
            try:
                while True:
                    report = self.reconcile_once()
                    delay = self.delay_after(report)
                    self.status.next_round_at(time.time() + delay)
                    self.log(self.describe(report) + f" next_in={delay:.1f}s")
                    self._wait(delay)
            except RunInterrupted as exc:
                return exc.signum

    def reconcile_once(self) -> RoundReport:
        """One round: fetch, load, plan, apply (see the module docstring). Never raises a
        :class:`FaasopsError`: a failure is the report's."""
        from faasops.engine import Engine

        self.rounds += 1
        started, begun = time.time(), time.monotonic()
        self.status.round_started()
        stage, revision, plan, result = "fetch", "", None, None

        def report(outcome: str, error: str = "") -> RoundReport:
            applied = len(result.applied) + len(result.deleted) if result is not None else 0
            failed = len(result.failed) if result is not None else 0
            changes = len(plan.actionable) if plan is not None else 0
            made = RoundReport(outcome, started, time.monotonic() - begun, revision, changes, _drift(plan),
                               applied, failed, stage if outcome == "failed" else "", error,
                               _named_changes(plan))
            if outcome == "failed":
                self.consecutive_failures += 1
            elif outcome in RECONCILED:
                self.consecutive_failures = 0
            self.status.record(made)
            return made

        try:
            checkout = self._fetch()
            revision = checkout.revision
            stage = "load"
            with Engine.load(checkout.directory, self.settings.environment) as engine:
                if self.settings.force_conflicts:
                    engine.override_options("deployer", force_conflicts=True)
                stage = "plan"
                options = PlanOptions(prune=self.settings.prune, refresh=True)
                if self.settings.dry_run:
                    plan = engine.plan(options)
                    return report("dry_run")
                try:
                    with engine.locked("faasops reconcile", self.settings.lock_timeout_s):
                        plan = engine.plan(options)
                        if plan.has_changes:
                            stage = "apply"
                            result = engine.apply(plan, parallelism=self.settings.parallelism,
                                                  continue_on_error=True, reporter=PlainReporter())
                except LockError as exc:
                    if stage != "plan" or plan is not None:
                        raise
                    return report("locked", _one_line(str(exc)))
                except RunAbandoned as exc:
                    # Before the engine is closed: a worker still inside a step may use the providers.
                    self.log(self.describe(report("interrupted")))
                    self.abandon(exc)
        except RunInterrupted:
            self.log(self.describe(report("interrupted")))
            raise
        except ManifestError as exc:
            more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
            return report("failed", f"{exc.problems[0]}{more}" if exc.problems else str(exc))
        except FaasopsError as exc:
            return report("failed", _one_line(str(exc)))
        if result is None:
            return report("no_changes")
        if not result.ok:
            address, message = sorted(result.failed.items())[0] if result.failed else ("", "not every change applied")
            return report("failed", _one_line(f"{address}: {message}" if address else message))
        return report("applied")

    def delay_after(self, report: RoundReport) -> float:
        """The wait before the next round: the interval; after the n-th failed round in a row,
        the interval plus a random part of up to interval × 2^(n-1) (full jitter, so reconcilers
        failing together don't retry together), never more than ``max_backoff_s``."""
        interval = self.settings.interval_s
        if report.outcome != "failed" or self.consecutive_failures == 0:
            return interval
        return min(self.settings.max_backoff_s, interval + self.backoff.backoff(self.consecutive_failures, self.rng))

    def describe(self, report: RoundReport) -> str:
        """The round's log line: ``key=value`` pairs, greppable and parseable (logfmt)."""
        parts = [f"round={self.rounds}", f"outcome={report.outcome}",
                 f"revision={report.revision[:12] or '-'}", f"changes={report.changes}", f"drift={report.drift}",
                 f"applied={report.applied}", f"duration={report.duration_s:.1f}s"]
        if report.failed:
            parts.append(f"failed={report.failed}")
        if report.stage:
            parts.append(f"stage={report.stage}")
        if report.outcome == "failed":
            parts.append(f"consecutive_failures={self.consecutive_failures}")
        if report.named:
            parts.append(f"plan=\"{report.named}\"")
        if report.error:
            parts.append(f"error=\"{redacted(report.error).replace(chr(34), chr(39))}\"")
        return "reconcile: " + " ".join(parts)

    # ------------------------------------------------------------------ signals

    def _fetch(self) -> Checkout:
        # A git command rewriting the checkout is not cut short by a signal: it finishes, then
        # the loop stops (a killed one leaves an index lock that the next fetch removes).
        self._deferring = True
        try:
            return self.repository.update()
        finally:
            self._deferring = False
            if self.signum is not None:
                raise RunInterrupted(self.signum)

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 1.0))  # a signal handler raising here ends the wait at once

    def _handle(self, signum: int, frame: object) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if self._deferring and first:
            return
        raise RunInterrupted(signum)


def _drift(plan: Plan | None) -> int:
    if plan is None:
        return 0
    return sum(1 for change in plan.actionable if any(reason.startswith("drift:") for reason in change.reasons))


def _named_changes(plan: Plan | None) -> str:
    """``"create demo, update demo/hello (drift)"`` — what the plan would change."""
    if plan is None:
        return ""
    named = [f"{c.action.value} {c.address}" + (" (drift)" if any(r.startswith("drift:") for r in c.reasons) else "")
             for c in plan.actionable]
    shown = ", ".join(named[:SHOWN_CHANGES])
    return shown + (f", … {len(named) - SHOWN_CHANGES} more" if len(named) > SHOWN_CHANGES else "")


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())
