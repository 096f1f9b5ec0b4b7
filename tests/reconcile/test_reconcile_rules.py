"""The reconciler's rules on a fake clock and a fixed random source: the backoff after failed
rounds, and when /healthz and /readyz turn 503 (the running process is tested in
test_reconcile_loop.py)."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from faasops.reconcile import Reconciler, Settings
from faasops.reconcile_checkout import Repository, redacted
from faasops.reconcile_status import RoundReport, Status


class Highest:
    """A random source that always draws the top of the range (full jitter's worst case)."""

    def uniform(self, low: float, high: float) -> float:
        return high


class Lowest:
    def uniform(self, low: float, high: float) -> float:
        return low


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reconciler(tmp_path: Path, rng: object) -> Reconciler:
    status = Status(unhealthy_after_s=60)
    return Reconciler(Repository(tmp_path), Settings(interval_s=10, max_backoff_s=60), status, lambda line: None,
                      abandon, rng=rng)  # type: ignore[arg-type]


def abandon(exc: BaseException) -> NoReturn:
    raise AssertionError("no run is abandoned here")


def failed() -> RoundReport:
    return RoundReport("failed", 0.0, 0.1, stage="fetch")


def test_the_wait_after_failures_grows_exponentially_up_to_the_cap(tmp_path: Path) -> None:
    worst = reconciler(tmp_path, Highest())
    waits = []
    for _ in range(6):
        worst.consecutive_failures += 1
        waits.append(worst.delay_after(failed()))

    assert waits == [20, 30, 50, 60, 60, 60]  # interval + up to interval × 2^(n-1), capped


def test_the_wait_is_never_shorter_than_the_interval_and_resets_after_success(tmp_path: Path) -> None:
    best = reconciler(tmp_path, Lowest())
    best.consecutive_failures = 4
    assert best.delay_after(failed()) == 10
    best.consecutive_failures = 0
    assert best.delay_after(RoundReport("applied", 0.0, 0.1)) == 10
    assert best.delay_after(RoundReport("locked", 0.0, 0.1)) == 10


def test_healthz_turns_503_only_after_failing_longer_than_the_bound_and_recovers() -> None:
    clock = Clock()
    status = Status(unhealthy_after_s=60, clock=clock)
    assert status.healthy() == (True, "ok") and status.ready()[0] is False

    status.record(RoundReport("applied", 0.0, 1.0))
    assert status.ready() == (True, "ok")
    status.record(failed())
    clock.now += 30
    status.record(failed())
    assert status.healthy()[0] is True and status.ready() == (False, "the last round failed")
    clock.now += 31
    assert status.healthy() == (False, "rounds have been failing for 61s")

    status.record(RoundReport("locked", 0.0, 0.1))  # a skipped round neither heals nor hurts
    assert status.healthy()[0] is False
    status.record(RoundReport("no_changes", 0.0, 0.1))
    assert status.healthy() == (True, "ok") and status.ready() == (True, "ok")


def test_healthz_turns_503_when_one_round_runs_longer_than_the_bound() -> None:
    clock = Clock()
    status = Status(unhealthy_after_s=60, clock=clock)
    status.round_started()
    clock.now += 61
    assert status.healthy() == (False, "a round has been running for 61s")
    status.record(RoundReport("applied", 0.0, 61.0))
    assert status.healthy() == (True, "ok")


def test_credentials_in_remote_urls_are_redacted() -> None:
    assert redacted("fetch https://x-access-token:ghp_abc@git.example/a.git failed") == \
        "fetch https://***@git.example/a.git failed"
    assert Repository(Path("/w"), "https://u:p@git.example/a.git", "prod").describe() == "https://***@git.example/a.git@prod"
