"""What each API write does to the project's work tree, before it is validated and committed.

Each function here edits ``faas.yaml`` (round-trip, :mod:`faasops.api.manifest_edit`) and, for
code, the function's source directory, and returns the :class:`Change`: the paths it touched
(exactly what gets staged), the commit message and the apply targets. :class:`Rollback`
remembers every path before it is touched, so a change the project's validation refuses
leaves the work tree as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faasops.api.manifest_edit import EntryNotFound, ManifestDocument
from faasops.api.uploaded_code import UploadedCode
from faasops.errors import FaasopsError
from faasops.manifest import MANIFEST_NAME
from faasops.model import Project, Workspace


class Conflict(FaasopsError):
    """The write contradicts the project (protected, shared source …): HTTP 409."""


class Refused(FaasopsError):
    """The request is invalid for this project (a path outside it …): HTTP 422."""


@dataclass
class Change:
    """One write's effect: the paths to stage, the commit message, the targets to apply."""

    paths: list[Path] = field(default_factory=list)
    message: str = ""
    targets: list[str] = field(default_factory=list)


class Rollback:
    """Copies of the paths a change touches, to put them back when the change is refused."""

    def __init__(self) -> None:
        self._scratch = Path(tempfile.mkdtemp(prefix="faasops-api-rollback-"))
        self._saved: list[tuple[Path, Path | None]] = []

    def remember(self, path: Path) -> None:
        # A path that does not exist yet: its highest missing ancestor goes on restore, so the
        # directories made on the way go too.
        while not path.exists() and not path.parent.exists():
            path = path.parent
        if any(path == p for p, _ in self._saved):
            return
        if path.is_dir():
            copy = self._scratch / str(len(self._saved))
            shutil.copytree(path, copy, symlinks=True)
        elif path.exists():
            copy = self._scratch / str(len(self._saved))
            shutil.copy2(path, copy)
        else:
            copy = None
        self._saved.append((path, copy))

    def restore(self) -> None:
        for path, copy in reversed(self._saved):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            if copy is not None:
                if copy.is_dir():
                    shutil.copytree(copy, path, symlinks=True)
                else:
                    shutil.copy2(copy, path)
        self.discard()

    def discard(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)


def _workspace(project: Project, name: str) -> Workspace:
    found = project.workspace(name)
    if found is None:
        raise EntryNotFound(f"workspace '{name}' not found")
    return found


def _manifest(project: Project, workspace: Workspace | None, rollback: Rollback) -> ManifestDocument:
    path = project.root / (workspace.location.file if workspace else MANIFEST_NAME)
    rollback.remember(path)
    return ManifestDocument(path)


def _inside(project: Project, manifest_dir: Path, source: str) -> Path:
    """The absolute source directory ``source`` names (relative to its manifest); refuses
    absolute paths and any that leads outside the project."""
    if not isinstance(source, str) or not source or os.path.isabs(source) or "\x00" in source:
        raise Refused(f"source: {source!r} must be a relative path inside the project")
    resolved = Path(os.path.normpath(manifest_dir / source))
    root = project.root.resolve()
    if resolved != root and root not in resolved.parents:
        raise Refused(f"source: {source!r} leads outside the project")
    if resolved == root or any(part == ".git" or part == ".faasops" for part in resolved.relative_to(root).parts):
        raise Refused(f"source: {source!r} is not a place for a function's source directory")
    return resolved


# ---------------------------------------------------------------- workspaces


def create_workspace(project: Project, entry: dict[str, Any], rollback: Rollback) -> Change:
    doc = _manifest(project, None, rollback)
    doc.add_workspace(entry)
    doc.save()
    return Change([doc.path], f"Create workspace {entry['name']}", [entry["name"]])


def update_workspace(project: Project, name: str, patch: dict[str, Any], rollback: Rollback) -> Change:
    ws = _workspace(project, name)
    doc = _manifest(project, ws, rollback)
    doc.update_workspace(name, patch)
    doc.save()
    return Change([doc.path], f"Update workspace {name} ({', '.join(sorted(patch))})", [name])


def delete_workspace(project: Project, name: str, rollback: Rollback) -> Change:
    ws = _workspace(project, name)
    if ws.protect:
        raise Conflict(f"workspace '{name}' is protected (protect: true); set protect: false first")
    protected = [f.name for f in ws.functions if f.protect]
    if protected:
        raise Conflict(f"workspace '{name}' holds protected function(s): {', '.join(protected)}")
    doc = _manifest(project, ws, rollback)
    doc.remove_workspace(name)
    doc.save()
    change = Change([doc.path], f"Delete workspace {name} and its {len(ws.functions)} function(s)", [name])
    for fn in ws.functions:
        change.paths += _remove_source(project, fn.source_dir, {(fn.workspace, fn.name) for fn in ws.functions},
                                       rollback)
    return change


# ---------------------------------------------------------------- functions


def _sharers(project: Project, source_dir: Path) -> list[str]:
    return [f.address for f in project.functions() if f.source_dir.resolve() == source_dir.resolve()]


def _remove_source(project: Project, source_dir: Path, leaving: set[tuple[str, str]], rollback: Rollback) -> list[Path]:
    """Remove ``source_dir`` unless a function that stays uses it too."""
    users = [f for f in project.functions() if f.source_dir.resolve() == source_dir.resolve()]
    if any((f.workspace, f.name) not in leaving for f in users) or not source_dir.is_dir():
        return []
    rollback.remember(source_dir)
    shutil.rmtree(source_dir)
    return [source_dir]


def create_function(project: Project, workspace: str, entry: dict[str, Any], code: UploadedCode | None,
                    rollback: Rollback) -> Change:
    ws = _workspace(project, workspace)
    doc = _manifest(project, ws, rollback)
    manifest_dir = doc.path.parent
    name = entry["name"]
    if "source" not in entry:
        entry = {"name": name, "source": f"functions/{workspace}/{name}", **{k: v for k, v in entry.items() if k != "name"}}
    source_dir = _inside(project, manifest_dir, entry["source"])
    doc.add_function(workspace, entry)
    doc.save()
    change = Change([doc.path], f"Create function {workspace}/{name}", [f"{workspace}/{name}"])
    if code is not None:
        if source_dir.exists() and _sharers(project, source_dir):
            raise Conflict(f"source: {entry['source']!r} is the source directory of "
                           f"{', '.join(_sharers(project, source_dir))}; give the new function its own")
        rollback.remember(source_dir)
        code.write_into(source_dir)
        change.paths.append(source_dir)
    return change


def update_function(project: Project, workspace: str, name: str, patch: dict[str, Any],
                    code: UploadedCode | None, rollback: Rollback) -> Change:
    ws = _workspace(project, workspace)
    current = next((f for f in ws.functions if f.name == name), None)
    if current is None:
        raise EntryNotFound(f"function '{workspace}/{name}' not found")
    doc = _manifest(project, ws, rollback)
    changed = sorted(patch)
    if patch:
        doc.update_function(workspace, name, patch)
        doc.save()
    change = Change([doc.path], "", [f"{workspace}/{name}"])
    if code is not None:
        source = patch.get("source") or doc.function(workspace, name).get("source")
        source_dir = _inside(project, doc.path.parent, source)
        others = [a for a in _sharers(project, source_dir) if a != current.address]
        if others:
            raise Conflict(f"the source directory {source!r} is shared with {', '.join(others)}; "
                           "give this function its own `source` to change its code")
        rollback.remember(source_dir)
        code.write_into(source_dir)
        change.paths.append(source_dir)
        changed.append("code")
    change.message = f"Update function {workspace}/{name} ({', '.join(changed)})"
    return change


def delete_function(project: Project, workspace: str, name: str, rollback: Rollback) -> Change:
    ws = _workspace(project, workspace)
    current = next((f for f in ws.functions if f.name == name), None)
    if current is None:
        raise EntryNotFound(f"function '{workspace}/{name}' not found")
    if current.protect:
        raise Conflict(f"function '{workspace}/{name}' is protected (protect: true); set protect: false first")
    doc = _manifest(project, ws, rollback)
    doc.remove_function(workspace, name)
    doc.save()
    change = Change([doc.path], f"Delete function {workspace}/{name}", [f"{workspace}/{name}"])
    change.paths += _remove_source(project, current.source_dir, {(workspace, name)}, rollback)
    return change
