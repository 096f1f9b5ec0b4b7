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

A requirement with no wheel for the component gets what Spin users get from a host virtualenv:
the CPython 3.12 wheel for the build host's platform, accepted when every compiled extension
module in it has a pure-Python module of the same dotted name beside it (``http-router`` ships
``router.py`` next to ``router.cpython-312-x86_64-linux-gnu.so``). The component's interpreter
can never load the compiled files, so they are left out: the wheel is repacked as a pure wheel
(same name, version and dist-info) into a scratch ``--find-links`` directory, and pip resolves
again, its dependencies included. A native wheel without full fallbacks (numpy) is refused,
naming the first compiled module that lacks one.

``spin-sdk`` and ``componentize-py`` lines (the http-py template lists both for the developer's
virtualenv) are the builder's toolchain: they are not installed, and a ``spin-sdk`` version other
than the toolchain's is refused.
"""

from __future__ import annotations

import base64
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
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import parse_tag, platform_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from faasops.errors import Problem, ProviderError
from faasops.oci import file_lock

REQUIREMENTS_FILE = "requirements.txt"
DEPENDENCIES_FIELD = "dependencies"  # faas.yaml's per-function list, read like requirements.txt lines
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
    hashes: tuple[str, ...] = ()
    where: str = ""  # as messages show it: ``requirements.txt:2:1`` or ``dependencies[1]``

    @property
    def toolchain(self) -> bool:
        return self.name in TOOLCHAIN_PROJECTS


@dataclass(frozen=True)
class Requirements:
    """Parsed requirements: a requirements file, or faas.yaml's ``dependencies:`` list
    (``file`` as shown in messages: ``requirements.txt`` or ``dependencies``)."""

    file: str
    declared: tuple[DeclaredRequirement, ...]

    @property
    def installable(self) -> tuple[DeclaredRequirement, ...]:
        """What pip installs: everything but the builder's own toolchain."""
        return tuple(r for r in self.declared if not r.toolchain)

    def pip_text(self, extra_hashes: Mapping[str, list[str]] | None = None) -> str:
        """The file pip reads: each requirement on its own line number, so pip's ``(line N)``
        points into the user's file (``extra_hashes``: more ``--hash`` values by project name)."""
        lines = [""] * max((r.line for r in self.installable), default=0)
        for requirement in self.installable:
            extra = (extra_hashes or {}).get(requirement.name, [])
            lines[requirement.line - 1] = requirement.text + "".join(f" --hash={h}" for h in extra)
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
        parsed = _parse_line(line, line_no, f"{display_file}:{line_no}:1")
        if isinstance(parsed, str):
            problems.append(Problem(display_file, line_no, 1, "", parsed))
        else:
            declared.append(parsed)
    return Requirements(display_file, tuple(declared)), problems


def parse_dependency_list(entries: Sequence[str]) -> tuple[Requirements, list[tuple[int, str]]]:
    """faas.yaml's ``dependencies:`` list: each entry is read as one requirements.txt line (the
    same accepted and refused forms); the problems come as ``(index, message)``."""
    declared: list[DeclaredRequirement] = []
    problems: list[tuple[int, str]] = []
    for index, entry in enumerate(entries):
        line = _COMMENT.sub("", entry).strip()
        if not line:
            problems.append((index, "an empty requirement: write one requirement such as `requests==2.32.3`"))
            continue
        parsed = _parse_line(line, index + 1, f"{DEPENDENCIES_FIELD}[{index}]")
        if isinstance(parsed, str):
            problems.append((index, parsed))
        else:
            declared.append(parsed)
    return Requirements(DEPENDENCIES_FIELD, tuple(declared)), problems


def function_requirements(dependencies: Sequence[str], from_file: Requirements | None
                          ) -> tuple[Requirements | None, list[Problem]]:
    """What a function installs: faas.yaml's ``dependencies:`` when it lists any, else its
    requirements file. Both at once is refused, unless the file lists only the builder's
    toolchain (spin-sdk's http-py template writes ``spin-sdk`` and ``componentize-py``), whose
    lines then still count (a spin-sdk version is checked)."""
    if not dependencies:
        return from_file, []
    listed, entry_problems = parse_dependency_list(dependencies)
    problems = [Problem(f"{DEPENDENCIES_FIELD}[{index}]", 0, 0, "", message) for index, message in entry_problems]
    if from_file is not None and from_file.installable:
        problems.append(Problem(DEPENDENCIES_FIELD, 0, 0, "", both_declared_message(from_file)))
    toolchain = tuple(r for r in from_file.declared if r.toolchain) if from_file is not None else ()
    return Requirements(listed.file, listed.declared + toolchain), problems


def both_declared_message(from_file: Requirements) -> str:
    """Why ``dependencies:`` and a requirements file can't both declare packages."""
    names = ", ".join(r.name for r in from_file.installable)
    return (f"the source directory's {from_file.file} declares dependencies too ({names}); declare them in one "
            f"place: move them into `dependencies:` and delete {from_file.file} (or keep only spin-sdk/componentize-py "
            f"lines in it), or drop `dependencies:`")


def _parse_line(line: str, line_no: int, where: str) -> DeclaredRequirement | str:
    """One requirement line (comment removed) as declared, or why it is refused.

    Accepted: PEP 508 requirements by name (with extras, versions, markers) and ``--hash``
    options. Refused, with what to do instead: editable installs, URLs and paths (faasops installs
    wheels from an index), includes (``-r``/``-c``) and index or install options (the build host's
    pip configuration decides those)."""
    # As pip splits a line: the requirement runs up to the first word starting with `-`
    # (markers keep their quotes); the options after it are shell words.
    words = line.split()
    first_option = next((i for i, word in enumerate(words) if word.startswith("-")), len(words))
    requirement_text = " ".join(words[:first_option])
    try:
        options = shlex.split(" ".join(words[first_option:]))
    except ValueError as exc:
        return f"cannot read the options on this line: {exc}"
    if not requirement_text:
        return _option_message(options[0])
    hashes, bad_option = _hashes(options)
    if bad_option is not None:
        return _option_message(bad_option)
    try:
        requirement = Requirement(requirement_text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "invalid"
        return (f"{requirement_text!r} is not a requirement by name ({reason}); faasops installs wheels from an "
                "index: write `name==version`, and publish local code as a wheel or keep it in the source directory")
    if requirement.url:
        return (f"{requirement.name} @ {requirement.url}: direct URLs are not installed; publish a wheel on an "
                "index the build host's pip reads (PIP_INDEX_URL, PIP_FIND_LINKS) and require it by name")
    text_for_pip = str(requirement) + "".join(f" --hash={h}" for h in hashes)
    return DeclaredRequirement(line_no, canonicalize_name(requirement.name), text_for_pip, str(requirement.specifier),
                               tuple(hashes), where)


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


def declared_requirements(dependencies: Sequence[str], archive: bytes, files: tuple[str, ...]
                          ) -> tuple[Requirements | None, list[Problem]]:
    """What a build installs for a function: its ``dependencies:`` (from faas.yaml) or the
    requirements file of its source snapshot (see :func:`function_requirements`)."""
    from_file, problems = requirements_in_archive(archive, files)
    requirements, more = function_requirements(dependencies, from_file)
    return requirements, problems + more


# spin-sdk releases whose handler API (`http.IncomingHandler.handle_request`, sync) is the one
# the builder's spin-sdk serves: a source pinning any of them builds unchanged, as the Spin
# workshops' `spin-sdk == 2.0.0` apps do. 4.x is the async `HttpHandler` generation.
_COMPATIBLE_CANDIDATES = tuple(Version(f"{major}.{minor}.{patch}")
                               for major in (2, 3) for minor in range(30) for patch in range(30))


def toolchain_problems(requirements: Requirements, spin_sdk_version: str) -> list[Problem]:
    """A ``spin-sdk`` requirement no release of the builder's handler API generation (2.x, 3.x)
    satisfies. Other pins of that generation are the developer's virtualenv's business: faasops
    builds with its own spin-sdk (``spin_sdk_version``), as a pinned toolchain does."""
    problems = []
    for requirement in requirements.declared:
        if requirement.name != "spin-sdk" or not requirement.specifier:
            continue
        try:
            wanted = SpecifierSet(requirement.specifier)
            # Does the pin admit some 2.x/3.x release? Probed over X.Y.Z with Y, Z < 30 (spin-sdk
            # is at 3.4.1), since a specifier set can't be intersected with a range directly.
            compatible = Version(spin_sdk_version) in wanted or any(
                candidate in wanted for candidate in _COMPATIBLE_CANDIDATES)
        except InvalidVersion:
            continue
        if not compatible:
            problems.append(Problem(requirement.where, 0, 0, "", (
                f"spin-sdk{requirement.specifier} is asked for, but this builder builds with spin-sdk "
                f"{spin_sdk_version} (the sync IncomingHandler API of spin-sdk 2.x and 3.x); require a 2.x or 3.x "
                "spin-sdk, or drop the line")))
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
    """pip's install into ``site``; each requirement without a wheel for the component is
    retried once with its host wheel minus the compiled files, when it has pure fallbacks."""
    requirements_file = scratch / REQUIREMENTS_FILE
    fallbacks = scratch / "fallbacks"
    extra_hashes: dict[str, list[str]] = {}
    tried: set[str] = set()
    while True:
        requirements_file.write_text(requirements.pip_text(extra_hashes))
        command = pip_command(python, site, requirements_file)
        if tried:
            command += ["--find-links", str(fallbacks)]
        try:
            proc = _run(command, scratch, timeout_s)
        except subprocess.TimeoutExpired:
            raise DependencyError(f"{address}: installing {requirements.file} did not finish within {timeout_s:g} s") from None
        if proc.returncode == 0:
            return
        output = proc.stdout + proc.stderr
        missing = _NO_MATCH.search(output)
        if not missing:
            shown = output.replace(str(requirements_file), requirements.file)
            raise DependencyError(f"{address}: pip could not install {requirements.file}:\n{_tail(shown)}")
        requirement_text = missing.group(1)
        name = _project_name(requirement_text)
        declared = next((r for r in requirements.declared if r.name == name), None)
        where = declared.where if declared else requirements.file
        if name not in tried:
            tried.add(name)
            wanted = declared.text.split(" --hash", 1)[0] if declared else requirement_text
            try:
                fallback = _fallback_wheel(wanted, python, scratch, fallbacks, timeout_s)
            except NoFallback as exc:
                raise DependencyError(f"{address}: {where}: {exc}") from None
            if fallback is not None:
                original, repacked = fallback
                if declared is not None and declared.hashes:
                    # Hash-checking mode: the host wheel must be the one the hashes name; pip then
                    # gets the hash of its repacked copy as well.
                    if file_hash(original) not in declared.hashes:
                        raise DependencyError(f"{address}: {where}: {original.name} matches none of the hashes "
                                              f"given for {name}")
                    extra_hashes[name] = [file_hash(repacked)]
                continue
        declared, message = _no_wheel_message(requirement_text, requirements, python, scratch, timeout_s)
        where = declared.where if declared else requirements.file
        raise DependencyError(f"{address}: {where}: {message}")


def host_platforms() -> list[str]:
    """The build host's platform tags, most specific first (``manylinux_2_39_x86_64`` …
    ``linux_x86_64``): the wheels its own CPython would take."""
    return list(dict.fromkeys(platform_tags()))


def _fallback_wheel(requirement_text: str, python: str, scratch: Path, fallbacks: Path,
                    timeout_s: float) -> tuple[Path, Path] | None:
    """The build host's CPython 3.12 wheel of ``requirement_text`` repacked without its compiled
    files into ``fallbacks`` (``(original, repacked)``), or None when there is no such wheel.
    Raises :class:`NoFallback` when a compiled module in it has no pure-Python fallback."""
    downloads = scratch / "host-wheels"
    command = [python, "-m", "pip", "download", "--disable-pip-version-check", "--no-input", "--no-deps",
               "--only-binary", ":all:", "--python-version", TARGET_PYTHON, "--implementation", "cp",
               "--dest", str(downloads)]
    for platform in host_platforms():
        command += ["--platform", platform]
    before = set(downloads.glob("*.whl"))
    try:
        proc = _run(command + [requirement_text], scratch, timeout_s)
    except subprocess.TimeoutExpired:
        return None
    got = sorted(set(downloads.glob("*.whl")) - before)
    if proc.returncode != 0 or not got:
        return None
    return got[0], pure_fallback(got[0], fallbacks)


class NoFallback(Exception):
    """A native wheel with a compiled module that has no pure-Python module beside it."""


def pure_fallback(wheel: Path, dest_dir: Path) -> Path:
    """``wheel`` (a native one) as a ``py3-none-any`` wheel in ``dest_dir`` without its compiled
    files, when every compiled extension module in it has a pure-Python sibling module of the
    same dotted name (``pkg/router.py`` or ``pkg/router/__init__.py`` beside
    ``pkg/router.cpython-312-x86_64-linux-gnu.so``). Other compiled files (vendored shared
    libraries) only serve those modules and go too. Raises :class:`NoFallback` naming the first
    module without one."""
    name, version, _, tags = parse_wheel_filename(wheel.name)
    with zipfile.ZipFile(wheel) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    dist_info = next((path.split("/", 1)[0] for path in members
                      if path.count("/") == 1 and path.endswith(".dist-info/WHEEL")), None)
    if dist_info is None:
        raise NoFallback(f"{wheel.name} is not a valid wheel: it has no .dist-info/WHEEL")
    importable = {_importable_path(path) for path in members}
    for path in sorted(members):
        module = _extension_module(_importable_path(path))
        if module is None:
            continue
        stem = module.replace(".", "/")
        if f"{stem}.py" not in importable and f"{stem}/__init__.py" not in importable:
            shown = ", ".join(sorted(str(t) for t in tags)[:2])
            raise NoFallback(
                f"{name} {version} has only native wheels ({shown}): its compiled module {module} ({path}) has no "
                f"pure-Python fallback ({stem}.py) and can't run in the component's WebAssembly CPython "
                f"{TARGET_PYTHON}; {WHAT_TO_DO_NATIVE}")
    kept = {path: data for path, data in members.items()
            if not _is_compiled(path) and path not in (f"{dist_info}/RECORD", f"{dist_info}/WHEEL")}
    dropped = sorted(path for path in members if _is_compiled(path))
    wheel_lines = [line for line in members[f"{dist_info}/WHEEL"].decode(errors="replace").splitlines()
                   if line and not line.startswith(("Tag:", "Root-Is-Purelib:"))]
    kept[f"{dist_info}/WHEEL"] = "\n".join(wheel_lines + ["Root-Is-Purelib: true", "Tag: py3-none-any", ""]).encode()
    # Why this distribution has no compiled files in the component (kept in its dist-info).
    kept[f"{dist_info}/FAASOPS_FALLBACK"] = "\n".join([f"from {wheel.name}, without:", *dropped, ""]).encode()
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in kept.items())
    kept[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / f"{wheel.name.split('-', 1)[0]}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in kept.items():
            archive.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return out


def file_hash(path: Path) -> str:
    """``sha256:<hex>`` of a file, as pip's ``--hash`` writes it."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


_DATA_LIB = re.compile(r"^[^/]+\.data/(purelib|platlib)/")
_COMPILED = re.compile(r"\.(so|pyd|dylib|dll)(\.[0-9]+)*$")


def _importable_path(path: str) -> str:
    """Where a wheel member lands relative to site-packages."""
    return _DATA_LIB.sub("", path)


def _is_compiled(path: str) -> bool:
    return bool(_COMPILED.search(path))


def _extension_module(path: str) -> str | None:
    """The dotted name of the extension module at ``path`` (``pkg/router.cpython-312-….so`` →
    ``pkg.router``), or None when ``path`` is not one (a shared library in ``pkg.libs/``)."""
    if not path.endswith((".so", ".pyd")):
        return None
    *dirs, filename = path.split("/")
    parts = [*dirs, filename.split(".", 1)[0]]
    return ".".join(parts) if all(part.isidentifier() for part in parts) else None


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _project_name(requirement_text: str) -> str:
    try:
        return canonicalize_name(Requirement(requirement_text).name)
    except InvalidRequirement:
        return requirement_text


def _no_wheel_message(requirement_text: str, requirements: Requirements, python: str, scratch: Path,
                      timeout_s: float) -> tuple[DeclaredRequirement | None, str]:
    """Why pip found no wheel for the component: asks pip (without installing) which wheel it
    would take for the build host itself, to tell a native-only package from a missing one."""
    name = _project_name(requirement_text)
    declared = next((r for r in requirements.declared if r.name == name), None)
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
            return declared, (f"{name}{needed} {version} has only native wheels ({shown}): its compiled code can't run in the "
                    f"component's WebAssembly CPython {TARGET_PYTHON}; {WHAT_TO_DO_NATIVE}")
    return declared, (f"no wheel of {name}{needed} for CPython {TARGET_PYTHON} could be found: faasops installs wheels only "
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

