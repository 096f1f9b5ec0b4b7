"""A kustomize tree of Kubernetes objects on disk: what ``faasops render`` writes and the
``gitops`` deployer commits, for Argo CD or Flux to apply.

Layout (stable, so a rerun is byte-identical and a git diff shows exactly what changed)::

    DIR/kustomization.yaml                    resources: every namespace directory, sorted
    DIR/<namespace>/kustomization.yaml        resources: every object file beside it, sorted
    DIR/<namespace>/<kind>-<name>.yaml        one object, keys sorted (kind lower-cased)

The Namespace object itself lives in its own directory (``demo/namespace-demo.yaml``). The
kustomizations are derived from the files present, never edited by hand, so writing or removing
an object file and calling :meth:`KustomizeTree.refresh_kustomizations` keeps them exact.

Other files may live in the tree: a file is faasops' when its name starts with the lower-cased
kind of an object faasops writes (``spinapp-``, ``namespace-`` …, and the kinds written by this
tree object) or when a kustomization faasops wrote lists it. Only those are listed, read and
ever removed.

The root kustomization sorts the build output with ``sortOptions`` (kustomize v5): Namespaces
first, then SpinAppExecutors, because spin-operator's admission webhook refuses a SpinApp whose
executor does not exist yet in its namespace, and kustomize's default (legacy) order would put
``SpinApp`` before ``SpinAppExecutor``.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

import yaml

from faasops.errors import FaasopsError
from faasops.template_sandbox import read_rendered

KUSTOMIZATION = "kustomization.yaml"
KUSTOMIZE_API_VERSION = "kustomize.config.k8s.io/v1beta1"
# Applied first, in this order (see the module docstring); every other kind follows in
# kustomize's legacy order.
ORDER_FIRST = ("Namespace", "SpinAppExecutor")
#: The kinds of the objects faasops writes (user templates may add others: ``allowed_kinds``).
KINDS = ("Namespace", "SpinAppExecutor", "SpinApp", "HorizontalPodAutoscaler", "ScaledObject")
_YAML_WIDTH = 2**31 - 1  # never fold a scalar over lines: one value, one line in a diff


def dump(obj: dict[str, Any]) -> str:
    """One object as YAML: keys sorted, block style, no folded lines."""
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, width=_YAML_WIDTH, allow_unicode=True)


def object_path(obj: dict[str, Any]) -> PurePosixPath:
    """Where ``obj`` lives in the tree: ``<namespace>/<kind>-<name>.yaml``."""
    metadata = obj.get("metadata") or {}
    kind, name = str(obj.get("kind", "")), str(metadata.get("name", ""))
    namespace = name if kind == "Namespace" else str(metadata.get("namespace") or "")
    if not kind or not name or not namespace:
        raise FaasopsError(f"cannot place {kind or 'an object'} {name!r} in the tree: it needs a kind, a name and a namespace")
    return PurePosixPath(namespace, f"{kind.lower()}-{name}.yaml")


def _kustomization(resources: list[str], root: bool) -> str:
    document: dict[str, Any] = {"apiVersion": KUSTOMIZE_API_VERSION, "kind": "Kustomization", "resources": resources}
    if root:
        document["sortOptions"] = {"order": "legacy",
                                   "legacySortOptions": {"orderFirst": list(ORDER_FIRST), "orderLast": []}}
    return dump(document)


class KustomizeTree:
    """The files of one tree under ``root``. Writes are atomic (temporary file, then rename) and
    only happen when the bytes change; every method that changes files returns the paths it
    changed, relative to ``root`` (what the ``gitops`` deployer stages). Safe to share between
    threads."""

    def __init__(self, root: Path, kinds: Iterable[str] = KINDS):
        self.root = root
        self.lock = threading.RLock()
        self._prefixes = {f"{kind.lower()}-" for kind in kinds}

    def _ours(self, namespace: str) -> list[str]:
        """The names of the object files of a namespace directory that are faasops' (see the
        module docstring), sorted."""
        directory = self.root / namespace
        if not directory.is_dir():
            return []
        listed = {p.name for p in _listed(directory / KUSTOMIZATION, namespace)}
        return sorted(p.name for p in directory.glob("*.yaml") if p.name != KUSTOMIZATION and p.is_file()
                      and (p.name in listed or any(p.name.startswith(prefix) for prefix in self._prefixes)))

    # ------------------------------------------------------------------------------ reading

    def namespaces(self) -> list[str]:
        """The namespace directories faasops wrote (those with a kustomization), sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob(f"*/{KUSTOMIZATION}"))

    def objects(self, namespace: str) -> list[tuple[PurePosixPath, dict[str, Any]]]:
        """The objects of one namespace directory, with their paths, sorted by path."""
        found = []
        for name in self._ours(namespace):
            path = self.root / namespace / name
            # Files anyone can edit in git: read with the limits rendered templates are read with.
            for document in read_rendered(path.read_text(), str(path)):
                if isinstance(document, dict):
                    found.append((PurePosixPath(namespace, path.name), document))
        return found

    # ------------------------------------------------------------------------------ writing

    def write(self, obj: dict[str, Any]) -> list[str]:
        """Write one object to its path; ``[path]`` when that changed the file, else ``[]``."""
        relative = object_path(obj)
        with self.lock:
            self._prefixes.add(f"{str(obj['kind']).lower()}-")
            return [str(relative)] if self._put(relative, dump(obj)) else []

    def remove(self, relative: PurePosixPath | str) -> list[str]:
        """Remove one file; ``[path]`` when it existed."""
        path = self.root / relative
        with self.lock:
            if not path.is_file():
                return []
            path.unlink()
        return [str(relative)]

    def remove_namespace(self, namespace: str) -> list[str]:
        """Remove a namespace directory's object files and kustomization (other files stay)."""
        changed: list[str] = []
        with self.lock:
            for name in [*self._ours(namespace), KUSTOMIZATION]:
                changed += self.remove(PurePosixPath(namespace, name))
            _remove_if_empty(self.root / namespace)
        return changed

    def refresh_kustomizations(self) -> list[str]:
        """Rewrite every kustomization from the files present; a namespace directory left
        without objects loses its kustomization (and goes when empty)."""
        changed: list[str] = []
        with self.lock:
            candidates = {p.parent.name for p in self.root.glob("*/*.yaml")} if self.root.is_dir() else set()
            namespaces = []
            for namespace in sorted(candidates):
                files = self._ours(namespace)
                relative = PurePosixPath(namespace, KUSTOMIZATION)
                if files:
                    namespaces.append(namespace)
                    if self._put(relative, _kustomization(files, root=False)):
                        changed.append(str(relative))
                else:
                    changed += self.remove(relative)
                    _remove_if_empty(self.root / namespace)
            if namespaces:
                if self._put(PurePosixPath(KUSTOMIZATION), _kustomization(namespaces, root=True)):
                    changed.append(KUSTOMIZATION)
            else:
                changed += self.remove(KUSTOMIZATION)
        return changed

    def replace_all(self, objects: Iterable[dict[str, Any]]) -> list[str]:
        """Make the tree hold exactly ``objects``: write them, remove the object files of
        namespace directories faasops wrote that are no longer among them, refresh the
        kustomizations. Files faasops did not write (no kustomization lists them) stay."""
        wanted: dict[PurePosixPath, str] = {}
        for obj in objects:
            relative = object_path(obj)
            if relative in wanted:
                raise FaasopsError(f"two objects would be written to {relative}")
            wanted[relative] = dump(obj)
        changed: list[str] = []
        with self.lock:
            self._prefixes |= {f"{relative.name.split('-', 1)[0]}-" for relative in wanted}
            for namespace in self.namespaces():
                for relative in _listed(self.root / namespace / KUSTOMIZATION, namespace):
                    if relative not in wanted:
                        changed += self.remove(relative)
            for relative, text in sorted(wanted.items()):
                if self._put(relative, text):
                    changed.append(str(relative))
            changed += self.refresh_kustomizations()
        return sorted(set(changed))

    def _put(self, relative: PurePosixPath, text: str) -> bool:
        path = self.root / relative
        with self.lock:
            if path.is_file() and path.read_text() == text:
                return False
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
        return True


def _listed(kustomization: Path, namespace: str) -> list[PurePosixPath]:
    """The object files a namespace kustomization faasops wrote lists."""
    try:
        document = yaml.safe_load(kustomization.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    resources = document.get("resources") if isinstance(document, dict) else None
    return [PurePosixPath(namespace, name) for name in resources or ()
            if isinstance(name, str) and "/" not in name and name.endswith(".yaml")]


def _remove_if_empty(directory: Path) -> None:
    if directory.is_dir() and not any(directory.iterdir()):
        shutil.rmtree(directory, ignore_errors=True)
