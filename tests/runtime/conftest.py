"""Real components for the runtime tests, built once and cached by content hash.

Each ``handlers/<name>/app.py`` is compiled with componentize-py (spin-http world) into
``$FAASOPS_TEST_CACHE`` (default ``~/.cache/faasops-tests``)/components/<sha>.wasm, where the sha
covers the handler source and the toolchain versions, so reruns skip the ~6 s builds. The
compiled-artifact cache is shared the same way, so only the first run pays for compilation too.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import pytest

from faasops.runtime import ComponentRuntime, LoadedApp

HANDLERS = Path(__file__).parent / "handlers"
TOOLCHAIN = tuple(importlib.metadata.version(p) for p in ("componentize-py", "spin-sdk"))


def test_cache_root() -> Path:
    """Root of the on-disk caches shared by test runs."""
    return Path(os.environ.get("FAASOPS_TEST_CACHE", Path.home() / ".cache" / "faasops-tests"))


test_cache_root.__test__ = False  # type: ignore[attr-defined]  # not a test despite its name


def build_component(handler_dir: Path, out_dir: Path) -> Path:
    """Componentize ``handler_dir/app.py`` unless a build of the same source is cached."""
    source = (handler_dir / "app.py").read_bytes()
    digest = hashlib.sha256(repr(TOOLCHAIN).encode() + source).hexdigest()[:32]
    wasm = out_dir / f"{digest}.wasm"
    if wasm.is_file():
        return wasm
    out_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        # componentize-py writes __pycache__ next to the sources: build from a copy.
        work = Path(tmp) / "src"
        shutil.copytree(handler_dir, work, ignore=shutil.ignore_patterns("__pycache__"))
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        built = Path(tmp) / "app.wasm"
        subprocess.run(
            [str(bin_dir / "componentize-py"), "-w", "spin-http", "componentize", "app",
             "-o", str(built)],
            cwd=work, env=env, check=True, capture_output=True)
        os.replace(built, wasm)
    return wasm


@pytest.fixture(scope="session")
def component() -> Callable[[str], Path]:
    """``component("echo")`` → path of the built ``handlers/echo`` component."""
    out_dir = test_cache_root() / "components"
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = build_component(HANDLERS / name, out_dir)
        return built[name]
    return get


@pytest.fixture(scope="session")
def compiled_cache_dir() -> Path:
    """Compiled-artifact cache shared by the session (and by later runs)."""
    return test_cache_root() / "compiled"


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
