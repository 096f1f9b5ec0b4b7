"""Helpers for the gc tests: local projects whose caches are their own (seeded from the shared
test build cache by hard links, so real builds are reused, not redone), and disk accounting."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cli_support import Result, copy_example, run_faasops
from faasops.manifest import load_project
from faasops.plugins.componentize import ComponentizePyBuilder
from faasops.source import snapshot_directory

HANDLER = """\
from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        return Response(200, {{"content-type": "text/plain"}}, bytes("{text}", "utf-8"))
"""
# Fixed texts: every session builds the same three components, so the shared cache has them.
EDITS = ("gc edit one", "gc edit two", "gc edit three")
# What the local backend keeps per artifact: the places gc cleans.
STORES = ("oci", "builds", "runtime-cache", "sources")


def write_handler(project: Path, text: str, function: str = "hello") -> None:
    (project / "functions" / function / "app.py").write_text(HANDLER.format(text=text))


@dataclass
class LocalProject:
    """A copy of the hello example with private build and runtime caches."""

    root: Path
    shared_builds: Path

    @property
    def state_dir(self) -> Path:
        return self.root / ".faasops"

    @property
    def env(self) -> dict[str, str]:
        return {"FAASOPS_BUILD_CACHE": str(self.state_dir / "builds"),
                "FAASOPS_RUNTIME_CACHE": str(self.state_dir / "runtime-cache")}

    @property
    def shared_runtime(self) -> Path:
        return Path(os.environ.get("FAASOPS_RUNTIME_CACHE") or self.shared_builds.parent / "runtime")

    def faasops(self, *args: str) -> Result:
        return run_faasops("-C", str(self.root), *args, env=self.env)

    def seed(self, texts: tuple[str, ...]) -> None:
        """Build each handler text in the shared cache (a cache hit after the first session) and
        hard-link the builds and their compiled components into the project's own caches."""
        builder = ComponentizePyBuilder(self.shared_builds)
        builds, runtime = self.state_dir / "builds", self.state_dir / "runtime-cache"
        builds.mkdir(parents=True, exist_ok=True)
        runtime.mkdir(parents=True, exist_ok=True)
        for text in texts:
            write_handler(self.root, text)
            function = load_project(self.root).functions()[0]
            build = builder.build(function, snapshot_directory(function.source_dir))
            for path in (build.wasm_path, build.wasm_path.with_suffix(".json")):
                _link(path, builds / path.name)
            hex_digest = build.wasm_digest.removeprefix("sha256:")
            for compiled in self.shared_runtime.glob(f"{hex_digest}-*.cwasm"):
                _link(compiled, runtime / compiled.name)

    def give_back(self) -> None:
        """Components this project compiled go to the shared runtime cache for the next session."""
        for compiled in (self.state_dir / "runtime-cache").glob("*.cwasm"):
            _link(compiled, self.shared_runtime / compiled.name)

    def files(self) -> dict[str, int]:
        """``{path: size}`` of every file in the stores gc cleans (temporary files left out)."""
        found: dict[str, int] = {}
        for store in STORES:
            directory = self.state_dir / store
            if directory.is_dir():
                for path in directory.rglob("*"):
                    if path.is_file() and not path.name.endswith(".lock"):
                        found[str(path.relative_to(self.state_dir))] = path.stat().st_size
        return found

    def gc(self, *args: str) -> dict:
        result = self.faasops("gc", "--format", "json", *args)
        assert result.code == 0, result.output
        return json.loads(result.out)

    def invoke(self) -> str:
        result = self.faasops("invoke", "demo/hello")
        assert result.code == 0, result.output
        return result.out

    def running(self) -> str:
        listed = self.faasops("get", "functions", "--format", "json")
        assert listed.code == 0, listed.output
        return json.loads(listed.out)[0]["artifact"]


def make_local_project(tmp_path: Path, shared_builds: Path, texts: tuple[str, ...] = EDITS) -> LocalProject:
    project = LocalProject(copy_example("hello", tmp_path), shared_builds)
    project.seed(texts)
    return project


def _link(source: Path, target: Path) -> None:
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:  # another file system
        target.write_bytes(source.read_bytes())
