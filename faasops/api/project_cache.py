"""The declared project for the API's reads, loaded again only when the work tree changed.

Loading and validating the manifests is most of a read's cost (about 250 ms at 1,000
functions), and between writes nothing changes. The project's files live in a git work tree,
so git already knows what changed: the commit checked out, plus every path ``git status``
reports as modified, staged or untracked, each with its size and modification time. When that
version is the one the cached project was loaded at, the cached project is answered.

What git does not see is not watched: an ignored file, or a file outside the work tree that a
manifest includes, changes a read only after the next commit or edit of a tracked file.
Without a git work tree every read loads the project afresh.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Callable

from faasops.model import Project


# git status --porcelain=v2: how many space-separated fields precede the path, by entry type.
_FIELDS_BEFORE_PATH = {"1": 8, "2": 9, "u": 10}


class ProjectCache:
    """``load()``'s project, kept while the git work tree at ``top`` stays the same."""

    def __init__(self, top: Path | None, load: Callable[[], Project]):
        self._top = top
        self._load = load
        self._lock = threading.Lock()
        self._cached: tuple[tuple[str, ...], Project] | None = None

    def get(self) -> Project:
        """The declared project as the work tree holds it now."""
        version = self._version()
        with self._lock:
            if version is not None and self._cached is not None and self._cached[0] == version:
                return self._cached[1]
        project = self._load()  # a ManifestError is raised to every read until the tree is fixed
        if version is not None:
            with self._lock:
                self._cached = (version, project)
        return project

    def _version(self) -> tuple[str, ...] | None:
        """HEAD plus each changed path's status, size and modification time; None when git
        cannot say (no work tree, git missing), so nothing is cached."""
        if self._top is None:
            return None
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
        try:
            # One process: porcelain v2's branch header names the commit checked out.
            status = subprocess.run(["git", "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all"],
                                    cwd=self._top, capture_output=True, text=True, env=env)
        except OSError:
            return None
        if status.returncode != 0:
            return None
        version: list[str] = []
        entries = iter(status.stdout.split("\0"))
        for entry in entries:
            if not entry or (entry.startswith("# ") and not entry.startswith("# branch.oid ")):
                continue
            version.append(entry)
            if entry.startswith("#"):
                continue
            # Fields before the path: 8 for a change, 9 for a rename or copy, 10 for an unmerged
            # path, 1 for an untracked or ignored one. A rename's source path follows as its own entry.
            path = entry.split(" ", _FIELDS_BEFORE_PATH.get(entry[0], 1))[-1]
            if entry[0] == "2":
                version.append(next(entries, ""))
            try:
                st = (self._top / path).stat()
                version.append(f"{st.st_size}\0{st.st_mtime_ns}")
            except OSError:
                version.append("-")  # deleted
        return tuple(version)
