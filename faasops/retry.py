"""Retries of transient failures: exponential backoff with full jitter, within a bounded budget.

The one retry implementation of faasops' own HTTP clients (the Kubernetes deployer and the OCI
registry client); the AWS providers rely on botocore's standard retry mode instead, which
follows the same rules (see :mod:`faasops.plugins.aws`).

The rules:

* only **transient** failures are retried — connection errors, timeouts, dropped connections and
  the statuses in :data:`RETRYABLE_STATUS` (429, 500, 502, 503, 504). A permanent answer (400,
  401, 403, 404, 409, 422 …) is returned at once: retrying cannot change it;
* only **idempotent** requests are retried as they are (GET, HEAD, LIST, DELETE, PUT of a
  manifest, a server-side apply PATCH). A non-idempotent sequence — a blob upload session — is
  restarted from its beginning by its caller instead;
* the wait before retry *n* (1-based) is ``uniform(0, min(max_delay_s, base_delay_s * 2**(n-1)))``
  ("full jitter": clients that failed together don't retry together). A server's
  ``Retry-After`` raises the wait to what it asked for, capped at ``retry_after_cap_s``;
* the budget is ``max_attempts`` attempts in all (the first one included) and
  ``max_seconds`` of elapsed time: a retry whose wait would end past that deadline is not made.
  The time one operation can take is thus at most ``max_seconds`` plus one request timeout.

Providers expose ``max_attempts`` and ``retry_max_seconds`` as options (see
:meth:`RetryPolicy.from_options`); ``max_attempts: 1`` turns retries off.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from faasops.errors import ProviderError

#: HTTP statuses that say "try again later": throttling, and server-side failures.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_RETRY_MAX_SECONDS = 60.0
DEFAULT_BASE_DELAY_S = 0.1
DEFAULT_MAX_DELAY_S = 10.0
DEFAULT_RETRY_AFTER_CAP_S = 30.0


class TransientError(ProviderError):
    """A failure that may go away when tried again (a connection error, a timeout, a 429 or a
    5xx). ``retry_after`` is the wait in seconds the server asked for, if it did."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry one operation (see the module docstring)."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_seconds: float = DEFAULT_RETRY_MAX_SECONDS
    base_delay_s: float = DEFAULT_BASE_DELAY_S
    max_delay_s: float = DEFAULT_MAX_DELAY_S
    retry_after_cap_s: float = DEFAULT_RETRY_AFTER_CAP_S

    @classmethod
    def from_options(cls, options: Mapping[str, Any], where: str) -> RetryPolicy:
        """The policy from a provider slot's ``max_attempts`` (≥ 1) and ``retry_max_seconds``
        (> 0) options; ``where`` names the slot in error messages (``providers.deployer``)."""
        attempts = options.get("max_attempts", DEFAULT_MAX_ATTEMPTS)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ProviderError(f"{where}: max_attempts must be a whole number ≥ 1, not {attempts!r}")
        seconds = options.get("retry_max_seconds", DEFAULT_RETRY_MAX_SECONDS)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise ProviderError(f"{where}: retry_max_seconds must be a positive number of seconds, not {seconds!r}")
        return cls(max_attempts=attempts, max_seconds=float(seconds))

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """The jittered wait before retry number ``retry`` (1 for the first retry)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** max(0, retry - 1))
        return (rng or _RNG).uniform(0.0, ceiling)

    def start(self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
              rng: random.Random | None = None) -> Attempts:
        """A fresh budget for one operation; its first attempt is under way."""
        return Attempts(self, clock, sleep, rng or _RNG, started=clock())


@dataclass
class Attempts:
    """The retry budget of one operation. Call :meth:`retry` after a transient failure: it
    waits and returns True when another attempt may be made, else False (give up)."""

    policy: RetryPolicy
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    rng: random.Random
    started: float
    made: int = 1  # attempts made so far, the current one included
    waited: float = 0.0  # seconds slept between attempts
    delays: list[float] = field(default_factory=list)

    def retry(self, retry_after: float | None = None) -> bool:
        if self.made >= self.policy.max_attempts:
            return False
        delay = self.policy.backoff(self.made, self.rng)
        if retry_after is not None:
            delay = max(delay, min(max(retry_after, 0.0), self.policy.retry_after_cap_s))
        if self.clock() - self.started + delay > self.policy.max_seconds:
            return False
        self.sleep(delay)
        self.made += 1
        self.waited += delay
        self.delays.append(delay)
        return True

    def summary(self) -> str:
        """``"after 5 attempts over 3.2s"`` — for the message of an operation that gave up."""
        return f"after {self.made} attempt{'s' if self.made != 1 else ''} over {self.clock() - self.started:.1f}s"


def parse_retry_after(value: str | None, now: Callable[[], datetime] | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    current = now() if now else datetime.now(UTC)
    return max(0.0, (moment - current).total_seconds())


# One shared generator: full jitter only needs independence between clients, not a seed.
_RNG = random.Random()
