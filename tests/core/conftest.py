"""The core (diff, plan, executor, engine) in-process, on the conformance kit's in-memory
providers: no subprocess, no build, no service. No ``__init__.py``, as in the other folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from core_support import World

from faasops.conformance.fakes import memory_providers


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # Artifacts' creation time from the environment, not from `git log` in a subprocess.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    yield World(tmp_path / "project", memory_providers(tmp_path / "builds"))
