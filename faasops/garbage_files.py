"""Garbage collection on local disk: which directories are the project's own, and removing files
from them, for the local providers' :class:`~faasops.providers.StoredArtifacts` methods.

A directory is the project's own when it lies inside the project's ``.faasops``: nothing else
writes there, and the state lock (held by gc and every apply) keeps this project's writers out.
A directory elsewhere (``FAASOPS_BUILD_CACHE``, a ``path``/``cache_dir`` option) may be shared
with other projects, whose applies gc cannot see or lock out: it is left alone.
"""

from __future__ import annotations

from pathlib import Path

from faasops.model import Project
from faasops.providers import StoredItem

# Temporary names of atomic writes (``.name.xxxx.tmp``): a writer's, never collected here.
_TEMP_SUFFIX = ".tmp"


def owned_by(project: Project, directory: Path) -> bool:
    """Whether ``directory`` lies inside ``project``'s ``.faasops`` (and so is its alone)."""
    try:
        return Path(directory).resolve().is_relative_to(project.state_dir.resolve())
    except OSError:
        return False


def shared_note(directory: Path, what: str) -> str:
    return (f"{what} {directory} is outside the project's .faasops and may be shared with other projects: "
            "left alone (clean it with the projects that use it stopped)")


def is_temporary(path: Path) -> bool:
    return path.name.startswith(".") or path.name.endswith(_TEMP_SUFFIX)


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def remove_files(item: StoredItem, paths: list[Path]) -> StoredItem | None:
    """Unlink ``paths`` (an item's files); the item as removed, with the bytes that actually
    went, or None when none of them was still there."""
    freed = 0
    found = False
    for path in paths:
        size = file_size(path)
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        found = True
        freed += size
    return StoredItem(item.kind, item.name, freed) if found else None
