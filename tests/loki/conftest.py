"""Fixtures for the Loki tests: one Loki test double per session, emptied before every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.loki import LokiDouble


@pytest.fixture(scope="session")
def loki_double() -> Iterator[LokiDouble]:
    with LokiDouble() as double:
        yield double


@pytest.fixture()
def loki(loki_double: LokiDouble) -> LokiDouble:
    loki_double.reset()
    return loki_double
