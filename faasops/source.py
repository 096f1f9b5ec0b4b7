"""Freezing a function's source directory into a deterministic, content-addressed archive."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

from faasops.errors import FaasopsError
from faasops.providers import SourceSnapshot

# Files a build never needs and that change without the source changing.
IGNORED_DIRS = frozenset({"__pycache__", ".git", ".faasops", ".venv", "node_modules"})
IGNORED_SUFFIXES = (".pyc", ".pyo")
MAX_SOURCE_BYTES = 64 * 1024 * 1024


class SourceError(FaasopsError):
    """A source directory can't be packaged (escaping symlink, too large, unreadable).

    ``relative`` is the same message with paths relative to the source directory, for a
    problem reported at the manifest's ``source:`` value."""

    def __init__(self, message: str, relative: str | None = None):
        super().__init__(message)
        self.relative = relative or message


def _escape(root: Path, path: Path) -> SourceError:
    reason = "symlink points outside the source directory"
    return SourceError(f"{path}: {reason}", f"{path.relative_to(root).as_posix()}: {reason}")


def _too_large(root: Path, max_bytes: int) -> SourceError:
    reason = (f"source is larger than {max_bytes // (1024 * 1024)} MiB; "
              "keep build outputs and data files out of function sources")
    return SourceError(f"{root}: {reason}", reason)


def _unreadable(path: Path, name: str, exc: OSError) -> SourceError:
    reason = f"cannot read the file ({exc.strerror or type(exc).__name__})"
    return SourceError(f"{path}: {reason}", f"{name}: {reason}")


def _problem(root: Path, path: Path, reason: str) -> SourceError:
    relative = _relative(root, path)
    return SourceError(f"{root / relative}: {reason}", f"{relative}: {reason}")


def _check_name(root: Path, path: Path) -> None:
    """Archive names, digests and the build all need UTF-8 names; os.walk hands other bytes over
    as lone surrogates (PEP 383), which nothing downstream can encode."""
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError:
        raise _problem(root, path, "the file name is not valid UTF-8; rename it") from None


def _check_link(root: Path, real_root: Path, path: Path) -> None:
    if not path.is_symlink():
        return
    try:
        target = path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: Python 3.11's "Symlink loop from …"
        raise _problem(root, path, "symlink loop; remove the link") from None
    if not target.is_relative_to(real_root):
        raise _escape(root, path)


def _walk(root: Path) -> list[tuple[str, Path]]:
    """(archive name, path) of every file under ``root``, sorted, with escapes, symlink loops and
    names that aren't UTF-8 rejected."""
    real_root = root.resolve()
    found: list[tuple[str, Path]] = []

    def unreadable(exc: OSError) -> None:  # os.walk would skip a directory it can't list
        where = Path(exc.filename) if exc.filename else root
        raise _unreadable(where, _relative(root, where), exc)

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        for name in dirnames:
            path = Path(dirpath, name)
            _check_name(root, path)
            _check_link(root, real_root, path)
        for name in sorted(filenames):  # sorted: the first problem found is the same on every run
            if name.endswith(IGNORED_SUFFIXES):
                continue
            path = Path(dirpath, name)
            _check_name(root, path)
            _check_link(root, real_root, path)
            if not path.is_file():
                continue  # sockets, fifos, dangling links
            found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def _relative(root: Path, path: Path) -> str:
    try:
        # A name that isn't UTF-8 is shown by its bytes (\\xff), never as a lone surrogate.
        return os.fsencode(path.relative_to(root).as_posix()).decode("utf-8", "backslashreplace") or "."
    except ValueError:
        return str(path)


def _read(root: Path, max_bytes: int) -> list[tuple[str, bytes, bool]]:
    entries = []
    total = 0
    for name, path in _walk(root):
        try:
            info = path.stat()
            # Sizes first: a (sparse) file of many GiB must fail here, not after reading it.
            if total + info.st_size > max_bytes:
                raise _too_large(root, max_bytes)
            with path.open("rb") as stream:
                data = stream.read(max_bytes - total + 1)
        except OSError as exc:
            raise _unreadable(path, name, exc) from None
        total += len(data)
        if total > max_bytes:  # grew since stat
            raise _too_large(root, max_bytes)
        entries.append((name, data, bool(info.st_mode & stat.S_IXUSR)))
    return entries


def check_directory(root: Path, max_bytes: int = MAX_SOURCE_BYTES) -> None:
    """Raise :class:`SourceError` where :func:`snapshot_directory` would (escaping symlinks,
    more than ``max_bytes``), from names and sizes alone: cheap enough for validation, which
    must reject such a source before anything (a lock, a state file) is written."""
    total = 0
    for name, path in _walk(root):
        try:
            total += path.stat().st_size
        except OSError as exc:
            raise _unreadable(path, name, exc) from None
        if total > max_bytes:
            raise _too_large(root, max_bytes)


def _digest(entries: list[tuple[str, bytes, bool]]) -> str:
    digest = hashlib.sha256()
    for name, data, executable in entries:
        digest.update(f"{name}\0{int(executable)}\0{len(data)}\0".encode())
        digest.update(hashlib.sha256(data).digest())
    return "sha256:" + digest.hexdigest()


def digest_directory(root: Path, max_bytes: int = MAX_SOURCE_BYTES) -> str:
    """The content digest :func:`snapshot_directory` would give, without building the archive
    (plan needs only this)."""
    return _digest(_read(root, max_bytes))


def snapshot_directory(root: Path, max_bytes: int = MAX_SOURCE_BYTES) -> SourceSnapshot:
    """Archive ``root`` as a gzip'd tar whose bytes depend only on names, modes and contents.

    Owners, mtimes and the gzip header time are zeroed, so a fresh clone of the same commit
    yields the same digest as the author's checkout.
    """
    entries = _read(root, max_bytes)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, executable in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if executable else 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return SourceSnapshot(
        digest=_digest(entries),
        archive=gzip.compress(raw.getvalue(), mtime=0),
        files=tuple(name for name, _, _ in entries),
        size=sum(len(data) for _, data, _ in entries),
    )
