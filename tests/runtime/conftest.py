"""Real components for the runtime tests, built once and cached by content hash.

Each ``handlers/<name>/app.py`` is built by faasops' own componentize-py builder into the
session-wide build cache (``FAASOPS_BUILD_CACHE``, see ``tests/conftest.py``), keyed by source,
handler and toolchain, so the same handler is built once for every test module and rerun.
Compiled (wasmtime) artifacts are shared the same way through ``FAASOPS_RUNTIME_CACHE``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

from streaming_support import handler_source

from faasops.model import Function, Location
from faasops.plugins.componentize import ComponentizePyBuilder
from faasops.runtime import ComponentRuntime, LoadedApp
from faasops.source import snapshot_directory

HANDLERS = Path(__file__).parent / "handlers"


@pytest.fixture(scope="session")
def component(shared_build_cache: Path) -> Callable[[str], Path]:
    """``component("echo")`` → path of the built ``handlers/echo`` component."""
    builder = ComponentizePyBuilder(shared_build_cache)
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            source = handler_source(name)
            function = Function(workspace="runtime-tests", name=name, source_dir=source,
                                source=f"handlers/{name}", location=Location("tests/runtime"))
            built[name] = builder.build(function, snapshot_directory(source)).wasm_path
        return built[name]
    return get


@pytest.fixture(scope="session")
def compiled_cache_dir(shared_build_cache: Path) -> Path:
    """Compiled-artifact cache shared by the session (and by later runs)."""
    return Path(os.environ["FAASOPS_RUNTIME_CACHE"])


@pytest.fixture(scope="session")
def runtime(compiled_cache_dir: Path) -> Iterator[ComponentRuntime]:
    """One runtime for the session, like a long-running server."""
    rt = ComponentRuntime(compiled_cache_dir)
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def app(runtime: ComponentRuntime, component: Callable[[str], Path]) -> Callable[..., LoadedApp]:
    """``app("echo", variables=…, kv_path=…)`` → a loaded app of that test handler."""
    def load(name: str, **options: object) -> LoadedApp:
        return runtime.load(component(name), **options)  # type: ignore[arg-type]
    return load
