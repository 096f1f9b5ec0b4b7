"""Fixtures: Builder services started with `faasops builder serve` on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from builder_support import HERE, MAX_UPLOAD_BYTES, BuilderServer, local_service_config


@pytest.fixture(scope="module")
def local_builder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuilderServer]:
    """A service on the embedded local backend: state, sources, registry and deployer under its
    data_dir; builds with componentize-py into the session's build cache."""
    with BuilderServer(tmp_path_factory.mktemp("builder"), local_service_config(max_upload_bytes=MAX_UPLOAD_BYTES)) as server:
        yield server


@pytest.fixture(scope="module")
def slow_builder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuilderServer]:
    """A service whose builder plugin (tests/builder/slow_builder_plugin.py, loaded through the
    service's `plugins:` config) hangs."""
    config = local_service_config()
    config["plugins"] = ["slow_builder_plugin"]
    config["providers"]["builder"] = {"type": "slow"}
    with BuilderServer(tmp_path_factory.mktemp("slow-builder"), config, pythonpath=(HERE,)) as server:
        yield server


@pytest.fixture
def data_dir(local_builder: BuilderServer) -> Path:
    return Path(local_builder.config["data_dir"])
