"""Finding a project's manifest files: the root ``faas.yaml``, split manifests below it, and the
``faas.<env>.yaml`` overlay next to each."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from faasops import names
from faasops.errors import Problem

MANIFEST_NAME = "faas.yaml"
# Never searched for split manifests: state, dependencies, caches, virtualenvs (by pyvenv.cfg)
# and hidden directories such as .git.
SKIPPED_DIRS = {".faasops", "node_modules", "__pycache__"}


@dataclass(frozen=True)
class ManifestFile:
    """One ``faas.yaml`` to load, with its overlay for the selected environment, if any."""

    path: Path
    display: str  # relative to the project root, posix
    is_root: bool
    overlay: Path | None = None
    overlay_display: str | None = None


def overlay_name(environment: str) -> str:
    return f"faas.{environment}.yaml"


def find_manifests(root: Path, environment: str | None) -> tuple[list[ManifestFile], list[Problem]]:
    """The root manifest first, then split manifests in sorted path order. ``root`` is resolved
    and holds a faas.yaml. Overlays without a faas.yaml next to them are problems: silently
    ignoring a file the author expects to apply would be worse. So is an ``environment`` with no
    overlay file anywhere (a typo in ``-e`` would otherwise deploy the base manifests)."""
    problems: list[Problem] = []
    found: list[ManifestFile] = []
    overlays_seen = False  # any faas.ENV.yaml, next to a faas.yaml or not
    overlay_file = overlay_name(environment) if environment else None
    for directory, dirnames, filenames in os.walk(root):
        here = Path(directory)
        dirnames[:] = sorted(name for name in dirnames if _searched(here / name))
        files = set(filenames)
        relative_dir = here.relative_to(root)
        overlay = overlay_file if overlay_file in files else None
        overlays_seen = overlays_seen or overlay is not None
        if (MANIFEST_NAME in files or overlay) and not _showable(relative_dir, problems):
            continue
        if MANIFEST_NAME in files:
            manifest = _manifest_file(root, here, overlay, problems)
            if manifest:
                found.append(manifest)
        elif overlay:
            message = (
                f"there is no {MANIFEST_NAME} next to this overlay for it to change; "
                f"move it next to the {MANIFEST_NAME} it overlays"
            )
            problems.append(Problem((relative_dir / overlay).as_posix(), 0, 0, "", message))
    found.sort(key=lambda manifest: (not manifest.is_root, Path(manifest.display).parts))
    if environment and found and not overlays_seen:
        problems.append(unknown_environment(environment, found))
    return found, problems


# How many of the overlay paths looked for an unknown environment names (a big repository has
# thousands of split manifests; the first few show the pattern).
SHOWN_OVERLAY_PATHS = 5


def unknown_environment(environment: str, manifests: list[ManifestFile]) -> Problem:
    """The problem for ``-e ENV`` when no ``faas.ENV.yaml`` exists next to any faas.yaml: a
    misspelt or missing environment would otherwise deploy the base manifests unchanged."""
    looked = [(Path(manifest.display).parent / overlay_name(environment)).as_posix() for manifest in manifests]
    shown = ", ".join(looked[:SHOWN_OVERLAY_PATHS])
    if len(looked) > SHOWN_OVERLAY_PATHS:
        shown += f" and {len(looked) - SHOWN_OVERLAY_PATHS} more"
    message = (f"-e/--env: unknown environment '{environment}': no {overlay_name(environment)} next to any "
               f"{MANIFEST_NAME} (looked for {shown}); create the overlay, or leave out -e")
    return Problem(MANIFEST_NAME, 0, 0, "", message)


def _showable(relative_dir: Path, problems: list[Problem]) -> bool:
    """Whether a manifest in ``relative_dir`` can be named in a one-line message and in UTF-8
    output; a directory name with a control character or bytes that aren't UTF-8 can't."""
    text = relative_dir.as_posix()
    if names.control_character_problem(text, free_text=False) is None:
        return True
    shown = repr(os.fsencode(text))[2:-1]  # its bytes, escaped as Python shows bytes: a\nb, team-\xff
    message = ("the directory name holds a control character or bytes that aren't UTF-8; "
               "rename the directory to load this manifest")
    problems.append(Problem(f"{shown}/{MANIFEST_NAME}", 0, 0, "", message))
    return False


def _searched(directory: Path) -> bool:
    name = directory.name
    # os.path.exists, not Path.exists: it answers False for a directory it may not look into
    # (where Path.exists raises), and os.walk then passes over that directory as it does any
    # unreadable one; a function's own source directory reports it when it is packaged.
    return not name.startswith(".") and name not in SKIPPED_DIRS and not os.path.exists(directory / "pyvenv.cfg")


def _manifest_file(root: Path, here: Path, overlay: str | None, problems: list[Problem]) -> ManifestFile | None:
    path = here / MANIFEST_NAME
    display = path.relative_to(root).as_posix()
    outside = "is a symlink to a file outside the project root; manifests and overlays must live inside the project"
    if not inside(root, path):
        problems.append(Problem(display, 0, 0, "", outside))
        return None
    if overlay is None:
        return ManifestFile(path, display, here == root)
    overlay_path = here / overlay
    overlay_display = overlay_path.relative_to(root).as_posix()
    if not inside(root, overlay_path):
        problems.append(Problem(overlay_display, 0, 0, "", outside))
        return ManifestFile(path, display, here == root)
    return ManifestFile(path, display, here == root, overlay_path, overlay_display)


def inside(root: Path, path: Path) -> bool:
    """Whether ``path``, with every symlink resolved, is ``root`` or below it (never for a
    symlink loop, which resolves to nothing)."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # RuntimeError: Python 3.11's "Symlink loop from …"
        return False
