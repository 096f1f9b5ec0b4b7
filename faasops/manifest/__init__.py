"""Loading and validating ``faas.yaml`` manifests into the desired :class:`~faasops.model.Project`.

:func:`load_project` reads the root ``faas.yaml``, every split ``faas.yaml`` below it and, for an
environment, each ``faas.<env>.yaml`` overlay; checks them against ``faas.yaml.schema`` and the
rules a schema can't express; checks each function's handler module; and either returns the
model or raises :class:`~faasops.errors.ManifestError` listing every problem found. It never
writes anything and never imports or runs user code.

The pieces, in the order data flows: :mod:`.discovery` (which files), :mod:`.yaml_source` (safe,
located YAML), :mod:`.overlay` (environment overlays and defaults), :mod:`.schema` (JSON Schema
and its messages), :mod:`.project_builder` (cross-file checks and the model).
"""

from __future__ import annotations

from pathlib import Path

from faasops import names
from faasops.errors import ManifestError, Problem
from faasops.manifest.discovery import MANIFEST_NAME, ManifestFile, find_manifests
from faasops.manifest.overlay import merge_overlay
from faasops.manifest.project_builder import Document, ProjectBuilder
from faasops.manifest.schema import describe, schema_problems
from faasops.manifest.yaml_source import YMap, read_yaml_file
from faasops.model import Location, Project
from faasops.options import OptionSchemas

__all__ = ["MANIFEST_NAME", "load_project"]

# Keys only the root faas.yaml may hold: one project has one name, backend and set of defaults.
ROOT_ONLY_KEYS = ("project", "backend", "providers", "templates", "defaults")


def load_project(root: Path, environment: str | None = None, option_schemas: OptionSchemas | None = None,
                 warnings: list[Problem] | None = None) -> Project:
    """The project whose root ``faas.yaml`` is in ``root``, with the ``environment`` overlays
    (``faas.<environment>.yaml``) merged in; an environment with no overlay file anywhere is a
    problem.

    With ``option_schemas`` (the plugins' declared provider options), every ``providers.*`` block
    is checked against its type's schema too; deprecated option names that still work are added
    to ``warnings``.

    Raises :class:`ManifestError` with every problem found, sorted by file and position."""
    root = Path(root)
    if not (root / MANIFEST_NAME).is_file():
        message = f"no {MANIFEST_NAME} in {root} (create one with `faasops init`)"
        raise ManifestError([Problem(MANIFEST_NAME, 0, 0, "", message)])
    root = root.resolve()
    problems: list[Problem] = []
    if environment is not None and not names.ENVIRONMENT.accepts(environment):
        message = f"-e/--env: environment {names.ENVIRONMENT.problem(environment)}"
        problems.append(Problem(MANIFEST_NAME, 0, 0, "", message))
        environment = None
    manifests, found_problems = find_manifests(root, environment)
    problems += found_problems
    documents: list[Document] = []
    loaded: list[Path] = []
    for manifest in manifests:
        loaded += [manifest.path] + ([manifest.overlay] if manifest.overlay else [])
        tree = _read(manifest, problems)
        if tree is None:
            continue
        problems += schema_problems(tree, manifest.display, manifest.is_root)
        if not manifest.is_root:
            problems += _root_only_keys(tree)
        documents.append(Document(manifest, tree))

    builder = ProjectBuilder(root, option_schemas)
    for document in documents:
        builder.check_characters(document.tree, [])
    root_doc = next((doc for doc in documents if doc.manifest.is_root), None)
    settings = builder.settings(root_doc)
    workspaces = [ws for doc in documents for ws in builder.workspaces(doc, settings)]
    problems += builder.problems
    if warnings is not None:
        warnings += builder.warnings
    if problems:
        raise ManifestError(problems)
    assert settings.name is not None  # the schema requires it in the root manifest
    return Project(
        name=settings.name,
        root=root,
        providers=settings.providers,
        workspaces=tuple(workspaces),
        environment=environment,
        manifest_files=tuple(loaded),
        templates_dir=settings.templates_dir,
    )


def _read(manifest: ManifestFile, problems: list[Problem]) -> YMap | None:
    """The manifest's tree with its overlay merged, or None when it could not be read."""
    tree = _read_mapping(manifest.path, manifest.display, problems)
    if manifest.overlay and manifest.overlay_display:
        overlay = _read_mapping(manifest.overlay, manifest.overlay_display, problems)
        if tree is not None and overlay is not None:
            tree = merge_overlay(tree, overlay)
    return tree


def _read_mapping(path: Path, display: str, problems: list[Problem]) -> YMap | None:
    result = read_yaml_file(path, display)
    problems += result.problems
    if not result.readable:
        return None
    if result.data is None:  # an empty file declares nothing
        return YMap(Location(display, 1, 1))
    if not isinstance(result.data, YMap):
        loc = getattr(result.data, "loc", Location(display, 1, 1))
        message = f"a manifest is a mapping of keys such as apiVersion and workspaces, not {describe(result.data)}"
        problems.append(Problem(display, loc.line, loc.col, "", message))
        return None
    return result.data


def _root_only_keys(tree: YMap) -> list[Problem]:
    problems = []
    for key in ROOT_ONLY_KEYS:
        if key in tree:
            loc = tree.key_locs[key]
            message = (
                f"'{key}' belongs in the root {MANIFEST_NAME} only; "
                f"a {MANIFEST_NAME} in a subdirectory holds only apiVersion and workspaces"
            )
            problems.append(Problem(loc.file, loc.line, loc.col, key, message))
    return problems
