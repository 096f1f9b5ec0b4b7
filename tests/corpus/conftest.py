"""Fixtures of the corpus tests: the HTTP server on 127.0.0.1 that corpus apps call."""

from __future__ import annotations

from typing import Iterator

import pytest

from corpus_support import Upstream, serve_upstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    yield from serve_upstream()
