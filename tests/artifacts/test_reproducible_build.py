"""What is reproducible about a build: cold builds of one source in separate caches, through the CLI.

componentize-py pre-initialises CPython at build time and snapshots its memory, with a str hash
secret, ``random`` state and directory mtimes that are new on every build (componentize-py 0.16.0
offers no way to fix them: see plugins/componentize.py). So two cold builds of one source agree on
the build key and on every byte of the component but the data section of the core module holding
that memory snapshot; a build reused from the cache gives the same wasm and the same OCI artifact
digest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"
FAASOPS = str(Path(sys.executable).with_name("faasops"))

# Section ids of the WebAssembly binary formats.
COMPONENT_CORE_MODULE = 1
COMPONENT_NESTED_COMPONENT = 4
MODULE_MEMORY = 5
MODULE_DATA = 11
PREAMBLE = 8  # magic and version (or component layer)


@dataclass(frozen=True)
class Section:
    """One section of a component, or of a core module inside it."""

    where: str  # e.g. "component" or "component/module 0"
    id: int  # component and core module section ids overlap: see `in_core_module`
    payload: bytes
    in_core_module: bool


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _sections(binary: bytes) -> Iterator[tuple[int, bytes]]:
    pos = PREAMBLE
    while pos < len(binary):
        section_id = binary[pos]
        size, pos = _leb128(binary, pos + 1)
        yield section_id, binary[pos : pos + size]
        pos += size


def component_sections(binary: bytes, where: str = "component") -> list[Section]:
    """Every section of a component, with the sections of its core modules (and nested
    components) in place of the module (component) that holds them."""
    found: list[Section] = []
    modules = components = 0
    for section_id, payload in _sections(binary):
        if section_id == COMPONENT_CORE_MODULE:
            module = f"{where}/module {modules}"
            found.extend(Section(module, module_id, body, True) for module_id, body in _sections(payload))
            modules += 1
        elif section_id == COMPONENT_NESTED_COMPONENT:
            found.extend(component_sections(payload, f"{where}/component {components}"))
            components += 1
        else:
            found.append(Section(where, section_id, payload, False))
    return found


@dataclass(frozen=True)
class ColdBuild:
    project: Path
    cache: Path
    sidecar: dict
    wasm: bytes
    artifact: str


def _apply(project: Path, cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, FAASOPS_BUILD_CACHE=str(cache))
    return subprocess.run(
        [FAASOPS, "-C", str(project), "apply", "--auto-approve"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _artifact(project: Path) -> str:
    out = subprocess.run(
        [FAASOPS, "-C", str(project), "get", "functions", "--format", "json"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    (function,) = json.loads(out)
    return function["artifact"]


def _cold_build(root: Path, name: str) -> ColdBuild:
    """The hello example applied in its own copy, with its own empty build cache."""
    project = root / name
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".faasops", "__pycache__"))
    cache = root / f"{name}-cache"
    proc = _apply(project, cache)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 built, 0 reused from cache" in proc.stdout
    (sidecar_path,) = cache.glob("*.json")
    sidecar = json.loads(sidecar_path.read_text())
    return ColdBuild(project, cache, sidecar, sidecar_path.with_suffix(".wasm").read_bytes(), _artifact(project))


@pytest.fixture(scope="module")
def cold_builds(tmp_path_factory) -> tuple[ColdBuild, ColdBuild]:
    """Two cold builds of one source: separate projects, caches, temp dirs and processes."""
    root = tmp_path_factory.mktemp("reproducible")
    return _cold_build(root, "first"), _cold_build(root, "second")


@pytest.mark.slow
def test_cold_builds_in_separate_caches_have_the_same_build_key(cold_builds):
    first, second = cold_builds
    for field in ("build_key", "source_digest", "handler", "toolchain"):
        assert first.sidecar[field] == second.sidecar[field], field


@pytest.mark.slow
def test_cold_builds_differ_only_in_the_memory_snapshot_of_cpython(cold_builds):
    first, second = (component_sections(build.wasm) for build in cold_builds)

    assert [(s.where, s.id) for s in first] == [(s.where, s.id) for s in second]
    # The pre-initialised memory is the data section of a core module that defines its memory.
    snapshot_modules = {s.where for s in first if s.in_core_module and s.id == MODULE_MEMORY}
    differing = {(a.where, a.id) for a, b in zip(first, second) if a.payload != b.payload}
    assert differing <= {(where, MODULE_DATA) for where in snapshot_modules}, differing


@pytest.mark.slow
def test_a_build_reused_from_the_cache_gives_the_same_wasm_and_artifact_digest(cold_builds, tmp_path):
    first = cold_builds[0]
    project = tmp_path / "third"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".faasops", "__pycache__"))

    proc = _apply(project, first.cache)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 built, 1 reused from cache" in proc.stdout
    assert _artifact(project) == first.artifact
