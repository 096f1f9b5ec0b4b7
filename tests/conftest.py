"""Shared fixtures: a per-session build cache and example projects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli_support import copy_example


@pytest.fixture(scope="session", autouse=True)
def shared_build_cache() -> Path:
    """Builds are content-addressed, so every test project in the session (and the next
    session) reuses one build per distinct handler instead of spending ~8 s per project."""
    cache = Path(os.environ.get("FAASOPS_BUILD_CACHE") or Path.home() / ".cache" / "faasops-tests" / "builds")
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["FAASOPS_BUILD_CACHE"] = str(cache)
    # Compiled (wasmtime) components are content-addressed too.
    runtime_cache = cache.parent / "runtime"
    runtime_cache.mkdir(exist_ok=True)
    os.environ.setdefault("FAASOPS_RUNTIME_CACHE", str(runtime_cache))
    return cache


@pytest.fixture
def hello_project(tmp_path: Path) -> Path:
    return copy_example("hello", tmp_path)
