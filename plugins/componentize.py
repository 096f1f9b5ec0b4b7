"""The ``componentize-py`` builder: Python HTTP handlers → Spin (WebAssembly) components.

Builds run in a throw-away temporary directory: the source archive of the snapshot is extracted
there (absolute paths, ``..``, links and device files are rejected) and ``componentize-py -w
spin-http componentize <handler>`` runs with that directory as its working directory. faasops
never imports or executes the user's code in its own process. Note, though, that componentize-py
*pre-initialises* the component at build time: it runs the handler module's top-level code
(imports, module globals) inside the WebAssembly sandbox and snapshots the resulting memory.
Top-level code therefore runs once per build — sandboxed, without host filesystem or network
access — and its effects are frozen into the component.

componentize-py's output is not byte-reproducible: two cold builds of one source differ in the data
section of the core module holding CPython's pre-initialised memory, and only there. The guest
runs that pre-initialisation in a WASI context componentize-py 0.16.0 builds itself — with its own
four environment variables (a host ``PYTHONHASHSEED`` never reaches it), the host's entropy and
the standard library unpacked afresh into a temporary directory — so the str/bytes hash secret,
the ``random`` state and the directory mtimes the importer caches are new in every snapshot (and
with a new hash secret, sets iterate in another order and the heap is laid out differently). None
of this can be fixed from outside componentize-py (upstream: bytecodealliance/componentize-py#247;
an ``LD_PRELOAD``ed ``getrandom`` does not reach its entropy). Builds are therefore cached by
*input*: ``<cache_dir>/<build-key hex>.wasm`` plus a JSON sidecar holding the wasm digest, so a
cache hit never rehashes the 37 MB component. Both files are written to a temporary name and
renamed into place (the sidecar last, and only a sidecar makes an entry valid), so a ``kill -9``
mid-build never leaves a truncated entry; a per-key file lock makes concurrent builds of one key —
threads or processes — build once and share the result.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from faasops.dependencies import (
    CACHE_ENV,
    DependencyError,
    InstalledDependencies,
    copy_into,
    declared_requirements,
    install,
    toolchain_problems,
)
from faasops.errors import Problem, ProviderError
from faasops.garbage_files import file_size, is_temporary, owned_by, remove_files, shared_note
from faasops.hookspecs import hookimpl
from faasops.imports_check import unresolved_imports
from faasops.lock import pid_alive
from faasops.model import Function, Project, ProviderConfig
from faasops.options import seconds_option
from faasops.oci import file_lock, write_atomic
from faasops.progress import report_activity
from faasops.providers import BuildResult, Garbage, Retained, SourceSnapshot, StoredItem
from faasops.source_archive import ArchiveError, extract_source_archive

TYPE = "componentize-py"
WIT_WORLD = "spin-http"
DEFAULT_TIMEOUT_S = 600.0
# Distributions whose versions decide what a build produces.
TOOLCHAIN_DISTRIBUTIONS = ("componentize-py", "spin-sdk")
# The handler reaches componentize-py's command line as a module name: anything but a dotted
# Python module path (``-o``, file paths) could smuggle options onto it.
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_ERROR_TAIL_LINES = 40
# Python module names for WIT interfaces whose default name clashes. spin-sdk 3.4.1's
# componentize-py.toml maps only postgres, so componentize-py (0.16.0 and 0.17.2 alike) names
# `fermyon:spin/sqlite@2.0.0` `fermyon_spin_sqlite` (it clashes with `spin:sqlite/sqlite@3.0.0`),
# while spin_sdk.sqlite imports `spin_sdk.wit.imports.sqlite`, the name its published bindings
# were generated with. Part of the build key: it decides the component's bindings.
IMPORT_INTERFACE_NAMES = (("fermyon:spin/sqlite@2.0.0", "sqlite"),)

# componentize-py reports build errors by raising AssertionError out of `script()`; print just the
# message so the user sees their Python error, not our wrapper's traceback.
_RUNNER = """\
import sys
from componentize_py import script
sys.argv[0] = "componentize-py"
try:
    status = script()
except AssertionError as exc:
    sys.stderr.write(str(exc) + "\\n")
    sys.exit(1)
sys.exit(status)
"""


def toolchain_version() -> str:
    """``componentize-py==X;spin-sdk==Y`` from the installed distributions."""
    parts = []
    for dist in TOOLCHAIN_DISTRIBUTIONS:
        try:
            parts.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist}==missing")
    return ";".join(parts)


class ComponentizePyBuilder:
    """A :class:`faasops.providers.Builder` running componentize-py with a content-addressed cache.

    Options (``providers.builder`` in ``faas.yaml``): ``cache_dir`` (else ``$FAASOPS_BUILD_CACHE``,
    else ``<project>/.faasops/builds``) and ``timeout_seconds`` (default 600; formerly ``timeout_s``).
    """

    def __init__(self, cache_dir: Path, timeout_s: float = DEFAULT_TIMEOUT_S, python: str | None = None,
                 project: Project | None = None):
        self.cache_dir = Path(cache_dir)
        self.timeout_s = timeout_s
        self.python = python or sys.executable
        self.toolchain = toolchain_version()
        self.project = project  # whose .faasops decides whether gc may clean the cache

    @classmethod
    def from_config(cls, config: ProviderConfig, project: Project) -> ComponentizePyBuilder:
        cache_dir = config.options.get("cache_dir") or os.environ.get(CACHE_ENV)
        path = Path(cache_dir) if cache_dir else project.state_dir / "builds"
        if not path.is_absolute():
            path = project.root / path
        return cls(path, timeout_s=float(config.options.get("timeout_seconds", DEFAULT_TIMEOUT_S)), project=project)

    # ---------------------------------------------------------------------------------------- key

    def build_key(self, function: Function, snapshot: SourceSnapshot) -> str:
        """``sha256:`` of the source digest, handler module, toolchain, interface names and — when
        the source declares any (requirements.txt or faas.yaml's ``dependencies``) — the
        dependencies' install key (pure; equal requirements give equal keys wherever they are
        declared)."""
        fields = {"source": snapshot.digest, "handler": function.handler, "toolchain": self.toolchain,
                  "interface_names": [f"{wit}={name}" for wit, name in IMPORT_INTERFACE_NAMES]}
        requirements, _ = declared_requirements(function.dependencies, snapshot.archive, snapshot.files)
        dependencies = requirements.key() if requirements is not None else None
        if dependencies is not None:  # absent otherwise: keys of sources without dependencies stay as they were
            fields["dependencies"] = dependencies
        material = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(material.encode()).hexdigest()

    # -------------------------------------------------------------------------------------- build

    def build(self, function: Function, snapshot: SourceSnapshot) -> BuildResult:
        """Build ``function`` from ``snapshot``, or return the cached component for its key."""
        key = self.build_key(function, snapshot)
        if not _MODULE_NAME.fullmatch(function.handler):
            raise ProviderError(
                f"{function.address}: handler {function.handler!r} is not a Python module name "
                "(expected something like `app` or `handlers.http`)"
            )
        hex_key = key.split(":", 1)[1]
        wasm_path = self.cache_dir / f"{hex_key}.wasm"
        sidecar_path = self.cache_dir / f"{hex_key}.json"
        self.cache_dir.mkdir(parents=True, exist_ok=True)

        cached = self._cached(key, wasm_path, sidecar_path)
        if cached:
            return cached
        report_activity(function.address, "waiting for the same build elsewhere")
        with file_lock(self.cache_dir / "locks" / f"{hex_key}.lock"):
            # Another thread or process may have finished this key while we waited.
            cached = self._cached(key, wasm_path, sidecar_path)
            if cached:
                return cached
            remove_orphaned_build_dirs()
            with tempfile.TemporaryDirectory(prefix=f"{BUILD_DIR_PREFIX}{os.getpid()}-") as tmp:
                src = Path(tmp) / "src"
                src.mkdir()
                extract_archive(snapshot.archive, src)
                installed = self._dependencies(function, snapshot, src)
                deps = copy_into(installed, Path(tmp) / "deps") if installed else None
                out = Path(tmp) / "component.wasm"
                self._componentize(function, src, out, deps)
                # The sidecar is what makes an entry valid: drop any stale one before the wasm
                # it describes changes.
                sidecar_path.unlink(missing_ok=True)
                # One streamed read of the 37 MB component both copies and hashes it.
                digest, size = write_atomic(wasm_path, out)
            write_atomic(
                sidecar_path,
                json.dumps(
                    {
                        "build_key": key,
                        "wasm_digest": digest,
                        "size": size,
                        "handler": function.handler,
                        "source_digest": snapshot.digest,
                        "toolchain": self.toolchain,
                    },
                    indent=2,
                    sort_keys=True,
                ).encode(),
            )
        return BuildResult(build_key=key, wasm_path=wasm_path, wasm_digest=digest, cached=False)

    # ------------------------------------------------------------------------ garbage collection

    def garbage(self, retained: Retained) -> Garbage:
        """Cached builds of sources no retained artifact was built from, and components whose
        sidecar never got written (:class:`faasops.providers.StoredArtifacts`). Installed
        dependencies (``deps/``) stay: builds of any source share them by content."""
        store = f"build cache {self.cache_dir}"
        if self.project is None or not owned_by(self.project, self.cache_dir):
            return Garbage(store, notes=(shared_note(self.cache_dir, "the build cache"),))
        items: list[StoredItem] = []
        for wasm in sorted(self.cache_dir.glob("*.wasm")) if self.cache_dir.is_dir() else []:
            if is_temporary(wasm):
                continue
            sidecar = wasm.with_suffix(".json")
            try:
                source = json.loads(sidecar.read_text()).get("source_digest")
            except (OSError, ValueError):
                source = None  # no valid sidecar: not an entry a build can reuse
            if source not in retained.sources:
                items.append(StoredItem("build", wasm.stem, file_size(wasm) + file_size(sidecar)))
        return Garbage(store, tuple(items))

    def collect(self, garbage: Garbage) -> Garbage:
        removed = []
        for item in garbage.items:
            # The sidecar first: without it the entry is invalid, never half there.
            paths = [self.cache_dir / f"{item.name}.json", self.cache_dir / f"{item.name}.wasm",
                     self.cache_dir / "locks" / f"{item.name}.lock"]
            removed.append(remove_files(item, paths))
        return Garbage(garbage.store, tuple(item for item in removed if item is not None), garbage.notes)

    def _cached(self, key: str, wasm_path: Path, sidecar_path: Path) -> BuildResult | None:
        try:
            meta = json.loads(sidecar_path.read_text())
            size = wasm_path.stat().st_size
        except (OSError, ValueError):
            return None
        if meta.get("build_key") != key or meta.get("size") != size:
            return None
        return BuildResult(build_key=key, wasm_path=wasm_path, wasm_digest=meta["wasm_digest"], cached=True)

    def _dependencies(self, function: Function, snapshot: SourceSnapshot, src: Path) -> InstalledDependencies | None:
        """Install the function's ``dependencies`` or its source's ``requirements.txt``
        (:mod:`faasops.dependencies`: wheels only, for the component's CPython, cached by content
        under ``<cache_dir>/deps/``) and check the imports the handler reaches against it (:mod:`faasops.imports_check`) — before
        componentize-py, so a missing module is a located error in seconds, not a traceback."""
        requirements, problems = declared_requirements(function.dependencies, snapshot.archive, snapshot.files)
        if requirements is not None:
            problems += toolchain_problems(requirements, _spin_sdk_version())
        _raise(function, problems)
        installed = None
        if requirements is not None:
            report_activity(function.address, "installing dependencies")
            installed = install(requirements, self.cache_dir, self.python, self.timeout_s, function.address)
        _raise(function, unresolved_imports(src, function.handler, requirements,
                                            installed.modules if installed else None))
        return installed

    def _componentize(self, function: Function, app_dir: Path, out: Path, deps: Path | None = None) -> None:
        """Run componentize-py in ``app_dir`` (with the installed dependencies ``deps`` on its
        python path); raise ProviderError with its error output."""
        env = dict(os.environ)
        # componentize-py mounts its python path into the sandbox *writable* while it
        # pre-initialises the module, and appends $VIRTUAL_ENV's site-packages to it: point that
        # at a throw-away copy of spin-sdk, never at the host's site-packages (where top-level
        # code could drop a .pth file that Python runs at its next start).
        env["VIRTUAL_ENV"] = str(_sandbox_site(app_dir.parent))
        env["PATH"] = os.pathsep.join([str(Path(self.python).parent), env.get("PATH", "")])
        env["RUST_BACKTRACE"] = "0"
        env["RUST_LIB_BACKTRACE"] = "0"
        # -I: the runner must not import from its working directory, the user's source (a
        # `componentize_py.py` there would run on the host).
        paths = ["-p", ".", "-p", str(deps)] if deps else []
        names = [arg for wit, name in IMPORT_INTERFACE_NAMES
                 for arg in ("--import-interface-name", f"{wit}={name}")]
        command = [self.python, "-I", "-c", _RUNNER, *names, "-w", WIT_WORLD, "componentize", *paths,
                   function.handler, "-o", str(out)]
        report_activity(function.address, "componentize-py")
        try:
            proc = subprocess.run(
                command,
                cwd=app_dir,
                env=env,
                preexec_fn=_die_with_parent,
                # Its own session: a terminal's Ctrl-C goes to faasops, which lets running
                # builds finish (a second signal kills them: faasops.interruption).
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=self.timeout_s,
            )
        except subprocess.TimeoutExpired as exc:
            raise ProviderError(
                f"{function.address}: componentize-py did not finish within {self.timeout_s:g} s"
            ) from exc
        if proc.returncode != 0 or not out.is_file():
            raise ProviderError(
                f"{function.address}: componentize-py could not build handler module "
                f"{function.handler!r}:\n{error_tail(proc.stdout + proc.stderr)}"
            )


BUILD_DIR_PREFIX = "faasops-build-"


def _raise(function: Function, problems: list[Problem]) -> None:
    if problems:
        raise DependencyError(f"{function.address}: " + "\n  ".join(str(problem) for problem in problems))


def _spin_sdk_version() -> str:
    try:
        return version("spin-sdk")
    except PackageNotFoundError:
        return "0"


def remove_orphaned_build_dirs() -> None:
    """Remove build directories of faasops processes that are gone (an apply killed with -9
    mid-build cannot clean up after itself; its directory name carries its pid)."""
    root = Path(tempfile.gettempdir())
    for path in root.glob(f"{BUILD_DIR_PREFIX}*"):
        pid = path.name[len(BUILD_DIR_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


# prctl(PR_SET_PDEATHSIG, SIGKILL): componentize-py dies with the apply that started it instead
# of running on for minutes after a kill -9. Resolved once here: the child only calls it.
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _die_with_parent() -> None:
    if _prctl is not None:
        _prctl(1, signal.SIGKILL)


def _sandbox_site(scratch: Path) -> Path:
    """A virtualenv-shaped directory in ``scratch`` holding a copy of spin-sdk (1 MB), the only
    package a handler's component needs from the host."""
    # Found, not imported: spin_sdk's modules only work inside the component.
    spec = importlib.util.find_spec("spin_sdk")
    assert spec is not None and spec.submodule_search_locations, "spin-sdk is not installed"
    venv = scratch / "site"
    shutil.copytree(Path(list(spec.submodule_search_locations)[0]), venv / "lib" / "site-packages" / "spin_sdk",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return venv


def error_tail(output: str, max_lines: int = _ERROR_TAIL_LINES) -> str:
    """The useful end of componentize-py's output, indented: no Rust backtrace, no runs of blank
    lines, and file names relative to the app directory (mounted at ``/0`` in the sandbox)."""
    lines: list[str] = []
    for line in output.splitlines():
        line = line.rstrip()
        if line.strip() == "Stack backtrace:":
            break
        if line or (lines and lines[-1]):
            lines.append(line.replace('File "/0/', 'File "'))
    tail = "\n".join(lines).strip().splitlines()[-max_lines:]
    return "\n".join("  " + line if line else "" for line in tail) or "  (no output)"


def extract_archive(archive: bytes, dest: Path) -> None:
    """Extract a source tar.gz into ``dest`` through :func:`faasops.source_archive.extract_source_archive`
    (the Builder service's checks and default limits: plain files and directories only, no
    absolute names, ``..``, links or devices)."""
    try:
        extract_source_archive(archive, dest)
    except ArchiveError as exc:
        raise ProviderError(f"source archive: {exc}") from None


# ------------------------------------------------------------------------------------------ hooks


OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "cache_dir": {"type": "string", "minLength": 1, "description": f"build cache (default ${CACHE_ENV}, "
                      "else .faasops/builds; relative to the project root)"},
        "timeout_seconds": seconds_option("how long one build may take", DEFAULT_TIMEOUT_S, aliases=["timeout_s"]),
    },
}


@hookimpl
def faasops_provider_options() -> list[tuple[str, str, dict[str, Any]]]:
    return [("builder", TYPE, OPTIONS_SCHEMA)]


@hookimpl
def faasops_provider_types() -> list[tuple[str, str, str]]:
    return [("builder", TYPE, "builds Python HTTP handlers into Spin components with componentize-py")]


@hookimpl
def faasops_builder(config: ProviderConfig, project: Project) -> ComponentizePyBuilder | None:
    if config.type != TYPE:
        return None
    return ComponentizePyBuilder.from_config(config, project)
