"""A function's Python dependencies: ``requirements.txt`` in its source directory, installed
from wheels into a build-only directory that componentize-py bundles into the component.

The component runs componentize-py's own CPython (3.12, compiled to ``wasm32-wasi``), so only
pure-Python wheels (``py3-none-any``) and WASI builds can work there. pip installs exactly those:
it resolves for that interpreter (``--python-version 3.12 --platform any --platform
wasi_0_0_0_wasm32``), from wheels only (``--only-binary :all:``, so no ``setup.py`` ever runs on
the build host), into ``--target``; a requirement with ``--hash`` turns on pip's hash-checking
mode, as it does for any pip user. pip reads the build host's configuration as usual
(``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``, ``PIP_FIND_LINKS``, ``pip.conf``); index options
inside requirements.txt are refused, so a source cannot point a builder at another index.

Installs are cached by content: ``<cache>/deps/<key hex>/`` where the key covers the
requirements (as parsed) and the target interpreter, so an unchanged requirements file never
reinstalls. The key is also part of the build key.

``spin-sdk`` and ``componentize-py`` lines (the http-py template lists both for the developer's
virtualenv) are the builder's toolchain: they are not installed, and a ``spin-sdk`` version other
than the toolchain's is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import parse_tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from faasops.errors import Problem, ProviderError
from faasops.oci import file_lock

REQUIREMENTS_FILE = "requirements.txt"
CACHE_ENV = "FAASOPS_BUILD_CACHE"  # the build cache (plugins/componentize.py); installs go under deps/
# The interpreter componentize-py 0.16 embeds (libpython3.12.so built for wasm32-wasi).
TARGET_PYTHON = "3.12"
TARGET_PLATFORMS = ("any", "wasi_0_0_0_wasm32")
TARGET_ABIS = ("none", "abi3", "cp312")
TARGET = f"cpython-{TARGET_PYTHON}-wasm32-wasi"
# Provided by the builder itself, never installed from a requirements file.
TOOLCHAIN_PROJECTS = frozenset({"spin-sdk", "componentize-py"})
NATIVE_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")
MAX_REQUIREMENTS_BYTES = 1 << 20
_COMMENT = re.compile(r"(^|\s+)#.*$")
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_INDEX_OPTIONS = frozenset({"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index",
                            "--trusted-host"})
WHAT_TO_DO_NATIVE = ("use a pure-Python alternative, or a WASI build of it (a cp312 wasi_0_0_0_wasm32 wheel) "
                     "from an index or a --find-links directory the build host's pip reads (PIP_FIND_LINKS)")


class DependencyError(ProviderError):
    """The dependencies can't be installed into a component (message names the package)."""


@dataclass(frozen=True)
class DeclaredRequirement:
    """One requirement line: where it is, the project's canonical name, and the line pip gets."""

    line: int
    name: str
    text: str
    specifier: str

    @property
    def toolchain(self) -> bool:
        return self.name in TOOLCHAIN_PROJECTS


@dataclass(frozen=True)
class Requirements:
    """A parsed requirements file (``file`` as shown in messages)."""

    file: str
    declared: tuple[DeclaredRequirement, ...]

    @property
    def installable(self) -> tuple[DeclaredRequirement, ...]:
        """What pip installs: everything but the builder's own toolchain."""
        return tuple(r for r in self.declared if not r.toolchain)

    def pip_text(self) -> str:
        """The file pip reads: each requirement on its own line number, so pip's ``(line N)``
        points into the user's file."""
        lines = [""] * max((r.line for r in self.installable), default=0)
        for requirement in self.installable:
            lines[requirement.line - 1] = requirement.text
        return "".join(line + "\n" for line in lines)

    def key(self) -> str | None:
        """``sha256:`` of what decides the install (requirements and target), or None when
        nothing is to be installed."""
        if not self.installable:
            return None
        material = json.dumps({"requirements": [r.text for r in self.installable], "target": TARGET},
                              separators=(",", ":"))
        return "sha256:" + hashlib.sha256(material.encode()).hexdigest()


def parse_requirements(text: str, display_file: str) -> tuple[Requirements, list[Problem]]:
    """The requirements in ``text`` and the problems with its lines (located ``file:line:col``).

    Accepted: PEP 508 requirements by name (with extras, versions, markers) and ``--hash``
    options. Refused, with what to do instead: editable installs, URLs and paths (faasops installs
    wheels from an index), includes (``-r``/``-c``) and index or install options (the build host's
    pip configuration decides those).
    """
    declared: list[DeclaredRequirement] = []
    problems: list[Problem] = []
    for line_no, line in _logical_lines(text):
        line = _COMMENT.sub("", line).strip()
        if not line:
            continue

        def problem(message: str) -> None:
            problems.append(Problem(display_file, line_no, 1, "", message))

        # As pip splits a line: the requirement runs up to the first word starting with `-`
        # (markers keep their quotes); the options after it are shell words.
        words = line.split()
        first_option = next((i for i, word in enumerate(words) if word.startswith("-")), len(words))
        requirement_text = " ".join(words[:first_option])
        try:
            options = shlex.split(" ".join(words[first_option:]))
        except ValueError as exc:
            problem(f"cannot read the options on this line: {exc}")
            continue
        if not requirement_text:
            problem(_option_message(options[0]))
            continue
        hashes, bad_option = _hashes(options)
        if bad_option is not None:
            problem(_option_message(bad_option))
            continue
        try:
            requirement = Requirement(requirement_text)
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0] if str(exc) else "invalid"
            problem(f"{requirement_text!r} is not a requirement by name ({reason}); faasops installs wheels from an "
                    "index: write `name==version`, and publish local code as a wheel or keep it in the source directory")
            continue
        if requirement.url:
            problem(f"{requirement.name} @ {requirement.url}: direct URLs are not installed; publish a wheel on an "
                    "index the build host's pip reads (PIP_INDEX_URL, PIP_FIND_LINKS) and require it by name")
            continue
        text_for_pip = str(requirement) + "".join(f" --hash={h}" for h in hashes)
        declared.append(DeclaredRequirement(line_no, canonicalize_name(requirement.name), text_for_pip,
                                            str(requirement.specifier)))
    return Requirements(display_file, tuple(declared)), problems


def read_requirements(source_dir: Path, display_prefix: str = "") -> tuple[Requirements | None, list[Problem]]:
    """``source_dir``'s requirements file, parsed; ``(None, [])`` when there is none."""
    path = source_dir / REQUIREMENTS_FILE
    display = f"{display_prefix}{REQUIREMENTS_FILE}"
    if not path.is_file():
        return None, []
    try:
        if path.stat().st_size > MAX_REQUIREMENTS_BYTES:
            return None, [Problem(display, 0, 0, "", f"the file is larger than {MAX_REQUIREMENTS_BYTES} bytes")]
        data = path.read_bytes()
    except OSError as exc:
        return None, [Problem(display, 0, 0, "", f"cannot read it: {exc.strerror}")]
    return _parse_bytes(data, display)


def requirements_in_archive(archive: bytes, files: tuple[str, ...]) -> tuple[Requirements | None, list[Problem]]:
    """The requirements file of a source snapshot (its tar.gz), parsed; ``(None, [])`` if none."""
    if REQUIREMENTS_FILE not in files:
        return None, []
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        member = tar.extractfile(REQUIREMENTS_FILE)
        data = member.read(MAX_REQUIREMENTS_BYTES + 1) if member else b""
    if len(data) > MAX_REQUIREMENTS_BYTES:
        return None, [Problem(REQUIREMENTS_FILE, 0, 0, "", f"the file is larger than {MAX_REQUIREMENTS_BYTES} bytes")]
    return _parse_bytes(data, REQUIREMENTS_FILE)


def toolchain_problems(requirements: Requirements, spin_sdk_version: str) -> list[Problem]:
    """A ``spin-sdk`` requirement that the builder's spin-sdk does not satisfy."""
    problems = []
    for requirement in requirements.declared:
        if requirement.name != "spin-sdk" or not requirement.specifier:
            continue
        try:
            satisfied = Version(spin_sdk_version) in SpecifierSet(requirement.specifier)
        except InvalidVersion:
            continue
        if not satisfied:
            problems.append(Problem(requirements.file, requirement.line, 1, "", (
                f"spin-sdk{requirement.specifier} is asked for, but this builder builds with spin-sdk "
                f"{spin_sdk_version} (the spin-sdk 3.4.1 IncomingHandler API); require spin-sdk=={spin_sdk_version} "
                "or drop the line")))
    return problems


# ---------------------------------------------------------------------------------------- install


@dataclass(frozen=True)
class InstalledDependencies:
    """A finished install: the directory componentize-py gets with ``-p``, and which
    distribution provides each top-level module in it."""

    path: Path
    modules: dict[str, str]


def install(requirements: Requirements, cache_dir: Path, python: str, timeout_s: float,
            address: str) -> InstalledDependencies | None:
    """Install ``requirements`` for the component's interpreter into ``<cache_dir>/deps/<key>``
    (once per key: a finished directory is reused; concurrent builds of one key install once),
    or None when there is nothing to install. Raises :class:`DependencyError` naming the
    package when pip can't, or when a native wheel got in."""
    key = requirements.key()
    if key is None:
        return None
    hex_key = key.removeprefix("sha256:")
    dest = _install_dir(cache_dir, key)
    root = dest.parent
    if not dest.is_dir():
        with file_lock(cache_dir / "locks" / f"deps-{hex_key}.lock"):
            if not dest.is_dir():
                root.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=root, prefix=f".{hex_key}.") as scratch:
                    site = Path(scratch) / "site"
                    _pip_install(requirements, Path(scratch), site, python, timeout_s, address)
                    native = native_wheels(site)
                    if native:
                        raise DependencyError(f"{address}: {requirements.file}: " + "; ".join(native))
                    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts: not importable
                    # Complete or absent: a killed install leaves only a scratch directory.
                    os.rename(site, dest)
    return InstalledDependencies(dest, top_level_modules(dest))


def installed_in(build_caches: Iterable[Path], requirements: Requirements) -> InstalledDependencies | None:
    """A finished install of ``requirements`` in one of ``build_caches``, if a build made one
    (looked up, never installed: validate stays offline)."""
    key = requirements.key()
    if key is None:
        return None
    for cache_dir in build_caches:
        dest = _install_dir(cache_dir, key)
        if dest.is_dir():
            return InstalledDependencies(dest, top_level_modules(dest))
    return None


def build_caches(root: Path, builder_options: Mapping[str, Any]) -> tuple[Path, ...]:
    """Where a local build of the project may have installed dependencies: the builder's
    ``cache_dir`` option, ``$FAASOPS_BUILD_CACHE`` and the default ``.faasops/builds``."""
    named = [builder_options.get("cache_dir"), os.environ.get(CACHE_ENV), ".faasops/builds"]
    return tuple(dict.fromkeys(root / str(path) for path in named if isinstance(path, str) and path))


def _install_dir(cache_dir: Path, key: str) -> Path:
    return cache_dir / "deps" / key.removeprefix("sha256:")


def pip_command(python: str, target: Path, requirements_file: Path) -> list[str]:
    """The pip command line that installs a requirements file for the component's interpreter."""
    command = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--no-compile",
               "--no-warn-script-location", "--only-binary", ":all:", "--target", str(target),
               "--python-version", TARGET_PYTHON, "--implementation", "cp"]
    for abi in TARGET_ABIS:
        command += ["--abi", abi]
    for platform in TARGET_PLATFORMS:
        command += ["--platform", platform]
    return command + ["-r", str(requirements_file)]


def _pip_install(requirements: Requirements, scratch: Path, site: Path, python: str, timeout_s: float,
                 address: str) -> None:
    requirements_file = scratch / REQUIREMENTS_FILE
    requirements_file.write_text(requirements.pip_text())
    try:
        proc = _run(pip_command(python, site, requirements_file), scratch, timeout_s)
    except subprocess.TimeoutExpired:
        raise DependencyError(f"{address}: installing {requirements.file} did not finish within {timeout_s:g} s") from None
    if proc.returncode == 0:
        return
    output = proc.stdout + proc.stderr
    missing = _NO_MATCH.search(output)
    if missing:
        line, message = _no_wheel_message(missing.group(1), requirements, python, scratch, timeout_s)
        where = f"{requirements.file}:{line}:1" if line else requirements.file
        raise DependencyError(f"{address}: {where}: {message}")
    shown = output.replace(str(requirements_file), requirements.file)
    raise DependencyError(f"{address}: pip could not install {requirements.file}:\n{_tail(shown)}")


def _no_wheel_message(requirement_text: str, requirements: Requirements, python: str, scratch: Path,
                      timeout_s: float) -> tuple[int, str]:
    """Why pip found no wheel for the component: asks pip (without installing) which wheel it
    would take for the build host itself, to tell a native-only package from a missing one."""
    try:
        name = canonicalize_name(Requirement(requirement_text).name)
    except InvalidRequirement:
        name = requirement_text
    declared = next((r for r in requirements.declared if r.name == name), None)
    line = declared.line if declared else 0
    needed = "" if declared else " (a dependency of a declared package)"
    host_wheel = _host_wheel(requirement_text, python, scratch, timeout_s)
    if host_wheel is not None:
        filename = host_wheel
        try:
            _, version, _, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            tags, version = frozenset(), None
        if tags and not any(_runs_in_component(tag.abi, tag.platform) for tag in tags):
            shown = ", ".join(sorted(str(t) for t in tags)[:2])
            return line, (f"{name}{needed} {version} has only native wheels ({shown}): its compiled code can't run in the "
                    f"component's WebAssembly CPython {TARGET_PYTHON}; {WHAT_TO_DO_NATIVE}")
    return line, (f"no wheel of {name}{needed} for CPython {TARGET_PYTHON} could be found: faasops installs wheels only "
            "(no setup.py runs on the build host). Check the name and version; if the package publishes only a source "
            "distribution, build a pure-Python wheel and serve it from a --find-links directory (PIP_FIND_LINKS)")


def _host_wheel(requirement_text: str, python: str, scratch: Path, timeout_s: float) -> str | None:
    """The wheel file name pip would pick for the build host, or None."""
    command = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--dry-run",
               "--ignore-installed", "--no-deps", "--only-binary", ":all:", "--quiet", "--report", "-",
               requirement_text]
    try:
        proc = _run(command, scratch, timeout_s)
        report = json.loads(proc.stdout)
        url = report["install"][0]["download_info"]["url"]
    except (subprocess.TimeoutExpired, ValueError, KeyError, IndexError, TypeError):
        return None
    return PurePosixPath(url.split("#", 1)[0]).name


def native_wheels(site: Path) -> list[str]:
    """A message per installed distribution with compiled code for another platform than the
    component's (a native wheel tag, or a ``.so`` in a wheel that claims to be pure)."""
    found = []
    for dist_info in sorted(site.glob("*.dist-info")):
        name, version = _dist_name(dist_info)
        tags = [tag for line in _read_lines(dist_info / "WHEEL") if line.startswith("Tag:")
                for tag in parse_tag(line.split(":", 1)[1].strip())]
        wasi = any(tag.platform.startswith("wasi") for tag in tags)
        foreign = [str(tag) for tag in tags if not _runs_in_component(tag.abi, tag.platform)]
        compiled = [] if wasi else [path for path in _record_paths(dist_info) if path.endswith(NATIVE_SUFFIXES)]
        if foreign or compiled:
            what = f"wheel {foreign[0]}" if foreign else f"compiled file {compiled[0]}"
            found.append(f"{name} {version} is native code ({what}) that can't run in the component's WebAssembly "
                         f"CPython {TARGET_PYTHON}; {WHAT_TO_DO_NATIVE}")
    return found


def top_level_modules(site: Path) -> dict[str, str]:
    """Top-level importable name → distribution name, from each installed distribution's RECORD."""
    modules: dict[str, str] = {}
    for dist_info in sorted(site.glob("*.dist-info")):
        name, _ = _dist_name(dist_info)
        for path in _record_paths(dist_info):
            first, _, rest = path.partition("/")
            if first.endswith((".dist-info", ".data")) or first in ("..", "bin", "__pycache__") or not first:
                continue
            if rest:
                modules.setdefault(first, name)
            elif first.endswith(".py"):
                modules.setdefault(first[:-3], name)
            elif first.endswith(NATIVE_SUFFIXES):
                modules.setdefault(first.split(".", 1)[0], name)
    return modules


def copy_into(installed: InstalledDependencies, dest: Path) -> Path:
    """A private copy of the install for one build: componentize-py mounts its python path
    writable while the handler's top-level code runs, which must not change the shared cache."""
    shutil.copytree(installed.path, dest, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


# ---------------------------------------------------------------------------------------- helpers


def _parse_bytes(data: bytes, display: str) -> tuple[Requirements | None, list[Problem]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, [Problem(display, 0, 0, "", "the file is not valid UTF-8; save it as UTF-8")]
    requirements, problems = parse_requirements(text, display)
    return requirements, problems


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each line, backslash continuations joined as pip joins them."""
    lines: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        start, before = pending if pending else (number, "")
        if line.endswith("\\"):
            pending = (start, before + line[:-1] + " ")
            continue
        pending = None
        lines.append((start, before + line))
    if pending:
        lines.append(pending)
    return lines


def _hashes(options: list[str]) -> tuple[list[str], str | None]:
    """The ``--hash`` values among a requirement's options, or the first other option."""
    hashes = []
    tokens = iter(options)
    for token in tokens:
        if token.startswith("--hash="):
            hashes.append(token.split("=", 1)[1])
        elif token == "--hash":
            hashes.append(next(tokens, ""))
        else:
            return hashes, token
    return hashes, None


def _option_message(option: str) -> str:
    name = option.split("=", 1)[0]
    if name in ("-e", "--editable"):
        return "editable installs are not supported: faasops installs wheels; keep the code in the source directory"
    if name in ("-r", "--requirement", "-c", "--constraint"):
        return f"`{name}` includes another file, which the builder does not read; list the requirements in this file"
    if name in _INDEX_OPTIONS:
        return (f"`{name}` is not read from {REQUIREMENTS_FILE}: the build host's pip configuration chooses the index "
                "(PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS or pip.conf)")
    return f"the pip option `{name}` is not supported here; only requirements by name and `--hash` are"


def _runs_in_component(abi: str, platform: str) -> bool:
    return platform.startswith("wasi") or (abi == "none" and platform == "any")


def _dist_name(dist_info: Path) -> tuple[str, str]:
    name, _, version = dist_info.name.removesuffix(".dist-info").partition("-")
    for line in _read_lines(dist_info / "METADATA"):
        if line.startswith("Name:"):
            name = line.split(":", 1)[1].strip()
        elif not line:
            break
    return name, version


def _record_paths(dist_info: Path) -> list[str]:
    return [line.split(",", 1)[0] for line in _read_lines(dist_info / "RECORD") if line]


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def _run(command: list[str], cwd: Path, timeout_s: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_ROOT_USER_ACTION": "ignore"}
    # Its own session, like componentize-py: a terminal's Ctrl-C goes to faasops, which lets
    # running builds finish.
    return subprocess.run(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=timeout_s, start_new_session=True)


def _tail(output: str, lines: int = 20) -> str:
    """pip's error: from its first ``ERROR:`` line (the progress before it is noise)."""
    kept = [line for line in output.splitlines() if line.strip()]
    first_error = next((i for i, line in enumerate(kept) if line.startswith("ERROR:")), 0)
    kept = kept[first_error:][:lines]
    return "\n".join("  " + line for line in kept) or "  (no output)"

