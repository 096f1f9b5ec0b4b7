"""One real Prometheus (Debian's) per session, fed the test loads' history by remote write."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from testkit.availability import unavailable
from testkit.prometheus import PrometheusServer, PrometheusUnavailable
from prometheus_test_support import HISTORY_AFTER_S, HISTORY_BEFORE_S, HISTORY_INTERVAL_S, loads


@pytest.fixture(scope="session")
def prometheus() -> Iterator[PrometheusServer]:
    """Prometheus holding 30 minutes of samples around now (5 s apart) for the test loads."""
    try:
        server = PrometheusServer()
    except PrometheusUnavailable as exc:
        unavailable(str(exc))
    now = time.time()
    try:
        for load in loads(now):
            server.remote_write(load.history(now - HISTORY_BEFORE_S, now + HISTORY_AFTER_S, HISTORY_INTERVAL_S))
        yield server
    finally:
        server.stop()
