"""Fixtures for the build-side tests: componentize-py builds, Spin OCI artifacts, SpinKube manifests.

The hello handler is built for real, once per session, into a session cache directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from build_support import HELLO_HANDLER, CountingBuilder, make_function, write_source  # noqa: E402
from faasops.model import Function  # noqa: E402
from faasops.providers import BuildResult, SourceSnapshot  # noqa: E402
from faasops.source import snapshot_directory  # noqa: E402


@dataclass
class HelloBuild:
    builder: CountingBuilder
    function: Function
    snapshot: SourceSnapshot
    result: BuildResult


@pytest.fixture(scope="session")
def build_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("build-cache")


@pytest.fixture(scope="session")
def hello_build(tmp_path_factory, build_cache) -> HelloBuild:
    """The hello handler, built once for the whole session."""
    source = write_source(tmp_path_factory.mktemp("hello") / "hello", {"app.py": HELLO_HANDLER})
    function = make_function(source)
    snapshot = snapshot_directory(source)
    builder = CountingBuilder(build_cache)
    result = builder.build(function, snapshot)
    return HelloBuild(builder, function, snapshot, result)
