"""A function's ``files``: which files of its source directory the component sees, and where.

The entries mean what they mean in spin.toml (spin ``crates/loader/src/local.rs``
``copy_file_mounts``), with the function's source directory in the place of the app directory:

* ``"index.html"`` — that file, at ``/index.html``;
* ``"static"`` — every file under that directory, at ``/static/…``;
* ``"static/**/*.css"`` — every file the glob matches, at its path under ``/`` (Python's
  recursive glob: ``*`` stays within one directory and ``**`` spans any depth, and hidden files
  match);
* ``{source: assets, destination: /}`` — a directory's files under ``destination``, or one file
  at ``destination``.

Stricter than Spin on purpose: a path that is absolute, has a ``..`` part or passes through a
symbolic link is refused, so nothing outside the source directory is ever mounted — and since the
source directory is what the build key covers, a changed file changes the build key and the
artifact. Files under directories the source snapshot leaves out (``__pycache__``, ``.git``,
``.faasops`` …) are not mounted.
"""

from __future__ import annotations

import glob
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Iterable

from faasops.errors import FaasopsError
from faasops.model import FileMount
from faasops.source import IGNORED_DIRS

_GLOB_CHARACTERS = frozenset("*?[")


class FileMountError(FaasopsError):
    """A ``files`` entry Spin or faasops would refuse; the message is relative to the source."""


def _relative_parts(text: str, what: str) -> tuple[str, ...]:
    """The parts of a relative source path, refusing absolute paths and ``..``."""
    if text.startswith("/") or PurePosixPath(text).is_absolute() or "\\" in text:
        raise FileMountError(f"{what} {text!r} must be relative to the source directory")
    parts = tuple(part for part in text.split("/") if part not in ("", "."))
    if ".." in parts:
        raise FileMountError(f"{what} {text!r} must not contain '..': files outside the source "
                             "directory can't be mounted")
    return parts


def _guest_parts(destination: str) -> tuple[str, ...]:
    if not destination.startswith("/"):
        raise FileMountError(f"destination {destination!r} must be an absolute path such as "
                             "'/static'")
    parts = tuple(part for part in destination.split("/") if part not in ("", "."))
    if ".." in parts:
        raise FileMountError(f"destination {destination!r} must not contain '..'")
    return parts


def _check_no_links(root: Path, parts: Iterable[str], shown: str) -> Path:
    """``root/parts``, refusing a symbolic link at any level."""
    path = root
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise FileMountError(f"{shown}: {path.relative_to(root).as_posix()} is a symbolic "
                                 "link; files mounts must be plain files and directories")
    return path


def _ignored(relative: PurePosixPath) -> bool:
    return any(part in IGNORED_DIRS for part in relative.parts)


def _files_under(root: Path, directory: Path, shown: str) -> list[Path]:
    """Every regular file under ``directory``, refusing symbolic links on the way."""
    found = []
    for current, dirs, files in os.walk(directory):
        here = Path(current)
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
        for name in [*dirs, *sorted(files)]:
            path = here / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise FileMountError(f"{shown}: {path.relative_to(root).as_posix()} is a symbolic "
                                     "link; files mounts must be plain files and directories")
            if stat.S_ISREG(mode):
                found.append(path)
    return found


def resolve_file_mounts(source_dir: Path, mounts: Iterable[FileMount]) -> dict[str, Path]:
    """Guest path (relative to ``/``, ``/``-separated) → the host file mounted there, for the
    ``files`` entries ``mounts`` of a function whose source is ``source_dir``. Later entries
    win where two place a file at the same path, as Spin's copies do."""
    root = Path(source_dir)
    placed: dict[str, Path] = {}
    for mount in mounts:
        shown = mount.source if mount.destination is None else f"{mount.source} -> {mount.destination}"
        parts = _relative_parts(mount.source, "source" if mount.destination else "files entry")
        if mount.destination is None:
            if not parts:
                raise FileMountError(f"files entry {mount.source!r} names the whole source "
                                     "directory: use a glob such as '**/*' or {source, destination}")
            dest_prefix: tuple[str, ...] = ()
        else:
            dest_prefix = _guest_parts(mount.destination)
        path = _check_no_links(root, parts, shown)
        if path.is_dir():
            base = path if mount.destination is not None else root
            for file in _files_under(root, path, shown):
                placed["/".join((*dest_prefix, *file.relative_to(base).parts))] = file
        elif path.is_file():
            if _ignored(PurePosixPath(*parts)):
                raise FileMountError(f"{shown}: files under {', '.join(sorted(IGNORED_DIRS))} are "
                                     "not part of the function's source")
            if mount.destination is None:
                placed["/".join(parts)] = path
            else:
                if mount.destination.endswith("/") or not dest_prefix:
                    raise FileMountError(f"{shown}: {mount.destination!r} is not a valid "
                                         "destination file name")
                placed["/".join(dest_prefix)] = path
        elif mount.destination is None and _GLOB_CHARACTERS & set(mount.source):
            for match in sorted(glob.glob(mount.source, root_dir=root, recursive=True,
                                          include_hidden=True)):
                relative = PurePosixPath(match)
                if _ignored(relative):
                    continue
                file = _check_no_links(root, relative.parts, shown)
                if file.is_file():
                    placed[relative.as_posix()] = file
        elif path.exists():
            raise FileMountError(f"{shown}: not a regular file or directory")
        else:
            raise FileMountError(f"{mount.source!r} does not exist in the source directory"
                                 + ("" if mount.destination else " and is not a glob pattern"))
    return placed
