"""The GitOps hand-off: every object faasops would apply to a cluster, as files for Argo CD or
Flux — what ``faasops render --out DIR`` writes and the ``gitops`` deployer commits.

The objects are exactly the ``kubernetes`` deployer's: per workspace its Namespace (labelled as
faasops creates it), per function the scaffolder's manifests (SpinApp, HPA or ScaledObject) for
its artifact, per namespace the SpinAppExecutors its SpinApps name (rendered from
``spinappexecutor.yaml.j2`` with the deployer's ``runtime_class``/``spot_runtime_class``, unless
``create_executors: false``). One addition: executors carry the Argo CD annotation
``argocd.argoproj.io/sync-wave: "-1"``, so Argo CD creates them before the SpinApps that name
them (spin-operator's webhook refuses a SpinApp whose executor is missing); the kustomize tree's
root ``sortOptions`` do the same for ``kubectl apply -k`` and Flux.

Artifacts are the recorded ones (the state: what the last apply pushed), or, with ``build``,
freshly built and pushed through the same providers and steps as apply (snapshot, upload,
build, push), under the state lock, without deploying or recording anything.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from faasops.errors import FaasopsError, ProviderError
from faasops.executor import source_date
from faasops.kustomize_tree import KustomizeTree
from faasops.model import Function, Project, Workspace
from faasops.plugins.spinkube import (
    DEFAULT_RUNTIME_CLASS,
    DEFAULT_SPOT_RUNTIME_CLASS,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    WORKSPACE_ID_LABEL,
    ExecutorTemplate,
)
from faasops.providers import Scaffolder
from faasops.source import snapshot_directory

if TYPE_CHECKING:
    from faasops.engine import Engine

SYNC_WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
EXECUTOR_SYNC_WAVE = "-1"


def namespace_object(workspace: Workspace, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Namespace of ``workspace`` as the kubernetes deployer creates it; ``labels`` are
    those of earlier workspaces sharing the namespace (a later workspace's win, as its apply
    would)."""
    namespace = workspace.spec()["namespace"]
    merged = {**(labels or {}), **workspace.labels, WORKSPACE_ID_LABEL: workspace.name, MANAGED_BY_LABEL: MANAGED_BY}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": dict(sorted(merged.items()))}}


def executor_template(options: Mapping[str, Any], where: str = "providers.deployer") -> ExecutorTemplate | None:
    """The executor template the deployer options ask for; None with ``create_executors: false``."""
    create = options.get("create_executors", True)
    if not isinstance(create, bool):
        raise ProviderError(f"{where}.create_executors must be true or false, not {create!r}")
    if not create:
        return None
    classes = []
    for option, default in (("runtime_class", DEFAULT_RUNTIME_CLASS), ("spot_runtime_class", DEFAULT_SPOT_RUNTIME_CLASS)):
        value = options.get(option, default)
        if not isinstance(value, str) or not value:
            raise ProviderError(f"{where}.{option} must be a name, not {value!r}")
        classes.append(value)
    return ExecutorTemplate(classes[0], classes[1], options)


def executor_object(template: ExecutorTemplate | None, project: Project, function: Function,
                    manifests: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The SpinAppExecutor the function's SpinApp names, annotated for Argo CD's sync order;
    None without a SpinApp or an executor template (or when the template renders nothing)."""
    spinapp = next((m for m in manifests if m.get("kind") == "SpinApp"), None)
    if template is None or spinapp is None:
        return None
    executor = template.render(project, function, spinapp)
    if executor is None:
        return None
    metadata = executor.setdefault("metadata", {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), SYNC_WAVE_ANNOTATION: EXECUTOR_SYNC_WAVE}
    return executor


@dataclass
class RenderReport:
    """What :func:`render_project` did: files changed (relative to the output directory), the
    functions rendered, and those left out because no artifact is recorded for them."""

    changed: list[str] = field(default_factory=list)
    rendered: list[str] = field(default_factory=list)
    unbuilt: list[str] = field(default_factory=list)
    files: int = 0


def project_objects(project: Project, scaffolder: Scaffolder, executors: ExecutorTemplate | None,
                    artifacts: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every object for the project's workspaces and the functions in ``artifacts``
    (address → image reference), one per tree path."""
    objects: dict[tuple[str, str, str], dict[str, Any]] = {}
    namespace_labels: dict[str, dict[str, str]] = {}
    for workspace in project.workspaces:
        ns = namespace_object(workspace, namespace_labels.get(workspace.spec()["namespace"]))
        namespace_labels[ns["metadata"]["name"]] = ns["metadata"]["labels"]
        objects[("Namespace", "", ns["metadata"]["name"])] = ns
    for function in project.functions():
        artifact = artifacts.get(function.address)
        if not artifact:
            continue
        manifests = scaffolder.render(project, function, artifact)
        executor = executor_object(executors, project, function, manifests)
        for obj in ([executor] if executor else []) + manifests:
            metadata = obj["metadata"]
            # Functions of a namespace share its executors: the first one rendered stays.
            objects.setdefault((obj["kind"], metadata.get("namespace", ""), metadata["name"]), obj)
    return list(objects.values())


def render_project(engine: Engine, out: Path, build: bool = False,
                   progress: Callable[[str], None] | None = None, parallelism: int = 4) -> RenderReport:
    """Write every object faasops would apply into the kustomize tree ``out`` (see the module
    docstring). Without ``build``, functions with no recorded artifact are left out (listed in
    the report)."""
    if out.exists() and not out.is_dir():
        raise FaasopsError(f"--out {out} exists and is not a directory")
    project = engine.project
    functions = project.functions()
    if build:
        with engine.locked("faasops render --build"):
            artifacts = build_artifacts(engine, functions, progress, parallelism)
    else:
        records = engine.state.read().functions
        artifacts = {f.address: records[f.address].artifact for f in functions
                     if f.address in records and records[f.address].artifact}
    options = project.provider("deployer").options
    objects = project_objects(project, engine.providers.scaffolder, executor_template(options), artifacts)
    report = RenderReport(rendered=sorted(artifacts), unbuilt=sorted(f.address for f in functions if f.address not in artifacts))
    report.changed = KustomizeTree(out).replace_all(objects)
    report.files = len(objects)
    return report


def build_artifacts(engine: Engine, functions: list[Function], progress: Callable[[str], None] | None = None,
                    parallelism: int = 4) -> dict[str, str]:
    """Snapshot, upload, build and push each function through the project's providers (apply's
    steps up to the push, ``parallelism`` functions at a time; builds and pushes the registry
    already has are reused). Returns address → image reference."""
    providers = engine.providers
    dates: dict[Path, str] = {}
    for function in functions:  # one `git log` per source directory, before the threads start
        if function.source_dir not in dates:
            dates[function.source_dir] = source_date(function.source_dir)

    def build(function: Function) -> str:
        snapshot = snapshot_directory(function.source_dir)
        providers.sources.upload(function, snapshot)
        built = providers.builder.build(function, snapshot)
        artifact = providers.registry.push(function, built, dates[function.source_dir])
        if progress is not None:
            reused = "build reused" if built.cached else "built"
            pushed = "pushed" if artifact.pushed else "already in the registry"
            progress(f"{function.address}: {reused}, {pushed}: {artifact.reference}")
        return artifact.reference

    with ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="faasops-render") as pool:
        references = list(pool.map(build, functions))
    return {function.address: reference for function, reference in zip(functions, references)}
