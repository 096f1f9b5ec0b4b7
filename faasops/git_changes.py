"""``--changed-since GITREF``: which functions changed in git since a reference.

A function counts as changed when a file under its source directory differs from GITREF (committed,
staged, unstaged or untracked), or when its manifest entry differs from the one at GITREF (the
manifests at GITREF are loaded from ``git archive`` into a temporary directory — validated, never
executed). Functions removed since GITREF count as changed too, so ``--prune`` can delete them.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from faasops.errors import FaasopsError, ManifestError
from faasops.model import Project


def _git(project_root: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=project_root, capture_output=True, timeout=120)
    except FileNotFoundError as exc:
        raise FaasopsError("--changed-since needs git, which is not installed") from exc
    if out.returncode != 0:
        raise FaasopsError(f"git {' '.join(args)} failed: {out.stderr.decode(errors='replace').strip()}")
    return out.stdout.decode(errors="surrogateescape")


def _changed_paths(root: Path, ref: str) -> set[Path]:
    top = Path(_git(root, "rev-parse", "--show-toplevel").strip())
    names = _git(root, "diff", "--name-only", "--no-renames", ref, "--", ".").splitlines()
    names += _git(root, "ls-files", "--others", "--exclude-standard", "--full-name", "--", ".").splitlines()
    return {(top / name).resolve() for name in names if name}


def _project_at(project: Project, ref: str) -> Project | None:
    """The project as declared at ``ref``; None when it didn't exist or doesn't load there."""
    from faasops.manifest import load_project

    top = Path(_git(project.root, "rev-parse", "--show-toplevel").strip())
    prefix = project.root.resolve().relative_to(top.resolve()).as_posix()
    try:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", ref, "--", prefix if prefix != "." else "."],
            cwd=top, capture_output=True, timeout=300,
        )
    except FileNotFoundError:
        return None
    if archive.returncode != 0:
        return None
    with tempfile.TemporaryDirectory(prefix="faasops-ref-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        try:
            return load_project(Path(tmp) / prefix, project.environment)
        except (ManifestError, FileNotFoundError):
            return None


def changed_functions(project: Project, ref: str) -> tuple[str, ...]:
    """Addresses of the functions that changed since ``ref`` (sorted)."""
    _git(project.root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    paths = _changed_paths(project.root, ref)
    before = _project_at(project, ref)
    old_specs = {f.address: f.spec() for f in before.functions()} if before else None
    changed = set()
    for function in project.functions():
        source = function.source_dir.resolve()
        if any(p == source or source in p.parents for p in paths):
            changed.add(function.address)
        elif old_specs is None or old_specs.get(function.address) != function.spec():
            changed.add(function.address)
    if old_specs:
        current = {f.address for f in project.functions()}
        changed.update(a for a in old_specs if a not in current)
    return tuple(sorted(changed))
